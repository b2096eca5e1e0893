package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

func TestCreateRoomNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := workspace(t, 3)
	ctx := context.Background()
	a, b, c := nodes[0], nodes[1], nodes[2]
	eventually(t, 60*time.Second, "a knows every member", func() bool { return a.hist.memberCount() == 3 })

	r, err := a.CreateRoomNamed(ctx, "#board", []string{"member1", "@" + b.PeerID().String()})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.PeerID().String(), b.PeerID().String()}
	slices.Sort(want)
	if r.Name != "board" || r.Kind != "channel" || !slices.Equal(r.Members, want) {
		t.Fatalf("room = %+v, want #board, a channel of %q", r, want)
	}

	for _, tt := range []struct {
		name, room string
		members    []string
		want       error
	}{
		{"unknown member", "plans", []string{"Nobody"}, ErrUnknownRoom},
		{"name taken", "board", nil, ErrInvalid},
		{"empty name", " ", nil, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.CreateRoomNamed(ctx, tt.room, tt.members); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}

	eventually(t, 60*time.Second, "b reads #board", func() bool {
		_, err := b.Log(ctx, "board", 10)
		return err == nil
	})
	m, err := b.Send(ctx, "board", "only for the board")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := wire.ParseID(m.ID)
	eventually(t, 60*time.Second, "c stores b's envelope", func() bool {
		_, err := c.st.Envelope(ctx, id)
		return err == nil
	})
	if _, err := c.Log(ctx, "board", 10); !errors.Is(err, ErrUnknownRoom) {
		t.Errorf("c reads #board: %v, want ErrUnknownRoom", err)
	}
	if _, err := c.Log(ctx, r.ID, 10); !errors.Is(err, ErrUnknownRoom) {
		t.Errorf("c reads #board by ID: %v, want ErrUnknownRoom", err)
	}
	rooms, err := c.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range rooms {
		if cr.ID == r.ID {
			t.Errorf("c lists #board: %+v", cr)
		}
	}
	eventually(t, 60*time.Second, "a reads b's message", func() bool {
		got := texts(t, a, "board")
		return len(got) == 1 && got[0] == "only for the board"
	})
}

// TestGeneralListsEveryMember: #general is every member's, on every node.
// Each admission shares #general's key with the newcomer alone, so a member
// admitted earlier cannot read the later shares; its list of #general used
// to stop at the members it saw shares for.
func TestGeneralListsEveryMember(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	allKnown(t, nodes...)
	generalOf := func(n *Node) []string {
		rs, err := n.Rooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Name == "general" {
				return r.Members
			}
		}
		return nil
	}
	eventually(t, 30*time.Second, "every node lists #general", func() bool {
		for _, n := range nodes {
			if generalOf(n) == nil {
				return false
			}
		}
		return true
	})
	var want []string
	for _, n := range nodes {
		want = append(want, n.PeerID().String())
	}
	slices.Sort(want)
	for i, n := range nodes {
		if got := generalOf(n); !slices.Equal(got, want) {
			t.Errorf("node %d lists #general's members as %v, want %v", i, got, want)
		}
	}
	if _, err := nodes[0].RemoveMember(ctx, nodes[2].PeerID().String()); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(p string) bool { return p == nodes[2].PeerID().String() })
	eventually(t, 30*time.Second, "#general without the removed member", func() bool {
		return slices.Equal(generalOf(nodes[0]), want) && slices.Equal(generalOf(nodes[1]), want)
	})
}

// TestDirectRoomWithRemovedMember: after a member is removed, the other
// party still finds the direct conversation by the removed member's name,
// reads it, and cannot post to it (its key reached the removed member).
func TestDirectRoomWithRemovedMember(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	allKnown(t, nodes...)
	ben, gone := nodes[1], nodes[2]
	if _, err := ben.Send(ctx, "@Member2", "hola Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the direct message arrives", func() bool {
		return slices.Equal(texts(t, gone, "@Member1"), []string{"hola Member2"})
	})
	if _, err := nodes[0].RemoveMember(ctx, gone.PeerID().String()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ben learns of the removal", func() bool {
		return ben.hist.memberCount() == 2
	})
	var dm Room
	rs, err := ben.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Kind == "direct" {
			dm = r
		}
	}
	if dm.Name != "@Member2 (removed)" {
		t.Fatalf("the direct room with a removed member is listed as %+v, want @Member2 (removed)", dm)
	}
	for _, name := range []string{"@Member2", "@" + gone.PeerID().String(), dm.ID} {
		ms, err := ben.Log(ctx, name, 10)
		if err != nil || len(ms) != 1 || ms[0].Text != "hola Member2" {
			t.Fatalf("log %s: %v, %+v", name, err, ms)
		}
		if _, err := ben.Send(ctx, name, "are you there?"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("send %s to a removed member: %v, want ErrForbidden saying removed", name, err)
		}
	}
}
