package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// Who may share a room's keys (DESIGN.md: "A key share for room R is valid
// only from a current member of R").
//
// A channel's ID is bound to its creator: the SHA-256 of the workspace, the
// creator's peer ID and the seq of the envelope carrying the room's first
// key. So every member can tell from headers alone which share created a
// room, and nobody can forge a "first key" for someone else's room. A share
// that is not the creation waits until this node holds the creation's
// envelope.
//
// Then a share is judged by its author against the room's members, once
// this node knows them from what the creator signed: the creation share's
// recipients (for its first members), or the creator's name op, which lists
// them, and then the adds of members, leaves and removals that follow
// (node/rotate.go). A member added later cannot read the creation share,
// and may not have read the name op yet when the first shares reach it: it
// keeps those keys untrusted. They decrypt, so it can read the name op and
// the room's ops, but they make nobody a member and are no send key while a
// trusted key exists. Once the members are known, every untrusted key is
// judged again (rejudgeKeys): a key shared by a member becomes trusted, one
// planted by anyone else stays untrusted for good.

// shareVerdict is what mayShare decided about a key share.
type shareVerdict int

const (
	shareRefused   shareVerdict = 1 // refused and counted, or waiting for the room's creation
	shareTrusted   shareVerdict = 2
	shareUntrusted shareVerdict = 3 // the room's members are not known here yet
)

// channelRoomID is the ID of the channel created by creator's envelope seq.
func channelRoomID(ws wire.ID, creator []byte, seq uint64) wire.ID {
	d := sha256.New()
	d.Write([]byte("charla/room/v1\x00"))
	d.Write(ws[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	d.Write(n[:])
	d.Write(creator)
	var id wire.ID
	copy(id[:], d.Sum(nil))
	return id
}

// createsRoom reports whether e's header makes it the creation of room.
func (h *history) createsRoom(e store.Envelope, room wire.ID) bool {
	return e.Class == wire.ClassKeyShare && e.Room == room && channelRoomID(h.ws, e.Author, e.Seq) == room
}

// mayShare judges a key share this node opened.
func (h *history) mayShare(tx *store.Tx, c *checked, ks *wire.KeyShare) (shareVerdict, error) {
	author := c.hdr.Author
	switch {
	case ks.RoomKind == wire.RoomDirect:
		return shareTrusted, nil // only its two parties can be recipients (checked by the caller)
	case ks.Room == generalRoomID(h.ws):
		if ks.Cause == wire.CauseCreate && !bytes.Equal(author, h.genesis.Founder.Peer) {
			h.count(reasonForbidden) // #general's first key is the founder's
			return shareRefused, nil
		}
		return shareTrusted, nil // every member is in #general
	}
	if ks.Cause == wire.CauseCreate {
		if ks.Epoch != 1 || channelRoomID(h.ws, author, c.hdr.Seq) != ks.Room {
			h.count(reasonForbidden) // a "first key" for a room its author did not create
			return shareRefused, nil
		}
		return shareTrusted, nil
	}
	if _, created, err := h.creatorOf(tx, ks.Room); err != nil || !created {
		return shareRefused, err // waits, stored, for the room's creation
	}
	known, err := tx.MembersKnown(ks.Room)
	if err != nil {
		return shareRefused, err
	}
	if !known {
		return shareUntrusted, nil
	}
	members, err := tx.RoomMembers(ks.Room)
	if err != nil {
		return shareRefused, err
	}
	if !containsPeer(members, author) {
		h.count(reasonForbidden) // only a member of a room shares its keys
		return shareRefused, nil
	}
	return shareTrusted, nil
}

// maxEpochJump is how far above the room's highest epoch held a key share
// whose parent this node does not hold may go: a member added to a room
// gets only its current key, whatever rotations came before.
const maxEpochJump = 4096

// epochFits reports whether ks's epoch follows from what this node holds:
// its parent's plus one when the parent is held, else at most maxEpochJump
// above the room's keys. Otherwise a member could share a key at the
// highest epoch a node takes: no rotation could go above it, and that key,
// which its sharer holds, would stay the send key after the sharer's removal.
func (h *history) epochFits(tx *store.Tx, ks *wire.KeyShare) (bool, error) {
	if ks.Parent == (wire.ID{}) {
		if ks.Epoch == 1 {
			return true, nil
		}
	} else {
		parent, ok, err := tx.RoomKey(ks.Parent)
		if err != nil {
			return false, err
		}
		if ok {
			if parent.Room != ks.Room || ks.Epoch != parent.Epoch+1 {
				h.count(reasonForbidden)
				return false, nil
			}
			return true, nil
		}
	}
	top, err := tx.TopEpoch(ks.Room)
	if err != nil {
		return false, err
	}
	if ks.Epoch > top+maxEpochJump {
		h.count(reasonForbidden)
		return false, nil
	}
	return true, nil
}

// creatorOf returns who created channel room, if this node holds the
// envelope that did.
func (h *history) creatorOf(tx *store.Tx, room wire.ID) ([]byte, bool, error) {
	shares, err := tx.KeyShareAuthors(room)
	if err != nil {
		return nil, false, err
	}
	for _, e := range shares {
		if h.createsRoom(e, room) {
			return e.Author, true, nil
		}
	}
	return nil, false, nil
}

// rejudgeKeys judges room's untrusted keys again now that its members are
// known or have changed: a key becomes trusted when a share of it this node
// can open came from a current member, and its recipients then count as
// members, as a trusted share's do (shareMembers; which may let more keys
// in). Nothing is
// counted here: a share refused now was taken as untrusted before, or is
// counted when it arrives.
func (h *history) rejudgeKeys(tx *store.Tx, room wire.ID) error {
	if room == generalRoomID(h.ws) {
		return nil
	}
	known, err := tx.MembersKnown(room)
	if err != nil || !known {
		return err
	}
	untrusted, err := tx.UntrustedKeys(room)
	if err != nil || len(untrusted) == 0 {
		return err
	}
	waiting := map[wire.ID]bool{}
	for _, id := range untrusted {
		waiting[id] = true
	}
	type opened struct {
		author     []byte
		key        wire.ID
		kind       wire.RoomKind
		recipients [][]byte
	}
	envs, err := tx.KeyShares(room)
	if err != nil {
		return err
	}
	var shares []opened
	for _, e := range envs {
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			continue
		}
		ks, err := h.id.OpenKeyShare(hdr.Body)
		if err != nil || ks.Workspace != h.ws || ks.Room != room || !containsPeer(ks.Recipients, hdr.Author) {
			continue
		}
		if id := crypto.RoomKey(ks.Key).ID(); waiting[id] {
			shares = append(shares, opened{author: hdr.Author, key: id, kind: ks.RoomKind, recipients: ks.Holders()})
		}
	}
	for changed := true; changed; {
		changed = false
		members, err := tx.RoomMembers(room)
		if err != nil {
			return err
		}
		for _, s := range shares {
			if !waiting[s.key] || !containsPeer(members, s.author) {
				continue
			}
			if err := tx.TrustKey(s.key); err != nil {
				return err
			}
			h.mu.Lock()
			if k, ok := h.keys[s.key]; ok {
				k.Untrusted = false
				h.keys[s.key] = k
			}
			h.mu.Unlock()
			// What the key kept closed opens now (the members are known,
			// so no name op anchors the room here).
			msgs, err := h.applyWaiting(tx, s.key, room)
			if err != nil {
				return err
			}
			h.trustedLate = append(h.trustedLate, msgs...)
			in, err := h.shareMembers(tx, room, s.recipients)
			if err != nil {
				return err
			}
			if err := tx.PutRoom(store.Room{ID: room, Kind: s.kind, Members: in}); err != nil {
				return err
			}
			delete(waiting, s.key)
			changed = true
		}
		if changed {
			h.roomsChanged()
		}
	}
	return nil
}

// shareMembers is who of a trusted share's recipients count as members of
// channel room: those still in the workspace, but none the room's ops take
// out. A share may be stale: its author rotated before hearing that a
// recipient was removed or left, and that recipient must not come back in
// with it (only an add op brings it back). A recipient whose add op is not
// held yet still counts: its adder's shares are how this node hears of it.
func (h *history) shareMembers(tx *store.Tx, room wire.ID, recipients [][]byte) ([][]byte, error) {
	ps := h.current(recipients)
	if room == generalRoomID(h.ws) {
		return ps, nil
	}
	members, err := tx.RoomMembers(room)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	var gone map[string]bool
	for _, p := range ps {
		if !containsPeer(members, p) && gone == nil {
			// Reading the room's ops costs: only for a recipient new here.
			if gone, err = h.takenOut(tx, room); err != nil {
				return nil, err
			}
		}
		if !gone[string(p)] {
			out = append(out, p)
		}
	}
	return out, nil
}

// takenOut returns the peers that room's ops held here take out of it, in
// (lamport, author, seq) order: removed by an admin (judged as applyRoomOp
// does) or left, and not added again after.
func (h *history) takenOut(tx *store.Tx, room wire.ID) (map[string]bool, error) {
	envs, err := tx.RoomOps(room)
	if err != nil {
		return nil, err
	}
	gone := map[string]bool{}
	for _, e := range envs {
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			continue
		}
		var plain []byte
		if k, held, err := tx.RoomKey(hdr.Key); err != nil {
			return nil, err
		} else if held && k.Room == room {
			plain, err = crypto.DecryptContent(crypto.RoomKey(k.Key), hdr.Body)
			if err != nil {
				continue
			}
		} else if fk, ok, err := tx.Disclosed(room, e.ID); err != nil {
			return nil, err
		} else if ok {
			if plain, err = crypto.DecryptContentWithFileKey(fk, hdr.Body); err != nil {
				continue
			}
		} else {
			continue
		}
		c, err := wire.DecodeContent(plain)
		if err != nil || c.Kind != wire.KindRoomOp {
			continue
		}
		switch c.RoomOp {
		case wire.RoomOpAdd:
			delete(gone, string(c.Peer))
		case wire.RoomOpLeave:
			gone[string(hdr.Author)] = true
		case wire.RoomOpRemove:
			if h.roleAt(hdr.Author, hdr.Lamport, hdr.Seq) >= wire.RoleAdmin {
				gone[string(c.Peer)] = true
			}
		}
	}
	return gone, nil
}

// seedFromCreation puts back the first members that room's creation share
// names, when this node can open it (it was one of them): they are known
// from it whether or not the name op is held yet.
func (h *history) seedFromCreation(tx *store.Tx, room wire.ID) error {
	shares, err := tx.KeyShares(room)
	if err != nil {
		return err
	}
	for _, e := range shares {
		if !h.createsRoom(e, room) {
			continue
		}
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			return nil
		}
		ks, err := h.id.OpenKeyShare(hdr.Body)
		if err != nil || ks.Cause != wire.CauseCreate || ks.Room != room || ks.RoomKind != wire.RoomChannel {
			return nil // not one of its first members
		}
		return tx.PutRoom(store.Room{ID: room, Kind: ks.RoomKind, Members: h.current(ks.Holders()), MembersKnown: true})
	}
	return nil
}

// applyWaiting applies the content under key keyID that waited for it, in
// order, and returns its messages. It stops early when a name op made room's
// members known (anchored): the caller then replays the room's ops.
func (h *history) applyWaiting(tx *store.Tx, keyID, room wire.ID) ([]store.Message, error) {
	waiting, err := tx.Undecrypted(keyID)
	if err != nil {
		return nil, err
	}
	return h.applyStored(tx, waiting, room, true)
}

// applyStored runs stored content envelopes through applyContent in order
// and returns their messages; with untilAnchored it stops once a name op
// made room's members known.
func (h *history) applyStored(tx *store.Tx, envs []store.Envelope, room wire.ID, untilAnchored bool) ([]store.Message, error) {
	var msgs []store.Message
	for _, e := range envs {
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			continue
		}
		msg, err := h.applyContent(tx, &checked{hdr: hdr, id: e.ID, raw: e.Raw})
		if err != nil {
			return nil, err
		}
		if msg != nil {
			msgs = append(msgs, *msg)
		}
		if untilAnchored && h.anchored[room] {
			break
		}
	}
	return msgs, nil
}

// current is the peers of ps that are members of the workspace now: a
// stale share never brings a removed member back into a room.
func (h *history) current(ps [][]byte) [][]byte {
	var out [][]byte
	for _, p := range ps {
		if m, ok := h.member(p); ok && !m.removed {
			out = append(out, p)
		}
	}
	return out
}

// replayRoomOps computes room's members again from its room ops, in
// (lamport, author, seq) order, once they became known: ops applied while
// they were not (an add can only be judged against them) take effect now,
// in order. Content of the room that still waited for its key is applied
// too (the ops held include it), and its messages returned.
func (h *history) replayRoomOps(tx *store.Tx, room wire.ID) ([]store.Message, error) {
	h.replaying[room] = true
	defer delete(h.replaying, room)
	if err := tx.ResetRoomMembers(room); err != nil {
		return nil, err
	}
	h.roomsChanged()
	if err := h.seedFromCreation(tx, room); err != nil {
		return nil, err
	}
	envs, err := tx.RoomOps(room)
	if err != nil {
		return nil, err
	}
	msgs, err := h.applyStored(tx, envs, room, false)
	if err != nil {
		return nil, err
	}
	delete(h.anchored, room)
	return msgs, h.rejudgeKeys(tx, room)
}

// reapplyShares runs the shares of room held so far (but the one just
// applied) through applyKeyShare again: those that waited for the room's
// creation are judged now. Applying a share twice changes nothing.
func (h *history) reapplyShares(ctx context.Context, tx *store.Tx, room, except wire.ID) ([]store.Message, error) {
	shares, err := tx.KeyShares(room)
	if err != nil {
		return nil, err
	}
	var msgs []store.Message
	for _, e := range shares {
		if e.ID == except || h.createsRoom(e, room) {
			continue
		}
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			continue
		}
		ms, err := h.applyKeyShare(ctx, tx, &checked{hdr: hdr, id: e.ID, raw: e.Raw})
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, ms...)
	}
	return msgs, nil
}
