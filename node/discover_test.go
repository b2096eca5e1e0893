package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/discovery"
	ma "github.com/multiformats/go-multiaddr"
)

// TestFoundAddressDialled: an address reported by discovery carries no peer
// ID; the node learns it by handshake and connects to members only, and an
// address of another office is refused and remembered.
func TestFoundAddressDialled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	if _, err := ana.Provision(ctx, filepath.Join(dir, "ben"), "Ben"); err != nil {
		t.Fatal(err)
	}
	ben := openNode(t, filepath.Join(dir, "ben")) // no static peers, empty book
	if _, err := Init(ctx, filepath.Join(dir, "other"), InitOptions{Name: "Olga", Workspace: "Other office"}); err != nil {
		t.Fatal(err)
	}
	other := openNode(t, filepath.Join(dir, "other"))

	addr := func(n *Node) ma.Multiaddr { return n.host.Addrs()[0] }
	ben.onFound(discovery.Found{Addrs: []ma.Multiaddr{addr(other), addr(ana)}, Via: discovery.ViaMDNS})
	eventually(t, 60*time.Second, "ben connects to ana", func() bool { return len(ben.connectedMembers()) == 1 })
	ps, err := ben.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Name != "Ana" || ps[0].Via != "mdns" {
		t.Fatalf("peers = %+v, want Ana via mdns", ps)
	}
	if _, err := ben.identify(ctx, addr(other)); err == nil {
		t.Fatal("another office's node passed the handshake")
	}
	ben.find.mu.Lock()
	_, remembered := ben.find.failed[addr(other).String()]
	ben.find.mu.Unlock()
	if !remembered {
		t.Fatal("the other office's address is not remembered as failed")
	}
	if len(other.host.Network().Peers()) != 0 {
		t.Fatal("the other office's node holds a connection")
	}
}

// TestPeerExchange: a node that knows one member only (no mDNS, no book
// entries of the others) reaches the others through peer exchange.
func TestPeerExchange(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	for _, name := range []string{"ben", "cai", "lap"} {
		if _, err := ana.Provision(ctx, filepath.Join(dir, name), name); err != nil {
			t.Fatal(err)
		}
	}
	ben := openNode(t, filepath.Join(dir, "ben"), ana.Addrs()[0])
	cai := openNode(t, filepath.Join(dir, "cai"), ana.Addrs()[0])
	eventually(t, 60*time.Second, "ana reaches ben and cai", func() bool { return len(ana.connectedMembers()) == 3-1 })
	_ = cai
	lap := openNode(t, filepath.Join(dir, "lap"), ben.Addrs()[0]) // knows Ben only
	eventually(t, 60*time.Second, "lap reaches all three", func() bool { return len(lap.connectedMembers()) == 3 })
	ps, err := lap.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vias := map[string]string{}
	for _, p := range ps {
		vias[p.Name] = p.Via
	}
	if vias["Ana"] != viaExchange && vias["cai"] != viaExchange {
		t.Fatalf("peers = %v, want some via exchange", vias)
	}
}
