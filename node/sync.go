package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// syncProtocol pulls what a peer holds and we lack. The puller sends its
// vector; the server answers with batches of envelopes above it, roster ops
// first, then key shares, then content, each oldest first, and ends with an
// empty batch. Both sides pull, so one connection fills both. What the
// server holds only as a tombstone (retention purged it) travels as one, so
// the puller's feed gets past it (node/retention.go).
const syncProtocol = protocol.ID("/charla/sync/1")

// Bounds of one sync exchange.
const (
	syncFrameMax     = wire.MaxBatchBytes
	syncVectorMax    = wire.MaxVectorBytes
	syncMaxPerPull   = 20000 // envelopes per pull; the next pull continues
	syncStepTimeout  = 30 * time.Second
	syncPeriod       = 30 * time.Second
	syncGapDebounce  = 2 * time.Second // gossip fills most gaps of a stream within this; pulls re-send what is held above a gap
	syncPerAuthorCap = 5000
	gossipSettle     = time.Second
	syncMaxForks     = 1000
	syncForkWindow   = syncPerAuthorCap // seqs below a puller's head sent again when it is on another branch
	syncListWorkers  = 4                // authors listed at once by a sync server (the store has 4 read connections)
)

// errMalformedPull is a pull's opening frame that arrived whole and did not
// decode: counted, unlike a stream cut short.
var errMalformedPull = errors.New("malformed")

// readPullOpening reads what a puller opens a sync with (and a removed node
// its removal notice): its vector, then what it holds above its heads.
func readPullOpening(r io.Reader) (*wire.Vector, *wire.Held, error) {
	vb, err := wire.ReadFrame(r, syncVectorMax)
	if err != nil {
		return nil, nil, fmt.Errorf("read vector: %w", err)
	}
	v, err := wire.DecodeVector(vb)
	if err != nil {
		return nil, nil, fmt.Errorf("read vector: %w: %w", errMalformedPull, err)
	}
	hb, err := wire.ReadFrame(r, wire.MaxVectorBytes+wire.MaxHeldSeqs*10)
	if err != nil {
		return nil, nil, fmt.Errorf("read held: %w", err)
	}
	held, err := wire.DecodeHeld(hb)
	if err != nil {
		return nil, nil, fmt.Errorf("read held: %w: %w", errMalformedPull, err)
	}
	return v, held, nil
}

// handleSync serves a pull from a member.
func (n *Node) handleSync(s network.Stream) {
	defer s.Close()
	if !n.hist.isMember(s.Conn().RemotePeer()) || n.hist.removedSelf() {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	v, held, err := readPullOpening(s)
	if err != nil {
		if errors.Is(err, errMalformedPull) {
			n.hist.count(reasonMalformed)
		}
		s.Reset()
		return
	}
	n.log.Debug("sync served", "peer", s.Conn().RemotePeer(), "theirs", len(v.Entries))
	// The puller may hold what we lack (a publish before the mesh formed
	// reached only one side): pull it back if gossip does not bring it.
	if ours, _, err := n.vectorOf(n.ctx); err == nil {
		n.claimAhead(ours.Entries, v.Entries, s.Conn().RemotePeer())
	}
	for _, e := range v.Entries {
		if string(e.Author) == string(n.hist.self) {
			n.ack(n.ctx, e)
		}
	}
	envs, err := n.missingHeaders(n.ctx, v, held)
	if err != nil {
		n.log.Warn("sync: list envelopes", "err", err)
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	if err := wire.WriteFrame(s, (&wire.SyncOffer{Total: uint64(len(envs))}).Marshal()); err != nil {
		s.Reset()
		return
	}
	var batch wire.Batch
	flush := func() error {
		s.SetDeadline(time.Now().Add(syncStepTimeout))
		err := wire.WriteFrame(s, batch.Marshal())
		batch.Envelopes, batch.Tombstones = batch.Envelopes[:0], batch.Tombstones[:0]
		return err
	}
	for chunk := range slices.Chunk(envs, wire.MaxBatchEnvelopes) {
		raws, err := n.readChunk(chunk)
		if err != nil {
			n.log.Warn("sync: read envelopes", "err", err)
			s.Reset()
			return
		}
		for _, e := range chunk {
			if e.Raw == nil {
				raw, ok := raws[e.ID]
				if !ok {
					continue // gone since it was listed (a removal cut, a fork that became canonical)
				}
				e.Raw = raw // nil: a tombstone
			}
			add := func() bool {
				if e.Raw == nil {
					return batch.AddTombstone(tombstoneOf(e))
				}
				return batch.Add(e.Raw)
			}
			if add() {
				continue
			}
			if err := flush(); err != nil {
				s.Reset()
				return
			}
			if !add() {
				n.log.Warn("sync: envelope does not fit a batch", "id", e.ID)
			}
		}
	}
	if batch.Len() > 0 {
		if err := flush(); err != nil {
			s.Reset()
			return
		}
	}
	flush() // the empty batch ends the exchange
}

// readChunk reads the envelopes of chunk listed by header, by ID: per
// author one read of the seqs the chunk's canonical envelopes span, and the
// chunk's forks by ID. A tombstone's entry is nil; an envelope no longer
// held has none.
func (n *Node) readChunk(chunk []store.Envelope) (map[wire.ID][]byte, error) {
	type span struct{ lo, hi uint64 }
	spans := map[string]span{}
	var forks []wire.ID
	for _, e := range chunk {
		if e.Raw != nil {
			continue
		}
		if e.Fork {
			// Not in the span: a fork far below the canonical envelopes
			// of its author in this chunk would widen the read to seqs
			// the chunk does not send.
			forks = append(forks, e.ID)
			continue
		}
		sp, ok := spans[string(e.Author)]
		if !ok {
			sp = span{e.Seq, e.Seq}
		}
		sp.lo, sp.hi = min(sp.lo, e.Seq), max(sp.hi, e.Seq)
		spans[string(e.Author)] = sp
	}
	raws := make(map[wire.ID][]byte, len(chunk))
	for a, sp := range spans {
		if err := n.st.Raws(n.ctx, []byte(a), sp.lo, sp.hi, raws); err != nil {
			return nil, err
		}
	}
	if err := n.st.ForkRaws(n.ctx, forks, raws); err != nil {
		return nil, err
	}
	return raws, nil
}

// missing lists what this node holds above the puller's vector, in the
// order DESIGN.md gives for sync, with every envelope's bytes: for a join's
// welcome and tests, not for a sync served (missingHeaders).
func (n *Node) missing(ctx context.Context, v *wire.Vector, held *wire.Held) ([]store.Envelope, error) {
	envs, err := n.listMissing(ctx, v, held, n.st.EnvelopesAfter)
	if err != nil {
		return nil, err
	}
	var forks []wire.ID
	for _, e := range envs {
		if e.Fork {
			forks = append(forks, e.ID)
		}
	}
	if len(forks) == 0 {
		return envs, nil
	}
	raws := make(map[wire.ID][]byte, len(forks))
	if err := n.st.ForkRaws(ctx, forks, raws); err != nil {
		return nil, err
	}
	for i := range envs {
		if envs[i].Fork {
			envs[i].Raw = raws[envs[i].ID]
		}
	}
	// A fork gone since it was listed (it became canonical, or was purged) has no bytes.
	return slices.DeleteFunc(envs, func(e store.Envelope) bool { return e.Fork && e.Raw == nil }), nil
}

// missingHeaders is missing with Raw left nil: a sync server reads the
// envelopes, forks included, a batch at a time as it sends (readChunk), so
// memory holds one batch rather than the whole pull (up to syncMaxPerPull
// envelopes and syncMaxForks forks of up to 512 KiB).
func (n *Node) missingHeaders(ctx context.Context, v *wire.Vector, held *wire.Held) ([]store.Envelope, error) {
	return n.listMissing(ctx, v, held, n.st.HeadersAfter)
}

func (n *Node) listMissing(ctx context.Context, v *wire.Vector, held *wire.Held,
	after func(ctx context.Context, author []byte, seq uint64, limit int) ([]store.Envelope, error)) ([]store.Envelope, error) {
	theirs := make(map[string]wire.VectorEntry, len(v.Entries))
	for _, e := range v.Entries {
		theirs[string(e.Author)] = e
	}
	has := map[string]map[uint64]bool{}
	if held != nil {
		for _, e := range held.Entries {
			m := make(map[uint64]bool, len(e.Seqs))
			for _, s := range e.Seqs {
				m[s] = true
			}
			has[string(e.Author)] = m
		}
	}
	heads, err := n.st.Heads(ctx)
	if err != nil {
		return nil, err
	}
	forks, err := n.st.ForkHeaders(ctx)
	if err != nil {
		return nil, err
	}
	forked := make(map[wire.ID]bool, len(forks))
	for _, f := range forks {
		forked[f.ID] = true
	}
	var out []store.Envelope
	// Authors are listed a few at a time in parallel: listing is CPU work
	// in the pure-Go SQLite (~10 µs a header), the puller waits for all of
	// it before its first batch, and the puller's cores are idle meanwhile.
	// Each wave is taken in heads order, so the list is the one a serial
	// walk makes, and at most a wave's worth is listed past the cap.
	wave := min(runtime.GOMAXPROCS(0), syncListWorkers)
	lists := make([][]store.Envelope, wave)
	errs := make([]error, wave)
	for lo := 0; lo < len(heads) && len(out) < syncMaxPerPull; lo += wave {
		hs := heads[lo:min(lo+wave, len(heads))]
		listOne := func(i int) {
			lists[i], errs[i] = n.listAuthor(ctx, hs[i].Author, theirs[string(hs[i].Author)], forked, after)
		}
		if len(hs) == 1 {
			listOne(0)
		} else {
			var wg sync.WaitGroup
			for i := range hs {
				wg.Go(func() { listOne(i) })
			}
			wg.Wait()
		}
		for i, h := range hs {
			if len(out) >= syncMaxPerPull {
				break
			}
			if errs[i] != nil {
				return nil, errs[i]
			}
			for _, e := range lists[i] {
				if !has[string(h.Author)][e.Seq] { // what the puller holds above a gap is not sent again
					out = append(out, e)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Class != b.Class {
			return classRank(a.Class) < classRank(b.Class)
		}
		if a.Lamport != b.Lamport {
			return a.Lamport < b.Lamport
		}
		if c := bytes.Compare(a.Author, b.Author); c != 0 {
			return c < 0
		}
		return a.Seq < b.Seq
	})
	if len(out) > syncMaxPerPull {
		out = out[:syncMaxPerPull]
	}
	// Forks are offered too, after the rest, so every node sees both
	// branches and picks the same canonical one. Listed by header: the
	// caller reads their bytes by ID.
	for i, f := range forks {
		if i == syncMaxForks {
			break
		}
		out = append(out, store.Envelope{Author: f.Author, Seq: f.Seq, ID: f.ID, Fork: true})
	}
	return out, nil
}

// listAuthor lists what this node holds of author's feed above the
// puller's head theirs. A puller on another branch of the feed (its head's
// ID is not ours at that seq, or is one we hold as a fork) lacks our branch
// from below its head, where the feed forked: it is listed from up to
// syncForkWindow seqs below, so the puller sees both branches and keeps the
// same canonical one as we do. Listing from its seq alone, a puller on the
// losing branch whose head is as high as ours would never get ours.
func (n *Node) listAuthor(ctx context.Context, author []byte, theirs wire.VectorEntry, forked map[wire.ID]bool,
	after func(ctx context.Context, author []byte, seq uint64, limit int) ([]store.Envelope, error)) ([]store.Envelope, error) {
	if theirs.Seq == 0 {
		return after(ctx, author, 0, syncPerAuthorCap)
	}
	// One more than asked for, from the puller's head: whether it is ours.
	l, err := after(ctx, author, theirs.Seq-1, syncPerAuthorCap+1)
	if err != nil {
		return nil, err
	}
	ours := len(l) > 0 && l[0].Seq == theirs.Seq
	if !forked[theirs.ID] && (!ours || l[0].ID == theirs.ID) {
		if ours {
			l = l[1:]
		}
		return l, nil
	}
	from := theirs.Seq - min(theirs.Seq, syncForkWindow)
	return after(ctx, author, from, int(theirs.Seq-from)+syncPerAuthorCap)
}

// pull asks p for everything this node lacks and ingests it.
func (n *Node) pull(ctx context.Context, p peer.ID) (int, error) {
	if n.hist.removedSelf() {
		return 0, ErrRemoved
	}
	if !n.hist.isMember(p) {
		// A removed member may be connected, to be told of its removal
		// (node/removal.go): it is sent nothing, not even a vector.
		return 0, fmt.Errorf("sync with %s: not a member", p)
	}
	if !n.syncing.begin(p) {
		return 0, nil
	}
	defer func() {
		if n.syncing.end(p) {
			n.pullAsync(p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, syncProtocol)
	if err != nil {
		return 0, fmt.Errorf("sync with %s: %w", p, err)
	}
	defer s.Close()
	heads, err := n.st.Heads(ctx)
	if err != nil {
		s.Reset()
		return 0, err
	}
	v := wire.Vector{}
	for _, h := range heads {
		v.Entries = append(v.Entries, wire.VectorEntry{Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	ownBefore := ownSeq(heads, n.hist.self)
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	if err := wire.WriteFrame(s, v.Marshal()); err != nil {
		s.Reset()
		return 0, fmt.Errorf("sync with %s: send vector: %w", p, err)
	}
	above, err := n.st.HeldAboveHeads(ctx, wire.MaxHeldSeqs)
	if err != nil {
		s.Reset()
		return 0, err
	}
	held := heldOf(above)
	if err := wire.WriteFrame(s, held.Marshal()); err != nil {
		s.Reset()
		return 0, fmt.Errorf("sync with %s: send held: %w", p, err)
	}
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	ob, err := wire.ReadFrame(s, 64)
	if err != nil {
		s.Reset()
		return 0, fmt.Errorf("sync with %s: read offer: %w", p, err)
	}
	offer, err := wire.DecodeSyncOffer(ob)
	if err != nil {
		n.hist.count(reasonMalformed)
		n.dropPeer(p)
		return 0, fmt.Errorf("sync with %s: %w", p, err)
	}
	n.prog.start(p, n.nameOf(p), int64(offer.Total))
	defer n.prog.done(p)

	// Batches are read and checked (decode, verify, decrypt) on one
	// goroutine and written on this one, so batch N+1 is checked while
	// batch N is written; batches checked while a write ran go into the
	// next transaction together. The channel holds at most syncAhead.
	ctx, stop := context.WithCancel(ctx)
	checked := make(chan checkedBatch, syncAhead)
	var readErr error // set before checked is closed
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(checked)
		readErr = n.readBatches(ctx, s, p, checked)
	}()
	defer func() {
		stop()
		select {
		case <-done:
		default:
			s.Reset() // the writer failed: unblock a read in progress
		}
		<-done
	}()
	total, received := 0, 0
	for cb := range checked {
		// Batches that wait join this one, until one carries tombstones:
		// those go after every envelope before them, as they came. A
		// tombstone is judged by the policy and the chain the envelopes may
		// have just brought (roster ops come first in sync, the policy
		// among them); content above it waits above a gap for a moment.
		size := len(cb.rs) + len(cb.tombs)
		for len(cb.tombs) == 0 && len(cb.rs) < syncTxEnvelopes {
			more, ok := pollBatch(checked)
			if !ok {
				break
			}
			cb.rs, cb.tombs = append(cb.rs, more.rs...), more.tombs
			size += len(more.rs) + len(more.tombs)
		}
		got, err := n.hist.ingestChecked(ctx, cb.rs)
		if err == nil {
			var more int
			more, err = n.hist.ingestTombstones(ctx, cb.tombs)
			got += more
		}
		total += got
		received += size
		if ev := n.prog.add(p, int64(size)); ev != nil {
			n.emitEvent(Event{Type: "sync", Sync: ev})
		}
		if err != nil {
			return total, err
		}
	}
	if readErr != nil {
		return total, readErr
	}
	// A server cuts its answer at syncMaxPerPull envelopes, and each feed at
	// syncPerAuthorCap: this node's own feed may go on past what came, and
	// its first send must not reuse a seq (awaitOwnHead). Such a pull is
	// followed by another at once while it brings something new.
	heads, err = n.st.Heads(ctx)
	if err != nil {
		return total, err
	}
	if received >= syncMaxPerPull || ownSeq(heads, n.hist.self)-ownBefore >= syncPerAuthorCap {
		if total > 0 {
			n.syncing.again(p)
		}
		return total, nil
	}
	n.headOnce.Do(func() { close(n.headKnown) })
	return total, nil
}

// heldOf is the Held frame of what a node holds above its heads.
func heldOf(above map[string][]uint64) wire.Held {
	var held wire.Held
	for a, seqs := range above {
		held.Entries = append(held.Entries, wire.HeldEntry{Author: []byte(a), Seqs: seqs})
	}
	sort.Slice(held.Entries, func(i, j int) bool { return bytes.Compare(held.Entries[i].Author, held.Entries[j].Author) < 0 })
	return held
}

// ownSeq is the seq of author's head in heads, 0 if none.
func ownSeq(heads []store.Head, author []byte) uint64 {
	for _, h := range heads {
		if bytes.Equal(h.Author, author) {
			return h.Seq
		}
	}
	return 0
}

// Bounds of the pull pipeline.
const (
	syncAhead       = 2    // checked batches waiting for the writer
	syncTxEnvelopes = 1024 // envelopes the writer puts in one transaction when batches wait
)

// checkedBatch is a sync batch whose envelopes were checked.
type checkedBatch struct {
	rs    []checkResult
	tombs []wire.Tombstone
}

// pollBatch takes a checked batch if one waits.
func pollBatch(ch <-chan checkedBatch) (checkedBatch, bool) {
	select {
	case cb, ok := <-ch:
		return cb, ok
	default:
		return checkedBatch{}, false
	}
}

// readBatches reads p's batches from s and checks each, until the empty
// batch that ends the exchange (nil) or an error. A peer that stalls or
// sends garbage is disconnected.
func (n *Node) readBatches(ctx context.Context, s network.Stream, p peer.ID, out chan<- checkedBatch) error {
	for {
		s.SetDeadline(time.Now().Add(syncStepTimeout))
		b, err := wire.ReadFrame(s, syncFrameMax)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.Reset()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n.dropPeer(p) // a peer that stalls a sync is disconnected; another is asked
			}
			return fmt.Errorf("sync with %s: read batch: %w", p, err)
		}
		batch, err := wire.DecodeBatch(b)
		if err != nil {
			n.hist.count(reasonMalformed)
			n.dropPeer(p) // a peer that sends garbage is disconnected
			return fmt.Errorf("sync with %s: %w", p, err)
		}
		if batch.Len() == 0 {
			return nil
		}
		cb := checkedBatch{tombs: batch.Tombstones}
		if len(batch.Envelopes) > 0 {
			cb.rs = n.hist.checkAll(ctx, batch.Envelopes)
		}
		select {
		case out <- cb:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncLoop pulls from a random connected member every syncPeriod, and from
// all of them soon after a gap was seen.
func (n *Node) syncLoop(ctx context.Context) {
	t := time.NewTicker(syncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ps := n.connectedMembers(); len(ps) > 0 {
				n.pullAsync(anyOf(ps))
			}
		case <-n.lag.kick:
			select {
			case <-time.After(syncGapDebounce):
			case <-ctx.Done():
				return
			}
			for _, p := range n.lagging(ctx) {
				n.pullAsync(p)
			}
		}
	}
}

// pullSoon pulls from a peer that just joined the gossip topic, once its
// gossip route is surely up: publications of the moments before reached it
// by no route, and this pull (or the one it triggers back) brings them.
func (n *Node) pullSoon(p peer.ID) {
	n.work.spawn(func() {
		select {
		case <-n.ctx.Done():
		case <-time.After(gossipSettle):
			n.pullAsync(p)
		}
	})
}

// dropPeer closes the connections of a peer that broke the sync protocol;
// the next pull goes to another member.
func (n *Node) dropPeer(p peer.ID) {
	n.host.Network().ClosePeer(p)
	for _, q := range n.connectedMembers() {
		if q != p {
			n.pullAsync(q)
			return
		}
	}
}

func (n *Node) nameOf(p peer.ID) string {
	m, _ := n.hist.member([]byte(p))
	return m.name
}

// progress tracks catch-ups under way, for status and progress events.
type progress struct {
	mu sync.Mutex // guards m
	m  map[peer.ID]*SyncProgress
}

func (g *progress) start(p peer.ID, name string, total int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[peer.ID]*SyncProgress{}
	}
	g.m[p] = &SyncProgress{Peer: p.String(), Name: name, Remaining: total}
}

// add counts n received envelopes and returns a copy for an event.
func (g *progress) add(p peer.ID, n int64) *SyncProgress {
	g.mu.Lock()
	defer g.mu.Unlock()
	sp := g.m[p]
	if sp == nil {
		return nil
	}
	sp.Received += n
	sp.Remaining = max(sp.Remaining-n, 0)
	c := *sp
	return &c
}

func (g *progress) done(p peer.ID) {
	g.mu.Lock()
	delete(g.m, p)
	g.mu.Unlock()
}

func (g *progress) snapshot() []SyncProgress {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []SyncProgress{}
	for _, sp := range g.m {
		out = append(out, *sp)
	}
	return out
}

func (n *Node) pullAsync(p peer.ID) {
	n.work.spawn(func() {
		got, err := n.pull(n.ctx, p)
		if err != nil && n.ctx.Err() == nil {
			n.log.Debug("sync failed", "peer", p, "err", err)
			return
		} else if got > 0 {
			n.log.Debug("synced", "peer", p, "received", got)
		}
		// The pull may have brought tombstones of disclosed room ops, or p
		// may be the member that holds them (node/bodies.go).
		if err := n.fetchBodies(n.ctx, p); err != nil && n.ctx.Err() == nil {
			n.log.Debug("bodies", "peer", p, "err", err)
		}
	})
}
