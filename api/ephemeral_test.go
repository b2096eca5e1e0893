package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// TestEphemeralEndpoints drives typing, read markers and presence through the API of two real nodes, and sees Bruno's typing, his read
// marker and his away on Ana's event stream.
func TestEphemeralEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	nodes := workspace(t, "Ana", "Bruno")
	ana, bruno := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca := NewClient(Info{API: ana.addr, Token: ana.session(t)})
	cb := NewClient(Info{API: bruno.addr, Token: bruno.session(t)})
	eventually(t, 30*time.Second, "Bruno reads #general and Ana is connected", func() bool {
		_, err := cb.Log(ctx, "general", 1)
		st, _ := cb.Status(ctx)
		return err == nil && len(st.Peers) == 1
	})
	stream, err := ca.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := func(typ string) node.Event {
		t.Helper()
		for {
			ev, err := stream.Next()
			if err != nil {
				t.Fatalf("waiting for a %s event: %v", typ, err)
			}
			if ev.Type == typ {
				return ev
			}
		}
	}

	// Gossip needs the ephemeral topic's mesh; until it is up a signal
	// may go nowhere, so Bruno types until one arrives.
	go func() {
		for ctx.Err() == nil {
			cb.Typing(ctx, "general")
			time.Sleep(node.TypingEvery)
		}
	}()
	ev := next("typing")
	if ev.Typing.Name != "Bruno" || ev.Typing.Peer != bruno.node.PeerID().String() {
		t.Fatalf("typing event %+v", ev.Typing)
	}
	if _, err := cb.Typing(ctx, "general"); err != nil {
		t.Fatal(err)
	}
	if sent, err := cb.Typing(ctx, "general"); err != nil || sent {
		t.Fatalf("typing twice within %v: sent %v, %v", node.TypingEvery, sent, err)
	}

	m, err := ca.Send(ctx, "general", "the printer is fixed")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "Bruno holds it", func() bool {
		log, _ := cb.Log(ctx, "general", 5)
		return len(log) > 0 && log[len(log)-1].ID == m.ID
	})
	st, err := cb.MarkRead(ctx, "general", m.ID)
	if err != nil || st.Mine != m.ID {
		t.Fatalf("mark read: %+v, %v", st, err)
	}
	ev = next("read")
	if ev.Read.Message != m.ID || ev.Read.Name != "Bruno" {
		t.Fatalf("read event %+v", ev.Read)
	}
	st, err = ca.ReadMarkers(ctx, "general")
	if err != nil || st.Mine != "" || len(st.Members) != 1 || st.Members[0].Message != m.ID {
		t.Fatalf("Ana's read markers: %+v, %v", st, err)
	}
	if _, err := cb.MarkRead(ctx, "general", strings.Repeat("ab", 32)); !errors.Is(err, node.ErrUnknownMessage) {
		t.Fatalf("marker on an unknown message: %v", err)
	}
	if _, err := cb.MarkRead(ctx, "general", ""); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("marker on no message: %v", err)
	}
	if _, err := cb.ReadMarkers(ctx, "#nowhere"); !errors.Is(err, node.ErrUnknownRoom) {
		t.Fatalf("markers of an unknown room: %v", err)
	}

	if err := cb.SetPresence(ctx, "away"); err != nil {
		t.Fatal(err)
	}
	for {
		ev = next("presence")
		if ev.Presence.Peer == bruno.node.PeerID().String() && ev.Presence.State == "away" {
			break
		}
	}
	ms, err := ca.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if want := map[string]string{"Ana": "online", "Bruno": "away"}[m.Name]; m.Presence != want {
			t.Errorf("Ana's member list: %s is %q, want %q", m.Name, m.Presence, want)
		}
	}
	if err := cb.SetPresence(ctx, "busy"); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("presence busy: %v", err)
	}

}
