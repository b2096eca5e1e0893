package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Telling a removed member it was removed.
//
// Members refuse a removed peer in every protocol, so it would learn of its
// removal only from a sync that happened to fall between the removal and
// the moment members cut it off; a laptop removed while away never would.
// So the gater lets a removed member's connection through (it holds the
// network key anyway), every handler and gossip still refuse it, and the
// member it reached opens removalProtocol to it and sends the roster ops
// that prove the removal, then closes the connection.
//
// The member opens the stream; the removed node answers first with its
// Vector and Held frames (as a sync pull sends them), so only what it lacks
// is sent. The member then sends batches of roster envelopes and an empty
// batch, and closes its side; the removed node runs them through the ingest
// pipeline, which sets it removed, and closes. What is sent is the roster
// ops that took effect up to and including the removal, in the roster's
// total order (so the removed node can judge the removal's author as every
// member did), that the removed node does not hold: no content, no key
// share, no roster op that came after its removal.
//
// A removed node is told at most once per removalNoticeEvery by each
// member; a connection that comes sooner is closed at once.
const removalProtocol = protocol.ID("/charla/removal/1")

// Bounds of a removal notice.
const (
	removalNoticeTimeout = 20 * time.Second // the whole exchange, then the connection is closed
	removalNoticeEvery   = 10 * time.Second
	removalMaxOps        = 4096 // roster envelopes in one notice; the next notice sends the rest
)

// notices remembers when each removed peer was last told, bounded by the
// roster: only removed members get past the gater.
type notices struct {
	mu   sync.Mutex // guards last
	last map[peer.ID]time.Time
}

// due reports whether p may be told now, and if so marks it told.
func (ns *notices) due(p peer.ID, now time.Time) bool {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.last == nil {
		ns.last = map[peer.ID]time.Time{}
	}
	if t, ok := ns.last[p]; ok && now.Sub(t) < removalNoticeEvery {
		return false
	}
	for q, t := range ns.last {
		if now.Sub(t) >= removalNoticeEvery {
			delete(ns.last, q)
		}
	}
	ns.last[p] = now
	return true
}

// removedConnected is called for a connection of a peer that is no current
// member: a removed one (the gater lets no one else through). It is told of
// its removal and cut off; nothing else is done with the connection.
func (n *Node) removedConnected(c network.Conn) {
	p := c.RemotePeer()
	if !n.notices.due(p, time.Now()) {
		c.Close()
		return
	}
	n.work.spawn(func() { n.tellRemoved(p) })
}

// tellRemoved sends p the proof of its removal, then closes its
// connections whatever came of it.
func (n *Node) tellRemoved(p peer.ID) {
	defer n.host.Network().ClosePeer(p)
	ctx, cancel := context.WithTimeout(n.ctx, removalNoticeTimeout)
	defer cancel()
	sent, err := n.sendRemoval(ctx, p)
	if err != nil {
		n.log.Debug("removal notice", "peer", p, "err", err)
		return
	}
	n.log.Info("told a removed member of its removal", "peer", p, "roster_ops", sent)
}

func (n *Node) sendRemoval(ctx context.Context, p peer.ID) (int, error) {
	s, err := n.host.NewStream(network.WithNoDial(ctx, "removal notice"), p, removalProtocol)
	if err != nil {
		return 0, fmt.Errorf("open removal notice: %w", err)
	}
	defer s.Close()
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	v, held, err := readPullOpening(s)
	if err != nil {
		s.Reset()
		return 0, err
	}
	raws, err := n.removalProof(ctx, p, v, held)
	if err != nil {
		s.Reset()
		return 0, err
	}
	var batch wire.Batch
	for _, raw := range raws {
		if batch.Add(raw) {
			continue
		}
		if err := wire.WriteFrame(s, batch.Marshal()); err != nil {
			s.Reset()
			return 0, fmt.Errorf("send roster ops: %w", err)
		}
		batch.Envelopes = batch.Envelopes[:0]
		batch.Add(raw) // fits: one envelope is under MaxBatchBytes
	}
	if batch.Len() > 0 {
		if err := wire.WriteFrame(s, batch.Marshal()); err != nil {
			s.Reset()
			return 0, fmt.Errorf("send roster ops: %w", err)
		}
	}
	if err := wire.WriteFrame(s, (&wire.Batch{}).Marshal()); err != nil {
		s.Reset()
		return 0, fmt.Errorf("send roster ops: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return 0, fmt.Errorf("send roster ops: %w", err)
	}
	// Wait for the removed node to close its side, once it has taken the
	// ops in: closing the connection first could lose them on the way.
	io.Copy(io.Discard, io.LimitReader(s, 1))
	return len(raws), nil
}

// removalProof lists the roster envelopes that prove p's removal to a node
// holding v and held: every roster op that took effect up to and including
// the removal, in the roster's order, less what it holds, at most
// removalMaxOps (the removal always among them).
func (n *Node) removalProof(ctx context.Context, p peer.ID, v *wire.Vector, held *wire.Held) ([][]byte, error) {
	envs, err := n.st.RosterEnvelopes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list roster ops: %w", err)
	}
	ops := n.hist.decodeRoster(envs)
	n.hist.mu.Lock()
	valid := n.hist.validOps // replaced whole by each computation, never changed in place
	n.hist.mu.Unlock()
	end := -1
	for i, o := range ops {
		if valid[o.id] && o.op != nil && o.op.Kind == wire.RosterRemove && bytes.Equal(o.op.Target, []byte(p)) {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("no removal of %s in the roster", p)
	}
	theirs := make(map[string]uint64, len(v.Entries))
	for _, e := range v.Entries {
		theirs[string(e.Author)] = e.Seq
	}
	has := map[string]map[uint64]bool{}
	for _, e := range held.Entries {
		m := make(map[uint64]bool, len(e.Seqs))
		for _, s := range e.Seqs {
			m[s] = true
		}
		has[string(e.Author)] = m
	}
	lacks := func(e store.Envelope) bool {
		return e.Seq > theirs[string(e.Author)] && !has[string(e.Author)][e.Seq]
	}
	var out [][]byte
	for _, e := range envs[:end] {
		if len(out) == removalMaxOps-1 {
			break // the removal below still goes; what is left goes in the next notice
		}
		if valid[e.ID] && lacks(e) {
			out = append(out, e.Raw)
		}
	}
	return append(out, envs[end].Raw), nil
}

// handleRemoval takes a member's proof that this node was removed. Only
// roster envelopes are taken, at most removalMaxOps, and they go through
// the ingest pipeline like any other: the node sets itself removed only if
// the removal holds by its own roster.
func (n *Node) handleRemoval(s network.Stream) {
	defer s.Close()
	p := s.Conn().RemotePeer()
	if !n.hist.isMember(p) || n.hist.removedSelf() {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(removalNoticeTimeout))
	ctx, cancel := context.WithTimeout(n.ctx, removalNoticeTimeout)
	defer cancel()
	heads, err := n.st.Heads(ctx)
	if err != nil {
		s.Reset()
		return
	}
	v := wire.Vector{}
	for _, h := range heads {
		v.Entries = append(v.Entries, wire.VectorEntry{Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	above, err := n.st.HeldAboveHeads(ctx, wire.MaxHeldSeqs)
	if err != nil {
		s.Reset()
		return
	}
	held := heldOf(above)
	if err := wire.WriteFrame(s, v.Marshal()); err != nil {
		s.Reset()
		return
	}
	if err := wire.WriteFrame(s, held.Marshal()); err != nil {
		s.Reset()
		return
	}
	got := 0
	for {
		b, err := wire.ReadFrame(s, syncFrameMax)
		if err != nil {
			s.Reset()
			return
		}
		batch, err := wire.DecodeBatch(b)
		if err == nil {
			err = onlyRoster(batch)
		}
		if err == nil && got+batch.Len() > removalMaxOps {
			err = fmt.Errorf("over %d roster ops", removalMaxOps)
		}
		if err != nil {
			n.hist.count(reasonMalformed)
			n.log.Debug("removal notice refused", "peer", p, "err", err)
			s.Reset()
			return
		}
		if batch.Len() == 0 {
			break
		}
		got += batch.Len()
		if _, err := n.hist.ingestRaw(ctx, batch.Envelopes); err != nil {
			n.log.Warn("removal notice: store roster ops", "peer", p, "err", err)
			s.Reset()
			return
		}
	}
	if n.hist.removedSelf() {
		n.log.Warn("a member showed this node its removal from the workspace", "peer", p)
	}
}

// onlyRoster refuses a batch of a removal notice that carries anything but
// roster envelopes.
func onlyRoster(b *wire.Batch) error {
	if len(b.Tombstones) > 0 {
		return fmt.Errorf("%d tombstones in a removal notice", len(b.Tombstones))
	}
	for _, raw := range b.Envelopes {
		_, hdr, err := wire.DecodeEnvelope(raw)
		if err != nil {
			return err
		}
		if hdr.Class != wire.ClassRoster {
			return fmt.Errorf("a %s envelope in a removal notice", hdr.Class)
		}
	}
	return nil
}
