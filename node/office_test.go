package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// rosterOf is a node's roster as (name → role or "removed"), for comparing nodes.
func rosterOf(n *Node) map[string]string {
	out := map[string]string{}
	n.hist.mu.Lock()
	defer n.hist.mu.Unlock()
	for _, m := range n.hist.members {
		if m.removed {
			out[m.name] = "removed"
		} else {
			out[m.name] = m.role.String()
		}
	}
	return out
}

func sameRoster(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// noCanary fails if text is anywhere in the database files of home.
func noCanary(t *testing.T, home, text string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, "*.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(text)) {
			t.Fatalf("%q found in %s", text, f)
		}
	}
}

// TestRemovedMemberCutOff is security test 2 of issue 6: a removed member,
// which still holds the network key, cannot post (its later envelopes are
// refused by all, whatever order they arrive in), cannot read what is sent
// after its removal, and knows it was removed.
func TestRemovedMemberCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := workspace(t, 3)
	ctx := context.Background()
	a, b, c := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, a, b, c)
	if _, err := c.Send(ctx, "general", "before removal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a holds c's message", func() bool {
		return len(texts(t, a, "general")) == 1
	})
	// A message c signed but nobody saw yet: after the cut, so it must be
	// refused when it shows up later.
	head := feedHeld(t, c, a, b)
	late := forgeContent(t, c, head.Seq+1, head.ID, 1<<40, &wire.Content{Kind: wire.KindText, Text: "written after the cut"})

	if _, err := a.RemoveMember(ctx, "Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "everyone sees c removed", func() bool {
		for _, n := range nodes {
			if rosterOf(n)["Member2"] != "removed" {
				return false
			}
		}
		return true
	})
	st, err := c.Status(ctx)
	if err != nil || !st.Removed {
		t.Fatalf("c's status: removed=%v err=%v", st.Removed, err)
	}
	if _, err := c.Send(ctx, "general", "let me in"); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed node's send: %v, want ErrRemoved", err)
	}
	// c's earlier words stay; the envelope beyond its cut is refused.
	if _, err := b.hist.ingestRaw(ctx, [][]byte{late.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, b, "general"); len(got) != 1 || got[0] != "before removal" {
		t.Fatalf("b's #general after the late envelope: %q", got)
	}
	if b.hist.rejectedCounts()[reasonRemoved] == 0 {
		t.Fatal("the envelope beyond the cut was not counted as from a removed member")
	}

	// The next message in #general rotates its key away from c.
	before, _ := a.st.RoomKeys(ctx, generalRoomID(a.hist.ws))
	const canary = "canary-after-removal-7f3a"
	if _, err := a.Send(ctx, "general", canary); err != nil {
		t.Fatal(err)
	}
	after, _ := a.st.RoomKeys(ctx, generalRoomID(a.hist.ws))
	if len(after) != len(before)+1 || newestKey(after).Epoch != newestKey(before).Epoch+1 {
		t.Fatalf("no rotation: %d keys before, %d after", len(before), len(after))
	}
	eventually(t, 60*time.Second, "b reads the canary", func() bool {
		got := texts(t, b, "general")
		return len(got) == 2 && got[1] == canary
	})
	if got, _ := c.st.RoomKeys(ctx, generalRoomID(a.hist.ws)); len(got) != len(before) {
		t.Fatalf("c holds %d keys of #general, want %d", len(got), len(before))
	}
	eventually(t, 30*time.Second, "a and b close c's connections", func() bool {
		return len(a.host.Network().ConnsToPeer(c.PeerID())) == 0 && len(b.host.Network().ConnsToPeer(c.PeerID())) == 0
	})
	c.Close()
	noCanary(t, homes[2], canary)
}

// TestAdminsRemoveEachOther: two admins, cut apart, remove each other; once
// they meet again every node ends with the same roster, one of them removed.
func TestAdminsRemoveEachOther(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, who := range []string{"Member1", "Member2"} {
		if _, err := a.SetRole(ctx, who, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "b and c are admins everywhere", func() bool {
		for _, n := range nodes {
			r := rosterOf(n)
			if r["Member1"] != "admin" || r["Member2"] != "admin" {
				return false
			}
		}
		return true
	})
	// Cut b and c off from everyone, then each removes the other.
	b.Close()
	c.Close()
	b = openNodeAlone(t, homes[1])
	c = openNodeAlone(t, homes[2])
	if _, err := b.RemoveMember(ctx, "Member2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveMember(ctx, "Member1"); err != nil {
		t.Fatal(err)
	}
	// Hand each one's ops to the other and to a, by sync, in turn.
	for _, from := range []*Node{b, c} {
		for _, to := range []*Node{a, b, c} {
			if to == from {
				continue
			}
			give(t, from, to)
		}
	}
	give(t, a, b)
	give(t, a, c)
	ra, rb, rc := rosterOf(a), rosterOf(b), rosterOf(c)
	if !sameRoster(ra, rb) || !sameRoster(ra, rc) {
		t.Fatalf("rosters differ:\na %v\nb %v\nc %v", ra, rb, rc)
	}
	if (ra["Member1"] == "removed") == (ra["Member2"] == "removed") {
		t.Fatalf("want exactly one of the two admins removed: %v", ra)
	}
}

// openNodeAlone opens home with no peers.
func openNodeAlone(t *testing.T, home string) *Node {
	return openNode(t, home)
}

// give hands every envelope from holds to to, through to's pipeline.
func give(t *testing.T, from, to *Node) {
	t.Helper()
	ctx := context.Background()
	envs, err := from.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raws := make([][]byte, len(envs))
	for i, e := range envs {
		raws[i] = e.Raw
	}
	if _, err := to.hist.ingestRaw(ctx, raws); err != nil {
		t.Fatal(err)
	}
}

// TestRosterIndependentOfArrivalOrder feeds the same roster ops to two new
// nodes in opposite orders: they compute the same roster.
func TestRosterIndependentOfArrivalOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	a := nodes[0]
	steps := []func() error{
		func() error { _, err := a.SetRole(ctx, "Member1", "admin"); return err },
		func() error { _, err := a.SetPolicy(ctx, PolicyInvite, "members", ""); return err },
		func() error { _, err := a.RemoveMember(ctx, "Member2"); return err },
		func() error { _, err := a.SetRole(ctx, "Member1", "member"); return err },
		func() error { _, err := a.SetPolicy(ctx, PolicyRetentionDays, "30", ""); return err },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	envs, err := a.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var roster [][]byte
	for _, e := range envs {
		if e.Class == wire.ClassRoster {
			roster = append(roster, e.Raw)
		}
	}
	want := rosterOf(a)
	for i, order := range [][]int{forward(len(roster)), backward(len(roster))} {
		h := freshHistory(t, a, homes[0], i)
		for _, j := range order {
			if _, err := h.ingestRaw(ctx, [][]byte{roster[j]}); err != nil {
				t.Fatal(err)
			}
		}
		// What waited for its author is in now too.
		got := map[string]string{}
		h.mu.Lock()
		for _, m := range h.members {
			got[m.name] = m.role.String()
			if m.removed {
				got[m.name] = "removed"
			}
		}
		pol := h.policy
		h.mu.Unlock()
		if !sameRoster(got, want) {
			t.Fatalf("order %d: roster %v, want %v", i, got, want)
		}
		if pol.Invite != "members" || pol.RetentionDays != 30 {
			t.Fatalf("order %d: policy %+v", i, pol)
		}
	}
}

func forward(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func backward(n int) []int {
	out := forward(n)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// freshHistory is an empty store of a's workspace, seen by a's identity.
func freshHistory(t *testing.T, a *Node, home string, i int) *history {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := newHistory(st, a.id, a.hist.genesis, a.log)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPolicyAndInvites: who may invite is policy; invites are listed by every
// member and an admin revokes them; a member cannot set policy.
func TestPolicyAndInvites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	a, b := nodes[0], nodes[1]
	if _, err := b.InviteAs(ctx, time.Hour, "member"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("member invites under admins-only policy: %v", err)
	}
	if _, err := b.SetPolicy(ctx, PolicyInvite, "members", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("member sets policy: %v", err)
	}
	if _, err := a.SetPolicy(ctx, PolicyInvite, "everyone", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad policy value: %v", err)
	}
	if _, err := a.SetPolicy(ctx, PolicyInvite, "members", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b holds the policy", func() bool {
		return b.hist.currentPolicy().Invite == "members"
	})
	code, err := b.InviteAs(ctx, time.Hour, "member")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.InviteAs(ctx, time.Hour, "admin"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("member invites an admin: %v", err)
	}
	eventually(t, 60*time.Second, "a lists b's invite", func() bool {
		vs, _ := a.Invites(ctx, false)
		return len(vs) == 1 && vs[0].IssuerName == "Member1" && vs[0].State == "pending"
	})
	vs, _ := a.Invites(ctx, false)
	if _, err := a.RevokeInvite(ctx, vs[0].ID[:10]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b holds the revocation and closes the door", func() bool {
		vs, _ := b.Invites(ctx, true)
		return len(vs) == 1 && vs[0].State == "revoked"
	})
	_, err = Join(ctx, filepath.Join(t.TempDir(), "joiner"), code, "Eve")
	if err == nil {
		t.Fatal("a revoked invite admitted someone")
	}
	if !errors.Is(err, ErrInviteRevoked) && !errors.Is(err, ErrIssuerUnreachable) {
		t.Fatalf("join with a revoked invite: %v", err)
	}
}

// TestRename: a member's own profile op changes its name everywhere.
func TestRename(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	a, b := nodes[0], nodes[1]
	if _, err := b.Rename(ctx, "Beatriz"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a knows b as Beatriz", func() bool {
		return rosterOf(a)["Beatriz"] == "member"
	})
}

// TestRoomAddRemoveLeave: a member added to a room reads its history; one
// taken out gets no key for what is sent afterwards.
func TestRoomAddRemoveLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.CreateRoomNamed(ctx, "legal", []string{"Member1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, "legal", "old contract notes"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RoomAdd(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "c reads the history of #legal", func() bool {
		got, err := c.Log(ctx, "legal", 10)
		return err == nil && len(got) == 1 && got[0].Text == "old contract notes"
	})
	eventually(t, 60*time.Second, "b reads #legal", func() bool {
		_, _, err := b.resolveRoom(ctx, "legal")
		return err == nil
	})
	if _, err := b.RoomRemove(ctx, "legal", "Member2"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a member takes another out of a room: %v", err)
	}
	if _, err := a.RoomRemove(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	const canary = "canary-legal-after-remove-91c"
	// Once b holds the removal (and a's new key), nothing b sends reaches c.
	legal := mustRoom(t, a, "legal")
	eventually(t, 60*time.Second, "b holds the removal and the new key", func() bool {
		ka, _ := a.st.RoomKeys(ctx, legal)
		kb, _ := b.st.RoomKeys(ctx, legal)
		r, err := b.hist.room(ctx, legal)
		return err == nil && len(ka) == 2 && len(kb) == 2 && !containsPeer(r.Members, c.hist.self)
	})
	if _, err := b.Send(ctx, "legal", canary); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a reads b's canary", func() bool {
		got, _ := a.Log(ctx, "legal", 10)
		return len(got) > 0 && got[len(got)-1].Text == canary
	})
	eventually(t, 60*time.Second, "c holds b's canary envelope", func() bool {
		n, _ := c.st.EnvelopeCount(ctx)
		m, _ := b.st.EnvelopeCount(ctx)
		return n == m
	})
	c.Close()
	noCanary(t, homes[2], canary)
	if _, err := b.RoomLeave(ctx, "legal"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, "legal", "still here?"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("send after leaving: %v", err)
	}
}

func mustRoom(t *testing.T, n *Node, name string) wire.ID {
	t.Helper()
	id, _, err := n.resolveRoom(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestFilePolicy: a node refuses to post a file the policy forbids, and one
// that did not know the policy yet has its file refused by the readers.
func TestFilePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 2)
	a, b := nodes[0], nodes[1]
	readsGeneral(t, a, b)
	b.Close()
	b = openNodeAlone(t, homes[1])
	path, _ := randomFile(t, "plan.pdf", 5000)
	if _, err := b.SendFile(ctx, "general", path); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPolicy(ctx, PolicyMaxFileSize, "1KB", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendFile(ctx, "general", path); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a posts a file over the policy's size: %v", err)
	}
	give(t, b, a)
	if a.hist.rejectedCounts()[reasonPolicy] == 0 {
		t.Fatal("a did not count b's file as refused by policy")
	}
	if fs, err := a.Files(ctx, "general"); err != nil || len(fs) != 0 {
		t.Fatalf("a lists %d files (err %v), want none", len(fs), err)
	}
	if _, err := a.SetPolicy(ctx, PolicyFiles, "off", ""); err != nil {
		t.Fatal(err)
	}
	small, _ := randomFile(t, "note.txt", 10)
	if _, err := a.SendFile(ctx, "general", small); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "off") {
		t.Fatalf("a posts a file with files off: %v", err)
	}
}

// TestRoomAddedByMember: a member who did not create a room adds another;
// the newcomer, who cannot read the room's creation, reads it all the same.
// A forged "first key" for the room, by someone who did not create it, is
// refused.
func TestRoomAddedByMember(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.CreateRoomNamed(ctx, "ops", []string{"Member1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, "ops", "runbook v1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b reads #ops", func() bool {
		got, err := b.Log(ctx, "ops", 10)
		return err == nil && len(got) == 1
	})
	if _, err := b.RoomAdd(ctx, "ops", "Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "c reads #ops", func() bool {
		got, err := c.Log(ctx, "ops", 10)
		return err == nil && len(got) == 1 && got[0].Text == "runbook v1"
	})
	room := mustRoom(t, a, "ops")
	key, _ := crypto.NewRoomKey()
	before := a.hist.rejectedCounts()[reasonForbidden]
	forged, err := c.hist.shareKey(ctx, &wire.KeyShare{
		Workspace: c.hist.ws, Room: room, RoomKind: wire.RoomChannel, Epoch: 1, Cause: wire.CauseCreate,
		Recipients: [][]byte{a.hist.self, c.hist.self}, Key: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.hist.ingestRaw(ctx, [][]byte{forged.raw}); err != nil {
		t.Fatal(err)
	}
	if a.hist.rejectedCounts()[reasonForbidden] == before {
		t.Fatal("a took a forged first key for a room c did not create")
	}
	if k, _ := a.hist.sendKey(ctx, room); k.KeyID == key.ID() {
		t.Fatal("a would send with the forged key")
	}
}

// TestNoHistoryNewcomer: a room created --no-history, a member added later
// by another member (not its creator). The newcomer reads nothing from
// before its join, yet knows who is in the room (its ops were disclosed to
// it), talks both ways with the first members, and, added in turn by the
// newcomer, a fourth member learns the members too, from the disclosures the
// newcomer could make of what was disclosed to it.
func TestNoHistoryNewcomer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 4)
	ana, ben, cai, dan := nodes[0], nodes[1], nodes[2], nodes[3]
	allKnown(t, nodes...)
	if _, err := ana.CreateRoomNoHistory(ctx, "board", []string{"Member1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Send(ctx, "board", "before cai"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben reads #board", func() bool {
		got, err := ben.Log(ctx, "board", 10)
		return err == nil && len(got) == 1
	})
	room := mustRoom(t, ana, "board")
	members := func(n *Node, want ...*Node) func() bool {
		return func() bool {
			r, err := n.hist.room(ctx, room)
			if err != nil || !r.MembersKnown || len(r.Members) != len(want) {
				return false
			}
			for _, w := range want {
				if !containsPeer(r.Members, w.hist.self) {
					return false
				}
			}
			return true
		}
	}
	if _, err := ben.RoomAdd(ctx, "board", "Member2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai knows #board's members", members(cai, ana, ben, cai))
	if _, err := ben.Send(ctx, "board", "welcome cai"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai reads ben's welcome", func() bool {
		got, err := cai.Log(ctx, "board", 10)
		return err == nil && len(got) == 1 && got[0].Text == "welcome cai"
	})
	if _, err := cai.Send(ctx, "board", "thanks"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{ana, ben} {
		eventually(t, 60*time.Second, "the first members read cai", func() bool {
			got, err := n.Log(ctx, "board", 10)
			return err == nil && len(got) == 3 && got[2].Text == "thanks"
		})
	}
	if _, err := cai.RoomAdd(ctx, "board", "Member3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "dan knows #board's members", members(dan, ana, ben, cai, dan))
	for _, n := range []*Node{cai, dan} {
		got, err := n.Log(ctx, "board", 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if m.Text == "before cai" {
				t.Errorf("%s, added without history, reads %q", n.PeerID(), m.Text)
			}
		}
	}
}

// TestSetRoleUnchanged: making a member what it is already is refused with
// a plain error, and signs nothing.
func TestSetRoleUnchanged(t *testing.T) {
	ctx := context.Background()
	nodes := office(t, 2)
	a := nodes[0]
	before, err := a.st.EnvelopeCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.SetRole(ctx, "Member1", "member")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Member1 is a member already") {
		t.Errorf("demote a member: %v, want it refused as a member already", err)
	}
	if after, _ := a.st.EnvelopeCount(ctx); after != before {
		t.Errorf("the refused change signed %d envelopes", after-before)
	}
	if _, err := a.SetRole(ctx, "Member1", "admin"); err != nil {
		t.Fatalf("promote a member: %v", err)
	}
	if _, err := a.SetRole(ctx, "Member1", "admin"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "an admin already") {
		t.Errorf("promote an admin: %v, want it refused as an admin already", err)
	}
}

// TestRefusalSaysWhy: a change the roster would not take is refused with
// why and what to do, by the kind of change.
func TestRefusalSaysWhy(t *testing.T) {
	ctx := context.Background()
	nodes := office(t, 2)
	ben := nodes[1]
	hintOf := func(err error) string {
		if h, ok := errors.AsType[*hinted](err); ok {
			return h.Hint()
		}
		return ""
	}
	_, err := ben.RemoveMember(ctx, "Ana")
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "only admins and the owner can make a remove change, and you are a member") ||
		!strings.Contains(hintOf(err), "ask an admin") {
		t.Errorf("a member removes the owner: %v (hint %q)", err, hintOf(err))
	}
	_, err = ben.Invite(ctx, time.Hour)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "only admins invite in this workspace") ||
		!strings.Contains(hintOf(err), "charla policy set invite members") {
		t.Errorf("a member invites: %v (hint %q)", err, hintOf(err))
	}
}
