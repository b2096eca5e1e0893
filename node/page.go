package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// Pager is what the local API asks of a node to page back through a room's
// history, as a reader scrolls up, without loading all of it. It is apart
// from Backend so that backends without it serve the rest.
type Pager interface {
	// LogBefore returns the limit messages of room just before message
	// before, in the order Log uses, oldest first; none once before is the
	// oldest. It fails with ErrUnknownRoom for a room this node cannot
	// read, and with ErrInvalid if before is not a message ID of that room.
	LogBefore(ctx context.Context, room, before string, limit int) ([]Message, error)
}

var _ Pager = (*Node)(nil)

// LogBefore returns the page of room's history above message before.
func (n *Node) LogBefore(ctx context.Context, room, before string, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = 50
	}
	cursor, err := wire.ParseID(before)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a message ID", ErrInvalid, before)
	}
	id, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		return nil, err
	}
	ms, err := n.st.MessagesBefore(ctx, id, cursor, limit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no message %s in room %s", ErrInvalid, cursor, room)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, n.messageView(ctx, m))
	}
	return out, nil
}
