package node

import (
	"context"
	"sync"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// Group commit of this node's own content. A send is acknowledged only once
// it is durable, and the fsync of a commit costs more than everything else a
// send does; so sends that arrive while a commit is under way wait for it and
// then go out together in one transaction, one fsync. Alone, a send commits
// at once as before; under load (several tabs, a file and its message, the
// CLI and the UI at once) the disk no longer sets the pace.

// maxGroup bounds one group, so a long queue never makes one transaction hold
// the writer for long.
const maxGroup = 256

// groupReq is one send waiting for a group commit.
type groupReq struct {
	key   wire.ID
	build func(seq uint64) (wire.ID, []byte, error)
	done  chan groupResult // buffered: the committer never blocks on it
}

type groupResult struct {
	c    *checked
	msgs []store.Message
	err  error
	lead bool // no result yet: this request now leads the next group
}

// groupQueue holds the sends waiting while a group commits.
type groupQueue struct {
	mu      sync.Mutex
	waiting []*groupReq
	leading bool // a leader is committing a group or about to
	commits int  // transactions that committed a group, for tests
}

// appendGrouped appends one content envelope through the group commit. The
// first sender with no leader in place leads: it commits every request
// waiting then (its own among them), answers each, and hands the lead to the
// oldest request that arrived meanwhile.
func (h *history) appendGrouped(ctx context.Context, key wire.ID, build func(seq uint64) (wire.ID, []byte, error)) (*checked, []store.Message, error) {
	req := &groupReq{key: key, build: build, done: make(chan groupResult, 1)}
	q := &h.group
	q.mu.Lock()
	q.waiting = append(q.waiting, req)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if !lead {
		// A request in a group gets an answer whatever its context does: its
		// envelope may be durable already, and the caller must know.
		r := <-req.done
		if !r.lead {
			return r.c, r.msgs, r.err
		}
	}
	h.commitGroup(context.WithoutCancel(ctx))
	r := <-req.done
	return r.c, r.msgs, r.err
}

// commitGroup commits the waiting requests (at most maxGroup) and passes the
// lead on, or gives it up when nobody waits.
func (h *history) commitGroup(ctx context.Context) {
	q := &h.group
	q.mu.Lock()
	n := min(len(q.waiting), maxGroup)
	group := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	results := h.appendGroup(ctx, group)
	if results == nil {
		// The group failed as a whole (one bad request, or the store): each
		// commits alone, so each gets its own error and the good ones land.
		results = make([]groupResult, len(group))
		for i, r := range group {
			c, msgs, err := h.appendAlone(ctx, wire.ClassContent, r.key, r.build)
			results[i] = groupResult{c: c, msgs: msgs, err: err}
		}
	}
	for i, r := range group {
		r.done <- results[i]
	}

	q.mu.Lock()
	if len(q.waiting) == 0 {
		q.leading = false
		q.mu.Unlock()
		return
	}
	next := q.waiting[0]
	q.mu.Unlock()
	next.done <- groupResult{lead: true}
}

// appendGroup appends every request of group in one durable transaction; nil
// when the transaction failed, so nothing of it was stored.
func (h *history) appendGroup(ctx context.Context, group []*groupReq) []groupResult {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if h.removedSelf() {
		out := make([]groupResult, len(group))
		for i := range out {
			out[i].err = ErrRemoved
		}
		return out
	}
	out := make([]groupResult, len(group))
	err := h.st.Update(ctx, true, func(tx *store.Tx) error {
		for i, r := range group {
			c, res, err := h.appendIn(ctx, tx, wire.ClassContent, r.key, r.build)
			if err != nil {
				return err
			}
			out[i] = groupResult{c: c, msgs: res.msgs}
		}
		return nil
	})
	if err != nil {
		if len(group) == 1 {
			return []groupResult{{err: err}}
		}
		h.log.Debug("group commit failed; committing one by one", "sends", len(group), "err", err)
		return nil
	}
	h.committed()
	h.group.mu.Lock()
	h.group.commits++
	h.group.mu.Unlock()
	var all []store.Message
	for _, r := range out {
		all = append(all, r.msgs...)
	}
	if len(all) > 0 && h.onMessages != nil {
		h.onMessages(all)
	}
	return out
}
