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

// Disclosure of a room's ops to a member who joins without its history.
//
// A room created with --no-history gives a new member only the keys from
// its join on, so it cannot read the name op that lists the room's first
// members, nor the adds and leaves since: it could not tell a member's key
// share from one planted by an outsider. The member who adds it therefore
// puts into the new key's share the age file key of every room-op envelope
// of the room (wire.Disclosure). A file key opens its one envelope and
// nothing else: the newcomer reads who is in the room, and no message from
// before its join. The ops are still judged by their signed authors
// (node/rotate.go), so a share that discloses made-up ops gains nothing,
// and a share from an outsider cannot disclose a real op (it holds no key
// to unwrap one).

// disclosures returns the file keys of room's room ops as this node holds
// them (by its room keys, or disclosed to it in turn), sorted by envelope.
func (h *history) disclosures(ctx context.Context, room wire.ID) ([]wire.Disclosure, error) {
	var out []wire.Disclosure
	err := h.st.Update(ctx, false, func(tx *store.Tx) error {
		out = out[:0]
		envs, err := tx.RoomOps(room)
		if err != nil {
			return err
		}
		given, err := tx.DisclosedIn(room)
		if err != nil {
			return err
		}
		for _, e := range envs {
			_, hdr, err := wire.DecodeEnvelope(e.Raw)
			if err != nil {
				continue
			}
			fk, ok := given[e.ID]
			if k, held, err := tx.RoomKey(hdr.Key); err != nil {
				return err
			} else if held && k.Room == room {
				if fk, err = crypto.ContentFileKey(crypto.RoomKey(k.Key), hdr.Body); err != nil {
					continue
				}
				ok = true
			}
			if !ok || !isRoomOp(fk, hdr.Body) {
				continue
			}
			out = append(out, wire.Disclosure{Envelope: e.ID, FileKey: fk})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("disclose the ops of room %s: %w", room, err)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Envelope[:], out[j].Envelope[:]) < 0 })
	return out, nil
}

// splitDisclosed cuts d into the parts key shares carry: at most
// MaxDisclosed each. The first rides on the share the add makes anyway;
// each further one on a reshare of the same key to the newcomer alone.
func splitDisclosed(d []wire.Disclosure) (first []wire.Disclosure, more [][]wire.Disclosure) {
	for len(d) > wire.MaxDisclosed {
		more = append(more, d[len(d)-wire.MaxDisclosed:])
		d = d[:len(d)-wire.MaxDisclosed]
	}
	return d, more
}

// discloseMore sends each further part of a disclosure to newcomer in a
// reshare of key k of room r.
func (h *history) discloseMore(ctx context.Context, r store.Room, k store.RoomKey, newcomer []byte, more [][]wire.Disclosure) ([]*checked, error) {
	var out []*checked
	for _, part := range more {
		share, err := h.shareKey(ctx, &wire.KeyShare{
			Workspace: h.ws, Room: r.ID, RoomKind: r.Kind, Epoch: k.Epoch, Parent: k.Parent,
			Cause: wire.CauseReshare, Recipients: [][]byte{h.self, newcomer}, Key: k.Key, Disclosed: part,
		})
		if err != nil {
			return out, fmt.Errorf("disclose the ops of room %s: %w", r.ID, err)
		}
		out = append(out, share)
	}
	return out, nil
}

// isRoomOp reports whether the content envelope body opened with fk is a
// room op: a disclosure opens nothing else.
func isRoomOp(fk [16]byte, body []byte) bool {
	plain, err := crypto.DecryptContentWithFileKey(fk, body)
	if err != nil {
		return false
	}
	c, err := wire.DecodeContent(plain)
	return err == nil && c.Kind == wire.KindRoomOp
}

// takeDisclosed records the file keys a share ks disclosed to this node and
// applies the ops of them it holds, in order (those still on their way are
// applied as they arrive, by applyContent).
func (h *history) takeDisclosed(tx *store.Tx, ks *wire.KeyShare) ([]store.Message, error) {
	if ks.RoomKind != wire.RoomChannel || ks.Room == generalRoomID(h.ws) {
		return nil, nil
	}
	for _, d := range ks.Disclosed {
		if err := tx.PutDisclosed(ks.Room, d.Envelope, d.FileKey); err != nil {
			return nil, err
		}
	}
	h.disclosedNew.Store(true)
	envs, err := tx.RoomOps(ks.Room)
	if err != nil {
		return nil, err
	}
	if _, err := h.applyStored(tx, envs, ks.Room, true); err != nil || !h.anchored[ks.Room] {
		return nil, err
	}
	// The name op made the members known: all the room's ops are applied
	// again in order, and its untrusted keys judged.
	return h.replayRoomOps(tx, ks.Room)
}

// applyDisclosed applies content this node holds no key for, if a member
// disclosed its file key and it is a room op.
func (h *history) applyDisclosed(tx *store.Tx, c *checked) error {
	fk, ok, err := tx.Disclosed(c.hdr.Room, c.id)
	if err != nil || !ok {
		return err
	}
	// A disclosure that opens no room op is forgotten: it would keep the
	// envelope from retention (store.Purge keeps disclosed room ops), and
	// any member can make a share disclose any envelope with any key.
	plain, err := crypto.DecryptContentWithFileKey(fk, c.hdr.Body)
	if err != nil {
		h.count(reasonUnreadable)
		return tx.DropDisclosed(c.id)
	}
	content, err := wire.DecodeContent(plain)
	if err != nil {
		h.count(reasonMalformed)
		return tx.DropDisclosed(c.id)
	}
	if content.Kind != wire.KindRoomOp {
		return tx.DropDisclosed(c.id) // a disclosure opens a room's ops, never its messages
	}
	h.roomsChanged()
	return h.applyRoomOp(tx, c, content)
}
