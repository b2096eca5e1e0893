package node

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// roomOp posts a room op in room as n, and publishes it.
func roomOp(t *testing.T, n *Node, room string, c *wire.Content) {
	t.Helper()
	ctx := context.Background()
	id, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := n.hist.postContent(ctx, id, c)
	if err != nil {
		t.Fatal(err)
	}
	n.publish(ch)
}

// ownHead is n's own feed head as n holds it.
func ownHead(t *testing.T, n *Node) store.Head {
	t.Helper()
	heads, err := n.st.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if bytes.Equal(h.Author, n.hist.self) {
			return h
		}
	}
	t.Fatal("no feed of its own")
	return store.Head{}
}

// auditText finds the entry whose text starts with prefix.
func auditText(rep AuditReport, prefix string) (AuditEntry, bool) {
	for _, e := range rep.Entries {
		if strings.HasPrefix(e.Text, prefix) {
			return e, true
		}
	}
	return AuditEntry{}, false
}

func mustAudit(t *testing.T, n *Node, full bool) AuditReport {
	t.Helper()
	rep, err := n.Audit(context.Background(), full)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestAuditListsOps: roles, rooms, policy, invites, a forbidden op, a
// removal, the rotation it causes and a rename, each listed once in total
// order with who, what and whether it took effect, and verified; a member
// of the room sees the same roster ops and the room's ops too.
func TestAuditListsOps(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	if _, err := a.SetRole(ctx, "Member1", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateRoomNamed(ctx, "legal", []string{"Member1", "Member2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPolicy(ctx, PolicyRetentionDays, "90", "legal"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.InviteAs(ctx, time.Hour, "member"); err != nil {
		t.Fatal(err)
	}
	invs, _ := a.Invites(ctx, false)
	if len(invs) != 1 {
		t.Fatalf("invites: %+v", invs)
	}
	if _, err := a.RevokeInvite(ctx, invs[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "c reads #legal", func() bool {
		_, _, err := c.resolveRoom(ctx, "legal")
		return err == nil
	})
	// A member may not take others out of a room: stored, no effect.
	roomOp(t, c, "legal", &wire.Content{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpRemove, Peer: b.hist.self})
	if _, err := c.RoomLeave(ctx, "legal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a holds c's leave", func() bool {
		_, ok := auditText(mustAudit(t, a, false), "Member2 left #legal")
		return ok
	})
	if _, err := a.RoomAdd(ctx, "legal", "Member2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RoomRemove(ctx, "legal", "Member2"); err != nil { // rotates the key away from c
		t.Fatal(err)
	}
	// A member may not set policy: its op is stored and has no effect.
	head := ownHead(t, c)
	forged := forgeRoster(t, c, head.Seq+1, head.ID, c.hist.nextLamport(), &wire.RosterOp{Kind: wire.RosterPolicy, Key: PolicyInvite, Value: "members"})
	if _, err := a.hist.ingestRaw(ctx, [][]byte{forged.Marshal()}); err != nil {
		t.Fatal(err)
	}
	feedHeld(t, a, b)
	if _, err := a.RemoveMember(ctx, "Member2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, "general", "after Member2 was removed"); err != nil { // rotates #general's key
		t.Fatal(err)
	}
	if _, err := b.Rename(ctx, "Beatriz"); err != nil {
		t.Fatal(err)
	}
	// The roster in memory runs ahead of the commit; the audit reads the store.
	eventually(t, 60*time.Second, "a's audit holds b's rename", func() bool {
		_, ok := auditText(mustAudit(t, a, false), "Member1 changed their name to Beatriz")
		return ok
	})

	rep := mustAudit(t, a, false)
	if !rep.Verified || rep.WorkspaceName != "Acme" || rep.FounderName != "Ana" {
		t.Fatalf("report: verified %v, workspace %q, founder %q; chains %+v", rep.Verified, rep.WorkspaceName, rep.FounderName, rep.Chains)
	}
	want := []struct {
		text      string
		class, op string
		effective bool
	}{
		{"Ana admitted Member1 as member", AuditRoster, "admit", true},
		{"Ana admitted Member2 as member", AuditRoster, "admit", true},
		{"Ana made Beatriz admin", AuditRoster, "role", true},
		{"Ana created #general", AuditRoom, "create", true},
		{"Ana created #legal", AuditRoom, "create", true},
		{"Ana set retention-days to 90 in #legal", AuditRoster, "policy", true},
		{"Ana issued invite " + invs[0].ID[:8] + " for a new member, expiring ", AuditRoster, "invite", true},
		{"Ana revoked invite " + invs[0].ID[:8], AuditRoster, "revoke", true},
		{"Member2 removed Beatriz from #legal", AuditRoom, "remove", false},
		{"Member2 left #legal", AuditRoom, "leave", true},
		{"Ana added Member2 to #legal", AuditRoom, "add", true},
		{"Ana removed Member2 from #legal", AuditRoom, "remove", true},
		{"Member2 set invite to members for the workspace", AuditRoster, "policy", false},
		{"Ana removed Member2 (feed valid up to seq ", AuditRoster, "remove", true},
		{"Ana rotated the key of #legal to epoch 2, shared with 2 members", AuditKey, "rotate", true},
		{"Ana rotated the key of #general to epoch 2, shared with 2 members", AuditKey, "rotate", true},
		{"Member1 changed their name to Beatriz", AuditRoster, "profile", true},
	}
	for _, w := range want {
		e, ok := auditText(rep, w.text)
		if !ok {
			var got []string
			for _, e := range rep.Entries {
				got = append(got, e.Text)
			}
			t.Fatalf("no entry %q in\n%s", w.text, strings.Join(got, "\n"))
		}
		if e.Class != w.class || e.Op != w.op || e.Effective != w.effective {
			t.Errorf("%q: class %s op %s effective %v, want %s %s %v", w.text, e.Class, e.Op, e.Effective, w.class, w.op, w.effective)
		}
		if e.Signature != "ok" || e.Chain != ChainOK || len(e.ID) != 64 || len(e.Prev) != 64 || e.Author == "" {
			t.Errorf("%q: signature %s chain %s id %q prev %q author %q", w.text, e.Signature, e.Chain, e.ID, e.Prev, e.Author)
		}
	}
	// One total order, (lamport, author, seq); no envelope twice.
	seen := map[string]bool{}
	for i, e := range rep.Entries {
		if seen[e.ID] {
			t.Fatalf("envelope %s listed twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 {
			p := rep.Entries[i-1]
			if p.Lamport > e.Lamport || (p.Lamport == e.Lamport && p.Author == e.Author && p.Seq >= e.Seq) {
				t.Fatalf("entries %d and %d out of order: %+v, %+v", i-1, i, p, e)
			}
		}
	}
	for _, c := range rep.Chains {
		if c.Status != ChainOK || c.Checked == 0 || c.UpTo == 0 {
			t.Errorf("chain %+v", c)
		}
	}

	// b, in #legal and an admin, holds the same roster ops and #legal's ops.
	var rosterA []string
	for _, e := range rep.Entries {
		if e.Class == AuditRoster {
			rosterA = append(rosterA, e.ID)
		}
	}
	eventually(t, 60*time.Second, "b's audit lists the same roster ops and #legal's ops", func() bool {
		rb, err := b.Audit(ctx, false)
		if err != nil || !rb.Verified {
			return false
		}
		var rosterB []string
		for _, e := range rb.Entries {
			if e.Class == AuditRoster {
				rosterB = append(rosterB, e.ID)
			}
		}
		_, left := auditText(rb, "Member2 left #legal")
		_, rotated := auditText(rb, "Ana rotated the key of #legal")
		_, general := auditText(rb, "Ana rotated the key of #general")
		return strings.Join(rosterA, ",") == strings.Join(rosterB, ",") && left && rotated && general
	})
}

// tamper rewrites the stored bytes of envelope id in home's database
// (with its node closed) by edit.
func tamper(t *testing.T, home string, id string, edit func(*wire.Envelope)) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(home, databaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wid, _ := wire.ParseID(id)
	var raw []byte
	if err := db.QueryRow(`SELECT raw FROM envelopes WHERE id = ?`, wid[:]).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	env, _, err := wire.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(env)
	if _, err := db.Exec(`UPDATE envelopes SET raw = ? WHERE id = ?`, env.Marshal(), wid[:]); err != nil {
		t.Fatal(err)
	}
}

// TestAuditDetectsTampering: a changed byte in a stored message below a
// listed op breaks its author's chain from there; a changed signature on a
// roster op fails that op; a change above every listed op shows only with
// the full check.
func TestAuditDetectsTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("opens and reopens nodes; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	a := openNode(t, home)
	var msgs []Message
	var ops []wire.ID
	for i, days := range []string{"30", "60", "90"} {
		m, err := a.Send(ctx, "general", "message "+days)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		if _, err := a.SetPolicy(ctx, PolicyRetentionDays, days, ""); err != nil {
			t.Fatal(err)
		}
		envs, _ := a.st.RosterEnvelopes(ctx)
		ops = append(ops, envs[i].ID)
	}
	last, err := a.Send(ctx, "general", "after every op")
	if err != nil {
		t.Fatal(err)
	}
	rep := mustAudit(t, a, true)
	if !rep.Verified || len(rep.Chains) != 1 || rep.Chains[0].Status != ChainOK || rep.Chains[0].Signatures == 0 {
		t.Fatalf("untouched store: verified %v, chains %+v", rep.Verified, rep.Chains)
	}
	a.Close()

	// A byte of the second message's body: its chain breaks there.
	tamper(t, home, msgs[1].ID, func(e *wire.Envelope) { e.Signed[len(e.Signed)-1] ^= 1 })
	// The signature of the last policy op.
	tamper(t, home, ops[2].String(), func(e *wire.Envelope) { e.Sig[0] ^= 1 })
	// The message after every op, seen only by the full check.
	tamper(t, home, last.ID, func(e *wire.Envelope) { e.Signed[len(e.Signed)-1] ^= 1 })

	a = openNode(t, home)
	rep = mustAudit(t, a, false)
	if rep.Verified {
		t.Fatal("a tampered store verified")
	}
	ch := rep.Chains[0]
	if ch.Status != ChainBroken || ch.At != msgs[1].Seq || !strings.Contains(ch.Problem, "not to the ID") {
		t.Fatalf("chain %+v, want broken at seq %d", ch, msgs[1].Seq)
	}
	for _, e := range rep.Entries {
		wantChain := ChainOK
		if e.Seq >= msgs[1].Seq {
			wantChain = ChainBroken
		}
		wantSig := "ok"
		if e.ID == ops[2].String() {
			wantSig = "bad"
		}
		if e.Chain != wantChain || e.Signature != wantSig {
			t.Errorf("%q at seq %d: chain %s signature %s, want %s %s", e.Text, e.Seq, e.Chain, e.Signature, wantChain, wantSig)
		}
	}

	// Untouched below the listed ops, the feed verifies; past them only
	// the full check sees the change.
	a.Close()
	home2 := filepath.Join(t.TempDir(), "ben")
	initHome(t, home2)
	b := openNode(t, home2)
	if _, err := b.SetPolicy(ctx, PolicyFiles, "off", ""); err != nil {
		t.Fatal(err)
	}
	after, err := b.Send(ctx, "general", "later")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	tamper(t, home2, after.ID, func(e *wire.Envelope) { e.Signed[len(e.Signed)-1] ^= 1 })
	b = openNode(t, home2)
	if rep := mustAudit(t, b, false); !rep.Verified {
		t.Fatalf("a change above every listed op failed the default audit: %+v", rep.Chains)
	}
	rep = mustAudit(t, b, true)
	if rep.Verified || rep.Chains[0].Status != ChainBroken || rep.Chains[0].At != after.Seq {
		t.Fatalf("full audit: verified %v, chains %+v; want broken at seq %d", rep.Verified, rep.Chains, after.Seq)
	}
}
