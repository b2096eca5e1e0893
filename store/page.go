package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/charla-im/charla/wire"
)

// MessagesBefore returns the limit messages of room that sort just before
// message before by (lamport, author, seq), oldest first: the page above
// the oldest one a reader holds. It fails with an error wrapping ErrNotFound
// if before is not a message of room. A limit below 1 returns none.
func (s *Store) MessagesBefore(ctx context.Context, room, before wire.ID, limit int) ([]Message, error) {
	if limit < 1 {
		return nil, nil
	}
	var msgs []Message
	err := s.view(ctx, func(tx *sql.Tx) error {
		var lamport int64
		var author []byte
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT lamport, author, seq FROM messages WHERE id = ? AND room = ?`,
			before[:], room[:]).Scan(&lamport, &author, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("message %s: %w", before, ErrNotFound)
		}
		if err != nil {
			return err
		}
		// The row value comparison walks messages_room_order backwards from
		// the cursor, so a page costs limit rows however deep it is.
		rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+` FROM messages
			WHERE room = ? AND (lamport, author, seq) < (?, ?, ?)
			ORDER BY lamport DESC, author DESC, seq DESC LIMIT ?`,
			room[:], lamport, author, seq, limit)
		if err != nil {
			return err
		}
		msgs, err = scanMessages(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("messages of room %s before %s: %w", room, before, err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}
