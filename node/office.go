package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Office control (issue 6): roles, removal, policy and invites, each one
// roster op through the pipeline. The roster decides whether the op is
// valid; appendLocal refuses one it would not take.

// removedCloseAfter is how long a node that learns its own removal keeps
// its connections, so the member that told it sees the notice through.
const removedCloseAfter = 3 * time.Second

// SetRole makes the member named who (display name or peer ID) a member or
// an admin ("owner" only an owner may give).
func (n *Node) SetRole(ctx context.Context, who, role string) (Member, error) {
	r, err := parseRole(role)
	if err != nil {
		return Member{}, err
	}
	p, err := n.resolveMember(strings.TrimPrefix(who, "@"))
	if err != nil {
		return Member{}, err
	}
	if m, ok := n.hist.member(p); ok && !m.removed && m.role == r {
		// Said plainly rather than signed as an op that changes nothing.
		return Member{}, fmt.Errorf("%w: %s is %s %s already", ErrInvalid, m.name, article(r), r)
	}
	op := wire.RosterOp{Kind: wire.RosterRole, Target: p, Role: r}
	if err := n.appendRoster(ctx, &op); err != nil {
		return Member{}, fmt.Errorf("make %s %s: %w", who, r, err)
	}
	return n.memberView(p), nil
}

// article is "an" before admin and owner, "a" before member.
func article(r wire.Role) string {
	if r == wire.RoleMember {
		return "a"
	}
	return "an"
}

func parseRole(s string) (wire.Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "member":
		return wire.RoleMember, nil
	case "admin":
		return wire.RoleAdmin, nil
	case "owner":
		return wire.RoleOwner, nil
	}
	return 0, fmt.Errorf("%w: a role is member, admin or owner, not %q", ErrInvalid, s)
}

// RemoveMember removes the member named who from the workspace. Its feed
// stays valid up to the last envelope of it this node holds with no gap;
// everything it signs later is refused by every node, and the rooms it was
// in get a new key at their next message.
func (n *Node) RemoveMember(ctx context.Context, who string) (Member, error) {
	p, err := n.resolveMember(strings.TrimPrefix(who, "@"))
	if err != nil {
		return Member{}, err
	}
	view := n.memberView(p)
	op := wire.RosterOp{Kind: wire.RosterRemove, Target: p}
	err = n.st.Update(ctx, false, func(tx *store.Tx) error {
		head, ok, err := tx.Head(p)
		if ok {
			op.TargetSeq, op.TargetID = head.Seq, head.ID
		}
		return err
	})
	if err != nil {
		return Member{}, err
	}
	if err := n.appendRoster(ctx, &op); err != nil {
		return Member{}, fmt.Errorf("remove %s: %w", who, err)
	}
	view.Removed = true
	return view, nil
}

// appendRoster appends and publishes one roster op of this node.
func (n *Node) appendRoster(ctx context.Context, op *wire.RosterOp) error {
	c, _, err := n.hist.appendLocal(ctx, wire.ClassRoster, wire.ID{}, wire.ID{}, op.Marshal())
	if err != nil {
		return err
	}
	n.publish(c)
	return nil
}

// memberView is the API's view of one roster entry.
func (n *Node) memberView(p []byte) Member {
	m, _ := n.hist.member(p)
	return Member{PeerID: peer.ID(p).String(), Name: m.name, Role: m.role.String(), Removed: m.removed}
}

// Policy returns the workspace's policy now.
func (n *Node) Policy(ctx context.Context) (Policy, error) {
	return n.hist.currentPolicy(), nil
}

// SetPolicy signs one setting into the roster (admins only). room, if not
// empty, names the room a retention applies to.
func (n *Node) SetPolicy(ctx context.Context, key, value, room string) (Policy, error) {
	var rid wire.ID
	if room != "" {
		id, _, err := n.resolveRoom(ctx, room)
		if err != nil {
			return Policy{}, err
		}
		rid = id
	}
	v, err := normalPolicyValue(key, value, rid)
	if err != nil {
		return Policy{}, err
	}
	op := wire.RosterOp{Kind: wire.RosterPolicy, Key: key, Value: v, Room: rid}
	if err := n.appendRoster(ctx, &op); err != nil {
		return Policy{}, fmt.Errorf("set %s: %w", key, err)
	}
	return n.hist.currentPolicy(), nil
}

// InviteView is one invite of the workspace as `charla invites` lists it.
type InviteView struct {
	ID         string `json:"id"`
	Issuer     string `json:"issuer"`
	IssuerName string `json:"issuer_name"`
	Role       string `json:"role"`
	Issued     int64  `json:"issued"`  // unix ms, the issuer's clock
	Expires    int64  `json:"expires"` // unix ms
	State      string `json:"state"`   // pending, used, revoked, expired
}

// Invites lists every invite of the workspace the roster knows of, newest
// first; all false keeps only the pending ones.
func (n *Node) Invites(ctx context.Context, all bool) ([]InviteView, error) {
	now := time.Now().UnixMilli()
	n.hist.mu.Lock()
	out := []InviteView{}
	for _, inv := range n.hist.invites {
		v := InviteView{
			ID: hex.EncodeToString(inv.ID[:]), Issuer: peer.ID(inv.Issuer).String(),
			IssuerName: n.hist.members[string(inv.Issuer)].name, Role: inv.Role.String(),
			Issued: inv.Issued, Expires: inv.Expires, State: "pending",
		}
		switch {
		case inv.Used:
			v.State = "used"
		case inv.Revoked:
			v.State = "revoked"
		case inv.Expires <= now:
			v.State = "expired"
		}
		if all || v.State == "pending" {
			out = append(out, v)
		}
	}
	n.hist.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Issued != out[j].Issued {
			return out[i].Issued > out[j].Issued
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeInvite revokes the invite whose ID starts with id (at least 8 hex
// digits). Its issuer closes the door once it holds the op.
func (n *Node) RevokeInvite(ctx context.Context, id string) (InviteView, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 8 {
		return InviteView{}, fmt.Errorf("%w: give at least 8 hex digits of the invite ID; 'charla invites' lists them", ErrInvalid)
	}
	all, err := n.Invites(ctx, true)
	if err != nil {
		return InviteView{}, err
	}
	var found []InviteView
	for _, v := range all {
		if strings.HasPrefix(v.ID, id) {
			found = append(found, v)
		}
	}
	switch {
	case len(found) == 0:
		return InviteView{}, fmt.Errorf("%w: no invite %s; 'charla invites --all' lists them", ErrInvalid, id)
	case len(found) > 1:
		return InviteView{}, fmt.Errorf("%w: %d invites start with %s; give more digits", ErrAmbiguous, len(found), id)
	case found[0].State != "pending":
		return InviteView{}, fmt.Errorf("%w: invite %s is %s already", ErrInvalid, found[0].ID[:8], found[0].State)
	}
	raw, _ := hex.DecodeString(found[0].ID)
	op := wire.RosterOp{Kind: wire.RosterRevoke, Invite: wire.ID(raw)}
	if err := n.appendRoster(ctx, &op); err != nil {
		return InviteView{}, fmt.Errorf("revoke invite %s: %w", id, err)
	}
	found[0].State = "revoked"
	return found[0], nil
}

// inviteID names an invite in the roster without revealing its token.
func inviteID(hash [32]byte) wire.ID {
	return sha256.Sum256(append([]byte("charla/invite-id\x00"), hash[:]...))
}

// Rename changes this member's display name with its own signed record.
func (n *Node) Rename(ctx context.Context, name string) (Member, error) {
	name, err := checkName("name", name)
	if err != nil {
		return Member{}, err
	}
	me, _ := n.hist.member(n.hist.self)
	rec, err := n.id.MemberRecord(name)
	if err != nil {
		return Member{}, err
	}
	if rec.Recipient != me.recipient {
		return Member{}, fmt.Errorf("rename: this node's age recipient differs from the roster's")
	}
	op := wire.RosterOp{Kind: wire.RosterProfile, Member: rec}
	if err := n.appendRoster(ctx, &op); err != nil {
		return Member{}, fmt.Errorf("rename: %w", err)
	}
	return n.memberView(n.hist.self), nil
}

// memberRemoved runs when the roster removes p: its connections close a
// little later, so that it normally receives the removal first; when p is
// this node, it stops talking to the workspace.
func (n *Node) memberRemoved(p []byte) {
	id := peer.ID(p)
	if id == n.PeerID() {
		n.log.Warn("this node was removed from the workspace; it no longer syncs")
		time.AfterFunc(removedCloseAfter, func() {
			for _, q := range n.host.Network().Peers() {
				n.host.Network().ClosePeer(q)
			}
		})
		return
	}
	n.log.Info("member removed", "peer", id)
	// A removed member still connected is told at once (node/removal.go),
	// then cut off; gossip and every handler refuse it from now on.
	n.work.spawn(func() {
		if n.hist.isMember(id) {
			return // the removal was voided meanwhile
		}
		n.gsp.ps.BlacklistPeer(id) // drops its gossip queue and mesh place now
		if n.host.Network().Connectedness(id) == network.Connected && n.notices.due(id, time.Now()) {
			n.tellRemoved(id)
			return
		}
		n.host.Network().ClosePeer(id)
	})
}

// Office is what the local API asks of a node for office control. It is
// apart from Backend so that backends without it serve the rest.
type Office interface {
	SetRole(ctx context.Context, who, role string) (Member, error)
	RemoveMember(ctx context.Context, who string) (Member, error)
	Rename(ctx context.Context, name string) (Member, error)
	Policy(ctx context.Context) (Policy, error)
	SetPolicy(ctx context.Context, key, value, room string) (Policy, error)
	InviteAs(ctx context.Context, expires time.Duration, role string) (string, error)
	Invites(ctx context.Context, all bool) ([]InviteView, error)
	RevokeInvite(ctx context.Context, id string) (InviteView, error)
	RoomAdd(ctx context.Context, room, who string) (Room, error)
	RoomRemove(ctx context.Context, room, who string) (Room, error)
	RoomLeave(ctx context.Context, room string) (Room, error)
}

var _ Office = (*Node)(nil)
