package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charla-im/charla/wire"
)

// RosterEnvelopes returns every canonical roster envelope, in the total order
// roster ops are applied in: (lamport, author, seq).
func (tx *Tx) RosterEnvelopes() ([]Envelope, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+envelopeCols+` FROM envelopes
		WHERE class = ? AND raw IS NOT NULL ORDER BY lamport, author, seq`, int64(wire.ClassRoster))
	if err != nil {
		return nil, fmt.Errorf("roster envelopes: %w", err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("roster envelopes: %w", err)
	}
	return envs, nil
}

// ReplaceMembers makes ms the whole roster table: the roster is recomputed
// from the roster envelopes, never patched.
func (tx *Tx) ReplaceMembers(ms []Member) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM members`); err != nil {
		return fmt.Errorf("replace roster: %w", err)
	}
	for _, m := range ms {
		if err := tx.PutMember(m); err != nil {
			return err
		}
	}
	return nil
}

// CutFeed drops what a removal made invalid: every envelope of author above
// seq, and the one at seq unless it is keep (a zero seq drops the whole
// feed), with their messages, files and actions; the author's forks go too,
// and its head is lowered. Roster ops stay, held above the cut: the roster
// is computed from every op, and a concurrent op may void the removal. It returns the targets of the actions it dropped,
// whose view must be computed again.
func (tx *Tx) CutFeed(author []byte, seq uint64, keep wire.ID) ([]wire.ID, error) {
	s, err := sqlInt("cut seq", seq)
	if err != nil {
		return nil, err
	}
	// The rows of the feed change behind the transaction's view of it.
	if err := tx.forgetFeed(author); err != nil {
		return nil, err
	}
	defer delete(tx.feeds, string(author))
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT DISTINCT a.target FROM actions a JOIN envelopes e ON e.id = a.id
		WHERE e.author = ? AND (e.seq > ? OR (e.seq = ? AND e.id <> ?))`, author, s, s, keep[:])
	if err != nil {
		return nil, fmt.Errorf("cut feed: %w", err)
	}
	var targets []wire.ID
	for rows.Next() {
		var t wire.ID
		if err := rows.Scan(idCol{&t}); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cut feed: %w", err)
		}
		targets = append(targets, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cut feed: %w", err)
	}
	// Messages, files and actions go by the envelopes' foreign keys.
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM envelopes WHERE author = ? AND (seq > ? OR (seq = ? AND id <> ?))
		AND class <> ?`, author, s, s, keep[:], int64(wire.ClassRoster)); err != nil {
		return nil, fmt.Errorf("cut feed: %w", err)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM forks WHERE author = ?`, author); err != nil {
		return nil, fmt.Errorf("cut feed: drop forks: %w", err)
	}
	// A head above the cut had no gap below it, so the new head is the cut,
	// or the seq below it when the envelope at the cut was another branch.
	head, ok, err := tx.Head(author)
	if err != nil || !ok || head.Seq <= seq {
		return targets, err
	}
	for at := seq; ; at-- {
		if at == 0 {
			_, err = tx.q().ExecContext(tx.ctx, `DELETE FROM feeds WHERE author = ?`, author)
			break
		}
		if id, held, err2 := tx.storedAt(author, at); err2 != nil {
			return nil, err2
		} else if held {
			a, _ := sqlInt("seq", at)
			_, err = tx.q().ExecContext(tx.ctx, `UPDATE feeds SET head_seq = ?, head_id = ? WHERE author = ?`, a, id[:], author)
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cut feed: lower head: %w", err)
	}
	return targets, nil
}

// LeaveRooms takes peer out of the members of every room: it was removed
// from the workspace, and no key may be shared with it again.
func (tx *Tx) LeaveRooms(peer []byte) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM room_members WHERE peer = ?`, peer); err != nil {
		return fmt.Errorf("take removed member out of rooms: %w", err)
	}
	return nil
}

// LeaveRoom takes peer out of one room's members.
func (tx *Tx) LeaveRoom(room wire.ID, peer []byte) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM room_members WHERE room = ? AND peer = ?`, room[:], peer); err != nil {
		return fmt.Errorf("take member out of room %s: %w", room, err)
	}
	return nil
}

// Envelope returns the envelope with id inside the transaction, or false.
func (tx *Tx) Envelope(id wire.ID) (Envelope, bool, error) {
	var e Envelope
	err := scanEnvelope(tx.q().QueryRowContext(tx.ctx, `SELECT `+envelopeCols+` FROM envelopes WHERE id = ?`, id[:]), &e)
	if errors.Is(err, sql.ErrNoRows) {
		return Envelope{}, false, nil
	}
	if err != nil {
		return Envelope{}, false, fmt.Errorf("envelope %s: %w", id, err)
	}
	return e, true, nil
}

// RosterEnvelopes returns every canonical roster envelope in roster order,
// outside any write: what a node computes its roster from at start.
func (s *Store) RosterEnvelopes(ctx context.Context) ([]Envelope, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+envelopeCols+` FROM envelopes
		WHERE class = ? AND raw IS NOT NULL ORDER BY lamport, author, seq`, int64(wire.ClassRoster))
	if err != nil {
		return nil, fmt.Errorf("roster envelopes: %w", err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("roster envelopes: %w", err)
	}
	return envs, nil
}

// AddKeyRecipients records that the room key keyID was shared with peers.
func (tx *Tx) AddKeyRecipients(keyID wire.ID, peers [][]byte) error {
	for _, p := range peers {
		if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO key_recipients (key_id, peer) VALUES (?, ?)
			ON CONFLICT DO NOTHING`, keyID[:], p); err != nil {
			return fmt.Errorf("record recipients of key %s: %w", keyID, err)
		}
	}
	return nil
}

// KeyRecipients returns the peers the room key keyID is known to have reached.
func (s *Store) KeyRecipients(ctx context.Context, keyID wire.ID) ([][]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT peer FROM key_recipients WHERE key_id = ? ORDER BY peer`, keyID[:])
	if err != nil {
		return nil, fmt.Errorf("recipients of key %s: %w", keyID, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("recipients of key %s: %w", keyID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// TaintKeys records every key of room held now as having reached peer: a
// member leaving or taken out may hold any of them, even one whose share
// this node could not read, so none of them is a send key again.
func (tx *Tx) TaintKeys(room wire.ID, peer []byte) error {
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO key_recipients (key_id, peer)
		SELECT key_id, ? FROM room_keys WHERE room = ? ON CONFLICT DO NOTHING`, peer, room[:]); err != nil {
		return fmt.Errorf("mark the keys of room %s: %w", room, err)
	}
	return nil
}

// TaintRoomsOf is TaintKeys for every room peer is a member of, and for
// also (#general, which every member reads).
func (tx *Tx) TaintRoomsOf(peer []byte, also wire.ID) error {
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO key_recipients (key_id, peer)
		SELECT k.key_id, ? FROM room_keys k
		WHERE k.room = ? OR k.room IN (SELECT room FROM room_members WHERE peer = ?)
		ON CONFLICT DO NOTHING`, peer, also[:], peer); err != nil {
		return fmt.Errorf("mark the keys of a removed member's rooms: %w", err)
	}
	return nil
}

// RoomMembers returns the members of room as this transaction sees them.
func (tx *Tx) RoomMembers(room wire.ID) ([][]byte, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT peer FROM room_members WHERE room = ? ORDER BY peer`, room[:])
	if err != nil {
		return nil, fmt.Errorf("members of room %s: %w", room, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("members of room %s: %w", room, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// KeyShares returns the key-share envelopes of room this node holds, in
// (lamport, author, seq) order.
func (tx *Tx) KeyShares(room wire.ID) ([]Envelope, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+envelopeCols+` FROM envelopes
		WHERE room = ? AND class = ? AND raw IS NOT NULL ORDER BY lamport, author, seq`, room[:], int64(wire.ClassKeyShare))
	if err != nil {
		return nil, fmt.Errorf("key shares of room %s: %w", room, err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("key shares of room %s: %w", room, err)
	}
	return envs, nil
}

// KeyShareAuthors returns the (author, seq) of every key-share envelope of
// room held: enough to find the one that created it, without the bodies.
func (tx *Tx) KeyShareAuthors(room wire.ID) ([]Envelope, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT author, seq FROM envelopes
		WHERE room = ? AND class = ? AND raw IS NOT NULL`, room[:], int64(wire.ClassKeyShare))
	if err != nil {
		return nil, fmt.Errorf("key shares of room %s: %w", room, err)
	}
	defer rows.Close()
	var out []Envelope
	for rows.Next() {
		e := Envelope{Room: room, Class: wire.ClassKeyShare}
		if err := rows.Scan(&e.Author, uintCol[uint64]{&e.Seq}); err != nil {
			return nil, fmt.Errorf("key shares of room %s: %w", room, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// MembersKnown reports whether room's members were learnt from what its
// creator signed (Room.MembersKnown); false for a room not stored.
func (tx *Tx) MembersKnown(room wire.ID) (bool, error) {
	var known bool
	err := tx.q().QueryRowContext(tx.ctx, `SELECT members_known FROM rooms WHERE id = ?`, room[:]).Scan(&known)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("room %s: %w", room, err)
	}
	return known, nil
}

// ResetRoomMembers forgets room's members and that they were known, so
// that they can be computed again from the room's ops.
func (tx *Tx) ResetRoomMembers(room wire.ID) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM room_members WHERE room = ?`, room[:]); err != nil {
		return fmt.Errorf("reset members of room %s: %w", room, err)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE rooms SET members_known = 0 WHERE id = ?`, room[:]); err != nil {
		return fmt.Errorf("reset members of room %s: %w", room, err)
	}
	return nil
}

// UntrustedKeys returns the IDs of room's keys held untrusted.
func (tx *Tx) UntrustedKeys(room wire.ID) ([]wire.ID, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT key_id FROM room_keys WHERE room = ? AND trusted = 0 ORDER BY epoch, key_id`, room[:])
	if err != nil {
		return nil, fmt.Errorf("untrusted keys of room %s: %w", room, err)
	}
	defer rows.Close()
	var out []wire.ID
	for rows.Next() {
		var id wire.ID
		if err := rows.Scan(idCol{&id}); err != nil {
			return nil, fmt.Errorf("untrusted keys of room %s: %w", room, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// TrustKey marks the room key keyID as trusted.
func (tx *Tx) TrustKey(keyID wire.ID) error {
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE room_keys SET trusted = 1 WHERE key_id = ?`, keyID[:]); err != nil {
		return fmt.Errorf("trust room key %s: %w", keyID, err)
	}
	return nil
}

// RoomOps returns, by (lamport, author, seq), the content envelopes of room
// whose key is held, or whose file key was disclosed, that are neither a
// message nor an action: its room ops, and content that failed to decode.
func (tx *Tx) RoomOps(room wire.ID) ([]Envelope, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+prefixed("e.", envelopeCols)+` FROM envelopes e
		WHERE e.room = ? AND e.class = 3 AND e.raw IS NOT NULL
			AND (EXISTS (SELECT 1 FROM room_keys k WHERE k.key_id = e.key AND k.room = e.room)
				OR EXISTS (SELECT 1 FROM disclosed d WHERE d.envelope = e.id AND d.room = e.room))
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.id)
			AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.id = e.id)
		ORDER BY e.lamport, e.author, e.seq`, room[:])
	if err != nil {
		return nil, fmt.Errorf("room ops of room %s: %w", room, err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("room ops of room %s: %w", room, err)
	}
	return envs, nil
}

// RoomOpAfter reports whether room holds a room-op candidate (as RoomOps
// lists them) that sorts after (lamport, author, seq).
func (tx *Tx) RoomOpAfter(room wire.ID, lamport uint64, author []byte, seq uint64) (bool, error) {
	l, err := sqlInt("lamport", lamport)
	if err != nil {
		return false, err
	}
	s, err := sqlInt("seq", seq)
	if err != nil {
		return false, err
	}
	var one int
	err = tx.q().QueryRowContext(tx.ctx, `SELECT 1 FROM envelopes e
		WHERE e.room = ? AND e.class = 3 AND e.raw IS NOT NULL
			AND (e.lamport > ? OR (e.lamport = ? AND (e.author > ? OR (e.author = ? AND e.seq > ?))))
			AND (EXISTS (SELECT 1 FROM room_keys k WHERE k.key_id = e.key AND k.room = e.room)
				OR EXISTS (SELECT 1 FROM disclosed d WHERE d.envelope = e.id AND d.room = e.room))
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.id)
			AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.id = e.id)
		LIMIT 1`, room[:], l, l, author, author, s).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("room ops of room %s after %d: %w", room, lamport, err)
	}
	return true, nil
}

// PutDisclosed records the disclosed file key of envelope id of room.
func (tx *Tx) PutDisclosed(room, id wire.ID, fileKey [16]byte) error {
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO disclosed (envelope, room, file_key) VALUES (?, ?, ?)
		ON CONFLICT (envelope) DO NOTHING`, id[:], room[:], fileKey[:]); err != nil {
		return fmt.Errorf("put disclosed key of %s: %w", id, err)
	}
	return nil
}

// DropDisclosed forgets the disclosed file key of envelope id: it did not
// open a room op of its room.
func (tx *Tx) DropDisclosed(id wire.ID) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM disclosed WHERE envelope = ?`, id[:]); err != nil {
		return fmt.Errorf("drop disclosed key of %s: %w", id, err)
	}
	return nil
}

// Disclosed returns the disclosed file key of envelope id of room, if any.
func (tx *Tx) Disclosed(room, id wire.ID) ([16]byte, bool, error) {
	var fk [16]byte
	var b []byte
	err := tx.q().QueryRowContext(tx.ctx, `SELECT file_key FROM disclosed WHERE envelope = ? AND room = ?`, id[:], room[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return fk, false, nil
	}
	if err != nil {
		return fk, false, fmt.Errorf("disclosed key of %s: %w", id, err)
	}
	copy(fk[:], b)
	return fk, true, nil
}

// DisclosedIn returns every disclosed file key of room, by envelope ID.
func (tx *Tx) DisclosedIn(room wire.ID) (map[wire.ID][16]byte, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT envelope, file_key FROM disclosed WHERE room = ?`, room[:])
	if err != nil {
		return nil, fmt.Errorf("disclosed keys of room %s: %w", room, err)
	}
	out, err := scanDisclosed(rows)
	if err != nil {
		return nil, fmt.Errorf("disclosed keys of room %s: %w", room, err)
	}
	return out, nil
}

// scanDisclosed reads rows of (envelope, file_key) and closes them.
func scanDisclosed(rows *sql.Rows) (map[wire.ID][16]byte, error) {
	defer rows.Close()
	out := map[wire.ID][16]byte{}
	for rows.Next() {
		var id wire.ID
		var b []byte
		if err := rows.Scan(idCol{&id}, &b); err != nil {
			return nil, err
		}
		var fk [16]byte
		copy(fk[:], b)
		out[id] = fk
	}
	return out, rows.Err()
}

// wantedBodiesQuery reads disclosed first and looks each envelope up by ID:
// the planner's own choice was to scan every content envelope (its partial
// index on class), which a node runs after every pull — 6.5% of the CPU of
// the fanout benchmark. Only content of the room the disclosure was for can
// be its room op.
const wantedBodiesQuery = `SELECT d.envelope FROM disclosed d CROSS JOIN envelopes e ON e.id = d.envelope
	WHERE e.raw IS NULL AND e.room = d.room AND e.class = 3 ORDER BY random() LIMIT ?`

// WantedBodies lists at most limit envelopes whose file key was disclosed to
// this node but which it holds only as a tombstone: a peer's retention
// purged them before this node could read them, and a member still holds
// them (members keep the room ops they can read). A random pick when more
// wait, so IDs no peer holds cannot starve the others; sorted by ID.
func (s *Store) WantedBodies(ctx context.Context, limit int) ([]wire.ID, error) {
	rows, err := s.r.QueryContext(ctx, wantedBodiesQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("list wanted bodies: %w", err)
	}
	defer rows.Close()
	var out []wire.ID
	for rows.Next() {
		var id wire.ID
		if err := rows.Scan(idCol{&id}); err != nil {
			return nil, fmt.Errorf("list wanted bodies: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list wanted bodies: %w", err)
	}
	slices.SortFunc(out, func(a, b wire.ID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// RawsByID returns the bytes of those of ids held with their body.
func (s *Store) RawsByID(ctx context.Context, ids []wire.ID) (map[wire.ID][]byte, error) {
	out := make(map[wire.ID][]byte, len(ids))
	for part := range slices.Chunk(ids, 256) {
		args := make([]any, len(part))
		for i := range part {
			args[i] = part[i][:]
		}
		q := `SELECT id, raw FROM envelopes WHERE raw IS NOT NULL AND id IN (?` + strings.Repeat(",?", len(part)-1) + `)`
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read envelopes by ID: %w", err)
		}
		for rows.Next() {
			var id wire.ID
			var raw []byte
			if err := rows.Scan(idCol{&id}, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read envelopes by ID: %w", err)
			}
			out[id] = raw
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read envelopes by ID: %w", err)
		}
	}
	return out, nil
}

// RestoreBody puts the signed bytes of e back into its tombstone, with the
// header e's signature vouches for (a tombstone's header was only a peer's
// word). It reports false if e is not held as a tombstone.
func (tx *Tx) RestoreBody(e Envelope) (bool, error) {
	if e.Raw == nil {
		return false, fmt.Errorf("restore envelope %s: no body", e.ID)
	}
	res, err := tx.q().ExecContext(tx.ctx, `UPDATE envelopes SET raw = ?, key = ?, prev = ?, lamport = ?, time = ?, class = ?, room = ?
		WHERE id = ? AND raw IS NULL`, e.Raw, e.Key[:], e.Prev[:], int64(e.Lamport), e.Time, int64(e.Class), e.Room[:], e.ID[:])
	if err != nil {
		return false, fmt.Errorf("restore envelope %s: %w", e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("restore envelope %s: %w", e.ID, err)
	}
	return n == 1, nil
}
