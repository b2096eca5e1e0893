package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/charla-im/charla/wire"
)

// DemoteFrom moves every canonical envelope of author at seq and above into
// the forks table, with their messages (and search entries), and lowers the
// author's head below seq. The ingest pipeline calls it when an envelope with
// a lower ID arrives at a seq it had taken: that branch wins on every node.
func (tx *Tx) DemoteFrom(author []byte, seq uint64) error {
	s, err := sqlInt("seq", seq)
	if err != nil || seq == 0 {
		return fmt.Errorf("demote: seq %d out of range", seq)
	}
	if err := tx.forgetFeed(author); err != nil { // the rows below change behind its back
		return err
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO forks (id, author, seq, raw, received)
		SELECT id, author, seq, raw, received FROM envelopes
		WHERE author = ? AND seq >= ? AND raw IS NOT NULL
		ON CONFLICT (id) DO NOTHING`, author, s); err != nil {
		return fmt.Errorf("demote from seq %d: %w", seq, err)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM envelopes WHERE author = ? AND seq >= ?`, author, s); err != nil {
		return fmt.Errorf("demote from seq %d: %w", seq, err)
	}
	if seq == 1 {
		_, err = tx.q().ExecContext(tx.ctx, `DELETE FROM feeds WHERE author = ?`, author)
	} else {
		id, ok, err2 := tx.storedAt(author, seq-1)
		if err2 != nil {
			return err2
		}
		if !ok {
			_, err = tx.q().ExecContext(tx.ctx, `DELETE FROM feeds WHERE author = ? AND head_seq >= ?`, author, s)
		} else {
			_, err = tx.q().ExecContext(tx.ctx, `UPDATE feeds SET head_seq = ?, head_id = ? WHERE author = ? AND head_seq >= ?`,
				s-1, id[:], author, s)
		}
	}
	if err != nil {
		return fmt.Errorf("demote from seq %d: lower head: %w", seq, err)
	}
	return nil
}

// DropFork removes a fork that became canonical. Absent forks change nothing.
func (tx *Tx) DropFork(id wire.ID) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM forks WHERE id = ?`, id[:]); err != nil {
		return fmt.Errorf("drop fork %s: %w", id, err)
	}
	return nil
}

// HeldAboveHeads returns, per author, the seqs held above the author's head
// (above a gap), at most limit in all: what a puller tells a sync server it
// need not send again.
func (s *Store) HeldAboveHeads(ctx context.Context, limit int) (map[string][]uint64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.author, e.seq FROM feeds f
		JOIN envelopes e ON e.author = f.author AND e.seq > f.head_seq
		ORDER BY e.author, e.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("held above heads: %w", err)
	}
	defer rows.Close()
	out := map[string][]uint64{}
	for rows.Next() {
		var author []byte
		var seq int64
		if err := rows.Scan(&author, &seq); err != nil {
			return nil, fmt.Errorf("held above heads: %w", err)
		}
		out[string(author)] = append(out[string(author)], uint64(seq))
	}
	return out, rows.Err()
}

// FeedTops returns, for every author with a head, the highest seq stored
// of its feed, above a gap or not.
func (s *Store) FeedTops(ctx context.Context) (map[string]uint64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT f.author,
		coalesce((SELECT max(e.seq) FROM envelopes e WHERE e.author = f.author), f.head_seq) FROM feeds f`)
	if err != nil {
		return nil, fmt.Errorf("feed tops: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var author []byte
		var top uint64
		if err := rows.Scan(&author, uintCol[uint64]{&top}); err != nil {
			return nil, fmt.Errorf("feed tops: %w", err)
		}
		out[string(author)] = top
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feed tops: %w", err)
	}
	return out, nil
}

// HasEnvelope reports whether the envelope id is held (canonical, not a
// fork), reading the primary key only: the pipeline's duplicate check.
func (s *Store) HasEnvelope(ctx context.Context, id wire.ID) (bool, error) {
	var one int
	err := s.rs.hasEnvelope.QueryRowContext(ctx, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("has envelope %s: %w", id, err)
	}
	return true, nil
}

// HasVouchedEnvelope is HasEnvelope but for a tombstone a peer sent: its
// header is only that peer's word, so the signed envelope with its ID is
// no duplicate of it.
func (s *Store) HasVouchedEnvelope(ctx context.Context, id wire.ID) (bool, error) {
	var one int
	err := s.rs.hasVouched.QueryRowContext(ctx, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("has envelope %s: %w", id, err)
	}
	return true, nil
}

// ForkCount is the number of forks held.
func (s *Store) ForkCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM forks`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count forks: %w", err)
	}
	return n, nil
}
