package node

import (
	"context"
	"fmt"
	"strings"
)

// MaxSearchLimit bounds how many messages one search returns.
const MaxSearchLimit = 1000

// Searcher is what the local API asks of a node to search its history. It
// is apart from Backend so that backends without search serve the rest.
type Searcher interface {
	// Search returns up to limit messages matching every word of query,
	// newest first. A word ending in * matches as a prefix. An empty query
	// matches nothing.
	Search(ctx context.Context, query string, limit int) ([]Message, error)
}

var _ Searcher = (*Node)(nil)

// Search looks query up in the full-text index of the history. Only rooms
// this node can read are indexed: what it cannot decrypt has no text.
func (n *Node) Search(ctx context.Context, query string, limit int) ([]Message, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("%w: empty search", ErrInvalid)
	}
	if limit < 1 || limit > MaxSearchLimit {
		return nil, fmt.Errorf("%w: search limit %d is not from 1 to %d", ErrInvalid, limit, MaxSearchLimit)
	}
	ms, err := n.st.Search(ctx, query, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		if v := n.messageView(ctx, m); !v.Deleted {
			out = append(out, v)
		}
	}
	return out, nil
}
