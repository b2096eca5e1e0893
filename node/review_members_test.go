package node

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// office founds a workspace and provisions n-1 more members, each node open
// with no peers: tests move envelopes between them with give, in the order
// they choose.
func office(t *testing.T, n int) []*Node {
	t.Helper()
	ctx := context.Background()
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i))
	}
	initHome(t, homes[0])
	nodes := []*Node{openNodeAlone(t, homes[0])}
	for i := 1; i < n; i++ {
		if _, err := nodes[0].Provision(ctx, homes[i], fmt.Sprintf("Member%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < n; i++ {
		nodes = append(nodes, openNodeAlone(t, homes[i]))
	}
	return nodes
}

// TestRoomRemoveJudgedAtItsPlace: an admin takes a member out of a room,
// then is made a member again. Every node, whenever it gets the room's ops,
// must agree the member is out: a node that judged the removal by the
// author's role of today put it back in the room, and would share the
// room's next keys with it.
func TestRoomRemoveJudgedAtItsPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.SetRole(ctx, "Member1", "admin"); err != nil {
		t.Fatal(err)
	}
	give(t, a, b)
	give(t, a, c)
	if _, err := b.CreateRoomNamed(ctx, "legal", []string{"Ana", "Member2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RoomRemove(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	give(t, b, a)
	room := mustRoom(t, a, "legal")
	inRoom := func(h *history) bool {
		r, err := h.st.Room(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		return containsPeer(r.Members, c.hist.self)
	}
	if inRoom(a.hist) {
		t.Fatal("a: Member2 still in #legal after the admin's removal")
	}
	if _, err := a.SetRole(ctx, "Member1", "member"); err != nil {
		t.Fatal(err)
	}
	// A node that gets all of it now (a new device, a restored store).
	fresh := freshHistory(t, a, "", 0)
	envs, err := a.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	for _, e := range envs {
		raws = append(raws, e.Raw)
	}
	if _, err := fresh.ingestRaw(ctx, raws); err != nil {
		t.Fatal(err)
	}
	if inRoom(fresh) {
		r, _ := fresh.st.Room(ctx, room)
		t.Fatalf("a fresh store of the same envelopes has Member2 back in #legal (next key goes to %d recipients, Member2 among them: %v)",
			len(fresh.rotationRecipients(r)), containsPeer(fresh.rotationRecipients(r), c.hist.self))
	}
}

// TestDeleteJudgedAtItsPlace: an admin deletes a member's message, then is
// made a member again. Every node, in whatever order it gets the envelopes,
// must show the message deleted and hold no text of it: a node that judged
// the delete by its author's role of today showed the text again (and kept
// it) when the demotion came first, while nodes that got the delete earlier
// had erased it.
func TestDeleteJudgedAtItsPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 5)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.SetRole(ctx, "Member1", "admin"); err != nil {
		t.Fatal(err)
	}
	give(t, a, b)
	give(t, a, c)
	m, err := c.Send(ctx, "general", "the merger closes on friday")
	if err != nil {
		t.Fatal(err)
	}
	give(t, c, b)
	if _, err := b.Delete(ctx, "general", m.ID); err != nil {
		t.Fatal(err)
	}
	give(t, b, a)
	gone := func(n *Node, who string) {
		t.Helper()
		v, ok := find(t, n, "general", m.ID)
		if !ok {
			t.Fatalf("%s: message not held", who)
		}
		if !v.Deleted || v.Text != "" {
			t.Fatalf("%s: message shows as %+v, want deleted", who, v)
		}
		st, err := n.st.Message(ctx, mustID(t, m.ID))
		if err != nil {
			t.Fatal(err)
		}
		if st.Text != "" {
			t.Fatalf("%s: stored text of a deleted message is %q", who, st.Text)
		}
		if got, err := n.Search(ctx, "merger", 10); err != nil || len(got) != 0 {
			t.Fatalf("%s: search finds the deleted message: %v %v", who, got, err)
		}
	}
	gone(a, "a, before the demotion")
	if _, err := a.SetRole(ctx, "Member1", "member"); err != nil {
		t.Fatal(err)
	}
	gone(a, "a, after the demotion")

	// d gets it all at once: roster ops go first, so it knows of the
	// demotion before it applies the delete.
	d := nodes[3]
	give(t, a, d)
	gone(d, "d, demotion first")

	// e gets the role ops last: the delete first counts for nothing (its
	// author was a member as far as e knows), then the promotion before it
	// arrives and the delete must take effect, stored text and all.
	e := nodes[4]
	envs, err := a.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first, roles [][]byte
	for _, env := range envs {
		if env.Class == wire.ClassRoster {
			if _, hdr, err := wire.DecodeEnvelope(env.Raw); err == nil {
				if op, err := wire.DecodeRosterOp(hdr.Body); err == nil && op.Kind == wire.RosterRole {
					roles = append(roles, env.Raw)
					continue
				}
			}
		}
		first = append(first, env.Raw)
	}
	if len(roles) != 2 {
		t.Fatalf("%d role ops, want 2", len(roles))
	}
	if _, err := e.hist.ingestRaw(ctx, first); err != nil {
		t.Fatal(err)
	}
	if v, _ := find(t, e, "general", m.ID); v.Deleted || v.Text == "" {
		t.Fatalf("e: a member's delete of another's message counts: %+v", v)
	}
	if _, err := e.hist.ingestRaw(ctx, roles); err != nil {
		t.Fatal(err)
	}
	gone(e, "e, promotion last")
}

// TestInviteOfDemotedIssuer: an admin issues an invite and is then made a
// member (invites are for admins by default). A joiner with the code is
// told the invite no longer holds, and the token is not spent on an admit
// the roster refuses: once the issuer is an admin again, the code works.
func TestInviteOfDemotedIssuer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 2)
	a, b := nodes[0], nodes[1]
	setRole := func(role string) {
		t.Helper()
		if _, err := a.SetRole(ctx, "Member1", role); err != nil {
			t.Fatal(err)
		}
		give(t, a, b)
	}
	setRole("admin")
	code, err := b.Invite(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	give(t, b, a)
	setRole("member")
	before := len(rosterOf(b))
	resp, err := knockRaw(t, code)
	if err != nil {
		t.Fatalf("door: %v", err)
	}
	if resp.Status != wire.JoinRevoked || len(resp.NetKey) != 0 {
		t.Fatalf("demoted issuer's door answers %v (%q), want %v", resp.Status, resp.Message, wire.JoinRevoked)
	}
	if got := len(rosterOf(b)); got != before {
		t.Fatalf("roster went from %d to %d members", before, got)
	}
	setRole("admin")
	resp, err = knockRaw(t, code)
	if err != nil || resp.Status != wire.JoinOK {
		t.Fatalf("after the issuer is an admin again: %v, %v (%q)", err, resp.Status, resp.Message)
	}
}

// TestKeyShareEpochOutOfRange: a member signs a key share whose epoch the
// store cannot hold (over 2^63). It must be refused and counted like any
// bad share, not fail the transaction: before, every batch it came in —
// with other members' envelopes — was rolled back, at every sync.
func TestKeyShareEpochOutOfRange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	give(t, a, b)
	general := generalRoomID(a.hist.ws)
	cur, err := c.hist.sendKey(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.NewRoomKey()
	body, err := c.hist.sealShare(&wire.KeyShare{
		Workspace: c.hist.ws, Room: general, RoomKind: wire.RoomChannel, Epoch: math.MaxUint64,
		Parent: cur.KeyID, Cause: wire.CauseRotate,
		Recipients: [][]byte{a.hist.self, b.hist.self, c.hist.self}, Key: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := c.id.SealEnvelope(&wire.Header{
		Version: wire.Version, Workspace: c.hist.ws, Author: c.hist.self, Seq: 1,
		Lamport: c.hist.nextLamport(), Time: time.Now().UnixMilli(), Class: wire.ClassKeyShare, Room: general, Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, "general", "honest words"); err != nil {
		t.Fatal(err)
	}
	envs, err := b.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := [][]byte{env.Marshal()}
	for _, e := range envs {
		if bytes.Equal(e.Author, b.hist.self) {
			batch = append(batch, e.Raw)
		}
	}
	before := a.hist.rejectedCounts()[reasonMalformed]
	if _, err := a.hist.ingestRaw(ctx, batch); err != nil {
		t.Fatalf("a batch with the share fails: %v", err)
	}
	if got := texts(t, a, "general"); len(got) != 1 || got[0] != "honest words" {
		t.Fatalf("a's #general: %q", got)
	}
	if a.hist.rejectedCounts()[reasonMalformed] == before {
		t.Fatal("the share was not counted")
	}
	if k, err := a.hist.sendKey(ctx, general); err != nil || k.KeyID == key.ID() {
		t.Fatalf("send key %d, %v", k.Epoch, err)
	}
}
