package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charla-im/charla/wire"
)

// Retention (issue "Office control", DESIGN.md "Storage"): content older than
// its room's limit loses its body and everything decrypted from it, and keeps
// its header as a tombstone, so the envelope still counts in the author's
// feed and is never fetched again. Roster ops and key shares are never purged.
//
// A tombstone is an envelopes row with raw NULL. One this node made from an
// envelope it held keeps the envelope's key ID; one taken from a peer in sync
// (PutTombstone) has a zero key ID, which no content envelope has: its header
// was never verified, so a signed envelope at its place beats it.

// Retention says which content is old enough to purge. An envelope's age
// counts from the earlier of its author's time and the moment this node first
// held it.
type Retention struct {
	Default int64             // cutoff, unix ms, for rooms not in Rooms; 0 keeps them forever
	Rooms   map[wire.ID]int64 // cutoff per room, overriding Default; 0 keeps that room forever
}

func (r Retention) cutoff(room wire.ID) int64 {
	if c, ok := r.Rooms[room]; ok {
		return c
	}
	return r.Default
}

// Purged is what one call of Purge removed.
type Purged struct {
	Envelopes int      // content envelopes emptied to tombstones
	Messages  int      // decrypted messages (and their search entries) deleted
	Forks     int      // old content forks deleted
	Manifests [][]byte // encoded manifests of the files whose messages went
	// Next is where the next call continues, passed as its from; 0 when
	// every envelope was looked at.
	Next int64
}

// Purge empties content envelopes that r says are too old, at most limit,
// looking at envelopes in the order they were stored from the position from
// (0 to start; then the Next of the call before), in one transaction (the
// writer runs with secure_delete on, see Open): the envelope's raw bytes, its message and search entry,
// its file record and its action go; its header stays. Content forks that
// old are deleted whole, on the first call. Content this node can read but
// that made no message, action or file is a room op (a room's name or
// members), which is kept: rooms are computed from those, as the roster is
// from roster ops.
//
// Deleted rows are overwritten in the database file, but their older copies
// stay in the write-ahead log and the search index until Compact.
func (s *Store) Purge(ctx context.Context, r Retention, from int64, limit int) (Purged, error) {
	var p Purged
	if limit < 1 {
		return p, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Purged{}, fmt.Errorf("purge history %s: %w", s.path, errClosed)
	}
	err := s.update(ctx, false, func(tx *Tx) error {
		p = Purged{}
		ids, next, err := tx.purgeable(r, from, limit)
		if err != nil {
			return err
		}
		p.Next = next
		if err := tx.purgeIDs(ids, &p); err != nil {
			return err
		}
		if from == 0 {
			return tx.purgeForks(r, &p)
		}
		return nil
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purge history %s: %w", s.path, err)
	}
	return p, nil
}

// keepAll is the cutoff of a room whose content is kept forever: no time,
// however forged, is below it.
const keepAll = math.MinInt64

// purgeable lists at most limit content envelopes r says are too old,
// stored after the row from, and the last row it looked at (0 when it
// reached the end). One pass over the table, whatever the number of rules.
func (tx *Tx) purgeable(r Retention, from int64, limit int) ([]wire.ID, int64, error) {
	cutoff := func(c int64) int64 {
		if c <= 0 {
			return keepAll
		}
		return c
	}
	var cases strings.Builder
	var args []any
	args = append(args, from)
	for room, c := range r.Rooms {
		cases.WriteString(" WHEN ? THEN ?")
		args = append(args, room[:], cutoff(c))
	}
	args = append(args, cutoff(r.Default), limit)
	limitCase := "?"
	if cases.Len() > 0 {
		limitCase = "CASE e.room" + cases.String() + " ELSE ? END"
	}
	// class = 3 is wire.ClassContent. A room op, readable (its key is held,
	// or its file key was disclosed for its room, as RoomOps reads it) and
	// with no message or action, is kept. The rows looked at are
	// numbered so that the next call starts after the last, purged or not.
	q := `SELECT e.rowid, e.id FROM envelopes e
		WHERE e.rowid > ? AND e.class = 3 AND e.raw IS NOT NULL AND min(e.time, e.received) < ` + limitCase + `
			AND (EXISTS (SELECT 1 FROM messages m WHERE m.id = e.id)
				OR EXISTS (SELECT 1 FROM actions a WHERE a.id = e.id)
				OR (NOT EXISTS (SELECT 1 FROM room_keys k WHERE k.key_id = e.key)
					AND NOT EXISTS (SELECT 1 FROM disclosed d WHERE d.envelope = e.id AND d.room = e.room)))
		ORDER BY e.rowid LIMIT ?`
	rows, err := tx.q().QueryContext(tx.ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list purgeable content: %w", err)
	}
	defer rows.Close()
	var ids []wire.ID
	var last int64
	for rows.Next() {
		var id wire.ID
		if err := rows.Scan(&last, idCol{&id}); err != nil {
			return nil, 0, fmt.Errorf("list purgeable content: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list purgeable content: %w", err)
	}
	if len(ids) < limit {
		last = 0 // the scan reached the end
	}
	return ids, last, nil
}

// purgeIDs empties the envelopes ids and drops what was decrypted from
// them, one statement per table: the search index's delete trigger flushes
// at every statement (see migrations/0001_init.sql), not at every row.
func (tx *Tx) purgeIDs(ids []wire.ID, p *Purged) error {
	if len(ids) == 0 {
		return nil
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	args := make([]any, len(ids))
	for i := range ids {
		args[i] = ids[i][:]
	}
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT manifest FROM files WHERE id IN `+in, args...)
	if err != nil {
		return fmt.Errorf("files of purged envelopes: %w", err)
	}
	for rows.Next() {
		var m []byte
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return fmt.Errorf("files of purged envelopes: %w", err)
		}
		p.Manifests = append(p.Manifests, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("files of purged envelopes: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM files WHERE id IN `,
		`DELETE FROM actions WHERE id IN `,
		`DELETE FROM messages WHERE id IN `, // the delete trigger takes the text out of the index
		`UPDATE envelopes SET raw = NULL WHERE id IN `,
	} {
		res, err := tx.q().ExecContext(tx.ctx, q+in, args...)
		if err != nil {
			return fmt.Errorf("purge: %s…: %w", q, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("purge: %s…: %w", q, err)
		}
		switch {
		case strings.HasPrefix(q, "DELETE FROM messages"):
			p.Messages += int(n)
		case strings.HasPrefix(q, "UPDATE envelopes"):
			p.Envelopes += int(n)
		}
	}
	return nil
}

// purgeForks deletes the content forks r says are too old. Forks are rare
// and keep no header in columns, so each is decoded here.
func (tx *Tx) purgeForks(r Retention, p *Purged) error {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT id, raw, received FROM forks`)
	if err != nil {
		return fmt.Errorf("list forks: %w", err)
	}
	var old []wire.ID
	for rows.Next() {
		var id wire.ID
		var raw []byte
		var received int64
		if err := rows.Scan(idCol{&id}, &raw, &received); err != nil {
			rows.Close()
			return fmt.Errorf("list forks: %w", err)
		}
		_, h, err := wire.DecodeEnvelope(raw)
		if err != nil || h.Class != wire.ClassContent {
			continue
		}
		if c := r.cutoff(h.Room); c > 0 && min(h.Time, received) < c {
			old = append(old, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list forks: %w", err)
	}
	for _, id := range old {
		if err := tx.DropFork(id); err != nil {
			return err
		}
		p.Forks++
	}
	return nil
}

// checkpointTries bounds how often Compact asks again for a WAL checkpoint
// that readers kept from finishing. Each try already waits busy_timeout for
// them, holding the writer: 20 tries stalled every send and every arrival
// for 100 s (TestCompactBusyReaderBounded).
const checkpointTries = 2

// metaZeroed marks a database that Compact rewrote whole once: from then on
// secure_delete keeps its free space clear.
const metaZeroed = "store/zeroed"

// Compact finishes a purge: it rewrites the search index without the
// entries of deleted messages (FTS5 'optimize'; a deleted row's terms stay
// in the index's older segments until they are merged), once rewrites the
// whole database if it was written before secure_delete was always on (its
// free space may still hold older copies of purged text), and then
// checkpoints the write-ahead log into the database and truncates it to
// zero bytes, so the log keeps no older copy of a purged page.
func (s *Store) Compact(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("compact history %s: %w", s.path, errClosed)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO messages_fts (messages_fts) VALUES ('optimize')`); err != nil {
		return fmt.Errorf("compact history %s: optimize the search index: %w", s.path, err)
	}
	var zeroed int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = ?`, metaZeroed).Scan(&zeroed); err != nil {
		return fmt.Errorf("compact history %s: %w", s.path, err)
	}
	if zeroed == 0 {
		if err := s.vacuum(ctx); err != nil {
			return fmt.Errorf("compact history %s: rewrite the database: %w", s.path, err)
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, val) VALUES (?, x'01')`, metaZeroed); err != nil {
			return fmt.Errorf("compact history %s: %w", s.path, err)
		}
	}
	// A reader in the middle of a snapshot keeps the log from being reset;
	// the busy handler waits for it, and reads are short, so ask once more.
	for try := 1; ; try++ {
		var busy, logFrames, done int
		if err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("compact history %s: checkpoint: %w", s.path, err)
		}
		if busy == 0 {
			return nil
		}
		if try == checkpointTries {
			return fmt.Errorf("compact history %s: checkpoint: readers kept the write-ahead log busy %d times; the next purge tries again", s.path, try)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// vacuum rewrites the database whole. VACUUM builds the copy in a
// temporary database, which temp_store(MEMORY) would hold in memory: as
// large as the history. s.mu must be held.
func (s *Store) vacuum(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "VACUUM")
	if _, rerr := conn.ExecContext(context.Background(), "PRAGMA temp_store = MEMORY"); rerr != nil {
		// Drop the connection rather than leave it so; the pool opens a
		// fresh one with the DSN's pragmas.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// PutTombstone stores what a peer sent of an envelope it purged: the header
// with no body and a zero key ID (see above). Like PutEnvelope it keeps the
// author's head, and reports false if the ID is stored already.
func (tx *Tx) PutTombstone(e Envelope) (bool, error) {
	e.Raw, e.Key = nil, wire.ID{}
	ins, err := tx.putEnvelope(e, true)
	if ins {
		tx.s.weakIDs[e.ID] = struct{}{}
	}
	return ins, err
}

// UnverifiedTombstone reports whether id is held only as a tombstone taken
// from a peer: a header no signature vouches for.
func (tx *Tx) UnverifiedTombstone(id wire.ID) (bool, error) {
	var yes bool
	err := tx.q().QueryRowContext(tx.ctx, `SELECT raw IS NULL AND key = zeroblob(32) FROM envelopes WHERE id = ?`,
		id[:]).Scan(&yes)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("envelope %s: %w", id, err)
	}
	return yes, nil
}
