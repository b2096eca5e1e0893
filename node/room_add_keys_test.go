package node

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/charla-im/charla/wire"
)

// syncAll hands every node's envelopes to every other, twice over, so what
// one node learns from another's reaches the rest.
func syncAll(t *testing.T, nodes []*Node) {
	t.Helper()
	for range 2 {
		for _, from := range nodes {
			for _, to := range nodes {
				if from != to {
					give(t, from, to)
				}
			}
		}
	}
}

// TestRoomAddsKeepNewcomersIn: Ana adds four members to a private room one
// after another. Each add must leave every member of the room holding the
// key the others send with: before, from the second add on, the adder's
// reshare replayed the room's ops before the add op existed, took the
// newcomer out of its own view of the room, and rotated the key at once
// without it, so the newcomer read nothing Ana posted afterwards.
func TestRoomAddsKeepNewcomersIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	for _, noHistory := range []bool{false, true} {
		t.Run(fmt.Sprintf("noHistory=%v", noHistory), func(t *testing.T) {
			ctx := context.Background()
			nodes := office(t, 6)
			ana := nodes[0]
			syncAll(t, nodes)
			create := ana.CreateRoomNamed
			if noHistory {
				create = ana.CreateRoomNoHistory
			}
			if _, err := create(ctx, "obras", []string{"Member1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := ana.Send(ctx, "obras", "before the adds"); err != nil {
				t.Fatal(err)
			}
			room := mustRoom(t, ana, "obras")
			first, err := ana.hist.sendKey(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			for i := 2; i <= 5; i++ {
				if _, err := ana.RoomAdd(ctx, "obras", fmt.Sprintf("Member%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			// A room with history gets no new key from an add; one without
			// gets one per add, so the newcomer reads from its join on.
			k, err := ana.hist.sendKey(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			want := first.Epoch
			if noHistory {
				want += 4
			}
			if k.Epoch != want {
				t.Errorf("Ana sends with epoch %d after the adds, want %d", k.Epoch, want)
			}
			syncAll(t, nodes)
			for i, n := range nodes {
				r, err := n.hist.room(ctx, room)
				if err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
				if len(r.Members) != 6 {
					t.Errorf("node %d counts %d members in #obras, want 6", i, len(r.Members))
				}
				got, err := n.st.KeyRecipients(ctx, k.KeyID)
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && !containsPeer(got, n.hist.self) {
					t.Errorf("Ana's send key (epoch %d) did not go to node %d", k.Epoch, i)
				}
			}
			if _, err := ana.Send(ctx, "obras", "from Ana"); err != nil {
				t.Fatal(err)
			}
			if _, err := nodes[5].Send(ctx, "obras", "from Member5"); err != nil {
				t.Fatal(err)
			}
			syncAll(t, nodes)
			for i, n := range nodes {
				got := texts(t, n, "obras")
				for _, w := range []string{"from Ana", "from Member5"} {
					if !slices.Contains(got, w) {
						t.Errorf("node %d does not read %q: %q", i, w, got)
					}
				}
			}
			// No node rotates at its next message: the adds called for none.
			for i, n := range nodes {
				before, err := n.hist.sendKey(ctx, room)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := n.Send(ctx, "obras", fmt.Sprintf("again from %d", i)); err != nil {
					t.Fatal(err)
				}
				after, err := n.hist.sendKey(ctx, room)
				if err != nil {
					t.Fatal(err)
				}
				if after.KeyID != before.KeyID {
					t.Errorf("node %d rotated from epoch %d to %d", i, before.Epoch, after.Epoch)
				}
			}
		})
	}
}

// TestStaleRotationKeepsRemovedOut: an admin takes V out of a room while
// another member, b, not yet aware of it, rotates the key (W left) and
// shares it with V too. When b's share reaches the admin, V must stay out:
// before, a trusted share's recipients counted as members, so the admin
// put V back in the room, would share the room's next keys with it, and
// could send with b's key, which V holds.
func TestStaleRotationKeepsRemovedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 4)
	a, b, v, w := nodes[0], nodes[1], nodes[2], nodes[3]
	syncAll(t, nodes)
	if _, err := a.CreateRoomNamed(ctx, "legal", []string{"Member1", "Member2", "Member3"}); err != nil {
		t.Fatal(err)
	}
	syncAll(t, nodes)
	room := mustRoom(t, a, "legal")
	if _, err := w.RoomLeave(ctx, "legal"); err != nil {
		t.Fatal(err)
	}
	give(t, w, a)
	give(t, w, b)
	if _, err := a.RoomRemove(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	// b has not heard of the removal: its rotation (W left) reaches V.
	if _, err := b.Send(ctx, "legal", "from b, before hearing of it"); err != nil {
		t.Fatal(err)
	}
	stale, err := b.hist.sendKey(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.st.KeyRecipients(ctx, stale.KeyID); !containsPeer(got, v.hist.self) {
		t.Fatal("setup: b's rotation did not reach V")
	}
	give(t, b, a)
	r, err := a.hist.room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if containsPeer(r.Members, v.hist.self) {
		t.Error("the admin counts V in #legal again after b's stale rotation")
	}
	if containsPeer(a.hist.rotationRecipients(r), v.hist.self) {
		t.Error("the admin's next key would go to V")
	}
	k, err := a.hist.sendKey(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.st.KeyRecipients(ctx, k.KeyID); containsPeer(got, v.hist.self) {
		t.Errorf("the admin sends with epoch %d, which V holds", k.Epoch)
	}
	if _, err := a.Send(ctx, "legal", "after V left"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, nodes)
	if got := texts(t, v, "legal"); slices.Contains(got, "after V left") {
		t.Errorf("V reads the admin's message after its removal: %q", got)
	}
	for _, n := range []*Node{a, b} {
		if got := texts(t, n, "legal"); !slices.Contains(got, "after V left") || !slices.Contains(got, "from b, before hearing of it") {
			t.Errorf("%s reads %q", n.PeerID(), got)
		}
	}
	// An add op, and only that, brings V back.
	if _, err := a.RoomAdd(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, nodes)
	if _, err := a.Send(ctx, "legal", "welcome back"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Send(ctx, "legal", "back again"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, nodes)
	for _, n := range []*Node{a, b, v} {
		if got := texts(t, n, "legal"); !slices.Contains(got, "welcome back") || !slices.Contains(got, "back again") {
			t.Errorf("%s, after V is added back, reads %q", n.PeerID(), got)
		}
	}
}

// TestRoomAddCutShortResumes: an add whose op went out but whose key shares
// did not (the node stopped between them) is finished by adding again: the
// newcomer then gets the keys and reads the room.
func TestRoomAddCutShortResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 3)
	ana, ben := nodes[0], nodes[2]
	syncAll(t, nodes)
	if _, err := ana.CreateRoomNamed(ctx, "obras", []string{"Member1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Send(ctx, "obras", "before the add"); err != nil {
		t.Fatal(err)
	}
	room := mustRoom(t, ana, "obras")
	// The first half of RoomAdd alone: the op, no key.
	op, _, err := ana.hist.postContent(ctx, room, &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpAdd, Peer: ben.hist.self})
	if err != nil {
		t.Fatal(err)
	}
	ana.publish(op)
	syncAll(t, nodes)
	if _, err := ben.hist.sendKey(ctx, room); err == nil {
		t.Fatal("Member2 holds a key of #obras with none shared")
	}
	if _, err := ana.RoomAdd(ctx, "obras", "Member2"); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Send(ctx, "obras", "after the add"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, nodes)
	got := texts(t, ben, "obras")
	for _, w := range []string{"before the add", "after the add"} {
		if !slices.Contains(got, w) {
			t.Errorf("Member2 does not read %q after the add was finished: %q", w, got)
		}
	}
}
