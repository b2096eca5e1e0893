package store

import (
	"context"
	"fmt"
)

// MaxLamport is the highest lamport of any stored envelope (0 when empty), so
// a restarted node's clock never goes back. A tombstone taken from a peer
// does not count: its lamport is a claim nobody signed (see PutTombstone).
func (s *Store) MaxLamport(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(lamport), 0) FROM envelopes
		WHERE raw IS NOT NULL OR key <> zeroblob(32)`).Scan(&v); err != nil {
		return 0, fmt.Errorf("max lamport: %w", err)
	}
	return uint64(v), nil
}
