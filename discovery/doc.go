// Package discovery owns finding other charla nodes on the local network: it
// advertises this node over mDNS and reports the addresses of nodes that answer
// with the same workspace tag.
//
// It knows nothing of messages, members or peer IDs. An mDNS answer carries host
// addresses and a port; the peer ID is learnt in the libp2p handshake that node
// decides whether to start. Static peers and the address book are node's job;
// ParsePeerAddr is here so that every way of naming a peer parses alike.
//
// # What goes on the wire
//
// The service is "_charla._tcp" in "local.". An answer holds:
//
//   - an instance name of 16 random hex digits, drawn afresh whenever the
//     advertisement is rebuilt (at start, when the tag rotates, when the
//     interfaces change), and the same digits as host name under "local.";
//   - the port node listens on;
//   - A and AAAA records for the addresses of the up, multicast-capable,
//     non-loopback interfaces (IPv6 link-local addresses left out);
//   - one TXT string, "t=<tag>", where tag is the first of the caller's tags.
//
// Nothing in it names the workspace, the member or the machine: the caller
// computes the tag as HMAC(network key, "charla/mdns" ‖ hour), so only members
// can recognise it and it changes every hour (DESIGN.md, "Discovery").
//
// # Tags
//
// NewMDNS takes tags func() []string rather than a single tag: the first element
// is advertised and every element is accepted in answers. The caller returns
// [current hour, previous hour] (and may add the next hour to tolerate clock
// skew), which a single tag() could not express without discovery keeping
// history of its own. Run calls tags every minute and rebuilds the
// advertisement when the first element changes.
//
// # Browsing
//
// hashicorp/mdns only answers queries and never announces, so browsing is a
// query repeated every 2 s for the first 30 s after start or after an interface
// change, then every 10 s. Each query waits its whole timeout (1 s) and is sent
// on each usable interface.
package discovery
