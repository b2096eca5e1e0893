package node

import (
	"context"
	"crypto/sha256"
	"fmt"
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

func envelopeTopic(ws wire.ID) string { return "/charla/" + ws.String() + "/envelopes/1" }

// gossipParams returns GossipSub parameters tuned for a small office mesh.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi = gossipD, gossipDlo, gossipDhi
	p.Dout = 1 // pubsub requires Dout < D/2
	p.HeartbeatInterval = 700 * time.Millisecond
	return p
}

// dropCounter counts what GossipSub dropped, by reason, so losses are seen.
type dropCounter struct {
	rpc           atomic.Int64 // outbound RPCs dropped on a full peer queue
	undeliverable atomic.Int64 // messages our subscription was too slow for
	rejected      atomic.Int64
}

var _ pubsub.RawTracer = (*dropCounter)(nil)

func (d *dropCounter) AddPeer(peer.ID, any)                                 {}
func (d *dropCounter) RemovePeer(peer.ID)                                   {}
func (d *dropCounter) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (d *dropCounter) OnClosedOutboundStream(peer.ID)                       {}
func (d *dropCounter) Join(string)                                          {}
func (d *dropCounter) Leave(string)                                         {}
func (d *dropCounter) Graft(peer.ID, string)                                {}
func (d *dropCounter) Prune(peer.ID, string)                                {}
func (d *dropCounter) ValidateMessage(*pubsub.Message)                      {}
func (d *dropCounter) DeliverMessage(*pubsub.Message)                       {}
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
}

func newGossip(ctx context.Context, h host.Host, hist *history) (*gossip, error) {
	drops := &dropCounter{}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithGossipSubParams(gossipParams()),
		// Envelopes carry their own signatures; pubsub's would be a second one.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			id := sha256.Sum256(signedOf(m.Data))
			return string(id[:])
		}),
		pubsub.WithPeerOutboundQueueSize(gossipQueue),
		pubsub.WithValidateQueueSize(gossipQueue),
		pubsub.WithMaxMessageSize(gossipMaxMessage),
		pubsub.WithRawTracer(drops),
		pubsub.WithFloodPublish(false),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return hist.isMember(p) }),
	)
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	topicName := envelopeTopic(hist.ws)
	self := h.ID()
	err = ps.RegisterTopicValidator(topicName, func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			return pubsub.ValidationAccept // our own publication
		}
		c, out, reason := hist.check(ctx, m.Data)
		switch out {
		case outAccept:
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
	return &gossip{ps: ps, topic: topic, sub: sub, drops: drops, events: events}, nil
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

// signedOf returns the signed bytes of an encoded envelope, so the pubsub
// message ID is the envelope ID; on garbage it hashes the whole input.
func signedOf(data []byte) []byte {
	env, _, err := wire.DecodeEnvelope(data)
	if err != nil {
		return data
	}
	return env.Signed
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
