package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"

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
// envelope; a node that can read the creation then takes later shares only
// from the room's members as it knows them, whatever order they arrived in.
// A member added later, who cannot read the creation, trusts the members
// who share with it (SECURITY.md, known gaps).

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

// mayShare judges a key share this node opened; false means refused (and
// counted) or, for a channel whose creation is not held yet, left to wait.
func (h *history) mayShare(tx *store.Tx, c *checked, ks *wire.KeyShare) (bool, error) {
	author := c.hdr.Author
	switch {
	case ks.RoomKind == wire.RoomDirect:
		return true, nil // only its two parties can be recipients (checked by the caller)
	case ks.Room == generalRoomID(h.ws):
		if ks.Cause == wire.CauseCreate && !bytes.Equal(author, h.genesis.Founder.Peer) {
			h.count(reasonForbidden) // #general's first key is the founder's
			return false, nil
		}
		return true, nil // every member is in #general
	}
	if ks.Cause == wire.CauseCreate {
		if ks.Epoch != 1 || channelRoomID(h.ws, author, c.hdr.Seq) != ks.Room {
			h.count(reasonForbidden) // a "first key" for a room its author did not create
			return false, nil
		}
		return true, nil
	}
	shares, err := tx.KeyShareAuthors(ks.Room)
	if err != nil {
		return false, err
	}
	created := false
	for _, e := range shares {
		if h.createsRoom(e, ks.Room) {
			created = true
		}
	}
	if !created {
		return false, nil // waits, stored, for the room's creation
	}
	members, err := tx.RoomMembers(ks.Room)
	if err != nil {
		return false, err
	}
	if len(members) > 0 && !containsPeer(members, author) {
		h.count(reasonForbidden) // only a member of a room shares its keys
		return false, nil
	}
	return true, nil
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
