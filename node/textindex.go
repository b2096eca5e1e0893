package node

import (
	"context"
	"sync/atomic"
	"time"
)

// The search index is kept off the ingest path (DESIGN.md "Storage"): the
// store leaves new messages out of the full-text index, and textLoop adds
// them once writes have been quiet for textIdle, or at once when textBacklog
// of them wait, textChunk to a transaction so that ingest never waits long
// behind it. Search indexes whatever still waits before it queries, so it
// finds every stored message, at the cost of a wait of at most about
// textBacklog messages' indexing.
const (
	textIdle    = 300 * time.Millisecond
	textBacklog = 20000 // ~0.3-0.5 s of indexing on a 2-core machine
	textChunk   = 2000
)

// textIndex tells textLoop what was stored.
type textIndex struct {
	wrote   chan struct{} // a message was stored; capacity 1
	waiting atomic.Int64  // messages stored since the last run (an estimate: edits count too)
}

// textStored is called after a commit that stored or changed k messages.
func (n *Node) textStored(k int) {
	n.text.waiting.Add(int64(k))
	select {
	case n.text.wrote <- struct{}{}:
	default:
	}
}

// textLoop indexes stored messages for search, as described above.
func (n *Node) textLoop(ctx context.Context) {
	n.indexText(ctx) // what waited when the node last stopped
	idle := time.NewTimer(textIdle)
	idle.Stop()
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.text.wrote:
			if n.text.waiting.Load() >= textBacklog {
				n.indexText(ctx)
			} else {
				idle.Reset(textIdle)
			}
		case <-idle.C:
			n.indexText(ctx)
		}
	}
}

// indexText indexes every message that waits, a chunk per transaction.
func (n *Node) indexText(ctx context.Context) {
	n.text.waiting.Store(0)
	for n.st.TextWaiting() && ctx.Err() == nil {
		k, err := n.st.IndexText(ctx, textChunk)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("index messages for search", "err", err)
			}
			return
		}
		if k < textChunk {
			return
		}
	}
}
