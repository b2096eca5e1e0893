package node

import (
	"context"
	"time"

	"github.com/charla-im/charla/wire"
)

// An author's clock is trusted for display only: it never decides whether an
// envelope is valid or where it sorts (DESIGN.md). A clock far ahead is
// counted, so a broken or hostile one shows in status, and what it wrote is
// shown no later than shortly after this node received it.
const (
	futureTimeLimit = 24 * time.Hour  // an author time further ahead than this is counted
	displaySkew     = 5 * time.Minute // how far past its arrival a message may be dated
)

// reasonFutureTime counts envelopes dated over futureTimeLimit ahead of this
// node's clock. They are accepted all the same.
const reasonFutureTime = "future-time"

// noteTime counts hd if its author's clock is far ahead of now.
func (h *history) noteTime(hd *wire.Header, now time.Time) {
	if hd.Time > now.Add(futureTimeLimit).UnixMilli() {
		h.count(reasonFutureTime)
	}
}

// shownTime is the time a message is shown with: its author's, but no later
// than displaySkew after received, when this node first held it (0: unknown).
func shownTime(author, received int64) int64 {
	if received <= 0 {
		return author
	}
	return min(author, received+displaySkew.Milliseconds())
}

// received is when this node first held envelope id, or 0 if unknown.
func (n *Node) received(ctx context.Context, id wire.ID) int64 {
	r, err := n.st.Received(ctx, id)
	if err != nil {
		return 0
	}
	return r
}
