package store

import (
	"context"
	"fmt"
)

// The full-text index is brought up to date after the transactions that
// store messages, not inside them (migration 0005): a catch-up writes
// thousands of messages, and indexing them in bulk afterwards costs less
// than a row at a time and keeps the index off the ingest path. Search
// indexes whatever waits before it queries, so it never misses a message
// that is stored.

// searchFlushChunk is how many waiting messages Search indexes per
// transaction before it queries.
const searchFlushChunk = 4096

// TextWaiting reports whether messages may be waiting for the full-text
// index: it is true from a message's store until IndexText has taken it.
func (s *Store) TextWaiting() bool { return s.textWaiting.Load() }

// IndexText adds up to limit of the messages waiting for the full-text
// index to it, oldest first, in a write transaction of its own, and returns
// how many it added. Fewer than limit means none wait any longer.
func (s *Store) IndexText(ctx context.Context, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("index text in %s: %w", s.path, errClosed)
	}
	n, err := s.indexText(ctx, limit)
	if err != nil {
		return 0, fmt.Errorf("index text in %s: %w", s.path, err)
	}
	if n < limit {
		// s.mu is held: no message was stored since the last was taken.
		s.textWaiting.Store(false)
	}
	return n, nil
}

func (s *Store) indexText(ctx context.Context, limit int) (int, error) {
	var n int
	err := s.update(ctx, false, func(tx *Tx) error {
		mark, err := tx.indexedUpTo()
		if err != nil {
			return err
		}
		var last int64
		if err := tx.q().QueryRowContext(tx.ctx, `SELECT count(*), coalesce(max(rowid), 0) FROM
			(SELECT rowid FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?)`, mark, limit).Scan(&n, &last); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		// One statement: FTS5 builds one segment for the whole run.
		if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO messages_fts (rowid, text)
			SELECT rowid, text FROM messages WHERE rowid > ? AND rowid <= ? ORDER BY rowid`, mark, last); err != nil {
			return err
		}
		_, err = tx.q().ExecContext(tx.ctx, `UPDATE text_index SET indexed = ?`, last)
		return err
	})
	return n, err
}

// flushText indexes every message that waits, for a query that must see them.
func (s *Store) flushText(ctx context.Context) error {
	for s.TextWaiting() {
		n, err := s.IndexText(ctx, searchFlushChunk)
		if err != nil {
			return err
		}
		if n < searchFlushChunk {
			return nil
		}
	}
	return nil
}
