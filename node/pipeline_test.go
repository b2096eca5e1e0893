package node

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
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
	if !ana.hist.mayHold(&hd) {
		t.Error("mayHold false for the newest held envelope")
	}
	hd.Seq++
	if ana.hist.mayHold(&hd) {
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
