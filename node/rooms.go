package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/charla-im/charla/store"
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
	// CreateRoomNoHistory is CreateRoomNamed for a room whose later members
	// read only what is said from their joining on.
	CreateRoomNoHistory(ctx context.Context, name string, members []string) (Room, error)
}

var _ RoomCreator = (*Node)(nil)

// CreateRoomNamed resolves members as Send resolves "@Name", then creates
// the room with CreateRoom.
func (n *Node) CreateRoomNamed(ctx context.Context, name string, members []string) (Room, error) {
	return n.createRoomNamed(ctx, name, members, false)
}

// CreateRoomNoHistory implements RoomCreator.
func (n *Node) CreateRoomNoHistory(ctx context.Context, name string, members []string) (Room, error) {
	return n.createRoomNamed(ctx, name, members, true)
}

func (n *Node) createRoomNamed(ctx context.Context, name string, members []string, noHistory bool) (Room, error) {
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
	id, err := n.createChannel(ctx, name, ps, noHistory)
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

// roomForChange resolves a channel this node can read, for a membership
// change; #general is every member's and changes only with the roster.
func (n *Node) roomForChange(ctx context.Context, room string) (store.Room, error) {
	id, other, err := n.resolveRoom(ctx, room)
	if err != nil {
		return store.Room{}, err
	}
	if other != nil {
		return store.Room{}, fmt.Errorf("%w: a direct conversation has two members for good", ErrInvalid)
	}
	if id == generalRoomID(n.hist.ws) {
		return store.Room{}, fmt.Errorf("%w: #general is every member's; 'charla members remove' takes someone out of the workspace", ErrInvalid)
	}
	return n.hist.room(ctx, id)
}

// RoomAdd lets the member who read room: it gets every key of the room, so
// it reads the history from before it joined, and the room's members learn
// of it from a room op.
//
// The op goes out before the keys. This node's members are what the room's
// ops say (a share's disclosures replay them, replayRoomOps): were the keys
// shared first, their recipients would include the newcomer while the ops
// did not yet, and posting the op would rotate the key away from it at once
// (needsRotation). The op is sealed with the current key, which the
// newcomer then gets with the others.
func (n *Node) RoomAdd(ctx context.Context, room, who string) (Room, error) {
	r, err := n.roomForChange(ctx, room)
	if err != nil {
		return Room{}, err
	}
	p, err := n.resolveMember(strings.TrimPrefix(strings.TrimSpace(who), "@"))
	if err != nil {
		return Room{}, err
	}
	keys, err := n.st.RoomKeys(ctx, r.ID)
	if err != nil {
		return Room{}, err
	}
	switch {
	case containsPeer(r.Members, p):
		// Added already; but an add cut short after its op (the disk
		// full, the node stopped) shared no key: this one does.
		if r.NoHistory || len(keys) == 0 {
			return n.roomView(r), nil
		}
		got, err := n.st.KeyRecipients(ctx, sendCandidate(keys).KeyID)
		if err != nil {
			return Room{}, err
		}
		if containsPeer(got, p) {
			return n.roomView(r), nil
		}
	case r.NoHistory:
		return n.roomAddNoHistory(ctx, r, p)
	default:
		op, _, err := n.hist.postContent(ctx, r.ID, &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpAdd, Peer: p})
		if err != nil {
			return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
		}
		n.publish(op)
		// The op may have rotated the key (a removal was pending): share
		// what the room holds now.
		if keys, err = n.st.RoomKeys(ctx, r.ID); err != nil {
			return Room{}, err
		}
	}
	// p holds the keys, but may hold the room's oldest ops only as
	// tombstones (a peer's retention purged them before p joined the
	// workspace): the disclosure tells it which to ask for (node/bodies.go).
	disclosed, err := n.hist.disclosures(ctx, r.ID)
	if err != nil {
		return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
	}
	first, more := splitDisclosed(disclosed)
	last := -1
	for i, k := range keys {
		if !k.Untrusted || !r.MembersKnown {
			last = i
		}
	}
	for i, k := range keys {
		if k.Untrusted && r.MembersKnown {
			continue // no member shared it: it may be planted
		}
		ks := &wire.KeyShare{
			Workspace: n.hist.ws, Room: r.ID, RoomKind: r.Kind, Epoch: k.Epoch, Parent: k.Parent,
			Cause: wire.CauseReshare, Recipients: [][]byte{n.hist.self, p}, Key: k.Key,
		}
		if i == last {
			ks.Disclosed = first
		}
		share, err := n.hist.shareKey(ctx, ks)
		if err != nil {
			return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
		}
		n.publish(share)
	}
	if last >= 0 {
		shares, err := n.hist.discloseMore(ctx, r, keys[last], p, more)
		for _, c := range shares {
			n.publish(c)
		}
		if err != nil {
			return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
		}
	}
	return n.roomAfter(ctx, r.ID)
}

// RoomRemove takes a member out of room (admins only); the room gets a new
// key at once, shared with the members left.
func (n *Node) RoomRemove(ctx context.Context, room, who string) (Room, error) {
	r, err := n.roomForChange(ctx, room)
	if err != nil {
		return Room{}, err
	}
	if n.hist.roleOf(n.hist.self) < wire.RoleAdmin {
		return Room{}, fmt.Errorf("%w: only admins take others out of a room; 'charla room leave' leaves it yourself", ErrForbidden)
	}
	p, err := n.resolveMember(strings.TrimPrefix(strings.TrimSpace(who), "@"))
	if err != nil {
		return Room{}, err
	}
	if string(p) == string(n.hist.self) {
		return Room{}, fmt.Errorf("%w: to leave a room yourself use 'charla room leave'", ErrInvalid)
	}
	return n.postRoomExit(ctx, r, &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpRemove, Peer: p})
}

// RoomLeave takes this node out of room. It keeps the keys it had (history
// it could read stays readable); the next member to send rotates the key.
func (n *Node) RoomLeave(ctx context.Context, room string) (Room, error) {
	r, err := n.roomForChange(ctx, room)
	if err != nil {
		return Room{}, err
	}
	op, _, err := n.hist.postContent(ctx, r.ID, &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpLeave})
	if err != nil {
		return Room{}, fmt.Errorf("leave #%s: %w", r.Name, err)
	}
	n.publish(op)
	return n.roomAfter(ctx, r.ID)
}

// postRoomExit posts a room op that takes someone out, then rotates the key
// right away rather than at the next message.
func (n *Node) postRoomExit(ctx context.Context, r store.Room, content *wire.Content) (Room, error) {
	op, _, err := n.hist.postContent(ctx, r.ID, content)
	if err != nil {
		return Room{}, fmt.Errorf("change #%s: %w", r.Name, err)
	}
	n.publish(op)
	if _, err := n.hist.sendKey(ctx, r.ID); err != nil {
		return Room{}, fmt.Errorf("rotate the key of #%s: %w", r.Name, err)
	}
	return n.roomAfter(ctx, r.ID)
}

func (n *Node) roomAfter(ctx context.Context, id wire.ID) (Room, error) {
	r, err := n.hist.room(ctx, id)
	if err != nil {
		return Room{}, err
	}
	return n.roomView(r), nil
}

// roomAddNoHistory adds p to a room created with --no-history: the room op
// goes out under the old key, then a new epoch is shared with the members,
// p among them, so p reads only from here on; the share discloses the
// room's ops, so p learns who is in it.
func (n *Node) roomAddNoHistory(ctx context.Context, r store.Room, p []byte) (Room, error) {
	op, _, err := n.hist.postContent(ctx, r.ID, &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpAdd, Peer: p})
	if err != nil {
		return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
	}
	n.publish(op)
	r, err = n.hist.room(ctx, r.ID)
	if err != nil {
		return Room{}, err
	}
	keys, err := n.st.RoomKeys(ctx, r.ID)
	if err != nil {
		return Room{}, err
	}
	// p reads who is in the room from its ops, the add just posted among
	// them, and nothing else from before (node/disclose.go).
	disclosed, err := n.hist.disclosures(ctx, r.ID)
	if err != nil {
		return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
	}
	first, more := splitDisclosed(disclosed)
	n.hist.rotateMu.Lock()
	shares, err := n.hist.rotate(ctx, r, sendCandidate(keys), first)
	if err == nil && len(more) > 0 {
		var k store.RoomKey
		if k, err = n.hist.sendKey(ctx, r.ID); err == nil {
			var extra []*checked
			extra, err = n.hist.discloseMore(ctx, r, k, p, more)
			shares = append(shares, extra...)
		}
	}
	n.hist.rotateMu.Unlock()
	for _, c := range shares {
		n.publish(c)
	}
	if err != nil {
		return Room{}, fmt.Errorf("add to #%s: %w", r.Name, err)
	}
	return n.roomAfter(ctx, r.ID)
}
