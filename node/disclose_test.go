package node

import (
	"context"
	"testing"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// TestDiscloseManyOps: a --no-history room with more ops than one key share
// discloses; the newcomer is disclosed every one of them, in further
// reshares of the new key, and learns the members.
func TestDiscloseManyOps(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	allKnown(t, nodes...)
	if _, err := ana.CreateRoomNoHistory(ctx, "big", []string{"Member1"}); err != nil {
		t.Fatal(err)
	}
	room := mustRoom(t, ana, "big")
	// ana adds ben again and again: ops with no effect, but ops all the same.
	head := feedHeld(t, ana, ben, cai)
	extra := wire.MaxDisclosed + 100
	raws := make([][]byte, extra)
	prev := head.ID
	for i := range raws {
		env := forgeAt(t, ana, room, head.Seq+1+uint64(i), prev, 1<<40+uint64(i), time.Now(),
			&wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpAdd, Peer: ben.hist.self})
		prev = env.ID()
		raws[i] = env.Marshal()
	}
	if _, err := ana.hist.ingestRaw(ctx, raws); err != nil {
		t.Fatal(err)
	}
	held, err := ana.hist.disclosures(ctx, room)
	if err != nil || len(held) < extra {
		t.Fatalf("ana discloses %d ops, %v; want at least %d", len(held), err, extra)
	}
	eventually(t, 120*time.Second, "cai holds ana's ops", func() bool { return sameHeads(ana, cai) })
	if _, err := ana.RoomAdd(ctx, "big", "Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai knows #big's members", func() bool {
		r, err := cai.hist.room(ctx, room)
		return err == nil && r.MembersKnown && len(r.Members) == 3 && containsPeer(r.Members, cai.hist.self)
	})
	eventually(t, 60*time.Second, "cai is disclosed every op ana held", func() bool {
		var got map[wire.ID][16]byte
		cai.st.Update(ctx, false, func(tx *store.Tx) error {
			var err error
			got, err = tx.DisclosedIn(room)
			return err
		})
		for _, d := range held {
			if _, ok := got[d.Envelope]; !ok {
				return false
			}
		}
		return true
	})
}
