package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Bodies of disclosed room ops.
//
// A node that is not in a room purges the room's old ciphertext like any
// other content (it cannot tell room ops from messages), and a node that
// joins the workspace later may take tombstones for it from such a peer.
// Added to the room afterwards, it is disclosed the room's ops
// (node/disclose.go) but holds some of them as tombstones only: it could
// not learn who is in the room. So it asks peers for those envelopes by ID;
// members keep every room op they can read (node/retention.go). A body is
// taken only if it hashes to an ID asked for, and it goes through the one
// ingest pipeline, which puts it back in its tombstone's place (apply).
const bodiesProtocol = protocol.ID("/charla/bodies/1")

const (
	bodiesStepTimeout = 30 * time.Second
	bodiesSettle      = 200 * time.Millisecond // a kick comes right after the commit; gather a burst
	bodiesWantMax     = wire.MaxWantIDs * (len(wire.ID{}) + 2)
	bodiesReadIDs     = 16 // envelopes read from the store at a time to answer a Want
)

// handleBodies answers a member's Want with the envelopes it names that
// this node holds with their bytes, in batches ended by an empty one.
func (n *Node) handleBodies(s network.Stream) {
	defer s.Close()
	if !n.hist.isMember(s.Conn().RemotePeer()) || n.hist.removedSelf() {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(bodiesStepTimeout))
	b, err := wire.ReadFrame(s, bodiesWantMax)
	if err != nil {
		s.Reset()
		return
	}
	w, err := wire.DecodeWant(b)
	if err != nil {
		n.hist.count(reasonMalformed)
		s.Reset()
		return
	}
	var batch wire.Batch
	flush := func() error {
		s.SetDeadline(time.Now().Add(bodiesStepTimeout))
		err := wire.WriteFrame(s, batch.Marshal())
		batch.Envelopes = batch.Envelopes[:0]
		return err
	}
	// A few envelopes read at a time: a Want names up to MaxWantIDs of up
	// to MaxEnvelopeBytes each, half a gigabyte read at once.
	for part := range slices.Chunk(w.IDs, bodiesReadIDs) {
		raws, err := n.st.RawsByID(n.ctx, part)
		if err != nil {
			n.log.Warn("bodies: read envelopes", "err", err)
			s.Reset()
			return
		}
		for _, id := range part {
			raw, ok := raws[id]
			if !ok || batch.Add(raw) {
				continue
			}
			if err := flush(); err != nil {
				s.Reset()
				return
			}
			batch.Add(raw) // fits an empty batch: it was stored within MaxEnvelopeBytes
		}
	}
	if batch.Len() > 0 {
		if err := flush(); err != nil {
			s.Reset()
			return
		}
	}
	flush() // the empty batch ends the answer
}

// fetchBodies asks p for the bodies this node wants and ingests what comes.
func (n *Node) fetchBodies(ctx context.Context, p peer.ID) error {
	ids, err := n.st.WantedBodies(ctx, wire.MaxWantIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, bodiesProtocol)
	if err != nil {
		return fmt.Errorf("ask %s for room ops: %w", p, err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(bodiesStepTimeout))
	if err := wire.WriteFrame(s, (&wire.Want{IDs: ids}).Marshal()); err != nil {
		s.Reset()
		return fmt.Errorf("ask %s for room ops: %w", p, err)
	}
	asked := make(map[wire.ID]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	n.hist.want(ids, true)
	defer n.hist.want(ids, false)
	sent := 0
	for {
		s.SetDeadline(time.Now().Add(bodiesStepTimeout))
		b, err := wire.ReadFrame(s, syncFrameMax)
		if err != nil {
			s.Reset()
			return fmt.Errorf("ask %s for room ops: %w", p, err)
		}
		batch, err := wire.DecodeBatch(b)
		if err == nil && len(batch.Tombstones) > 0 {
			err = fmt.Errorf("%d tombstones in an answer of bodies", len(batch.Tombstones))
		}
		if err != nil {
			n.hist.count(reasonMalformed)
			n.dropPeer(p)
			return fmt.Errorf("ask %s for room ops: %w", p, err)
		}
		if batch.Len() == 0 {
			break
		}
		for _, raw := range batch.Envelopes {
			env, _, err := wire.DecodeEnvelope(raw)
			if err != nil || !asked[env.ID()] {
				// Not what was asked, or twice: the peer breaks the protocol.
				n.hist.count(reasonMalformed)
				n.dropPeer(p)
				return fmt.Errorf("ask %s for room ops: it sent an envelope not asked for", p)
			}
			delete(asked, env.ID())
		}
		// Each batch as it comes: memory holds one batch, not the answer.
		if _, err := n.hist.ingestRaw(ctx, batch.Envelopes); err != nil {
			return err
		}
		sent += batch.Len()
	}
	if sent > 0 {
		n.log.Info("bodies of room ops held as tombstones taken in", "peer", p, "sent", sent)
	}
	return nil
}

// want marks ids as asked for (or no longer), so check lets them past its
// duplicate lookup. Marks are counted: two fetches may ask for one ID.
func (h *history) want(ids []wire.ID, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wanted == nil {
		h.wanted = map[wire.ID]int{}
	}
	for _, id := range ids {
		if on {
			h.wanted[id]++
		} else if h.wanted[id]--; h.wanted[id] <= 0 {
			delete(h.wanted, id)
		}
	}
}

// kickBodies asks the bodies loop to look for wanted bodies soon.
func (n *Node) kickBodies() {
	select {
	case n.bodiesKick <- struct{}{}:
	default:
	}
}

// bodiesLoop, when a share disclosed room ops, asks connected members in
// turn for those held only as tombstones. Each pull asks its peer too
// (pullAsync), so a member met later fills what is still missing.
func (n *Node) bodiesLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.bodiesKick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bodiesSettle):
		}
		for _, p := range n.connectedMembers() {
			if err := n.fetchBodies(ctx, p); err != nil && ctx.Err() == nil {
				n.log.Debug("bodies", "peer", p, "err", err)
			}
			if ids, err := n.st.WantedBodies(ctx, 1); err != nil || len(ids) == 0 {
				break
			}
		}
	}
}
