package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

// TestSyncRestoredNodeLearnsOwnHeadPastOnePull: a node restored from a
// backup older than more of its own envelopes than one pull carries of a
// feed (syncPerAuthorCap) must not take the first pull's end for its head:
// its first send would reuse a seq the office holds (a fork of its feed).
func TestSyncRestoredNodeLearnsOwnHeadPastOnePull(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	readsGeneral(t, ben)
	head := feedHeld(t, ana, ben)
	// What ana wrote after its backup was taken, held by ben only.
	lost := syncPerAuthorCap + 1
	raws := make([][]byte, 0, lost)
	prev := head.ID
	for s := 1; s <= lost; s++ {
		e := forgeContent(t, ana, head.Seq+uint64(s), prev, 1<<40+uint64(s), &wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("written before the disk died %d", s)})
		raws = append(raws, e.Marshal())
		prev = e.ID()
	}
	ana.Close()
	for len(raws) > 0 {
		k := min(len(raws), wire.MaxBatchEnvelopes)
		if _, err := ben.hist.ingestRaw(ctx, raws[:k]); err != nil {
			t.Fatal(err)
		}
		raws = raws[k:]
	}
	if got := headOf(t, ben, ana.hist.self); got != head.Seq+uint64(lost) {
		t.Fatalf("ben holds ana's feed up to %d, want %d", got, head.Seq+uint64(lost))
	}
	ana = openNode(t, homes[0], ben.Addrs()[0])
	start := time.Now()
	m, err := ana.Send(ctx, "general", "first words after the restore")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the send waited %v", time.Since(start).Round(time.Millisecond))
	if want := head.Seq + uint64(lost) + 1; m.Seq != want {
		t.Fatalf("restored ana sent at seq %d, want %d (its feed's head in the office + 1)", m.Seq, want)
	}
	eventually(t, 60*time.Second, "ben holds ana's new message", func() bool {
		return headOf(t, ben, ana.hist.self) >= head.Seq+uint64(lost)+1
	})
	st, err := ben.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Forks) != 0 {
		t.Errorf("the restored node forked its feed: ben holds %d forks", len(st.Forks))
	}
}
