package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/charla-im/charla/wire"
)

// Reads for the audit and the export. They stream or page, so that a large
// history is never held in memory at once.

// FeedLink is one envelope of an author's feed as the hash chain needs it.
// Raw is nil for a retention tombstone.
type FeedLink struct {
	Seq   uint64
	ID    wire.ID
	Prev  wire.ID
	Class wire.Class
	Raw   []byte
}

// EachFeedLink calls fn for every canonical envelope of author with seq at
// most upTo (every one for upTo 0), by seq, until fn returns an error.
// fn must not write to s.
func (s *Store) EachFeedLink(ctx context.Context, author []byte, upTo uint64, fn func(FeedLink) error) error {
	limit, err := sqlInt("seq", upTo)
	if err != nil {
		return err
	}
	if upTo == 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, prev, class, raw FROM envelopes
		WHERE author = ? AND (? < 0 OR seq <= ?) ORDER BY seq`, author, limit, limit)
	if err != nil {
		return fmt.Errorf("feed links: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l FeedLink
		if err := rows.Scan(uintCol[uint64]{&l.Seq}, idCol{&l.ID}, idCol{&l.Prev}, &l.Class, &l.Raw); err != nil {
			return fmt.Errorf("feed links: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("feed links: %w", err)
	}
	return nil
}

// eachEnvelope calls fn for every row of an envelope query.
func (s *Store) eachEnvelope(ctx context.Context, what string, fn func(Envelope) error, query string, args ...any) error {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Envelope
		if err := scanEnvelope(rows, &e); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// EachKeyShare calls fn for every key-share envelope held, by (lamport,
// author, seq). Key shares are never purged. fn must not write to s.
func (s *Store) EachKeyShare(ctx context.Context, fn func(Envelope) error) error {
	return s.eachEnvelope(ctx, "key shares", fn, `SELECT `+envelopeCols+` FROM envelopes
		WHERE class = ? AND raw IS NOT NULL ORDER BY lamport, author, seq`, int64(wire.ClassKeyShare))
}

// EachRoomOpCandidate calls fn, by (lamport, author, seq), for every content
// envelope whose room key is held (or whose file key was disclosed) that is
// neither a message nor an action: the room ops, and content that failed to
// decode. fn must not write to s.
func (s *Store) EachRoomOpCandidate(ctx context.Context, fn func(Envelope) error) error {
	// class = 3 is written out so that the planner can use envelopes_content_key.
	return s.eachEnvelope(ctx, "room ops", fn, `SELECT `+prefixed("e.", envelopeCols)+` FROM envelopes e
		WHERE e.class = 3 AND e.raw IS NOT NULL
			AND (EXISTS (SELECT 1 FROM room_keys k WHERE k.key_id = e.key AND k.room = e.room)
				OR EXISTS (SELECT 1 FROM disclosed d WHERE d.envelope = e.id AND d.room = e.room))
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.id)
			AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.id = e.id)
		ORDER BY e.lamport, e.author, e.seq`)
}

// prefixed qualifies each column of a column list ("a, b") with p.
func prefixed(p, cols string) string {
	return p + strings.ReplaceAll(cols, ", ", ", "+p)
}

// HasRoomKey reports whether the room key keyID is held.
func (s *Store) HasRoomKey(ctx context.Context, keyID wire.ID) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM room_keys WHERE key_id = ?`, keyID[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("room key %s: %w", keyID, err)
	}
	return true, nil
}

// RoomEnvelopes counts the envelopes held whole of room (key shares and
// content; not retention's tombstones), and among them the content this node
// holds no key for.
func (s *Store) RoomEnvelopes(ctx context.Context, room wire.ID) (held, unreadable int64, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT count(*),
			coalesce(sum(e.class = 3 AND NOT EXISTS (SELECT 1 FROM room_keys k WHERE k.key_id = e.key)), 0)
		FROM envelopes e WHERE e.room = ? AND e.raw IS NOT NULL`, room[:]).Scan(&held, &unreadable)
	if err != nil {
		return 0, 0, fmt.Errorf("envelopes of room %s: %w", room, err)
	}
	return held, unreadable, nil
}

// ExportedMessage is a message with its envelope's raw bytes (nil once
// purged by retention).
type ExportedMessage struct {
	Message
	Raw []byte
}

// MessagesAfter returns up to limit messages of room that sort after the
// message after by (lamport, author, seq) — from the first when after is
// nil — and whose author time is at least since (unix ms), oldest first.
// An export pages through a room with it, holding one page at a time.
func (s *Store) MessagesAfter(ctx context.Context, room wire.ID, after *Message, since int64, limit int) ([]ExportedMessage, error) {
	if limit < 1 {
		return nil, nil
	}
	var lamport, seq int64 = -1, 0
	var author []byte
	if after != nil {
		var err error
		if lamport, err = sqlInt("lamport", after.Lamport); err != nil {
			return nil, err
		}
		if seq, err = sqlInt("seq", after.Seq); err != nil {
			return nil, err
		}
		author = after.Author
	}
	// The row value comparison walks messages_room_order from the cursor.
	rows, err := s.r.QueryContext(ctx, `SELECT `+prefixed("m.", messageCols)+`, e.raw FROM messages m
		JOIN envelopes e ON e.id = m.id
		WHERE m.room = ? AND (m.lamport, m.author, m.seq) > (?, ?, ?) AND m.time >= ?
		ORDER BY m.lamport, m.author, m.seq LIMIT ?`,
		room[:], lamport, nonNilBlob(author), seq, since, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", room, err)
	}
	defer rows.Close()
	var out []ExportedMessage
	for rows.Next() {
		var m ExportedMessage
		if err := rows.Scan(idCol{&m.ID}, idCol{&m.Room}, &m.Author, uintCol[uint64]{&m.Seq}, uintCol[uint64]{&m.Lamport},
			&m.Time, uintCol[uint8]{&m.Kind}, &m.Text, &m.Raw); err != nil {
			return nil, fmt.Errorf("messages of room %s: %w", room, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", room, err)
	}
	return out, nil
}

// nonNilBlob binds an empty blob rather than NULL, which compares as
// neither less nor greater.
func nonNilBlob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ExportedAction is an action with its envelope's raw bytes (nil once purged).
type ExportedAction struct {
	Action
	Raw []byte
}

// ActionsWithRaw returns the actions naming target, oldest first by
// (lamport, author, seq), with their envelopes' bytes.
func (s *Store) ActionsWithRaw(ctx context.Context, target wire.ID) ([]ExportedAction, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+prefixed("a.", actionCols)+`, e.raw FROM actions a
		JOIN envelopes e ON e.id = a.id
		WHERE a.target = ? ORDER BY a.lamport, a.author, a.seq`, target[:])
	if err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	defer rows.Close()
	var out []ExportedAction
	for rows.Next() {
		var a ExportedAction
		if err := rows.Scan(idCol{&a.ID}, idCol{&a.Room}, idCol{&a.Target}, &a.Author,
			uintCol[uint64]{&a.Seq}, uintCol[uint64]{&a.Lamport}, uintCol[uint8]{&a.Kind}, &a.Text, &a.Raw); err != nil {
			return nil, fmt.Errorf("actions on %s: %w", target, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	return out, nil
}

// EnvelopeRaw returns the bytes of envelope id: held is false if no such
// envelope is held, and raw is nil for a retention tombstone.
func (s *Store) EnvelopeRaw(ctx context.Context, id wire.ID) (raw []byte, held bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT raw FROM envelopes WHERE id = ?`, id[:]).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("envelope %s: %w", id, err)
	}
	return raw, true, nil
}

// DisclosedKeys returns every disclosed file key held (node/disclose.go), by
// envelope ID: the audit reads the room ops they open.
func (s *Store) DisclosedKeys(ctx context.Context) (map[wire.ID][16]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT envelope, file_key FROM disclosed`)
	if err != nil {
		return nil, fmt.Errorf("disclosed keys: %w", err)
	}
	out, err := scanDisclosed(rows)
	if err != nil {
		return nil, fmt.Errorf("disclosed keys: %w", err)
	}
	return out, nil
}
