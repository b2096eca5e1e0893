package node

import (
	"context"
	"testing"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// TestPlantedEpochRefused: a member shares #general a key at an epoch that
// does not follow from its parent, or far above every epoch held when its
// parent is not held; then it is removed. The key must not be taken: at the
// largest epoch a node takes, no rotation could go above it, so either the
// removed member's key stayed the send key or nobody could send again. A
// key whose parent is not held and whose epoch is within reach is taken, as
// a member added late gets only a room's current key.
func TestPlantedEpochRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	tests := []struct {
		name    string
		parent  func(cur wire.ID) wire.ID
		epoch   func(cur uint64) uint64
		refused bool
	}{
		{"held parent, top epoch", func(cur wire.ID) wire.ID { return cur }, func(uint64) uint64 { return wire.MaxEpoch }, true},
		{"held parent, skips one", func(cur wire.ID) wire.ID { return cur }, func(e uint64) uint64 { return e + 2 }, true},
		{"unknown parent, top epoch", func(wire.ID) wire.ID { return wire.ID{7} }, func(uint64) uint64 { return wire.MaxEpoch }, true},
		{"unknown parent, within reach", func(wire.ID) wire.ID { return wire.ID{7} }, func(e uint64) uint64 { return e + 5 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			nodes := office(t, 3)
			a, c := nodes[0], nodes[2]
			general := generalRoomID(a.hist.ws)
			cur, err := c.hist.sendKey(ctx, general)
			if err != nil {
				t.Fatal(err)
			}
			key, _ := crypto.NewRoomKey()
			share, err := c.hist.shareKey(ctx, &wire.KeyShare{
				Workspace: c.hist.ws, Room: general, RoomKind: wire.RoomChannel, Epoch: tt.epoch(cur.Epoch),
				Parent: tt.parent(cur.KeyID), Cause: wire.CauseRotate,
				Recipients: [][]byte{a.hist.self, nodes[1].hist.self, c.hist.self}, Key: key,
			})
			if err != nil {
				t.Fatal(err)
			}
			forbidden := countOf(a, reasonForbidden)
			if _, err := a.hist.ingestRaw(ctx, [][]byte{share.raw}); err != nil {
				t.Fatal(err)
			}
			k, err := a.hist.sendKey(ctx, general)
			if err != nil {
				t.Fatal(err)
			}
			if took := k.KeyID == key.ID(); took == tt.refused {
				t.Fatalf("a's send key is the planted one: %v, want %v", took, !tt.refused)
			}
			if got := countOf(a, reasonForbidden) - forbidden; (got > 0) != tt.refused {
				t.Errorf("%d shares counted %s, want refused %v", got, reasonForbidden, tt.refused)
			}
			if !tt.refused {
				return
			}
			// Its sharer removed, the room still rotates and is sent in.
			if _, err := a.RemoveMember(ctx, "Member2"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Send(ctx, "general", "after the removal"); err != nil {
				t.Fatalf("after the removal a cannot send in #general: %v", err)
			}
			k, err = a.hist.sendKey(ctx, general)
			if err != nil {
				t.Fatal(err)
			}
			if k.KeyID == key.ID() {
				t.Fatal("after the removal a still sends #general with the key the removed member planted")
			}
		})
	}
}

// countOf is how many envelopes n counted for reason.
func countOf(n *Node, reason string) int64 {
	n.hist.mu.Lock()
	defer n.hist.mu.Unlock()
	return n.hist.rejected[reason]
}
