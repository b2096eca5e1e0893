package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

// TestTailLossRepairedByHeartbeat: a message that gossip never carried (the
// last of a burst, so no later seq reveals the gap) reaches the peer through
// the heartbeat's digest; and the author then sees it delivered.
func TestTailLossRepairedByHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ana, ben := connectedPair(t)
	ctx := context.Background()
	time.Sleep(2 * gossipSettle) // let the on-connect pulls finish: only the heartbeat may repair what follows
	// Stored and acknowledged, but never published: as if gossip dropped it.
	_, msgs, err := ana.hist.postContent(ctx, generalRoomID(ana.hist.ws), &wire.Content{Kind: wire.KindText, Text: "lost at the tail"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ana.stateOf(msgs[0]); got != "local" {
		t.Fatalf("state before any peer holds it = %q, want local", got)
	}
	eventually(t, 4*presenceInterval, "ben receives the lost message", func() bool {
		return len(texts(t, ben, "general")) == 1
	})
	eventually(t, 4*presenceInterval, "ana sees it delivered", func() bool {
		ms, err := ana.Log(ctx, "general", 10)
		return err == nil && len(ms) == 1 && ms[0].State == "delivered"
	})
}

// connectedPair is a workspace of two nodes, connected to each other, the
// second reading #general.
func connectedPair(t *testing.T) (ana, ben *Node) {
	t.Helper()
	nodes, _ := workspace(t, 2)
	ana, ben = nodes[0], nodes[1]
	eventually(t, 60*time.Second, "connected and reading #general", func() bool {
		_, _, err := ben.resolveRoom(context.Background(), "general")
		return err == nil && len(ana.connectedMembers()) == 1 && len(ben.connectedMembers()) == 1
	})
	return ana, ben
}

// headOf is n's contiguous head of author's feed, 0 if none.
func headOf(t *testing.T, n *Node, author []byte) uint64 {
	t.Helper()
	heads, err := n.st.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if string(h.Author) == string(author) {
			return h.Seq
		}
	}
	return 0
}

// TestOfflineSendIsLocal: with no peer, a send is stored and acknowledged,
// stays local, and is delivered once a peer appears.
func TestOfflineSendIsLocal(t *testing.T) {
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
	m, err := ana.Send(ctx, "general", "written offline")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "local" {
		t.Fatalf("offline message state %q, want local", m.State)
	}
	ben := openNode(t, filepath.Join(dir, "ben"), ana.Addrs()[0])
	eventually(t, 60*time.Second, "ben gets it and ana sees it delivered", func() bool {
		ms, _ := ana.Log(ctx, "general", 10)
		got, err := ben.Log(ctx, "general", 10)
		return err == nil && len(got) == 1 && len(ms) == 1 && ms[0].State == "delivered"
	})
}

// TestRestoredNodeLearnsOwnHead: a node restored from an old backup learns
// its own feed's head from a peer before its first send, so it never signs
// a second envelope at a seq it used (a fork).
func TestRestoredNodeLearnsOwnHead(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	wait := func(n int) {
		eventually(t, 60*time.Second, "ben holds all of ana's messages", func() bool {
			ms, err := ben.Log(ctx, "general", 100)
			return err == nil && len(ms) == n
		})
	}
	eventually(t, 60*time.Second, "ben reads #general", func() bool { _, _, err := ben.resolveRoom(ctx, "general"); return err == nil })
	for _, s := range []string{"one", "two"} {
		if _, err := ana.Send(ctx, "general", s); err != nil {
			t.Fatal(err)
		}
	}
	wait(2)
	ana.Close()
	backup := t.TempDir()
	copyDB(t, homes[0], backup)
	ana = openNode(t, homes[0], ben.Addrs()[0])
	for _, s := range []string{"three", "four"} {
		if _, err := ana.Send(ctx, "general", s); err != nil {
			t.Fatal(err)
		}
	}
	wait(4)
	ana.Close()
	copyDB(t, backup, homes[0]) // the disk died; the backup is two messages behind
	ana = openNode(t, homes[0], ben.Addrs()[0])
	// At once, before any connection is up: the send must wait for the sync.
	if _, err := ana.Send(ctx, "general", "five"); err != nil {
		t.Fatal(err)
	}
	wait(5)
	st, err := ben.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Forks) != 0 {
		t.Fatalf("the restored node forked its feed: %+v", st.Forks)
	}
	if got := strings.Join(texts(t, ana, "general"), ","); got != "one,two,three,four,five" {
		t.Fatalf("restored ana reads %q", got)
	}
}

func copyDB(t *testing.T, from, to string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(to, databaseFile+"*"))
	for _, f := range files {
		os.Remove(f)
	}
	files, _ = filepath.Glob(filepath.Join(from, databaseFile+"*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLagPullsOnlyForWhatIsStillMissing: a head a peer claimed is pulled
// for only while this node's own head is below it, from the peer that
// claimed it (any member when that one is gone); once looked at, a claim
// is forgotten.
func TestLagPullsOnlyForWhatIsStillMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ana, ben := connectedPair(t)
	ctx := context.Background()
	if _, err := ana.Send(ctx, "general", "hello"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben holds ana's message", func() bool {
		return len(texts(t, ben, "general")) == 1
	})
	author := []byte(ana.host.ID())
	held := headOf(t, ben, author)
	if held == 0 {
		t.Fatal("ben holds no head of ana")
	}

	ben.lag.claim(author, held, ana.host.ID())
	if ps := ben.lagging(ctx); len(ps) != 0 {
		t.Errorf("claim at the head ben holds: pulls from %v, want none", ps)
	}
	ben.lag.claim(author, held+3, ana.host.ID())
	if ps := ben.lagging(ctx); len(ps) != 1 || ps[0] != ana.host.ID() {
		t.Errorf("claim above ben's head: pulls from %v, want ana", ps)
	}
	if ps := ben.lagging(ctx); len(ps) != 0 {
		t.Errorf("a claim looked at twice: pulls from %v", ps)
	}
	gone := ben.host.ID() // a node is never connected to itself
	ben.lag.claim(author, held+3, gone)
	if ps := ben.lagging(ctx); len(ps) != 1 || ps[0] != ana.host.ID() {
		t.Errorf("claim of a peer not connected: pulls from %v, want the member connected (ana)", ps)
	}
	if !ben.claimAhead([]wire.VectorEntry{{Author: author, Seq: held}}, []wire.VectorEntry{{Author: author, Seq: held + 1}}, ana.host.ID()) {
		t.Error("claimAhead: a head above ours is not ahead")
	}
	if ben.claimAhead([]wire.VectorEntry{{Author: author, Seq: held}}, []wire.VectorEntry{{Author: author, Seq: held}}, ana.host.ID()) {
		t.Error("claimAhead: an equal head is ahead")
	}
}

// TestLagHonestClaimNotHidden: two members claim heads of one author above
// ours, one of them more than it holds; both are pulled from, so the one
// that claims too much does not hide the one that holds it.
func TestLagHonestClaimNotHidden(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	eventually(t, 60*time.Second, "ben connected to ana and cai", func() bool {
		return len(ben.connectedMembers()) == 2
	})
	ctx := context.Background()
	author := []byte(ana.host.ID())
	held := headOf(t, ben, author)
	ben.lag.claim(author, held+2, ana.host.ID())
	ben.lag.claim(author, held+1000, cai.host.ID()) // more than anyone holds
	ps := ben.lagging(ctx)
	if len(ps) != 2 || !slices.Contains(ps, ana.host.ID()) || !slices.Contains(ps, cai.host.ID()) {
		t.Errorf("pulls from %v, want ana and cai", ps)
	}
}
