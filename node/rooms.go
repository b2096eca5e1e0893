package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// RoomCreator is what the local API asks of a node to create rooms. It is
// apart from Backend so that backends without it serve the rest.
type RoomCreator interface {
	// CreateRoomNamed creates a channel called name, readable only by the
	// members named (display names or peer IDs, as after @) and this node,
	// and returns it as Rooms shows it. It fails with ErrUnknownRoom for a
	// name that is no member, ErrAmbiguous for one several members carry,
	// and ErrInvalid for a bad room name or one a readable channel has.
	CreateRoomNamed(ctx context.Context, name string, members []string) (Room, error)
}

var _ RoomCreator = (*Node)(nil)

// CreateRoomNamed resolves members as Send resolves "@Name", then creates
// the room with CreateRoom.
func (n *Node) CreateRoomNamed(ctx context.Context, name string, members []string) (Room, error) {
	name = strings.TrimPrefix(strings.TrimSpace(name), "#")
	rs, err := n.hist.allRooms(ctx)
	if err != nil {
		return Room{}, err
	}
	for _, r := range rs {
		if r.Name == name && r.Kind == wire.RoomChannel {
			return Room{}, fmt.Errorf("%w: a room named #%s exists already", ErrInvalid, name)
		}
	}
	var ps []peer.ID
	seen := map[peer.ID]bool{}
	for _, m := range members {
		p, err := n.resolveMember(strings.TrimPrefix(strings.TrimSpace(m), "@"))
		if err != nil {
			return Room{}, err
		}
		if id := peer.ID(p); !seen[id] {
			seen[id] = true
			ps = append(ps, id)
		}
	}
	seen[n.PeerID()] = true
	// One key share carries the room's first key to every member.
	if len(seen) > wire.MaxRecipients {
		return Room{}, fmt.Errorf("%w: a room has at most %d members, this node included; %d named", ErrInvalid, wire.MaxRecipients, len(seen))
	}
	id, err := n.CreateRoom(ctx, name, ps)
	if err != nil {
		return Room{}, err
	}
	rid, err := wire.ParseID(id)
	if err != nil {
		return Room{}, err
	}
	r, err := n.hist.room(ctx, rid)
	if err != nil {
		return Room{}, fmt.Errorf("room %s created but not readable: %w", id, err)
	}
	return n.roomView(r), nil
}
