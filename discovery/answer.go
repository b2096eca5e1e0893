package discovery

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/multiformats/go-multiaddr"
)

// Bounds on what other hosts on the LAN can make this package hold.
const (
	maxEntriesPerQuery = 64   // answers kept from one query on one interface; more are dropped and counted
	maxRemembered      = 1024 // address sets remembered for dedupeWindow; past it, found may repeat
	maxTXTFields       = 8    // TXT strings looked at in one answer
)

// serviceSuffix ends the instance name of every charla answer.
const serviceSuffix = "." + serviceName + "." + domain

// parseEntry turns an answer into a Found if it is a charla answer carrying
// one of tags and not our own (instance is our fully qualified instance name).
// The error says why an answer is ignored; it is only logged at Debug.
func parseEntry(e *mdns.ServiceEntry, tags []string, own string) (Found, error) {
	if !strings.HasSuffix(e.Name, serviceSuffix) {
		// hashicorp/mdns hands over answers for any name that arrives while
		// the query waits, not only for the service asked about.
		return Found{}, errors.New("not a charla answer")
	}
	if e.Name == own {
		return Found{}, errors.New("our own answer")
	}
	if !tagAccepted(e.InfoFields, tags) {
		return Found{}, errors.New("no accepted workspace tag")
	}
	if e.Port <= 0 || e.Port > 65535 {
		return Found{}, fmt.Errorf("bad port %d", e.Port)
	}
	var ips []netip.Addr
	if ip, ok := netip.AddrFromSlice(e.AddrV4); ok && ip.Unmap().Is4() {
		ips = append(ips, ip.Unmap())
	}
	if e.AddrV6IPAddr != nil {
		// Link-local addresses would need the zone of the interface the
		// answer came in on; charla does not advertise them, so skip them.
		if ip, ok := netip.AddrFromSlice(e.AddrV6IPAddr.IP); ok && ip.Is6() && !ip.Is4In6() && !ip.IsLinkLocalUnicast() {
			ips = append(ips, ip)
		}
	}
	f := Found{Via: ViaMDNS}
	for _, ip := range ips {
		if !dialable(ip) {
			continue
		}
		a, err := multiaddr.NewMultiaddr(tcpAddr(ip, e.Port))
		if err != nil {
			return Found{}, fmt.Errorf("address %s: %w", ip, err)
		}
		f.Addrs = append(f.Addrs, a)
	}
	if len(f.Addrs) == 0 {
		return Found{}, errors.New("no usable address")
	}
	return f, nil
}

func tcpAddr(ip netip.Addr, port int) string {
	family := "/ip4/"
	if ip.Is6() {
		family = "/ip6/"
	}
	return family + ip.String() + "/tcp/" + strconv.Itoa(port)
}

// dialable rejects addresses no peer should advertise: a hostile answer must
// not point us at our own loopback or at a broadcast or multicast group.
func dialable(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsMulticast() &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// tagAccepted reports whether the TXT strings hold exactly one "t=" string
// and its value is one of tags. Empty tags are never accepted.
func tagAccepted(txt []string, tags []string) bool {
	var got string
	n := 0
	for _, s := range txt[:min(len(txt), maxTXTFields)] {
		if v, ok := strings.CutPrefix(s, tagKey); ok {
			got = v
			n++
		}
	}
	return n == 1 && got != "" && slices.Contains(tags, got)
}

// recent remembers the address sets reported lately, so that an answer to
// every query does not become a call to found every two seconds.
type recent struct {
	seen    map[string]time.Time
	dropped int // address sets not remembered because seen was full
}

// fresh reports whether f has not been reported within dedupeWindow before
// now, and remembers it if so.
func (r *recent) fresh(f Found, now time.Time) bool {
	key := addrKey(f.Addrs)
	if t, ok := r.seen[key]; ok && now.Sub(t) < dedupeWindow {
		return false
	}
	if r.seen == nil {
		r.seen = make(map[string]time.Time)
	}
	if len(r.seen) >= maxRemembered {
		for k, t := range r.seen {
			if now.Sub(t) >= dedupeWindow {
				delete(r.seen, k)
			}
		}
	}
	if len(r.seen) >= maxRemembered {
		r.dropped++
		return true
	}
	r.seen[key] = now
	return true
}

func addrKey(addrs []multiaddr.Multiaddr) string {
	ss := make([]string, len(addrs))
	for i, a := range addrs {
		ss[i] = a.String()
	}
	slices.Sort(ss)
	return strings.Join(ss, " ")
}

// slogWriter routes hashicorp/mdns's log.Logger output to slog at Debug: the
// library logs every unreadable packet and every failed socket as [ERR], which
// is noise to a user (FINDINGS.md, "mDNS").
type slogWriter struct{ log *slog.Logger }

var _ io.Writer = slogWriter{}

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("mdns library", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}
