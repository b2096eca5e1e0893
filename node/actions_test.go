package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

// find returns the view of message id in room on n, and whether it is held.
func find(t *testing.T, n *Node, room, id string) (Message, bool) {
	t.Helper()
	ms, err := n.Log(context.Background(), room, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return Message{}, false
}

func readsGeneral(t *testing.T, nodes ...*Node) {
	t.Helper()
	eventually(t, 60*time.Second, "every node reads #general", func() bool {
		for _, n := range nodes {
			if _, _, err := n.resolveRoom(context.Background(), "general"); err != nil {
				return false
			}
		}
		return true
	})
}

// TestEditsDeletesReactionsReplies: the author's edit applies everywhere,
// the later of two edits wins, someone else's edit has no effect, a delete
// takes the text out of search, reactions are counted and toggled, and a
// reply names the message it answers.
func TestEditsDeletesReactionsReplies(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)

	m, err := ana.Send(ctx, "general", "the meeting is at nine")
	if err != nil {
		t.Fatal(err)
	}
	everywhere := func(what string, ok func(Message) bool) {
		t.Helper()
		eventually(t, 60*time.Second, what, func() bool {
			for _, n := range nodes {
				v, held := find(t, n, "general", m.ID)
				if !held || !ok(v) {
					return false
				}
			}
			return true
		})
	}
	everywhere("the message everywhere", func(Message) bool { return true })

	if _, err := ben.Edit(ctx, "general", m.ID, "hijacked"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ben edits ana's message: %v, want ErrInvalid", err)
	}
	// A forged one, past the API's check, is stored and has no effect.
	for _, c := range []*wire.Content{
		{Kind: wire.KindEdit, Target: mustID(t, m.ID), Text: "hijacked"},
		{Kind: wire.KindDelete, Target: mustID(t, m.ID)}, // ben is no admin
	} {
		if _, _, err := ben.hist.postContent(ctx, generalRoomID(ben.hist.ws), c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ana.Edit(ctx, "general", m.ID, "the meeting is at ten"); err != nil {
		t.Fatal(err)
	}
	v, err := ana.Edit(ctx, "general", m.ID, "the meeting is at eleven")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Edited || v.Text != "the meeting is at eleven" {
		t.Fatalf("after edits: %+v", v)
	}
	everywhere("the later edit everywhere", func(v Message) bool {
		return v.Edited && v.Text == "the meeting is at eleven" && !v.Deleted
	})

	// Reactions: ben and cai 👍, cai 🎉 then takes it back.
	if _, err := ben.React(ctx, "general", m.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.React(ctx, "general", m.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.React(ctx, "general", m.ID, "🎉"); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.React(ctx, "general", m.ID, "🎉"); err != nil {
		t.Fatal(err)
	}
	everywhere("two 👍 and no 🎉", func(v Message) bool {
		return len(v.Reactions) == 1 && v.Reactions[0].Emoji == "👍" && v.Reactions[0].Count == 2
	})
	if v, _ := find(t, ben, "general", m.ID); !v.Reactions[0].Mine {
		t.Fatalf("ben's 👍 is not his: %+v", v.Reactions)
	}
	if v, _ := find(t, ana, "general", m.ID); v.Reactions[0].Mine {
		t.Fatalf("ana did not react: %+v", v.Reactions)
	}

	// A reply carries what it answers.
	r, err := cai.Reply(ctx, "general", m.ID, "see you there")
	if err != nil {
		t.Fatal(err)
	}
	if r.ReplyTo != m.ID || r.ReplyText != "the meeting is at eleven" || r.ReplyAuthor != "Ana" {
		t.Fatalf("reply: %+v", r)
	}
	eventually(t, 60*time.Second, "the reply everywhere", func() bool {
		for _, n := range nodes {
			if v, ok := find(t, n, "general", r.ID); !ok || v.ReplyTo != m.ID {
				return false
			}
		}
		return true
	})

	// ben may not delete ana's message; ana (the owner) may delete cai's reply.
	if _, err := ben.Delete(ctx, "general", m.ID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ben deletes ana's message: %v, want ErrInvalid", err)
	}
	if _, err := ana.Delete(ctx, "general", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Delete(ctx, "general", m.ID); err != nil {
		t.Fatal(err)
	}
	everywhere("deleted everywhere", func(v Message) bool { return v.Deleted && v.Text == "" && len(v.Reactions) == 0 })
	for _, n := range nodes {
		if v, _ := find(t, n, "general", r.ID); !v.Deleted {
			t.Fatalf("reply not deleted: %+v", v)
		}
		for _, q := range []string{"eleven", "nine", "hijacked"} {
			if got, err := n.Search(ctx, q, 10); err != nil || len(got) != 0 {
				t.Fatalf("search %q after delete: %v %v", q, got, err)
			}
		}
	}
}

func mustID(t *testing.T, s string) wire.ID {
	t.Helper()
	id, err := wire.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestActionsBeforeTarget: edits and a reaction that arrive before their
// target apply once it arrives, the later edit winning whatever the order.
func TestActionsBeforeTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	head := feedHeld(t, ana, ben, cai)
	// ana's next three envelopes, made by hand and never published: the
	// message, then two edits of it.
	prev, lamport := head.ID, uint64(1<<40)
	var ids []wire.ID
	var raws [][]byte
	for i, c := range []*wire.Content{
		{Kind: wire.KindText, Text: "draft one"},
		{Kind: wire.KindEdit, Text: "draft two"},
		{Kind: wire.KindEdit, Text: "draft three"},
		{Kind: wire.KindReaction, Text: "👀"},
	} {
		if i > 0 {
			c.Target = ids[0]
		}
		env := forgeContent(t, ana, head.Seq+1+uint64(i), prev, lamport+uint64(i), c)
		prev = env.ID()
		ids = append(ids, env.ID())
		raws = append(raws, env.Marshal())
	}
	// ben: newest first; cai: oldest first.
	for i := len(raws) - 1; i >= 0; i-- {
		if _, err := ben.hist.ingestRaw(ctx, raws[i:i+1]); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, held := find(t, ben, "general", ids[0].String()); held {
				t.Fatal("the message is held before it arrived")
			}
		}
	}
	for i := range raws {
		if _, err := cai.hist.ingestRaw(ctx, raws[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{ben, cai} {
		v, held := find(t, n, "general", ids[0].String())
		if !held || !v.Edited || v.Text != "draft three" || len(v.Reactions) != 1 || v.Reactions[0].Count != 1 {
			t.Fatalf("after edits in any order: %+v", v)
		}
		if got, _ := n.Search(ctx, "draft one", 10); len(got) != 0 {
			t.Fatalf("search finds the text edited away: %+v", got)
		}
		if got, _ := n.Search(ctx, "three", 10); len(got) != 1 {
			t.Fatalf("search misses the edited text: %+v", got)
		}
	}
}

// soloSent is a founder's node alone, its home, and a text it sent to
// #general.
func soloSent(t *testing.T, text string) (*Node, string, Message) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	n := openNode(t, home)
	m, err := n.Send(context.Background(), "general", text)
	if err != nil {
		t.Fatal(err)
	}
	return n, home, m
}

// TestReplyViewAfterRestart: a reply's event carries what it answers, and
// so does its view after a restart, when the filter of what actions name
// is rebuilt from the store (a view reads actions only when it may have
// some).
func TestReplyViewAfterRestart(t *testing.T) {
	ctx := context.Background()
	n, home, m := soloSent(t, "the meeting is at eleven")
	sub, stop := context.WithCancel(ctx)
	defer stop()
	events := n.Subscribe(sub)
	r, err := n.Reply(ctx, "general", m.ID, "see you there")
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Message != nil && ev.Message.ID == r.ID {
			if ev.Message.ReplyTo != m.ID || ev.Message.ReplyText != "the meeting is at eleven" {
				t.Errorf("the reply's event: %+v", *ev.Message)
			}
			break
		}
	}
	n.Close()
	n = openNode(t, home)
	v, ok := find(t, n, "general", r.ID)
	if !ok || v.ReplyTo != m.ID || v.ReplyText != "the meeting is at eleven" || v.ReplyAuthor != "Ana" {
		t.Errorf("the reply after a restart: %+v (found %v)", v, ok)
	}
	if v, _ := find(t, n, "general", m.ID); v.ReplyTo != "" {
		t.Errorf("the message replied to reads as a reply: %+v", v)
	}
}

// TestReloadKeepsTargets: a reload rebuilds the filter of action targets
// from the store (after a write that failed, or a local roster op the
// roster refused) while other ingests go on. One of them notes its action's
// target in memory (applyAction, putReply) and commits after the reload
// read the actions: the filter must keep that note, or the target's view,
// and settle, skip its reactions, edits and deletes until a restart.
func TestReloadKeepsTargets(t *testing.T) {
	ctx := context.Background()
	n, _, m := soloSent(t, "lunch at one?")
	id, err := wire.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n.hist.mayBeTargeted(id) {
		t.Skip("the message's ID is a false positive of the filter")
	}
	n.hist.targeted(id) // an action on it, about to be committed beside the reload
	if err := n.hist.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.hist.mayBeTargeted(id) {
		t.Error("a reload forgot a target noted in memory: its actions would not be read")
	}
}
