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

// TestSecurityDisclosureKeepsNoCiphertext: a member can make a share
// disclose any envelope of its room with any file key. A node outside the
// room that was told so of a message must still purge that message's
// ciphertext at the retention limit: a disclosed key keeps only a room op.
func TestSecurityDisclosureKeepsNoCiphertext(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	readsGeneral(t, nodes...)
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := threeDaysAgo(ana, func() (Room, error) { return ana.CreateRoomNamed(ctx, "vault", nil) }); err != nil {
		t.Fatal(err)
	}
	id := sendOld(t, ana, "vault", "old vault talk")
	room := mustRoom(t, ana, "vault")
	eventually(t, 60*time.Second, "ben holds the vault message and the policy", func() bool {
		ok, err := ben.st.HasEnvelope(ctx, id)
		return err == nil && ok && ben.hist.currentPolicy().RetentionDays == 1
	})
	// What a share of #vault disclosing the message, with a made-up key, does.
	if err := ben.st.Update(ctx, false, func(tx *store.Tx) error {
		_, err := ben.hist.takeDisclosed(tx, &wire.KeyShare{Workspace: ben.hist.ws, Room: room, RoomKind: wire.RoomChannel,
			Disclosed: []wire.Disclosure{{Envelope: id, FileKey: [16]byte{1}}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.purge(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	raws, err := ben.st.RawsByID(ctx, []wire.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	if raws[id] != nil {
		t.Error("ben kept the ciphertext of a message past the retention limit")
	}
}
