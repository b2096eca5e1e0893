package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/discovery"
	"github.com/charla-im/charla/store"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/pnet"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mss "github.com/multiformats/go-multistream"
)

// How a peer became known to this node, shown by `charla peers`.
const (
	viaStatic  = "static"
	viaMDNS    = discovery.ViaMDNS
	viaBook    = "book"
	viaInvite  = "invite"
	viaInbound = "inbound"
)

const (
	probeTimeout  = 3 * time.Second
	failedAddrTTL = 10 * time.Minute // an address of another office is not probed again before
	bookPeriod    = 30 * time.Second
)

// finder remembers what discovery learnt: who is behind an address, which
// addresses belong to another office, and how each peer was found.
type finder struct {
	mu     sync.Mutex // guards the maps
	byAddr map[string]peer.ID
	failed map[string]time.Time
	via    map[peer.ID]string
}

func (f *finder) setVia(p peer.ID, via string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.via == nil {
		f.via = map[peer.ID]string{}
	}
	if _, ok := f.via[p]; !ok || via == viaMDNS {
		f.via[p] = via
	}
}

func (f *finder) viaOf(p peer.ID) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.via[p]; ok {
		return v
	}
	return viaInbound
}

// startMDNS advertises this node on the LAN with the rotating workspace tag
// and dials the members it finds.
func (n *Node) startMDNS(netKey [32]byte) {
	port := 0
	for _, a := range n.host.Network().ListenAddresses() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			fmt.Sscan(p, &port)
			break
		}
	}
	tags := func() []string {
		hour := time.Now().Unix() / 3600
		return []string{crypto.MDNSTag(netKey, hour), crypto.MDNSTag(netKey, hour-1)}
	}
	// The configured logger, not n.log: discovery adds its own component,
	// and slog would print "component=node component=mdns component=discovery".
	n.mdns = discovery.NewMDNS(port, tags, n.onFound, n.cfg.Logger)
	n.work.spawn(func() {
		if err := n.mdns.Run(n.ctx); err != nil {
			n.log.Warn("mdns stopped", "err", err)
		}
	})
}

// onFound dials the member behind addresses mDNS reported. The answer holds
// no peer ID, so a short handshake learns it first.
func (n *Node) onFound(f discovery.Found) {
	n.work.spawn(func() {
		for _, a := range f.Addrs {
			p, err := n.identify(n.ctx, a)
			if err != nil {
				n.log.Debug("probe found address", "addr", a, "err", err)
				continue
			}
			if p == n.host.ID() || !n.hist.isMember(p) {
				continue
			}
			n.find.setVia(p, f.Via)
			n.host.Peerstore().AddAddrs(p, []ma.Multiaddr{a}, peerstore.AddressTTL)
			if n.host.Network().Connectedness(p) == network.Connected {
				return
			}
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			err = n.host.Connect(ctx, peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{a}})
			cancel()
			if err == nil {
				return
			}
		}
	})
}

// identify learns the peer ID behind a TCP address with the private-network
// and Noise handshakes alone. Addresses that fail it (another office on the
// same LAN) are remembered and not probed again for a while.
func (n *Node) identify(ctx context.Context, a ma.Multiaddr) (peer.ID, error) {
	key := a.String()
	n.find.mu.Lock()
	if p, ok := n.find.byAddr[key]; ok {
		n.find.mu.Unlock()
		return p, nil
	}
	if t, ok := n.find.failed[key]; ok && time.Since(t) < failedAddrTTL {
		n.find.mu.Unlock()
		return "", fmt.Errorf("%s failed the handshake recently", key)
	}
	n.find.mu.Unlock()
	p, err := n.handshake(ctx, a)
	n.find.mu.Lock()
	defer n.find.mu.Unlock()
	if n.find.byAddr == nil {
		n.find.byAddr, n.find.failed = map[string]peer.ID{}, map[string]time.Time{}
	}
	if err != nil {
		n.find.failed[key] = time.Now()
		return "", err
	}
	n.find.byAddr[key] = p
	return p, nil
}

func (n *Node) handshake(ctx context.Context, a ma.Multiaddr) (peer.ID, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d manet.Dialer
	c, err := d.DialContext(ctx, a)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	pc, err := pnet.NewProtectedConn(n.netKey, c)
	if err != nil {
		return "", err
	}
	// As libp2p's upgrader does: private network, then multistream-select of
	// the security protocol, then Noise. The muxer step is left out.
	if err := mss.SelectProtoOrFail(noise.ID, pc); err != nil {
		return "", fmt.Errorf("handshake with %s: %w (another office's node?)", a, err)
	}
	base, err := noise.New(noise.ID, n.id.PrivKey(), nil)
	if err != nil {
		return "", err
	}
	tpt, err := base.WithSessionOptions(noise.DisablePeerIDCheck()) // learning the ID is the point
	if err != nil {
		return "", err
	}
	sc, err := tpt.SecureOutbound(ctx, pc, "")
	if err != nil {
		return "", fmt.Errorf("handshake with %s: %w (another office's node?)", a, err)
	}
	defer sc.Close()
	return sc.RemotePeer(), nil
}

// dialKnown dials static peers and every member in the address book that
// is not connected.
func (n *Node) dialKnown() {
	if n.hist.removedSelf() {
		return // every member's gater refuses a removed node
	}
	targets := map[peer.ID][]ma.Multiaddr{}
	for _, ai := range n.static {
		targets[ai.ID] = append(targets[ai.ID], ai.Addrs...)
		n.find.setVia(ai.ID, viaStatic)
	}
	if book, err := n.st.Book(n.ctx); err == nil {
		for _, e := range book {
			p := peer.ID(e.Peer)
			for _, s := range e.Addrs {
				if a, err := ma.NewMultiaddr(s); err == nil {
					targets[p] = append(targets[p], a)
				}
			}
			n.find.setVia(p, viaBook)
		}
	}
	for p, addrs := range targets {
		if p == n.host.ID() || n.host.Network().Connectedness(p) == network.Connected || !n.hist.isMember(p) {
			continue
		}
		n.host.Peerstore().AddAddrs(p, addrs, peerstore.AddressTTL)
		ai := peer.AddrInfo{ID: p, Addrs: addrs}
		n.work.spawn(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			defer cancel()
			if err := n.host.Connect(ctx, ai); err != nil && n.ctx.Err() == nil {
				n.log.Debug("dial known peer", "peer", ai.ID, "err", err)
			}
		})
	}
}

// bookLoop redials known members with backoff, at once after a network
// change (a laptop back on the office Wi-Fi), and keeps the address book of
// every member seen.
func (n *Node) bookLoop(ctx context.Context) {
	backoff := time.Second
	next := time.Now()
	lastNet := netFingerprint()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if fp := netFingerprint(); fp != lastNet {
			lastNet, backoff, next = fp, time.Second, time.Now()
			n.log.Info("network changed; dialling known members")
		}
		if !time.Now().Before(next) {
			n.dialKnown()
			n.saveBook()
			next = time.Now().Add(backoff)
			if backoff < bookPeriod {
				backoff *= 2
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// netFingerprint summarises the machine's interface addresses, so a change
// of network is noticed.
func netFingerprint() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, a := range addrs {
		b.WriteString(a.String())
		b.WriteByte(' ')
	}
	return b.String()
}

// saveBook records the addresses of connected members.
func (n *Node) saveBook() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range n.connectedMembers() {
		var addrs []string
		for _, a := range n.host.Peerstore().Addrs(p) {
			if manet.IsIPLoopback(a) && !n.onLoopbackOnly() {
				continue
			}
			addrs = append(addrs, a.String())
		}
		if len(addrs) == 0 {
			continue
		}
		if err := n.st.PutBookEntry(ctx, store.BookEntry{Peer: []byte(p), Addrs: addrs, Via: n.find.viaOf(p), LastSeen: time.Now().UnixMilli()}); err != nil {
			n.log.Debug("save address book", "err", err)
		}
	}
}

// onLoopbackOnly reports whether this node listens on loopback alone (tests,
// several nodes on one machine), where loopback addresses are worth keeping.
func (n *Node) onLoopbackOnly() bool {
	for _, a := range n.host.Addrs() {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}
