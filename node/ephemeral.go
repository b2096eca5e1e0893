package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"sort"
	"sync"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Typing indicators and read markers (DESIGN.md: ephemerals). Each is a
// wire.Signal on the ephemeral topic: signed with the ephemeral domain,
// sealed with the room key, never stored as history. A node keeps its own
// read markers in meta, so they outlive a restart, and others' in memory,
// bounded by rooms × their members, for as long as it runs: a member who
// was away when a marker went out does not learn it.
const (
	// TypingEvery is the least time between two typing signals of one
	// member in one room; a receiver shows "typing" for a little longer.
	TypingEvery = 3 * time.Second
	// readEvery is the least time between two of our read markers of one
	// room: MarkRead records at once, and the newest goes out on the next tick.
	readEvery = time.Second
	// signalWindow bounds how far a signal's time may be from our clock: a
	// signal is about now, so an old one is a replay or a stuck clock. (A
	// heartbeat has no such window: its digest matters at any clock.)
	signalWindow = 5 * time.Minute
	// A sender's signals are taken at signalRate a second on average, in
	// bursts of up to signalBurst; the rest are ignored and counted.
	signalRate  = 2
	signalBurst = 20

	metaReadPrefix = "read/" // + room ID: the newest message of the room this member read

	reasonSignalRate  = "signal-rate"
	reasonSignalStale = "signal-stale"
)

// Ephemerals is what the local API asks of a node for typing indicators,
// read markers and away. It is apart from Backend so that backends without
// it serve the rest.
type Ephemerals interface {
	// Typing tells room's members that this member is writing. A call
	// within TypingEvery of the last one for the same room sends nothing
	// and reports false. ErrUnknownRoom: a room this node cannot write in.
	Typing(ctx context.Context, room string) (sent bool, err error)
	// MarkRead records that this member has read room up to message id,
	// and tells the room's members. A message older than the one already
	// marked changes nothing. ErrUnknownMessage: id is no message of room.
	MarkRead(ctx context.Context, room, id string) error
	// ReadMarkers returns this member's read marker of room and those of
	// the other members heard from since this node started.
	ReadMarkers(ctx context.Context, room string) (ReadState, error)
	// SetPresence says whether this member's user is "online" or "away"
	// (idle); heartbeats carry it. Anything else is ErrInvalid.
	SetPresence(ctx context.Context, state string) error
}

var _ Ephemerals = (*Node)(nil)

// Typing is a member writing in a room: the "typing" event.
type Typing struct {
	Room string `json:"room"`
	Peer string `json:"peer"`
	Name string `json:"name"`
}

// ReadMarker is the newest message of a room a member has read: the "read"
// event, and an element of ReadState.
type ReadMarker struct {
	Room    string    `json:"room"`
	Peer    string    `json:"peer"`
	Name    string    `json:"name"`
	Message string    `json:"message"` // message ID
	Time    time.Time `json:"time"`    // when the member said so, by its clock
}

// ReadState is what is known of who read a room how far.
type ReadState struct {
	Mine    string       `json:"mine"`    // this member's newest read message ID, or ""
	Members []ReadMarker `json:"members"` // other members', by name
}

// PresenceChange is a member going online, away or offline: the
// "presence" event.
type PresenceChange struct {
	Peer  string `json:"peer"`
	Name  string `json:"name"`
	State string `json:"state"` // online, away, offline
}

// signals is the node's side of typing and read markers.
type signals struct {
	mu         sync.Mutex // guards the fields below
	lastTime   map[peer.ID]int64
	buckets    map[peer.ID]*bucket
	typingSent map[wire.ID]time.Time
	readOut    map[wire.ID]wire.ID // room → newest read message not yet sent
	read       map[wire.ID]map[peer.ID]ReadMarker
	ownTime    int64 // time of our last signal: strictly increasing
}

func (s *signals) init() {
	if s.lastTime == nil {
		s.lastTime, s.buckets = map[peer.ID]int64{}, map[peer.ID]*bucket{}
		s.typingSent, s.readOut = map[wire.ID]time.Time{}, map[wire.ID]wire.ID{}
		s.read = map[wire.ID]map[peer.ID]ReadMarker{}
	}
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// validateSignal runs the checks of the gossip validator on a signal: all
// but the room's, which need its key and run on receipt.
func (n *Node) validateSignal(s *wire.Signal) (ok bool, reject bool) {
	if s.Workspace != n.hist.ws {
		n.hist.count(reasonForeign)
		return false, true
	}
	sender := peer.ID(s.Peer)
	if !n.hist.isMember(sender) {
		return false, false
	}
	if crypto.Verify(crypto.DomainEphemeral, sender, s.SignedBytes(), s.Sig) != nil {
		n.hist.count(reasonForged)
		return false, true
	}
	now := time.Now()
	if d := now.Sub(time.UnixMilli(s.Time)); d > signalWindow || d < -signalWindow {
		n.hist.count(reasonSignalStale)
		return false, false
	}
	n.sig.mu.Lock()
	defer n.sig.mu.Unlock()
	n.sig.init()
	if s.Time <= n.sig.lastTime[sender] {
		return false, false // a replay, or one that a later one overtook
	}
	b := n.sig.buckets[sender]
	if b == nil {
		b = &bucket{tokens: signalBurst, at: now}
		n.sig.buckets[sender] = b
	}
	if !b.take(now, signalRate, signalBurst) {
		n.hist.count(reasonSignalRate)
		return false, false
	}
	n.sig.lastTime[sender] = s.Time
	return true, false
}

// onSignal opens a signal of a room this node reads and tells subscribers.
func (n *Node) onSignal(ctx context.Context, s *wire.Signal) {
	sender := peer.ID(s.Peer)
	if sender == n.host.ID() {
		return
	}
	room, err := n.hist.room(ctx, s.Room)
	if err != nil {
		return // a room this node is not in: forwarded, not read
	}
	if !containsPeer(room.Members, s.Peer) {
		if room.Kind == wire.RoomChannel && !room.MembersKnown && room.ID != generalRoomID(n.hist.ws) {
			return // who is in the room is not known here yet: nothing to judge by
		}
		n.hist.count(reasonForbidden)
		return
	}
	key, ok := n.roomKey(ctx, s.Room, s.Key)
	if !ok {
		return
	}
	plain, err := crypto.DecryptContent(crypto.RoomKey(key.Key), s.Sealed)
	if err != nil {
		n.hist.count(reasonUnreadable)
		return
	}
	body, err := wire.DecodeSignalBody(plain)
	if err != nil {
		n.hist.count(reasonMalformed)
		return
	}
	if body.Room != s.Room || body.Time != s.Time {
		n.hist.count(reasonForbidden)
		return
	}
	m, _ := n.hist.member(s.Peer)
	switch body.Kind {
	case wire.SignalTyping:
		n.emitEvent(Event{Type: "typing", Typing: &Typing{Room: s.Room.String(), Peer: sender.String(), Name: m.name}})
	case wire.SignalRead:
		mk := ReadMarker{Room: s.Room.String(), Peer: sender.String(), Name: m.name, Message: body.Message.String(), Time: time.UnixMilli(s.Time).UTC()}
		n.sig.mu.Lock()
		n.sig.init()
		if n.sig.read[s.Room] == nil {
			n.sig.read[s.Room] = map[peer.ID]ReadMarker{}
		}
		n.sig.read[s.Room][sender] = mk
		n.sig.mu.Unlock()
		n.emitEvent(Event{Type: "read", Read: &mk})
	}
}

// roomKey finds the key of room with ID id.
func (n *Node) roomKey(ctx context.Context, room, id wire.ID) (store.RoomKey, bool) {
	keys, err := n.st.RoomKeys(ctx, room)
	if err != nil {
		return store.RoomKey{}, false
	}
	for _, k := range keys {
		if k.KeyID == id {
			return k, true
		}
	}
	return store.RoomKey{}, false
}

// Typing sends a typing signal to room, at most one per TypingEvery.
func (n *Node) Typing(ctx context.Context, room string) (bool, error) {
	id, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		return false, err
	}
	if _, err := n.hist.sendKey(ctx, id); err != nil {
		return false, err
	}
	now := time.Now()
	n.sig.mu.Lock()
	n.sig.init()
	if now.Sub(n.sig.typingSent[id]) < TypingEvery {
		n.sig.mu.Unlock()
		return false, nil
	}
	n.sig.typingSent[id] = now
	n.sig.mu.Unlock()
	if len(n.connectedMembers()) == 0 {
		return false, nil // nobody to tell
	}
	if err := n.sendSignal(ctx, id, wire.SignalTyping, wire.ID{}); err != nil {
		return false, err
	}
	return true, nil
}

// MarkRead records this member's read marker of room and queues it for the
// room's members.
func (n *Node) MarkRead(ctx context.Context, room, id string) error {
	rid, m, err := n.target(ctx, room, id)
	if err != nil {
		return err
	}
	if old, err := n.st.Meta(ctx, metaReadPrefix+rid.String()); err == nil {
		if oid, err := wire.ParseID(string(old)); err == nil {
			if om, err := n.st.Message(ctx, oid); err == nil && !orderBefore(om, m) {
				return nil // read that far already
			}
		}
	}
	if err := n.st.SetMeta(ctx, metaReadPrefix+rid.String(), []byte(m.ID.String())); err != nil {
		return fmt.Errorf("record read marker: %w", err)
	}
	n.sig.mu.Lock()
	n.sig.init()
	n.sig.readOut[rid] = m.ID
	n.sig.mu.Unlock()
	return nil
}

// orderBefore reports whether a comes before b in a room's display order.
func orderBefore(a, b store.Message) bool {
	if a.Lamport != b.Lamport {
		return a.Lamport < b.Lamport
	}
	if c := bytes.Compare(a.Author, b.Author); c != 0 {
		return c < 0
	}
	return a.Seq < b.Seq
}

// ReadMarkers returns what is known of who read room how far.
func (n *Node) ReadMarkers(ctx context.Context, room string) (ReadState, error) {
	id, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		return ReadState{}, err
	}
	if _, err := n.hist.room(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ReadState{}, fmt.Errorf("%w %q", ErrUnknownRoom, room)
		}
		return ReadState{}, err
	}
	st := ReadState{Members: []ReadMarker{}}
	if b, err := n.st.Meta(ctx, metaReadPrefix+id.String()); err == nil {
		st.Mine = string(b)
	} else if !errors.Is(err, store.ErrNotFound) {
		return ReadState{}, err
	}
	n.sig.mu.Lock()
	marks := make(map[peer.ID]ReadMarker, len(n.sig.read[id]))
	for p, mk := range n.sig.read[id] {
		marks[p] = mk
	}
	n.sig.mu.Unlock()
	for p, mk := range marks {
		m, ok := n.hist.member([]byte(p))
		if !ok || m.removed {
			continue
		}
		mk.Name = m.name // the name now, not when the marker came
		st.Members = append(st.Members, mk)
	}
	sort.Slice(st.Members, func(i, j int) bool {
		a, b := st.Members[i], st.Members[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Peer < b.Peer
	})
	return st, nil
}

// flushReads sends the read markers MarkRead queued, one per room.
func (n *Node) flushReads(ctx context.Context) {
	n.sig.mu.Lock()
	out := n.sig.readOut
	n.sig.readOut = map[wire.ID]wire.ID{}
	n.sig.mu.Unlock()
	if len(out) == 0 || len(n.connectedMembers()) == 0 {
		return // with nobody to tell, a marker waits for the next MarkRead
	}
	for room, msg := range out {
		if err := n.sendSignal(ctx, room, wire.SignalRead, msg); err != nil && ctx.Err() == nil {
			n.log.Debug("send read marker", "room", room, "err", err)
		}
	}
}

// signalLoop sends queued read markers every readEvery, so a reader
// scrolling through a room sends one marker a second, the newest.
func (n *Node) signalLoop(ctx context.Context) {
	t := time.NewTicker(readEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.flushReads(ctx)
		}
	}
}

// sendSignal seals and publishes one signal about room.
func (n *Node) sendSignal(ctx context.Context, room wire.ID, kind wire.SignalKind, msg wire.ID) error {
	k, err := n.hist.sendKey(ctx, room)
	if err != nil {
		return err
	}
	n.sig.mu.Lock()
	n.sig.init()
	t := max(time.Now().UnixMilli(), n.sig.ownTime+1)
	n.sig.ownTime = t
	n.sig.mu.Unlock()
	body := &wire.SignalBody{Kind: kind, Room: room, Time: t, Message: msg}
	sealed, err := crypto.EncryptContent(crypto.RoomKey(k.Key), body.Marshal())
	if err != nil {
		return fmt.Errorf("seal %v signal: %w", kind, err)
	}
	s := &wire.Signal{Workspace: n.hist.ws, Peer: []byte(n.host.ID()), Time: t, Room: room, Key: k.KeyID, Sealed: sealed}
	if s.Sig, err = n.id.Sign(crypto.DomainEphemeral, s.SignedBytes()); err != nil {
		return err
	}
	// Flood publishing is off (gossip.go), so a publish right after a
	// connection, before the topic's mesh is grafted, reaches nobody; and
	// signals, unlike envelopes, are never synced. Wait a little for a mesh.
	pctx, cancel := context.WithTimeout(ctx, signalMeshWait)
	defer cancel()
	err = n.pres.topic.Publish(pctx, (&wire.Ephemeral{Kind: wire.EphemeralSignal, Signal: s}).Marshal(),
		pubsub.WithReadiness(pubsub.MinTopicSize(1)))
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		return nil // no member in the mesh yet: nobody to tell
	}
	return err
}

// signalMeshWait bounds how long a signal waits for the topic's mesh: two
// gossip heartbeats.
const signalMeshWait = 1500 * time.Millisecond
