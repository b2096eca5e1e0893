package node

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// events collects a node's events of one type until the test ends.
type events struct {
	ch  <-chan Event
	typ string
}

func watch(t *testing.T, n *Node, typ string) *events {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &events{ch: n.Subscribe(ctx), typ: typ}
}

// next waits up to d for the next event of its type that ok accepts.
func (e *events) next(t *testing.T, d time.Duration, what string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev.Type == e.typ && ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("after %v: no %s event: %s", d, e.typ, what)
		}
	}
}

// none fails if an event of its type that ok accepts comes within d.
func (e *events) none(t *testing.T, d time.Duration, what string, ok func(Event) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev.Type == e.typ && ok(ev) {
				t.Fatalf("%s: got %+v", what, ev)
			}
		case <-deadline:
			return
		}
	}
}

// TestTypingAndReadMarkers: a typing signal and a read marker reach the
// room's members and no one else, rate-bounded, and one's own marker stays.
func TestTypingAndReadMarkers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := workspace(t, 3)
	ana, ben, cy := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	if _, err := ana.CreateRoom(ctx, "board", []peer.ID{ben.PeerID()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben reads #board, cy reads #general, all meshed", func() bool {
		_, _, e1 := ben.resolveRoom(ctx, "board")
		_, _, e2 := cy.resolveRoom(ctx, "general")
		return e1 == nil && e2 == nil && len(ana.connectedMembers()) == 2 &&
			len(ana.pres.topic.ListPeers()) == 2 && len(ben.pres.topic.ListPeers()) >= 1
	})
	benTyping, cyTyping := watch(t, ben, "typing"), watch(t, cy, "typing")

	board, _, _ := ana.resolveRoom(ctx, "board")
	sent, err := ana.Typing(ctx, "board")
	if err != nil || !sent {
		t.Fatalf("first typing: %v, %v", sent, err)
	}
	if again, err := ana.Typing(ctx, "board"); err != nil || again {
		t.Fatalf("typing again at once: sent %v, %v; want nothing sent", again, err)
	}
	ev := benTyping.next(t, 10*time.Second, "ana types in #board", func(ev Event) bool { return ev.Typing.Room == board.String() })
	if ev.Typing.Peer != ana.PeerID().String() || ev.Typing.Name != "Ana" {
		t.Fatalf("typing event %+v", ev.Typing)
	}
	cyTyping.none(t, 2*time.Second, "cy, not in #board, learns that ana types there", func(Event) bool { return true })

	// #general: cy reads it, so cy is told.
	if _, err := ana.Typing(ctx, "general"); err != nil {
		t.Fatal(err)
	}
	cyTyping.next(t, 10*time.Second, "ana types in #general", func(ev Event) bool { return ev.Typing.Peer == ana.PeerID().String() })

	m1, err := ana.Send(ctx, "board", "agenda for Monday")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ana.Send(ctx, "board", "and the budget")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "ben holds both", func() bool { return len(texts(t, ben, "board")) == 2 })
	anaReads := watch(t, ana, "read")
	if err := ben.MarkRead(ctx, "board", m1.ID); err != nil {
		t.Fatal(err)
	}
	if err := ben.MarkRead(ctx, "board", m2.ID); err != nil {
		t.Fatal(err)
	}
	// Both within readEvery: only the newest goes out.
	ev = anaReads.next(t, 10*time.Second, "ben's marker", func(Event) bool { return true })
	if ev.Read.Message != m2.ID || ev.Read.Peer != ben.PeerID().String() || ev.Read.Room != board.String() {
		t.Fatalf("read event %+v, want ben at %s", ev.Read, m2.ID)
	}
	rs, err := ana.ReadMarkers(ctx, "board")
	if err != nil || len(rs.Members) != 1 || rs.Members[0].Message != m2.ID || rs.Members[0].Name != "Member1" || rs.Mine != "" {
		t.Fatalf("ana's read markers of #board: %+v, %v", rs, err)
	}
	// An older message does not move one's own marker back.
	if err := ben.MarkRead(ctx, "board", m1.ID); err != nil {
		t.Fatal(err)
	}
	if rs, err := ben.ReadMarkers(ctx, "board"); err != nil || rs.Mine != m2.ID {
		t.Fatalf("ben's own marker: %+v, %v; want %s", rs, err, m2.ID)
	}
	anaReads.none(t, 2*readEvery, "a marker moved back", func(Event) bool { return true })
	if err := ben.MarkRead(ctx, "general", m1.ID); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("marker on a message of another room: %v", err)
	}
	if _, err := cy.ReadMarkers(ctx, "board"); !errors.Is(err, ErrUnknownRoom) {
		t.Fatalf("cy asks for #board's markers: %v", err)
	}
}

// TestSignalValidation: the gossip validator's verdicts on crafted signals.
func TestSignalValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	room := generalRoomID(ana.hist.ws)
	at := time.Now().UnixMilli()
	sign := func(id *crypto.Identity, claim peer.ID, time int64, edit func(*wire.Signal)) *wire.Signal {
		s := &wire.Signal{Workspace: ana.hist.ws, Peer: []byte(claim), Time: time, Room: room, Key: wire.ID{1}, Sealed: []byte("x")}
		if edit != nil {
			edit(s)
		}
		var err error
		if s.Sig, err = id.Sign(crypto.DomainEphemeral, s.SignedBytes()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	stranger, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		s          *wire.Signal
		ok, reject bool
	}{
		{"valid", sign(ana.id, ana.PeerID(), at, nil), true, false},
		{"replayed", sign(ana.id, ana.PeerID(), at, nil), false, false},
		{"older than the last", sign(ana.id, ana.PeerID(), at-1, nil), false, false},
		{"forged", sign(stranger, ana.PeerID(), at+1, nil), false, true},
		{"not a member", sign(stranger, stranger.PeerID(), at+1, nil), false, false},
		{"foreign workspace", sign(ana.id, ana.PeerID(), at+2, func(s *wire.Signal) { s.Workspace = wire.ID{9} }), false, true},
		{"stale", sign(ana.id, ana.PeerID(), at-int64(2*signalWindow/time.Millisecond), nil), false, false},
		{"from the future", sign(ana.id, ana.PeerID(), at+int64(2*signalWindow/time.Millisecond), nil), false, false},
		{"next", sign(ana.id, ana.PeerID(), at+3, nil), true, false},
	}
	for _, tt := range tests {
		if ok, reject := ben.validateSignal(tt.s); ok != tt.ok || reject != tt.reject {
			t.Errorf("%s: ok %v, reject %v; want %v, %v", tt.name, ok, reject, tt.ok, tt.reject)
		}
	}
	// A burst beyond signalBurst is cut to the rate.
	taken := 0
	for i := range 3 * signalBurst {
		if ok, _ := ben.validateSignal(sign(ana.id, ana.PeerID(), at+10+int64(i), nil)); ok {
			taken++
		}
	}
	if taken < signalBurst-2 || taken > signalBurst+2 {
		t.Errorf("a burst of %d signals: %d taken, want about %d", 3*signalBurst, taken, signalBurst)
	}
	if got := ben.hist.rejectedCounts(); got[reasonSignalRate] == 0 || got[reasonSignalStale] != 2 || got[reasonForged] == 0 {
		t.Errorf("counts %v", got)
	}
}

// TestPresenceAwayAndOffline: away travels in the heartbeat; a node that
// stops is shown offline once its heartbeats stop.
func TestPresenceAwayAndOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	ctx := context.Background()
	presenceOf := func(n *Node, p peer.ID) string {
		ms, err := n.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.PeerID == p.String() {
				return m.Presence
			}
		}
		return ""
	}
	eventually(t, 30*time.Second, "ben sees ana online", func() bool { return presenceOf(ben, ana.PeerID()) == "online" })
	if got := presenceOf(ana, ana.PeerID()); got != "online" {
		t.Fatalf("ana sees herself %q", got)
	}
	changes := watch(t, ben, "presence")
	if err := ana.SetPresence(ctx, "away"); err != nil {
		t.Fatal(err)
	}
	ev := changes.next(t, 10*time.Second, "ana goes away", func(ev Event) bool { return ev.Presence.Peer == ana.PeerID().String() })
	if ev.Presence.State != "away" || ev.Presence.Name != "Ana" {
		t.Fatalf("presence event %+v", ev.Presence)
	}
	if got := presenceOf(ben, ana.PeerID()); got != "away" {
		t.Fatalf("ben's members list shows ana %q", got)
	}
	if err := ana.SetPresence(ctx, "asleep"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetPresence(asleep): %v", err)
	}
	ana.Close()
	ev = changes.next(t, onlineFor+3*presenceInterval, "ana stops", func(ev Event) bool { return ev.Presence.Peer == ana.PeerID().String() })
	if ev.Presence.State != "offline" {
		t.Fatalf("presence event %+v, want offline", ev.Presence)
	}
}

// TestMentions pins the rule that decides whom a text mentions.
func TestMentions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	ids := map[string]string{"Ana": ana.PeerID().String()}
	for _, name := range []string{"Ana María", "Bruno", "bruno"} {
		p, err := ana.Provision(ctx, filepath.Join(dir, name), name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = p.String()
	}
	tests := []struct {
		text string
		want []string
	}{
		{"no one", nil},
		{"@Ana can you look?", []string{"Ana"}},
		{"@ana, please", []string{"Ana"}},
		{"thanks @Ana María!", []string{"Ana María"}},
		{"@Ana Marí is not a name", []string{"Ana"}},
		{"write to ana@acme.example", nil},
		{"@Anabel is someone else", nil},
		{"@Bruno", []string{"Bruno", "bruno"}}, // two members share the name
		{"(@Bruno) and @Ana", []string{"Ana", "Bruno", "bruno"}},
		{"@ @@Ana", []string{"Ana"}},
		{"@Ana_ is no mention", nil},
	}
	for _, tt := range tests {
		var want []string
		for _, n := range tt.want {
			want = append(want, ids[n])
		}
		slices.Sort(want)
		if got := ana.mentionsIn(tt.text); !slices.Equal(got, want) {
			t.Errorf("mentionsIn(%q) = %v, want %v", tt.text, got, strings.Join(tt.want, ", "))
		}
	}
	m, err := ana.Send(ctx, "general", "@Bruno the keys are at reception")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Mentions) != 2 {
		t.Fatalf("the message's mentions: %v", m.Mentions)
	}
}
