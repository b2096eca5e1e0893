package node

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCheckedBeforeAdmission: sync checks batch N+1 while it writes batch
// N. An envelope whose author was unknown when it was checked, and whose
// admission batch N then brought, is stored — not left waiting for an
// admission that has already happened.
func TestCheckedBeforeAdmission(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	anaHome, lapHome, benHome := filepath.Join(dir, "ana"), filepath.Join(dir, "laptop"), filepath.Join(dir, "ben")
	initHome(t, anaHome)
	ana := openNode(t, anaHome)
	// The laptop is admitted before Ben, so it does not know him.
	if _, err := ana.Provision(ctx, lapHome, "Laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Provision(ctx, benHome, "Ben"); err != nil {
		t.Fatal(err)
	}
	ben := openNode(t, benHome, ana.Addrs()[0])
	eventually(t, 30*time.Second, "Ben reads #general", func() bool {
		_, err := ben.Log(ctx, "general", 1)
		return err == nil
	})
	if _, err := ben.Send(ctx, "general", "hello from Ben"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ana holds Ben's message", func() bool {
		return slices.Contains(texts(t, ana, "general"), "hello from Ben")
	})
	raws := func(n *Node, author []byte) [][]byte {
		es, err := n.st.EnvelopesAfter(ctx, author, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, e := range es {
			out = append(out, e.Raw)
		}
		return out
	}
	anaFeed, benFeed := raws(ana, ana.hist.self), raws(ana, ben.hist.self)

	laptop := openNode(t, lapHome) // no peers: fed by hand below
	// Batch N+1 (Ben's feed) is checked first: Ben is unknown then.
	rs := laptop.hist.checkAll(ctx, benFeed)
	for _, r := range rs {
		if r.out != outPending {
			t.Fatalf("Ben's envelope checked before his admission: outcome %d, want pending", r.out)
		}
	}
	// Batch N (Ana's feed, Ben's admission in it) is written.
	if _, err := laptop.hist.ingestRaw(ctx, anaFeed); err != nil {
		t.Fatal(err)
	}
	if _, ok := laptop.hist.member(ben.hist.self); !ok {
		t.Fatal("the laptop does not know Ben after his admission")
	}
	// Then batch N+1 is written.
	if _, err := laptop.hist.ingestChecked(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, laptop, "general"); !slices.Contains(got, "hello from Ben") {
		t.Errorf("the laptop reads %q, want Ben's message", got)
	}
	laptop.hist.mu.Lock()
	waiting := laptop.hist.npending
	laptop.hist.mu.Unlock()
	if waiting != 0 {
		t.Errorf("%d envelopes wait for their author after his admission", waiting)
	}
}

// TestDuplicateSpottedBeforeVerify: an envelope already held is found a
// duplicate by check, after a restart too (the authors' tops are read from
// the store), and one above everything held is not looked up.
func TestDuplicateSpottedBeforeVerify(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	ana := openNode(t, home)
	eventually(t, 5*time.Second, "#general readable", func() bool {
		_, err := ana.Log(ctx, "general", 1)
		return err == nil
	})
	if _, err := ana.Send(ctx, "general", "once"); err != nil {
		t.Fatal(err)
	}
	es, err := ana.st.EnvelopesAfter(ctx, ana.hist.self, 0, 1000)
	if err != nil || len(es) == 0 {
		t.Fatal(es, err)
	}
	last := es[len(es)-1]
	if err := ana.Close(); err != nil {
		t.Fatal(err)
	}
	ana = openNode(t, home)
	if _, out, _ := ana.hist.check(ctx, last.Raw); out != outDuplicate {
		t.Errorf("check of a held envelope after restart: outcome %d, want duplicate", out)
	}
	hd := *mustHeader(t, last.Raw)
	if !ana.hist.mayHold(&hd, last.ID) {
		t.Error("mayHold false for the newest held envelope")
	}
	hd.Seq++
	if ana.hist.mayHold(&hd, last.ID) {
		t.Error("mayHold true above everything held: check would look it up for nothing")
	}
}

func mustHeader(t *testing.T, raw []byte) *wire.Header {
	t.Helper()
	_, hd, err := wire.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return hd
}

// TestCatchUpManyBatches: a member that missed more than a few sync
// batches, and holds some of them above gaps already, gets everything else
// in one pull (the server reads and sends a batch at a time, the puller
// checks one while it writes another), with nothing stored twice.
func TestCatchUpManyBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	anaHome, benHome := filepath.Join(dir, "ana"), filepath.Join(dir, "ben")
	initHome(t, anaHome)
	ana := openNode(t, anaHome)
	if _, err := ana.Provision(ctx, benHome, "Ben"); err != nil {
		t.Fatal(err)
	}
	// 3 batches and then some, written straight into Ana's history.
	const n = 3*wire.MaxBatchEnvelopes + 40
	head := feedHeld(t, ana)
	var raws [][]byte
	prev, lamport := head.ID, uint64(1<<20)
	for i := range n {
		env := forgeContent(t, ana, head.Seq+1+uint64(i), prev, lamport+uint64(i),
			&wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("message %d", i)})
		raws = append(raws, env.Marshal())
		prev = env.ID()
	}
	if got, err := ana.hist.ingestRaw(ctx, raws); err != nil || got != n {
		t.Fatalf("Ana stores %d of %d, %v", got, n, err)
	}
	// Ben holds a few above gaps, one of them past the first batch.
	ben := openNode(t, benHome)
	above := [][]byte{raws[5], raws[6], raws[wire.MaxBatchEnvelopes+3], raws[n-1]}
	if _, err := ben.hist.ingestRaw(ctx, above); err != nil {
		t.Fatal(err)
	}
	if err := ben.host.Connect(ctx, peer.AddrInfo{ID: ana.host.ID(), Addrs: ana.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "Ben holds everything Ana holds", func() bool {
		a, _ := ana.Status(ctx)
		b, _ := ben.Status(ctx)
		return b.Envelopes == a.Envelopes
	})
	got := texts(t, ben, "general")
	if len(got) != n {
		t.Fatalf("Ben reads %d messages, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s] {
			t.Errorf("Ben reads %q twice", s)
		}
		seen[s] = true
	}
	if r, _ := ben.Status(ctx); len(r.Rejected) != 0 {
		t.Errorf("Ben rejected %v", r.Rejected)
	}
}

// TestEditBeforeTargetAcrossRestart: an edit stored before its target, and
// a restart between the two: the target, when it comes, shows the edit (the
// filter of action targets is rebuilt from the store at start).
func TestEditBeforeTargetAcrossRestart(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	ana := openNode(t, home)
	eventually(t, 5*time.Second, "#general readable", func() bool {
		_, err := ana.Log(ctx, "general", 1)
		return err == nil
	})
	head := feedHeld(t, ana)
	target := forgeContent(t, ana, head.Seq+1, head.ID, 1<<30, &wire.Content{Kind: wire.KindText, Text: "first words"})
	edit := forgeContent(t, ana, head.Seq+2, target.ID(), 1<<30+1, &wire.Content{Kind: wire.KindEdit, Target: target.ID(), Text: "better words"})
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{edit.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if err := ana.Close(); err != nil {
		t.Fatal(err)
	}
	ana = openNode(t, home)
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{target.Marshal()}); err != nil {
		t.Fatal(err)
	}
	m, ok := find(t, ana, "general", target.ID().String())
	if !ok || m.Text != "better words" || !m.Edited {
		t.Errorf("the target shows %q (found %v, edited %v), want the edit", m.Text, ok, m.Edited)
	}
	if got, _ := ana.Search(ctx, "better", 10); len(got) != 1 {
		t.Errorf("search finds %d messages with the edited text, want 1", len(got))
	}
}
