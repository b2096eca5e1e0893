package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// workspace starts n nodes on loopback, members of one workspace founded by
// the first, each with the founder (and the previous node) as static peers.
func workspace(t *testing.T, n int) ([]*Node, []string) {
	t.Helper()
	ctx := context.Background()
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i))
	}
	initHome(t, homes[0])
	owner := openNode(t, homes[0])
	nodes := []*Node{owner}
	for i := 1; i < n; i++ {
		if _, err := owner.Provision(ctx, homes[i], fmt.Sprintf("Member%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < n; i++ {
		peers := []string{owner.Addrs()[0]}
		if i > 1 {
			peers = append(peers, nodes[i-1].Addrs()[0])
		}
		nodes = append(nodes, openNode(t, homes[i], peers...))
	}
	return nodes, homes
}

// initHome makes home a founder's: Ana, of workspace Acme.
func initHome(t testing.TB, home string) {
	t.Helper()
	if _, err := Init(context.Background(), home, InitOptions{Name: "Ana", Workspace: "Acme"}); err != nil {
		t.Fatal(err)
	}
}

func openNode(t *testing.T, home string, peers ...string) *Node {
	t.Helper()
	cfg := Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers}
	if os.Getenv("CHARLA_TEST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("home", filepath.Base(home))
	}
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func texts(t *testing.T, n *Node, room string) []string {
	t.Helper()
	ms, err := n.Log(context.Background(), room, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

func TestFiveNodesSameHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := workspace(t, 5)
	ctx := context.Background()
	eventually(t, 60*time.Second, "every node reads #general", func() bool {
		for _, n := range nodes {
			if _, _, err := n.resolveRoom(ctx, "general"); err != nil {
				return false
			}
		}
		return true
	})
	const per = 20
	for i := 0; i < per; i++ {
		for j, n := range nodes {
			if _, err := n.Send(ctx, "general", fmt.Sprintf("m%d-%d", j, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := per * len(nodes)
	eventually(t, 30*time.Second, "every message on every node", func() bool {
		for _, n := range nodes {
			if len(texts(t, n, "general")) != want {
				return false
			}
		}
		return true
	})
	first := strings.Join(texts(t, nodes[0], "general"), ",")
	for i, n := range nodes[1:] {
		got := texts(t, n, "general")
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s] {
				t.Fatalf("node %d holds %q twice", i+1, s)
			}
			seen[s] = true
		}
		if strings.Join(got, ",") != first {
			t.Fatalf("node %d orders #general differently", i+1)
		}
	}
}

func TestUnreadableRoomStoredAsCiphertext(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := workspace(t, 3)
	ctx := context.Background()
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.CreateRoom(ctx, "secret", []peer.ID{b.PeerID()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b reads #secret", func() bool {
		_, _, err := b.resolveRoom(ctx, "secret")
		return err == nil
	})
	const text = "the-password-is-swordfish-42"
	m, err := b.Send(ctx, "secret", text)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := wire.ParseID(m.ID)
	eventually(t, 60*time.Second, "c stores b's envelope", func() bool {
		_, err := c.st.Envelope(ctx, id)
		return err == nil
	})
	if _, _, err := c.resolveRoom(ctx, "secret"); err == nil {
		t.Fatal("c can name a room it is not in")
	}
	eventually(t, 60*time.Second, "a reads b's message in #secret", func() bool {
		got := texts(t, a, "secret")
		return len(got) == 1 && got[0] == text
	})
	files, _ := filepath.Glob(filepath.Join(homes[2], "*.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(text)) {
			t.Fatalf("plaintext found in %s", f)
		}
	}
}

func TestRestartKeepsHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "a")
	initHome(t, home)
	n := openNode(t, home)
	if _, err := n.Send(ctx, "#general", "before restart"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}}); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second open of one home: %v", err)
	}
	n.Close()
	n = openNode(t, home)
	if _, err := n.Send(ctx, "general", "after restart"); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, n, "general"); strings.Join(got, "|") != "before restart|after restart" {
		t.Fatalf("history after restart: %q", got)
	}
}

// allKnown waits until every node's roster holds every node.
func allKnown(t *testing.T, nodes ...*Node) {
	t.Helper()
	eventually(t, 60*time.Second, "everyone knows everyone", func() bool {
		for _, n := range nodes {
			if n.hist.memberCount() != len(nodes) {
				return false
			}
		}
		return true
	})
}
