package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/charla-im/charla/wire"
)

// The reads below run on the read pool and see the last committed state; they
// are safe to call while an Update runs.

const envelopeCols = `id, author, seq, prev, lamport, time, class, room, key, raw, received`

func scanEnvelope(sc interface{ Scan(...any) error }, e *Envelope) error {
	return sc.Scan(idCol{&e.ID}, &e.Author, uintCol[uint64]{&e.Seq}, idCol{&e.Prev}, uintCol[uint64]{&e.Lamport},
		&e.Time, uintCol[wire.Class]{&e.Class}, idCol{&e.Room}, idCol{&e.Key}, &e.Raw, &e.Received)
}

func scanEnvelopes(rows *sql.Rows) ([]Envelope, error) {
	defer rows.Close()
	var envs []Envelope
	for rows.Next() {
		var e Envelope
		if err := scanEnvelope(rows, &e); err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	return envs, rows.Err()
}

const messageCols = `id, room, author, seq, lamport, time, kind, text`

func scanMessages(rows *sql.Rows) ([]Message, error) {
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		if err := scanMessage(rows, &m); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

func scanMessage(sc interface{ Scan(...any) error }, m *Message) error {
	return sc.Scan(idCol{&m.ID}, idCol{&m.Room}, &m.Author, uintCol[uint64]{&m.Seq}, uintCol[uint64]{&m.Lamport},
		&m.Time, uintCol[uint8]{&m.Kind}, &m.Text)
}

// Messages returns the limit newest messages of room by (lamport, author,
// seq), oldest first. A limit below 1 returns none.
func (s *Store) Messages(ctx context.Context, room wire.ID, limit int) ([]Message, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.rs.messages.QueryContext(ctx, room[:], limit)
	if err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", room, err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", room, err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// Message returns the message with envelope ID id, or an error wrapping ErrNotFound.
func (s *Store) Message(ctx context.Context, id wire.ID) (Message, error) {
	var m Message
	err := scanMessage(s.rs.message.QueryRowContext(ctx, id[:]), &m)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}

// Search returns up to limit messages matching query, newest first by
// (lamport, author, seq). The query is plain words, all of which must occur;
// a word ending in * matches as a prefix. Nothing in it is FTS5 syntax, so
// no user input can make it fail to parse. An empty query matches nothing.
func (s *Store) Search(ctx context.Context, query string, limit int) ([]Message, error) {
	match := ftsQuery(query)
	if match == "" || limit < 1 {
		return nil, nil
	}
	if err := s.flushText(ctx); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.id, m.room, m.author, m.seq, m.lamport, m.time, m.kind, m.text
		FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
		WHERE messages_fts MATCH ?
		ORDER BY m.lamport DESC, m.author DESC, m.seq DESC LIMIT ?`, match, limit)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return msgs, nil
}

// ftsQuery turns plain words into an FTS5 query: each word a quoted string
// (quotes doubled, https://sqlite.org/fts5.html#fts5_strings), a trailing *
// kept as a prefix marker, the words implicitly ANDed.
func ftsQuery(query string) string {
	var b strings.Builder
	for _, w := range strings.Fields(query) {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		if w == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		if prefix {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// view runs fn in a read transaction, so that several queries see one snapshot.
func (s *Store) view(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// Rooms returns every room, sorted by name (then ID).
func (s *Store) Rooms(ctx context.Context) ([]Room, error) {
	var rooms []Room
	err := s.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, name, kind, no_history, members_known FROM rooms ORDER BY name, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := make(map[wire.ID]int)
		for rows.Next() {
			var r Room
			if err := rows.Scan(idCol{&r.ID}, &r.Name, uintCol[wire.RoomKind]{&r.Kind}, &r.NoHistory, &r.MembersKnown); err != nil {
				return err
			}
			index[r.ID] = len(rooms)
			rooms = append(rooms, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		rows, err = tx.QueryContext(ctx, `SELECT room, peer FROM room_members ORDER BY room, peer`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id wire.ID
			var peer []byte
			if err := rows.Scan(idCol{&id}, &peer); err != nil {
				return err
			}
			if i, ok := index[id]; ok { // always: one snapshot, and a foreign key
				rooms[i].Members = append(rooms[i].Members, peer)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	return rooms, nil
}

// Room returns room id, or an error wrapping ErrNotFound.
func (s *Store) Room(ctx context.Context, id wire.ID) (Room, error) {
	r := Room{ID: id}
	err := s.view(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT name, kind, no_history, members_known FROM rooms WHERE id = ?`, id[:]).
			Scan(&r.Name, uintCol[wire.RoomKind]{&r.Kind}, &r.NoHistory, &r.MembersKnown)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT peer FROM room_members WHERE room = ? ORDER BY peer`, id[:])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var peer []byte
			if err := rows.Scan(&peer); err != nil {
				return err
			}
			r.Members = append(r.Members, peer)
		}
		return rows.Err()
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, fmt.Errorf("room %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Room{}, fmt.Errorf("room %s: %w", id, err)
	}
	return r, nil
}

// RoomKeys returns every key held for room, by epoch then key ID.
func (s *Store) RoomKeys(ctx context.Context, room wire.ID) ([]RoomKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+roomKeyCols+` FROM room_keys WHERE room = ?
		ORDER BY epoch, key_id`, room[:])
	if err != nil {
		return nil, fmt.Errorf("keys of room %s: %w", room, err)
	}
	defer rows.Close()
	var keys []RoomKey
	for rows.Next() {
		var k RoomKey
		if err := scanRoomKey(rows, &k); err != nil {
			return nil, fmt.Errorf("keys of room %s: %w", room, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keys of room %s: %w", room, err)
	}
	return keys, nil
}

// Members returns the roster, removed members included, sorted by name (then peer ID).
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+memberCols+` FROM members ORDER BY name, peer`)
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	defer rows.Close()
	var ms []Member
	for rows.Next() {
		var m Member
		if err := scanMember(rows, &m); err != nil {
			return nil, fmt.Errorf("members: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return ms, nil
}

// Heads returns the vector: every author's head, sorted by author bytes.
func (s *Store) Heads(ctx context.Context) ([]Head, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT author, head_seq, head_id FROM feeds ORDER BY author`)
	if err != nil {
		return nil, fmt.Errorf("heads: %w", err)
	}
	defer rows.Close()
	var hs []Head
	for rows.Next() {
		var h Head
		if err := rows.Scan(&h.Author, uintCol[uint64]{&h.Seq}, idCol{&h.ID}); err != nil {
			return nil, fmt.Errorf("heads: %w", err)
		}
		hs = append(hs, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("heads: %w", err)
	}
	return hs, nil
}

// EnvelopeCount returns how many canonical envelopes are stored.
func (s *Store) EnvelopeCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM envelopes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count envelopes: %w", err)
	}
	return n, nil
}

// Received returns when this node first held envelope id, in unix ms, or an
// error wrapping ErrNotFound.
func (s *Store) Received(ctx context.Context, id wire.ID) (int64, error) {
	var r int64
	err := s.r.QueryRowContext(ctx, `SELECT received FROM envelopes WHERE id = ?`, id[:]).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("envelope %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("envelope %s: %w", id, err)
	}
	return r, nil
}

// EnvelopesAfter returns at most limit envelopes of author with seq > after,
// oldest first. Envelopes held above a gap are included: they too have
// seq > after. A limit below 1 returns none.
func (s *Store) EnvelopesAfter(ctx context.Context, author []byte, after uint64, limit int) ([]Envelope, error) {
	if limit < 1 || after >= math.MaxInt64 {
		return nil, nil
	}
	rows, err := s.rs.envelopesAfter.QueryContext(ctx, author, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("envelopes after seq %d: %w", after, err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("envelopes after seq %d: %w", after, err)
	}
	return envs, nil
}

// Raws adds to into the encoded envelopes of author from seq lo to hi, by
// ID: what a sync server sends of a batch it listed with HeadersAfter. A
// tombstone's entry is nil; a seq not held has none. Only the ID and the
// bytes are read, not the header's columns, which the listing holds.
func (s *Store) Raws(ctx context.Context, author []byte, lo, hi uint64, into map[wire.ID][]byte) error {
	if lo > hi || lo >= math.MaxInt64 {
		return nil
	}
	hi = min(hi, math.MaxInt64)
	rows, err := s.rs.raws.QueryContext(ctx, author, int64(lo), int64(hi))
	if err != nil {
		return fmt.Errorf("envelopes from seq %d to %d: %w", lo, hi, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id wire.ID
		var raw []byte
		if err := rows.Scan(idCol{&id}, &raw); err != nil {
			return fmt.Errorf("envelopes from seq %d to %d: %w", lo, hi, err)
		}
		into[id] = raw
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("envelopes from seq %d to %d: %w", lo, hi, err)
	}
	return nil
}

// HeadersAfter is EnvelopesAfter without the envelopes' bytes: Raw is nil.
// A sync server lists and sorts what to send with it, and reads each
// envelopes (EnvelopesAfter) a batch at a time, so the first batch leaves at once
// and memory holds one batch, not the whole pull.
func (s *Store) HeadersAfter(ctx context.Context, author []byte, after uint64, limit int) ([]Envelope, error) {
	if limit < 1 || after >= math.MaxInt64 {
		return nil, nil
	}
	rows, err := s.rs.headersAfter.QueryContext(ctx, author, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("headers after seq %d: %w", after, err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("headers after seq %d: %w", after, err)
	}
	return envs, nil
}

// Envelope returns the canonical envelope id, or an error wrapping ErrNotFound.
func (s *Store) Envelope(ctx context.Context, id wire.ID) (Envelope, error) {
	var e Envelope
	err := scanEnvelope(s.rs.envelope.QueryRowContext(ctx, id[:]), &e)
	if errors.Is(err, sql.ErrNoRows) {
		return Envelope{}, fmt.Errorf("envelope %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Envelope{}, fmt.Errorf("envelope %s: %w", id, err)
	}
	return e, nil
}

// Fork is an envelope kept apart because another one is canonical at its
// (author, seq).
type Fork struct {
	Author []byte
	Seq    uint64
	ID     wire.ID
	Raw    []byte
}

// ForkHeaders returns every fork held, by author, seq and ID, without its
// bytes (Raw nil): for status, and for a sync server to list what it offers.
// A member can sign any number of forks of its own feed, each up to an
// envelope's size, so their bytes are read only where needed: by ID a batch
// at a time (ForkRaws).
func (s *Store) ForkHeaders(ctx context.Context) ([]Fork, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT author, seq, id FROM forks ORDER BY author, seq, id`)
	if err != nil {
		return nil, fmt.Errorf("fork headers: %w", err)
	}
	defer rows.Close()
	var fs []Fork
	for rows.Next() {
		var f Fork
		if err := rows.Scan(&f.Author, uintCol[uint64]{&f.Seq}, idCol{&f.ID}); err != nil {
			return nil, fmt.Errorf("fork headers: %w", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fork headers: %w", err)
	}
	return fs, nil
}

// ForkHeadersOf returns the forks of authors by author, seq and ID, without
// their bytes (Raw nil): what the pipeline runs again, a batch at a time with
// ForkRaws, when an author's canonical branch changed.
func (s *Store) ForkHeadersOf(ctx context.Context, authors [][]byte) ([]Fork, error) {
	as := slices.Clone(authors)
	slices.SortFunc(as, bytes.Compare)
	as = slices.CompactFunc(as, bytes.Equal)
	var fs []Fork
	for _, a := range as {
		err := func() error {
			rows, err := s.rs.forksOf.QueryContext(ctx, a)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				f := Fork{Author: a}
				if err := rows.Scan(uintCol[uint64]{&f.Seq}, idCol{&f.ID}); err != nil {
					return err
				}
				fs = append(fs, f)
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("forks of an author: %w", err)
		}
	}
	return fs, nil
}

// ForkRaws adds to into the bytes of the forks ids, by ID: what a sync
// server sends of the forks of a batch it listed with ForkHeaders. A fork no
// longer held (it became canonical, or was purged or cut) has no entry.
func (s *Store) ForkRaws(ctx context.Context, ids []wire.ID, into map[wire.ID][]byte) error {
	for _, id := range ids {
		var raw []byte
		err := s.rs.forkRaw.QueryRowContext(ctx, id[:]).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fork %s: %w", id, err)
		}
		into[id] = raw
	}
	return nil
}
