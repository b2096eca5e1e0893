package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/charla-im/charla/node"
)

// roomsNode adds node.RoomCreator to fakeNode; its members are Ana and Bo.
type roomsNode struct {
	*fakeNode
	created [][]string // name, then members, of every CreateRoomNamed
}

var _ node.RoomCreator = (*roomsNode)(nil)

func (r *roomsNode) Members(ctx context.Context) ([]node.Member, error) {
	return []node.Member{{PeerID: "12D3KooWAna", Name: "Ana"}, {PeerID: "12D3KooWBo", Name: "Bo"}}, nil
}

func (r *roomsNode) CreateRoomNamed(ctx context.Context, name string, members []string) (node.Room, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created = append(r.created, append([]string{name}, members...))
	for _, m := range members {
		if m != "Bo" && !strings.HasPrefix(m, "12D3KooW") {
			return node.Room{}, fmt.Errorf("%w: no member named %q", node.ErrUnknownRoom, m)
		}
	}
	return node.Room{ID: "ef56", Name: name, Kind: "channel", Members: append([]string{"12D3KooWAna"}, members...)}, nil
}

func (r *roomsNode) CreateRoomNoHistory(ctx context.Context, name string, members []string) (node.Room, error) {
	return r.CreateRoomNamed(ctx, name, members)
}

func TestRoomCreate(t *testing.T) {
	r := &roomsNode{fakeNode: &fakeNode{events: make(chan node.Event), subscribed: make(chan struct{})}}
	home := serveBackend(t, r)
	tests := []struct {
		name    string
		args    []string
		out     string
		created []string
	}{
		{"members", []string{"board", "--member", "Bo", "--private"}, "#board  2 members  ef56\n", []string{"board", "Bo"}},
		{"all", []string{"--all", "all-hands"}, "#all-hands  3 members  ef56\n", []string{"all-hands", "12D3KooWAna", "12D3KooWBo"}},
		{"json", []string{"notes", "--json"}, `{"id":"ef56","name":"notes","kind":"channel","members":["12D3KooWAna"]}` + "\n", []string{"notes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := charla(t, "", append([]string{"room", "create", "--home", home}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.out {
				t.Errorf("printed %q, want %q", out, tt.out)
			}
			r.mu.Lock()
			got := r.created[len(r.created)-1]
			r.mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(tt.created) {
				t.Errorf("created %q, want %q", got, tt.created)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		args  []string
		usage bool
	}{
		{"no subcommand", []string{"room"}, true},
		{"no name", []string{"room", "create"}, true},
		{"all and members", []string{"room", "create", "x", "--all", "--member", "Bo"}, true},
		{"unknown member", []string{"room", "create", "x", "--member", "Nobody"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := charla(t, "", append(tt.args, "--home", home)...)
			if err == nil || errors.Is(err, ErrUsage) != tt.usage {
				t.Fatalf("err = %v, want a usage error: %v", err, tt.usage)
			}
			if !tt.usage && Hint(err) != "'charla members' lists the members" {
				t.Errorf("hint %q", Hint(err))
			}
		})
	}
}
