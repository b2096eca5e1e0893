package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Heartbeats: a node says it is online and what it holds every
// presenceInterval; a peer whose digest differs is pulled from, at most every
// digestPullEvery, and one that reports a head ahead of ours when gossip has
// not brought it within syncGapDebounce.
const (
	presenceInterval = 5 * time.Second
	digestPullEvery  = 10 * time.Second
	onlineFor        = 3 * presenceInterval
	metaDelivered    = "delivered-seq" // highest own seq some peer is known to hold
)

func presenceTopic(ws wire.ID) string { return "/charla/" + ws.String() + "/ephemeral/1" }

// presence is the heartbeat side of the node: what peers said last, and what
// of our own feed they hold.
type presence struct {
	topic *pubsub.Topic
	sub   *pubsub.Subscription

	mu        sync.Mutex // guards the fields below
	lastTime  map[peer.ID]int64
	lastSeen  map[peer.ID]time.Time
	lastPull  map[peer.ID]time.Time
	sentHeads map[string]uint64              // heads in our previous heartbeats
	delivered uint64                         // highest own seq a peer holds
	state     wire.PresenceState             // ours; zero is online
	states    map[peer.ID]wire.PresenceState // what each peer's last heartbeat said
	shown     map[peer.ID]string             // the presence last told to subscribers
	nudged    time.Time                      // our last heartbeat sent out of turn
}

func (n *Node) startPresence(ctx context.Context) error {
	name := presenceTopic(n.hist.ws)
	err := n.gsp.ps.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == n.host.ID() {
			return pubsub.ValidationAccept
		}
		e, err := wire.DecodeEphemeral(m.Data)
		if err != nil {
			n.hist.count(reasonMalformed)
			return pubsub.ValidationReject
		}
		if e.Kind == wire.EphemeralSignal {
			switch ok, reject := n.validateSignal(e.Signal); {
			case reject:
				return pubsub.ValidationReject
			case !ok:
				return pubsub.ValidationIgnore
			}
			m.ValidatorData = e.Signal
			return pubsub.ValidationAccept
		}
		p := e.Presence
		if p.Workspace != n.hist.ws {
			n.hist.count(reasonForeign)
			return pubsub.ValidationReject
		}
		sender := peer.ID(p.Peer)
		if !n.hist.isMember(sender) {
			return pubsub.ValidationIgnore
		}
		if crypto.Verify(crypto.DomainEphemeral, sender, p.SignedBytes(), p.Sig) != nil {
			n.hist.count(reasonForged)
			return pubsub.ValidationReject
		}
		// No absolute time window (clocks may be off by a day): a heartbeat
		// must only be newer than the last one of its sender, so replays die.
		n.pres.mu.Lock()
		defer n.pres.mu.Unlock()
		if p.Time <= n.pres.lastTime[sender] {
			return pubsub.ValidationIgnore
		}
		n.pres.lastTime[sender] = p.Time
		m.ValidatorData = p
		return pubsub.ValidationAccept
	})
	if err != nil {
		return fmt.Errorf("register presence validator: %w", err)
	}
	if n.pres.topic, err = n.gsp.ps.Join(name); err != nil {
		return fmt.Errorf("join presence topic: %w", err)
	}
	if n.pres.sub, err = n.pres.topic.Subscribe(); err != nil {
		return fmt.Errorf("subscribe presence: %w", err)
	}
	if b, err := n.st.Meta(ctx, metaDelivered); err == nil {
		n.pres.delivered, _ = strconv.ParseUint(string(b), 10, 64)
	}
	n.work.spawn(func() { n.receivePresence(n.ctx) })
	n.work.spawn(func() { n.heartbeat(n.ctx) })
	n.work.spawn(func() { n.signalLoop(n.ctx) })
	return nil
}

func (n *Node) heartbeat(ctx context.Context) {
	t := time.NewTicker(presenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.showPresence()
		if len(n.connectedMembers()) == 0 {
			continue
		}
		if err := n.publishPresence(ctx); err != nil && ctx.Err() == nil {
			n.log.Debug("publish presence", "err", err)
		}
	}
}

// vectorOf is this node's vector and its digest.
func (n *Node) vectorOf(ctx context.Context) (*wire.Vector, wire.ID, error) {
	heads, err := n.st.Heads(ctx)
	if err != nil {
		return nil, wire.ID{}, err
	}
	v := &wire.Vector{}
	for _, h := range heads {
		v.Entries = append(v.Entries, wire.VectorEntry{Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	return v, sha256.Sum256(v.Marshal()), nil
}

func (n *Node) publishPresence(ctx context.Context) error {
	v, digest, err := n.vectorOf(ctx)
	if err != nil {
		return err
	}
	count, err := n.st.EnvelopeCount(ctx)
	if err != nil {
		return err
	}
	p := &wire.Presence{Workspace: n.hist.ws, Peer: []byte(n.host.ID()), Time: time.Now().UnixMilli(), Digest: digest, Envelopes: uint64(count)}
	n.pres.mu.Lock()
	p.State = n.pres.state
	if p.State == 0 {
		p.State = wire.StateOnline
	}
	if p.Time <= n.pres.lastTime[n.host.ID()] {
		p.Time = n.pres.lastTime[n.host.ID()] + 1 // our clock went back
	}
	n.pres.lastTime[n.host.ID()] = p.Time
	for _, e := range v.Entries {
		if len(p.Heads) < wire.MaxPresenceHeads && n.pres.sentHeads[string(e.Author)] != e.Seq {
			p.Heads = append(p.Heads, e)
			n.pres.sentHeads[string(e.Author)] = e.Seq
		}
	}
	n.pres.mu.Unlock()
	if p.Sig, err = n.id.Sign(crypto.DomainEphemeral, p.SignedBytes()); err != nil {
		return err
	}
	return n.pres.topic.Publish(ctx, (&wire.Ephemeral{Kind: wire.EphemeralPresence, Presence: p}).Marshal())
}

func (n *Node) receivePresence(ctx context.Context) {
	for {
		m, err := n.pres.sub.Next(ctx)
		if err != nil {
			return
		}
		switch v := m.ValidatorData.(type) {
		case *wire.Presence:
			if peer.ID(v.Peer) != n.host.ID() {
				n.onPresence(ctx, v)
			}
		case *wire.Signal:
			n.onSignal(ctx, v)
		}
	}
}

// onPresence records a heartbeat and pulls from its sender when it holds
// what we lack.
func (n *Node) onPresence(ctx context.Context, p *wire.Presence) {
	sender := peer.ID(p.Peer)
	v, digest, err := n.vectorOf(ctx)
	if err != nil {
		return
	}
	for _, e := range p.Heads {
		if string(e.Author) == string(n.hist.self) {
			n.ack(ctx, e)
		}
	}
	// A head ahead of ours is pulled for if gossip has not brought it
	// within syncGapDebounce (node/lag.go).
	ahead := n.claimAhead(v.Entries, p.Heads, sender)
	now := time.Now()
	n.pres.mu.Lock()
	n.pres.lastSeen[sender] = now
	if n.pres.states == nil {
		n.pres.states = map[peer.ID]wire.PresenceState{}
	}
	n.pres.states[sender] = p.State
	pull := !ahead && digest != p.Digest && now.Sub(n.pres.lastPull[sender]) >= digestPullEvery
	if pull {
		n.pres.lastPull[sender] = now
	}
	n.pres.mu.Unlock()
	if pull && n.host.Network().Connectedness(sender) == 1 {
		n.pullAsync(sender)
	}
	n.showPresence()
}

// ack records that a peer holds our feed up to e.Seq. A peer proves it by
// naming the ID of our envelope at that seq (the hash of the whole envelope,
// which chains every earlier one); a claim with another ID marks nothing
// delivered and is counted (a lie, or a fork of our feed the peer holds the
// other branch of). A seq beyond what we hold is not counted: a node
// restored from an old backup learns its own head that way.
func (n *Node) ack(ctx context.Context, e wire.VectorEntry) {
	n.pres.mu.Lock()
	done := e.Seq <= n.pres.delivered
	n.pres.mu.Unlock()
	if done || e.Seq == 0 {
		return
	}
	own, err := n.st.HeadersAfter(ctx, n.hist.self, e.Seq-1, 1)
	if err != nil || len(own) == 0 || own[0].Seq != e.Seq {
		return
	}
	if own[0].ID != e.ID {
		n.hist.count(reasonFalseHead)
		return
	}
	n.pres.mu.Lock()
	if e.Seq <= n.pres.delivered {
		n.pres.mu.Unlock()
		return
	}
	n.pres.delivered = e.Seq
	n.pres.mu.Unlock()
	if err := n.st.SetMeta(ctx, metaDelivered, []byte(strconv.FormatUint(e.Seq, 10))); err != nil {
		n.log.Debug("record delivery", "err", err)
	}
}

func (n *Node) deliveredSeq() uint64 {
	n.pres.mu.Lock()
	defer n.pres.mu.Unlock()
	return n.pres.delivered
}

func (n *Node) online(p peer.ID) bool {
	n.pres.mu.Lock()
	defer n.pres.mu.Unlock()
	return time.Since(n.pres.lastSeen[p]) < onlineFor
}

// presenceOf says whether a member is online, away or offline: offline
// when no heartbeat of it came within onlineFor. This node's own member is
// what SetPresence last said.
func (n *Node) presenceOf(p peer.ID) string {
	n.pres.mu.Lock()
	defer n.pres.mu.Unlock()
	return n.presenceLocked(p)
}

func (n *Node) presenceLocked(p peer.ID) string {
	if p == n.host.ID() {
		if n.pres.state == wire.StateAway {
			return "away"
		}
		return "online"
	}
	if time.Since(n.pres.lastSeen[p]) >= onlineFor {
		return "offline"
	}
	if n.pres.states[p] == wire.StateAway {
		return "away"
	}
	return "online"
}

// showPresence tells subscribers of every member whose presence changed
// since it was last told: heartbeats that come or stop, and away.
func (n *Node) showPresence() {
	type change struct {
		p     peer.ID
		state string
	}
	var changes []change
	n.pres.mu.Lock()
	if n.pres.shown == nil {
		n.pres.shown = map[peer.ID]string{}
	}
	for p := range n.pres.lastSeen {
		if now := n.presenceLocked(p); now != n.pres.shown[p] {
			n.pres.shown[p] = now
			changes = append(changes, change{p, now})
		}
	}
	n.pres.mu.Unlock()
	for _, c := range changes {
		m, _ := n.hist.member([]byte(c.p))
		n.emitEvent(Event{Type: "presence", Presence: &PresenceChange{Peer: c.p.String(), Name: m.name, State: c.state}})
	}
}

// SetPresence records whether this member's user is away, and tells the
// office at once with a heartbeat (at most one a second out of turn).
func (n *Node) SetPresence(ctx context.Context, state string) error {
	var s wire.PresenceState
	switch state {
	case "online":
		s = wire.StateOnline
	case "away":
		s = wire.StateAway
	default:
		return fmt.Errorf("%w: presence %q; want online or away", ErrInvalid, state)
	}
	n.pres.mu.Lock()
	changed := n.pres.state != s && !(n.pres.state == 0 && s == wire.StateOnline)
	n.pres.state = s
	nudge := changed && time.Since(n.pres.nudged) >= time.Second
	if nudge {
		n.pres.nudged = time.Now()
	}
	n.pres.mu.Unlock()
	if changed {
		n.emitEvent(Event{Type: "presence", Presence: &PresenceChange{Peer: n.host.ID().String(), Name: n.selfName(), State: state}})
	}
	if nudge && len(n.connectedMembers()) > 0 {
		return n.publishPresence(ctx)
	}
	return nil
}

func (n *Node) selfName() string {
	m, _ := n.hist.member(n.hist.self)
	return m.name
}

// stateOf is a message's delivery state: "local" until some peer is known to
// hold it, then "delivered". Messages of others reached us, so they are delivered.
func (n *Node) stateOf(m store.Message) string {
	if string(m.Author) == string(n.hist.self) && m.Seq > n.deliveredSeq() {
		return "local"
	}
	return "delivered"
}
