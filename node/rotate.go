package node

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// applyRoomOp stores what a room op says about the room: its name, or who
// is in it. Each op is judged by its signed author, never by the key that
// encrypts it (a key may have been planted): the name and first members
// only from the room's creator, adds only from a member of the room, a
// removal only from an admin in it, a leave by anyone for itself. Leaving
// and removal take effect at once for this node's view; the next member to
// send rotates the key away from them. While this node does not know the
// room's members, an add cannot be judged: it takes effect when the creator's
// name op makes them known and the room's ops are applied again in order
// (replayRoomOps).
func (h *history) applyRoomOp(tx *store.Tx, c *checked, content *wire.Content) error {
	room := c.hdr.Room
	if room == generalRoomID(h.ws) {
		// Every member is in #general; its name is the founder's.
		if content.RoomOp == wire.RoomOpName && bytes.Equal(c.hdr.Author, h.genesis.Founder.Peer) {
			return tx.PutRoom(store.Room{ID: room, Name: content.RoomName, Kind: content.RoomKind})
		}
		return nil
	}
	known, err := tx.MembersKnown(room)
	if err != nil {
		return err
	}
	if known && !h.replaying[room] {
		// An op that arrives after ops that sort later (an add by a member
		// whose own add came late, say) is judged in its place: the room's
		// ops are applied again in order once this envelope's apply ends.
		later, err := tx.RoomOpAfter(room, c.hdr.Lamport, c.hdr.Author, c.hdr.Seq)
		if err != nil {
			return err
		}
		if later {
			h.anchored[room] = true
			return nil
		}
	}
	switch content.RoomOp {
	case wire.RoomOpName:
		creator, ok, err := h.creatorOf(tx, room)
		if err != nil || !ok {
			return err // judged again when the creation arrives (reapplyShares)
		}
		if !bytes.Equal(creator, c.hdr.Author) {
			h.count(reasonForbidden)
			return nil
		}
		r := store.Room{ID: room, Name: content.RoomName, Kind: content.RoomKind, NoHistory: content.Private}
		if !known && len(content.Members) > 0 {
			// The creator says who the room's first members were.
			first := append([][]byte{creator}, content.Members...)
			r.Members, r.MembersKnown = h.current(first), true
			h.anchored[room] = true
		}
		return tx.PutRoom(r)
	case wire.RoomOpAdd:
		if !known {
			return nil // judged once the members are known
		}
		members, err := tx.RoomMembers(room)
		if err != nil {
			return err
		}
		if m, ok := h.member(content.Peer); !ok || m.removed || !containsPeer(members, c.hdr.Author) {
			h.count(reasonForbidden)
			return nil
		}
		if err := tx.PutRoom(store.Room{ID: room, Members: [][]byte{content.Peer}}); err != nil {
			return err
		}
		return h.rejudgeKeys(tx, room)
	case wire.RoomOpRemove:
		// Taking someone else out of a room is for admins who can read it:
		// an admin at the op's place in the roster's order, not today, so
		// every node judges it alike whenever the op reaches it.
		if h.roleAt(c.hdr.Author, c.hdr.Lamport, c.hdr.Seq) < wire.RoleAdmin {
			h.count(reasonForbidden)
			return nil
		}
		if known {
			members, err := tx.RoomMembers(room)
			if err != nil {
				return err
			}
			if !containsPeer(members, c.hdr.Author) {
				h.count(reasonForbidden)
				return nil
			}
		}
		if err := tx.TaintKeys(room, content.Peer); err != nil {
			return err
		}
		return tx.LeaveRoom(room, content.Peer)
	case wire.RoomOpLeave:
		if err := tx.TaintKeys(room, c.hdr.Author); err != nil {
			return err
		}
		return tx.LeaveRoom(room, c.hdr.Author)
	}
	return nil
}

// needsRotation reports whether the room key k reached someone who may no
// longer read room: a removed member, or one no longer in the room. Who it
// reached is what its shares this node opened say, all of a rotation's
// shares included (AllRecipients), and everyone who left the room or the
// workspace while this node held it (TaintKeys).
// A node that does not know a channel's members cannot tell, and does not
// rotate it: the new key would reach nobody but itself.
func (h *history) needsRotation(ctx context.Context, room store.Room, k store.RoomKey) (bool, error) {
	general := room.ID == generalRoomID(h.ws)
	if room.Kind == wire.RoomChannel && !general && !room.MembersKnown {
		return false, nil
	}
	got, err := h.st.KeyRecipients(ctx, k.KeyID)
	if err != nil {
		return false, err
	}
	for _, p := range got {
		m, ok := h.member(p)
		if !ok || m.removed {
			return true, nil
		}
		if !general && !containsPeer(room.Members, p) {
			return true, nil
		}
	}
	return false, nil
}

// rotationRecipients is who gets a room's next key: every current member
// for #general, the room's current members otherwise; this node always.
func (h *history) rotationRecipients(room store.Room) [][]byte {
	var out [][]byte
	if room.ID == generalRoomID(h.ws) {
		out = h.currentMembers()
	} else {
		for _, p := range room.Members {
			if m, ok := h.member(p); ok && !m.removed {
				out = append(out, p)
			}
		}
	}
	if !containsPeer(out, h.self) {
		out = append(out, h.self)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

// rotate gives room a new key epoch, shared with its current members in
// key shares of at most MaxRecipients each (this node in every one). When
// it takes several, each names all of their recipients (AllRecipients): a
// member opens only its own share, and must still see every peer the key
// reached, or it would keep sending with a key this node shared with a
// member removed before it heard of the removal (needsRotation). Each
// share carries disclosed, the file keys of the room's ops for a member
// who joins without the history (node/disclose.go).
func (h *history) rotate(ctx context.Context, room store.Room, parent store.RoomKey, disclosed []wire.Disclosure) ([]*checked, error) {
	if room.Kind == wire.RoomDirect {
		return nil, fmt.Errorf("rotate a direct room: %w", ErrInvalid)
	}
	if parent.Epoch >= wire.MaxEpoch {
		// No node would take the next epoch: fail rather than send with a
		// key that may have reached someone who left.
		return nil, fmt.Errorf("rotate the key of %s: its epoch %d is at the limit", room.ID, parent.Epoch)
	}
	key, err := crypto.NewRoomKey()
	if err != nil {
		return nil, err
	}
	all := h.rotationRecipients(room)
	if len(all) > wire.MaxKeyRecipients {
		return nil, fmt.Errorf("rotate the key of %s: %d members, and a key share names at most %d", room.ID, len(all), wire.MaxKeyRecipients)
	}
	var everyone [][]byte // empty when one share reaches all
	if len(all) > wire.MaxRecipients {
		everyone = all
	}
	var others [][]byte
	for _, p := range all {
		if !bytes.Equal(p, h.self) {
			others = append(others, p)
		}
	}
	var out []*checked
	for len(others) > 0 || len(out) == 0 {
		n := min(len(others), wire.MaxRecipients-1)
		chunk := append([][]byte{h.self}, others[:n]...)
		others = others[n:]
		share, err := h.shareKey(ctx, &wire.KeyShare{
			Workspace: h.ws, Room: room.ID, RoomKind: room.Kind, Epoch: parent.Epoch + 1,
			Parent: parent.KeyID, Cause: wire.CauseRotate, Recipients: chunk, Key: key,
			Disclosed: disclosed, AllRecipients: everyone,
		})
		if err != nil {
			return out, fmt.Errorf("rotate the key of %s: %w", room.ID, err)
		}
		out = append(out, share)
	}
	h.log.Info("rotated room key", "room", room.ID, "epoch", parent.Epoch+1, "recipients", len(all))
	return out, nil
}
