package api

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

func TestCreateRoomAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	nodes := workspace(t, "Ana", "Bo", "Cy")
	ana := nodes[0]
	session := ana.session(t)
	peerOf := func(ln *liveNode) string { return ln.node.PeerID().String() }
	sorted := func(ps ...string) []string { slices.Sort(ps); return ps }
	eventually(t, 20*time.Second, "Ana knows every member", func() bool {
		ms, err := ana.node.Members(context.Background())
		return err == nil && len(ms) == 3
	})

	tests := []struct {
		name    string
		body    string
		code    int
		members []string
	}{
		{"named members", `{"name":"board","members":["bo"]}`, 201, sorted(peerOf(ana), peerOf(nodes[1]))},
		{"every member", `{"name":"#all-hands","all":true}`, 201, sorted(peerOf(ana), peerOf(nodes[1]), peerOf(nodes[2]))},
		{"only the creator", `{"name":"notes"}`, 201, []string{peerOf(ana)}},
		{"unknown member", `{"name":"plans","members":["Nobody"]}`, 404, nil},
		{"members and all", `{"name":"plans","members":["Bo"],"all":true}`, 400, nil},
		{"name taken", `{"name":"board","members":["Cy"]}`, 400, nil},
		{"no name", `{"members":["Cy"]}`, 400, nil},
		{"unknown field", `{"name":"plans","private":true}`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var room node.Room
			code := ana.call(t, session, "POST", "/api/rooms", tt.body, &room)
			if code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if code != 201 {
				return
			}
			if room.Kind != "channel" || room.ID == "" || !slices.Equal(room.Members, tt.members) {
				t.Errorf("room = %+v, want a channel of %q", room, tt.members)
			}
		})
	}

	var rooms []node.Room
	if code := ana.call(t, session, "GET", "/api/rooms", "", &rooms); code != 200 {
		t.Fatalf("GET /api/rooms: %d", code)
	}
	var names []string
	for _, r := range rooms {
		names = append(names, r.Name)
	}
	for _, want := range []string{"board", "all-hands", "notes"} {
		if !slices.Contains(names, want) {
			t.Errorf("rooms %q lack %q", names, want)
		}
	}

	c := NewClient(Info{API: ana.addr, Token: session})
	room, err := c.CreateRoom(context.Background(), "design", []string{"Cy"}, false)
	if err != nil || room.Name != "design" || !slices.Equal(room.Members, sorted(peerOf(ana), peerOf(nodes[2]))) {
		t.Fatalf("Client.CreateRoom = %+v, %v", room, err)
	}
	if _, err := c.CreateRoom(context.Background(), "x", []string{"Nobody"}, false); !errors.Is(err, node.ErrUnknownRoom) {
		t.Errorf("Client.CreateRoom with an unknown member: %v", err)
	}
}
