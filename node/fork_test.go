package node

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// TestForkSameCanonicalEverywhere: an author signs two envelopes at one seq
// (a restored backup, a bug); nodes that receive them in opposite orders keep
// the same one — the lower ID — and show the other as a fork.
func TestForkSameCanonicalEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	eventually(t, 60*time.Second, "everyone reads #general", func() bool {
		for _, n := range []*Node{ben, cai} {
			if _, _, err := n.resolveRoom(ctx, "general"); err != nil {
				return false
			}
		}
		return true
	})
	head := feedHeld(t, ana, ben, cai)
	forge := func(text string) []byte {
		return forgeContent(t, ana, head.Seq+1, head.ID, 1<<40, &wire.Content{Kind: wire.KindText, Text: text}).Marshal()
	}
	x, y := forge("branch x"), forge("branch y")
	if _, err := ben.hist.ingestRaw(ctx, [][]byte{x}); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.hist.ingestRaw(ctx, [][]byte{y}); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.hist.ingestRaw(ctx, [][]byte{y}); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.hist.ingestRaw(ctx, [][]byte{x}); err != nil {
		t.Fatal(err)
	}
	canonical := func(n *Node) (id wire.ID) {
		n.st.Update(ctx, false, func(tx *store.Tx) error {
			id, _, _ = tx.EnvelopeAt(ana.hist.self, head.Seq+1)
			return nil
		})
		return id
	}
	ex, _, _ := wire.DecodeEnvelope(x)
	ey, _, _ := wire.DecodeEnvelope(y)
	want, other := ex.ID(), ey.ID()
	if bytes.Compare(other[:], want[:]) < 0 {
		want = other
	}
	for name, n := range map[string]*Node{"ben": ben, "cai": cai} {
		if got := canonical(n); got != want {
			t.Errorf("%s keeps %s at the fork, want the lower ID %s", name, got, want)
		}
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Forks) != 1 || st.Forks[0].Seq != head.Seq+1 {
			t.Errorf("%s status forks = %+v, want one at seq %d", name, st.Forks, head.Seq+1)
		}
		ms, _ := n.Log(ctx, "general", 10)
		if len(ms) != 1 || ms[0].ID != want.String() {
			t.Errorf("%s shows %+v, want only the canonical branch", name, ms)
		}
	}
}

// TestSyncSkipsWhatIsHeldAboveAGap: a puller that holds seqs above a gap
// gets only what it lacks.
func TestSyncSkipsWhatIsHeldAboveAGap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir() + "/ana"
	initHome(t, home)
	ana := openNode(t, home)
	heads, _ := ana.st.Heads(ctx)
	base := heads[0].Seq
	for _, s := range []string{"a", "b", "c"} {
		if _, err := ana.Send(ctx, "general", s); err != nil {
			t.Fatal(err)
		}
	}
	self := ana.hist.self
	v := &wire.Vector{Entries: []wire.VectorEntry{{Author: self, Seq: base, ID: heads[0].ID}}}
	held := &wire.Held{Entries: []wire.HeldEntry{{Author: self, Seqs: []uint64{base + 2}}}}
	envs, err := ana.missing(ctx, v, held)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range envs {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != 2 || seqs[0] != base+1 || seqs[1] != base+3 {
		t.Fatalf("sent seqs %v, want %d and %d", seqs, base+1, base+3)
	}
}

// feedHeld waits until every node holds as many feeds as the first, and
// returns the first node's own head.
func feedHeld(t *testing.T, nodes ...*Node) store.Head {
	t.Helper()
	ctx := context.Background()
	eventually(t, 60*time.Second, "everyone holds the same feeds", func() bool {
		a, _ := nodes[0].st.Heads(ctx)
		for _, n := range nodes[1:] {
			if b, _ := n.st.Heads(ctx); len(a) == 0 || len(b) != len(a) {
				return false
			}
		}
		return true
	})
	heads, _ := nodes[0].st.Heads(ctx)
	for _, h := range heads {
		if bytes.Equal(h.Author, nodes[0].hist.self) {
			return h
		}
	}
	t.Fatal("the node holds no feed of its own")
	return store.Head{}
}

// forgeContent signs, as n and by hand, a #general envelope at seq after
// prev that was never published: for tests that deliver envelopes in an
// order of their choosing, or sign two at one seq.
func forgeContent(t *testing.T, n *Node, seq uint64, prev wire.ID, lamport uint64, c *wire.Content) *wire.Envelope {
	t.Helper()
	return forgeAt(t, n, generalRoomID(n.hist.ws), seq, prev, lamport, time.Now(), c)
}

// forgeAt signs, as n, a content envelope of room at seq after prev with the
// author time tm: history written days ago, for retention to find.
func forgeAt(t *testing.T, n *Node, room wire.ID, seq uint64, prev wire.ID, lamport uint64, tm time.Time, c *wire.Content) *wire.Envelope {
	t.Helper()
	k, err := n.hist.sendKey(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	body, err := crypto.EncryptContent(crypto.RoomKey(k.Key), c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	env, err := n.id.SealEnvelope(&wire.Header{
		Version: wire.Version, Workspace: n.hist.ws, Author: n.hist.self, Seq: seq, Prev: prev,
		Lamport: lamport, Time: tm.UnixMilli(), Class: wire.ClassContent, Room: room, Key: k.KeyID, Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// forgeRoster signs, as n and by hand, a roster op at seq after prev.
func forgeRoster(t *testing.T, n *Node, seq uint64, prev wire.ID, lamport uint64, op *wire.RosterOp) *wire.Envelope {
	t.Helper()
	env, err := n.id.SealEnvelope(&wire.Header{
		Version: wire.Version, Workspace: n.hist.ws, Author: n.hist.self, Seq: seq, Prev: prev,
		Lamport: lamport, Time: time.Now().UnixMilli(), Class: wire.ClassRoster, Body: op.Marshal(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestForkUndoesRosterOp: the owner signs two envelopes at one seq, a
// promotion and a message. Where the promotion lost the fork, its effect
// is undone, on every node alike, whatever order the branches arrive in.
func TestForkUndoesRosterOp(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, ben, cai)
	head := feedHeld(t, ana, ben, cai)
	var promote, text []byte
	var pid, tid wire.ID
	// Sign pairs until the message has the lower ID: the promotion must lose.
	for i := 0; ; i++ {
		p := forgeRoster(t, ana, head.Seq+1, head.ID, 1<<40+uint64(i), &wire.RosterOp{Kind: wire.RosterRole, Target: ben.hist.self, Role: wire.RoleAdmin})
		m := forgeContent(t, ana, head.Seq+1, head.ID, 1<<40+uint64(i), &wire.Content{Kind: wire.KindText, Text: "the other branch"})
		pid, tid = p.ID(), m.ID()
		if bytes.Compare(tid[:], pid[:]) < 0 {
			promote, text = p.Marshal(), m.Marshal()
			break
		}
	}
	for _, order := range []struct {
		n     *Node
		first []byte
		then  []byte
	}{{ben, promote, text}, {cai, text, promote}} {
		for _, raw := range [][]byte{order.first, order.then} {
			if _, err := order.n.hist.ingestRaw(ctx, [][]byte{raw}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, n := range map[string]*Node{"ben": ben, "cai": cai} {
		if r := rosterOf(n)["Member1"]; r != "member" {
			t.Errorf("%s: Member1 is %s; the promotion lost the fork", name, r)
		}
	}
}

// TestSyncForkOfferKeepsWinner: sync offers every fork a node holds. An
// envelope of a branch that lost further down (its prev is not the
// envelope held below it) is a fork of that branch, whatever its ID: it
// must not displace the winning branch at its seq, or every pull that
// offers it would cut the winner's feed back again.
func TestSyncForkOfferKeepsWinner(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	readsGeneral(t, ben)
	head := feedHeld(t, ana, ben)
	branch := func(n, i int, text string) []*wire.Envelope {
		var out []*wire.Envelope
		prev := head.ID
		for s := 1; s <= n; s++ {
			e := forgeContent(t, ana, head.Seq+uint64(s), prev, 1<<40+uint64(100*i+s), &wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("%s %d", text, s)})
			out = append(out, e)
			prev = e.ID()
		}
		return out
	}
	lower := func(a, b wire.ID) bool { return bytes.Compare(a[:], b[:]) < 0 }
	// y wins at the fork (head.Seq+1); x's second envelope has the lower ID
	// at head.Seq+2, where the two do not fork.
	var x, y []*wire.Envelope
	for i := 0; ; i++ {
		x, y = branch(2, i, "branch x"), branch(3, i, "branch y")
		if lower(y[0].ID(), x[0].ID()) && lower(x[1].ID(), y[1].ID()) {
			break
		}
	}
	for _, e := range append(y, x...) {
		if _, err := ben.hist.ingestRaw(ctx, [][]byte{e.Marshal()}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := headOf(t, ben, ana.hist.self), head.Seq+3; got != want {
		t.Fatalf("ben holds ana's feed up to %d after the losing branch's envelopes came, want %d (the winning branch)", got, want)
	}
	st, err := ben.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Forks) != 2 {
		t.Errorf("ben shows forks %+v, want the losing branch's two", st.Forks)
	}
}

// TestSyncForkBranchReachesPuller: an author signed two branches from one
// seq (a device restored from an old backup, offline), and two nodes each
// hold only one of them. Sync alone must bring each the other's branch, so
// both keep the one with the lower ID: a laptop that held the losing branch
// when it left must not keep it for ever because its head is as high as the
// winner's, or higher.
func TestSyncForkBranchReachesPuller(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	for _, tc := range []struct {
		name      string
		lose, win int // lengths of the two branches
	}{
		{"loser shorter", 2, 3},
		{"same length", 2, 2},
		{"loser longer", 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) { testSyncFork(t, tc.lose, tc.win) })
	}
}

func testSyncFork(t *testing.T, loseLen, winLen int) {
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, ben, cai)
	head := feedHeld(t, ana, ben, cai)
	branch := func(n, i int, text string) [][]byte {
		var out [][]byte
		prev := head.ID
		for s := 1; s <= n; s++ {
			e := forgeContent(t, ana, head.Seq+uint64(s), prev, 1<<40+uint64(100*i+s), &wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("%s %d", text, s)})
			out = append(out, e.Marshal())
			prev = e.ID()
		}
		return out
	}
	idOf := func(raw []byte) wire.ID {
		e, _, err := wire.DecodeEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID()
	}
	// Sign pairs of branches until the one meant to win has the lower ID at
	// the fork.
	var x, y [][]byte
	for i := 0; ; i++ {
		x, y = branch(loseLen, i, "branch x"), branch(winLen, i, "branch y")
		if lo, w := idOf(x[0]), idOf(y[0]); bytes.Compare(w[:], lo[:]) < 0 {
			break
		}
	}
	win := idOf(y[0])
	// The author is gone; ben holds the losing branch, cai the winning one,
	// and they meet each other only.
	ana.Close()
	if _, err := ben.hist.ingestRaw(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := cai.hist.ingestRaw(ctx, y); err != nil {
		t.Fatal(err)
	}
	canonical := func(n *Node) (id wire.ID) {
		n.st.Update(ctx, false, func(tx *store.Tx) error {
			id, _, _ = tx.EnvelopeAt(ana.hist.self, head.Seq+1)
			return nil
		})
		return id
	}
	want := head.Seq + uint64(winLen)
	deadline := time.Now().Add(20 * time.Second)
	for canonical(ben) != win || canonical(cai) != win || headOf(t, ben, ana.hist.self) != want || headOf(t, cai, ana.hist.self) != want {
		if time.Now().After(deadline) {
			t.Fatalf("after pulls both ways: at the fork ben keeps %s, cai %s, want the lower ID %s on both; heads ben %d, cai %d, want %d",
				canonical(ben), canonical(cai), win, headOf(t, ben, ana.hist.self), headOf(t, cai, ana.hist.self), want)
		}
		if _, err := ben.pull(ctx, cai.host.ID()); err != nil {
			t.Logf("ben pulls from cai: %v", err)
		}
		if _, err := cai.pull(ctx, ben.host.ID()); err != nil {
			t.Logf("cai pulls from ben: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSyncServesForksByBatch: a node holding more forks than fit one batch
// lists them by header only, after the rest, reads the bytes of each batch's
// forks alone as it sends it, and a puller receives every fork.
func TestSyncServesForksByBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, ben, cai)
	head := feedHeld(t, ana, ben, cai)
	// More envelopes at one seq than a batch holds: all but one are forks,
	// and they span two batches.
	const signed = wire.MaxBatchEnvelopes + 20
	raws := map[wire.ID][]byte{}
	for i := range signed {
		e := forgeContent(t, ana, head.Seq+1, head.ID, 1<<40, &wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("fork %d", i)})
		raws[e.ID()] = e.Marshal()
	}
	// The author is gone: ben alone holds the forks.
	ana.Close()
	for _, raw := range raws {
		if _, err := ben.hist.ingestRaw(ctx, [][]byte{raw}); err != nil {
			t.Fatal(err)
		}
	}
	forks, err := ben.st.ForkHeaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(forks) != signed-1 {
		t.Fatalf("ben holds %d forks, want %d", len(forks), signed-1)
	}
	isFork := map[wire.ID]bool{}
	for _, f := range forks {
		isFork[f.ID] = true
	}

	// What a sync served lists: headers only, forks flagged and last.
	envs, err := ben.missingHeaders(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for i, e := range envs {
		if e.Raw != nil {
			t.Fatalf("listed envelope %d (seq %d, fork %v) comes with its bytes", i, e.Seq, e.Fork)
		}
		if e.Fork != isFork[e.ID] {
			t.Errorf("listed envelope %s: fork %v, want %v", e.ID, e.Fork, isFork[e.ID])
		}
		if e.Fork {
			listed++
		} else if listed > 0 {
			t.Errorf("canonical envelope %s (seq %d) listed after a fork", e.ID, e.Seq)
		}
	}
	if listed != len(forks) {
		t.Errorf("%d forks listed, want %d", listed, len(forks))
	}
	// Each batch reads the bytes of its own forks and of no other.
	sent := 0
	for chunk := range slices.Chunk(envs, wire.MaxBatchEnvelopes) {
		got, err := ben.readChunk(chunk)
		if err != nil {
			t.Fatal(err)
		}
		inChunk := map[wire.ID]bool{}
		for _, e := range chunk {
			inChunk[e.ID] = true
			if e.Fork {
				if !bytes.Equal(got[e.ID], raws[e.ID]) {
					t.Errorf("fork %s: read %d bytes, want its %d", e.ID, len(got[e.ID]), len(raws[e.ID]))
				}
				sent++
			}
		}
		for id := range got {
			if isFork[id] && !inChunk[id] {
				t.Errorf("a batch read fork %s, which another batch sends", id)
			}
		}
	}
	if sent != len(forks) {
		t.Errorf("batches send %d forks, want %d", sent, len(forks))
	}
	// missing, for a join's welcome, still fills in every fork's bytes.
	full, err := ben.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	filled := 0
	for _, e := range full {
		if e.Fork && bytes.Equal(e.Raw, raws[e.ID]) {
			filled++
		}
	}
	if filled != len(forks) {
		t.Errorf("missing fills %d forks' bytes, want %d", filled, len(forks))
	}

	// A pull brings cai every fork, and the same canonical envelope.
	have := func() int {
		fs, err := cai.st.ForkHeaders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fs {
			if isFork[f.ID] {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for have() != len(forks) {
		if time.Now().After(deadline) {
			t.Fatalf("after pulls from ben, cai holds %d of its %d forks", have(), len(forks))
		}
		if _, err := cai.pull(ctx, ben.host.ID()); err != nil {
			t.Logf("cai pulls from ben: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, want := headOf(t, cai, ana.hist.self), head.Seq+1; got != want {
		t.Errorf("cai holds ana's feed up to %d, want %d", got, want)
	}
	st, err := cai.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Forks) != len(forks) {
		t.Errorf("cai's status shows %d forks, want %d", len(st.Forks), len(forks))
	}
}

// TestForkRevisitByBatch: when an author's canonical branch changes, its
// forks are run again a batch at a time, never all their bytes at once, and
// a fork that continues the new branch from a later batch still joins it.
func TestForkRevisitByBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	head := feedHeld(t, ana, ben)
	// More forks at one seq than a batch holds; the lowest ID comes last.
	const signed = forkRevisitBatch + 100
	var envs []*wire.Envelope
	for i := range signed {
		envs = append(envs, forgeContent(t, ana, head.Seq+1, head.ID, 1<<40, &wire.Content{Kind: wire.KindText, Text: fmt.Sprintf("fork %d", i)}))
	}
	slices.SortFunc(envs, func(a, b *wire.Envelope) int {
		x, y := a.ID(), b.ID()
		return bytes.Compare(x[:], y[:])
	})
	lowest := envs[0]
	// next continues the lowest's branch: a fork until that branch wins, and
	// sorted after every fork at the seq below it.
	next := forgeContent(t, ana, head.Seq+2, lowest.ID(), 1<<40+1, &wire.Content{Kind: wire.KindText, Text: "after the lowest"})
	ana.Close()

	var raws [][]byte
	for _, e := range envs[1:] {
		raws = append(raws, e.Marshal())
	}
	if _, err := ben.hist.ingestRaw(ctx, raws); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.hist.ingestRaw(ctx, [][]byte{next.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if got := headOf(t, ben, ana.hist.self); got != head.Seq+1 {
		t.Fatalf("before the lowest fork: ben holds ana's feed up to %d, want %d", got, head.Seq+1)
	}

	var mu sync.Mutex
	var runs []int
	ben.hist.onRevisit = func(n int) {
		mu.Lock()
		runs = append(runs, n)
		mu.Unlock()
	}
	if _, err := ben.hist.ingestRaw(ctx, [][]byte{lowest.Marshal()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range runs {
		if n > forkRevisitBatch {
			t.Errorf("a revisit ran %d forks at once, over the batch of %d", n, forkRevisitBatch)
		}
		total += n
	}
	// Every fork at head+1 but the lowest (the old canonical among them),
	// and next.
	if total < signed {
		t.Errorf("revisits ran %d forks in %v, want at least %d", total, runs, signed)
	}
	if got := headOf(t, ben, ana.hist.self); got != head.Seq+2 {
		t.Errorf("ben holds ana's feed up to %d, want %d: the continuation of the new branch did not join it", got, head.Seq+2)
	}
	// next is stored only on the lowest: its prev.
	heads, err := ben.st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if bytes.Equal(h.Author, ana.hist.self) && h.ID != next.ID() {
			t.Errorf("ben's head of ana's feed is %s, want the continuation %s", h.ID, next.ID())
		}
	}
	forks, err := ben.st.ForkHeaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(forks) != signed-1 {
		t.Errorf("ben holds %d forks, want %d", len(forks), signed-1)
	}
}
