package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla-im/charla/wire"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Gossip sizing for an office, not a blockchain (FINDINGS.md): a small mesh,
// and queues deep enough that a burst of a few thousand messages is not dropped.
const (
	gossipD           = 4
	gossipDlo         = 3
	gossipDhi         = 5
	gossipQueue       = 4096 // per-peer outbound, validation and subscription queues
	gossipMaxMessage  = 1 << 20
	gossipIngestBatch = 256
)

// reasonRateLimited counts envelopes gossip ignored over the per-author limit.
const reasonRateLimited = "rate-limited"

// Per-author limit on envelopes taken from gossip. A member that publishes
// faster (a modified client, a runaway script) has the excess ignored, not
// rejected: it is neither stored nor forwarded by this node, costs nobody
// score, and reaches everyone later through sync, which pulls in bounded
// batches. The burst covers what an honest node sends at once (a room with
// its key shares, a key rotation after a removal, a pasted list of lines);
// the rate is above what a send sustains through its durable commit (up to
// 82/s in BenchmarkFanout on this machine: at 50/s its last messages came
// by sync, and its p99 went from ~1 s to 4.4 s).
const (
	gossipAuthorRate  = 100  // envelopes per second, sustained
	gossipAuthorBurst = 1000 // envelopes at once
)

// Peer scoring: only P4, invalid messages, is scored. An honest member never
// forwards what the validator rejects (it runs the same checks before it
// forwards), so only a peer that sends malformed, forged or foreign data
// loses score. P4 is the square of a count that decays 10% a second; a peer
// with a negative score is pruned from the mesh at the next heartbeat, and
// past about 20 recent invalid messages it is graylisted (its gossip dropped
// unread) until the count decays. Sync, which does not go through pubsub,
// still delivers its valid envelopes. Time in mesh, delivery rates and IP
// colocation are left out: in a small office mesh, or many nodes behind one
// address, they would mark honest but slow or quiet peers.
const (
	scoreInvalidWeight = -1.0
	scoreInvalidDecay  = 0.9 // per scoreDecayInterval
	scoreDecayInterval = time.Second
	scoreGossip        = -100.0
	scorePublish       = -200.0
	scoreGraylist      = -400.0
	scoreRetain        = 5 * time.Minute // a peer that reconnects keeps its score
	scoreInspectEvery  = time.Second
)

// gossipProtocols are pubsub's default protocols less floodsub.
func gossipProtocols() []protocol.ID {
	return []protocol.ID{pubsub.GossipSubID_v13, pubsub.GossipSubID_v12, pubsub.GossipSubID_v11, pubsub.GossipSubID_v10}
}

// removedList is pubsub's blacklist: the removed members, as the roster
// has it now.
type removedList struct{ hist *history }

var _ pubsub.Blacklist = removedList{}

func (l removedList) Contains(p peer.ID) bool { return l.hist.wasRemoved(p) }

// Add is called by pubsub's BlacklistPeer, which drops the peer's queue
// and state: the roster already says the peer is removed.
func (removedList) Add(peer.ID) bool { return true }

var _ pubsub.SubscriptionFilter = removedList{}

func (removedList) CanSubscribe(string) bool { return true }

// FilterIncomingSubscriptions refuses every subscription of a removed
// member, so it never shows as joined to a topic.
func (l removedList) FilterIncomingSubscriptions(p peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	if l.hist.wasRemoved(p) {
		return nil, fmt.Errorf("%s was removed from the workspace", p)
	}
	return subs, nil
}

func envelopeTopic(ws wire.ID) string { return "/charla/" + ws.String() + "/envelopes/1" }

// gossipParams returns GossipSub parameters tuned for a small office mesh.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi = gossipD, gossipDlo, gossipDhi
	p.Dout = 1 // pubsub requires Dout < D/2
	p.HeartbeatInterval = 700 * time.Millisecond
	return p
}

// scoreParams scores only invalid messages on the envelope topic (see above).
func scoreParams(topic string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{topic: {
			SkipAtomicValidation: true,
			TopicWeight:          1,
			// Unscored (weight 0), but pubsub divides by the quantum.
			TimeInMeshQuantum:              time.Second,
			InvalidMessageDeliveriesWeight: scoreInvalidWeight,
			InvalidMessageDeliveriesDecay:  scoreInvalidDecay,
		}},
		AppSpecificScore: func(peer.ID) float64 { return 0 },
		DecayInterval:    scoreDecayInterval,
		DecayToZero:      0.01,
		RetainScore:      scoreRetain,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:   scoreGossip,
		PublishThreshold:  scorePublish,
		GraylistThreshold: scoreGraylist,
	}
	return params, thresholds
}

// authorLimiter is a token bucket per author. It holds one bucket per
// member that has sent by gossip, so its size is bounded by the roster.
type authorLimiter struct {
	rate, burst float64
	mu          sync.Mutex // guards buckets
	buckets     map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newAuthorLimiter(rate, burst float64) *authorLimiter {
	return &authorLimiter{rate: rate, burst: burst, buckets: map[string]*tokenBucket{}}
}

// allow takes one token from author's bucket, if it has one.
func (l *authorLimiter) allow(author []byte, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[string(author)]
	if b == nil {
		b = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[string(author)] = b
	}
	if now.After(b.last) {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// scores keeps the last peer scores pubsub reported, for status and tests.
type scores struct {
	mu      sync.Mutex // guards last and invalid
	last    map[peer.ID]float64
	invalid map[peer.ID]float64 // decayed count of invalid envelopes, per peer
}

func (s *scores) update(m map[peer.ID]*pubsub.PeerScoreSnapshot) {
	last, invalid := make(map[peer.ID]float64, len(m)), map[peer.ID]float64{}
	for p, snap := range m {
		last[p] = snap.Score
		for _, t := range snap.Topics {
			if t.InvalidMessageDeliveries > 0 {
				invalid[p] += t.InvalidMessageDeliveries
			}
		}
	}
	s.mu.Lock()
	s.last, s.invalid = last, invalid
	s.mu.Unlock()
}

func (s *scores) of(p peer.ID) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.last[p]
	return v, ok
}

// dropCounter counts what GossipSub dropped, by reason, so losses are seen.
type dropCounter struct {
	topic         string       // the envelope topic
	rpc           atomic.Int64 // outbound RPCs dropped on a full peer queue
	undeliverable atomic.Int64 // messages our subscription was too slow for
	rejected      atomic.Int64
	delivered     atomic.Int64 // envelopes from peers that passed validation
}

var _ pubsub.RawTracer = (*dropCounter)(nil)

func (d *dropCounter) AddPeer(peer.ID, any)                     {}
func (d *dropCounter) RemovePeer(peer.ID)                       {}
func (d *dropCounter) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (d *dropCounter) OnClosedOutboundStream(peer.ID)           {}
func (d *dropCounter) Join(string)                              {}
func (d *dropCounter) Leave(string)                             {}
func (d *dropCounter) Graft(peer.ID, string)                    {}
func (d *dropCounter) Prune(peer.ID, string)                    {}
func (d *dropCounter) ValidateMessage(*pubsub.Message)          {}
func (d *dropCounter) DeliverMessage(m *pubsub.Message) {
	if m.GetTopic() == d.topic {
		d.delivered.Add(1)
	}
}
func (d *dropCounter) RejectMessage(*pubsub.Message, string)                { d.rejected.Add(1) }
func (d *dropCounter) DuplicateMessage(*pubsub.Message)                     {}
func (d *dropCounter) ThrottlePeer(peer.ID)                                 {}
func (d *dropCounter) RecvRPC(*pubsub.RPC)                                  {}
func (d *dropCounter) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (d *dropCounter) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (d *dropCounter) DropRPC(*pubsub.RPC, peer.ID)                         { d.rpc.Add(1) }
func (d *dropCounter) UndeliverableMessage(*pubsub.Message)                 { d.undeliverable.Add(1) }

func (d *dropCounter) counts() map[string]int64 {
	return map[string]int64{
		"rpc-queue-full": d.rpc.Load(),
		"slow-reader":    d.undeliverable.Load(),
		"not-accepted":   d.rejected.Load(), // rejected, ignored or throttled by validation
	}
}

// gossip is the node's GossipSub topic for envelopes.
type gossip struct {
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	drops  *dropCounter
	events *pubsub.TopicEventHandler
	scores *scores
}

// newGossip joins the workspace's topic. Its validator reads the store on
// pubsub's goroutines, which nothing else waits for: each run is counted in
// w, so the node's Close waits for it.
func newGossip(ctx context.Context, h host.Host, hist *history, w *work) (*gossip, error) {
	topicName := envelopeTopic(hist.ws)
	drops := &dropCounter{topic: topicName}
	sc := &scores{}
	limit := newAuthorLimiter(gossipAuthorRate, gossipAuthorBurst)
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithPeerScore(scoreParams(topicName)),
		pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(sc.update), scoreInspectEvery),
		// Envelopes carry their own signatures; pubsub's would be a second one.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(gossipID),
		pubsub.WithPeerOutboundQueueSize(gossipQueue),
		pubsub.WithValidateQueueSize(gossipQueue),
		pubsub.WithMaxMessageSize(gossipMaxMessage),
		pubsub.WithRawTracer(drops),
		pubsub.WithFloodPublish(false),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return hist.isMember(p) }),
		// A removed member's connection is let through only to tell it
		// of its removal (node/removal.go): pubsub never takes it as a
		// peer, so it is sent nothing. And no floodsub: a floodsub peer
		// is sent every publication, past the peer filter.
		pubsub.WithBlacklist(removedList{hist}),
		pubsub.WithSubscriptionFilter(removedList{hist}),
		pubsub.WithGossipSubProtocols(gossipProtocols(), pubsub.GossipSubDefaultFeatures),
	)
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	self := h.ID()
	err = ps.RegisterTopicValidator(topicName, func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			return pubsub.ValidationAccept // our own publication
		}
		if !w.enter() {
			return pubsub.ValidationIgnore // the node is closing
		}
		defer w.leave()
		c, out, reason := hist.check(ctx, m.Data)
		switch out {
		case outAccept:
			if !limit.allow(c.hdr.Author, time.Now()) {
				hist.count(reasonRateLimited)
				return pubsub.ValidationIgnore
			}
			hist.noteTime(c.hdr, time.Now())
			m.ValidatorData = c
			return pubsub.ValidationAccept
		case outPending:
			hist.hold(c)
			return pubsub.ValidationIgnore
		case outDuplicate:
			return pubsub.ValidationIgnore
		case outIgnore:
			hist.count(reason)
			return pubsub.ValidationIgnore
		default:
			hist.count(reason)
			return pubsub.ValidationReject
		}
	})
	if err != nil {
		return nil, fmt.Errorf("register validator: %w", err)
	}
	topic, err := ps.Join(topicName)
	if err != nil {
		return nil, fmt.Errorf("join topic: %w", err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(gossipQueue))
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	events, err := topic.EventHandler()
	if err != nil {
		return nil, fmt.Errorf("watch topic: %w", err)
	}
	return &gossip{ps: ps, topic: topic, sub: sub, drops: drops, events: events, scores: sc}, nil
}

// watchJoins calls joined for every peer that starts to listen on the topic.
// What was published before that moment never reached it by gossip, so the
// node pulls from it then; sync on connect alone leaves that window open.
func (g *gossip) watchJoins(ctx context.Context, joined func(peer.ID)) {
	for {
		ev, err := g.events.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type == pubsub.PeerJoin {
			joined(ev.Peer)
		}
	}
}

// gossipID is the pubsub message ID: the hash of the whole encoded envelope,
// signature included, not the envelope ID (the hash of the signed bytes
// alone). pubsub marks an ID seen before the validator runs, so with the
// envelope ID a copy with a broken signature, sent ahead of the real one,
// would have every node drop the real one as a duplicate until sync brought
// it. Honest copies of one envelope are the same bytes (the encoding is
// canonical, and only its author can make a second valid signature), so
// duplicates are still spotted by ID.
func gossipID(m *pb.Message) string {
	id := sha256.Sum256(m.Data)
	return string(id[:])
}

// receive hands gossip messages to the pipeline in batches, one transaction
// per batch, until ctx is done.
func (g *gossip) receive(ctx context.Context, self peer.ID, hist *history) {
	in := make(chan *checked, gossipQueue)
	go func() {
		defer close(in)
		for {
			m, err := g.sub.Next(ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == self {
				continue // already stored by appendLocal
			}
			c, ok := m.ValidatorData.(*checked)
			if !ok {
				continue
			}
			select {
			case in <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for c := range in {
		batch := []*checked{c}
	fill:
		for len(batch) < gossipIngestBatch {
			select {
			case c, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		if _, err := hist.ingest(ctx, batch, false); err != nil && ctx.Err() == nil {
			hist.log.Error("ingest gossip", "err", err, "n", len(batch))
		}
	}
}

func (g *gossip) publish(ctx context.Context, c *checked) error {
	return g.topic.Publish(ctx, c.raw)
}
