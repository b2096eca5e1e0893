package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// chunkFile encrypts data to room's key into n's blob store, as SendFile
// does, and returns the manifest a file message would carry.
func chunkFile(t *testing.T, n *Node, room wire.ID, name string, data []byte) *wire.FileManifest {
	t.Helper()
	k, err := n.hist.sendKey(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := newPackWriter(n.files.blobs, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	w, err := crypto.EncryptContentTo(crypto.RoomKey(k.Key), pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := pw.commit()
	if err != nil {
		t.Fatal(err)
	}
	return &wire.FileManifest{Name: name, Size: uint64(len(data)), CipherSize: l.cipherSize, ChunkSize: uint32(l.chunkSize), Chunks: l.chunks}
}

// controlEnvelopes returns the roster ops and key shares n holds with their
// bodies, by ID.
func controlEnvelopes(t *testing.T, n *Node) map[wire.ID]bool {
	t.Helper()
	ctx := context.Background()
	heads, err := n.st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[wire.ID]bool{}
	for _, h := range heads {
		envs, err := n.st.EnvelopesAfter(ctx, h.Author, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			if e.Class != wire.ClassContent {
				out[e.ID] = e.Raw != nil
			}
		}
	}
	return out
}

func sameHeads(a, b *Node) bool {
	ctx := context.Background()
	ha, err1 := a.st.Heads(ctx)
	hb, err2 := b.st.Heads(ctx)
	if err1 != nil || err2 != nil || len(ha) != len(hb) {
		return false
	}
	for i := range ha {
		if !bytes.Equal(ha[i].Author, hb[i].Author) || ha[i].Seq != hb[i].Seq || ha[i].ID != hb[i].ID {
			return false
		}
	}
	return true
}

func vectorOf(t *testing.T, n *Node) (*wire.Vector, *wire.Held) {
	t.Helper()
	ctx := context.Background()
	heads, err := n.st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := &wire.Vector{}
	for _, h := range heads {
		v.Entries = append(v.Entries, wire.VectorEntry{Author: h.Author, Seq: h.Seq, ID: h.ID})
	}
	above, err := n.st.HeldAboveHeads(ctx, wire.MaxHeldSeqs)
	if err != nil {
		t.Fatal(err)
	}
	held := &wire.Held{}
	for a, seqs := range above {
		held.Entries = append(held.Entries, wire.HeldEntry{Author: []byte(a), Seqs: seqs})
	}
	return v, held
}

// TestRetentionPurgesEverywhere: an admin lowers retention to one day; on
// every node the older messages and files go for real (not in the database
// files, not found by search, chunks deleted) and leave tombstones; what is
// newer stays, and so does a room whose own retention keeps everything;
// roster ops and key shares stay. A laptop that was away syncs afterwards:
// it gets past the purged envelopes without their bodies, and nobody has
// anything more to send it.
func TestRetentionPurgesEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	keepID, err := ana.CreateRoomNamed(ctx, "keep", []string{"Member1", "Member2"})
	if err != nil {
		t.Fatal(err)
	}
	keep := mustID(t, keepID.ID)
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "0", "keep"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "everyone reads #keep and its policy", func() bool {
		for _, n := range nodes {
			if _, _, err := n.resolveRoom(ctx, "keep"); err != nil {
				return false
			}
			if _, ok := n.hist.currentPolicy().RoomRetention[keep.String()]; !ok {
				return false
			}
		}
		return true
	})
	feedHeld(t, ana, ben, cai)
	eventually(t, 60*time.Second, "cai holds what ana holds", func() bool { return sameHeads(ana, cai) })
	// The laptop leaves the office.
	if err := cai.Close(); err != nil {
		t.Fatal(err)
	}

	// History from three days ago, signed by ana: texts, two files (one
	// posted again today, so its chunks stay), and a text in #keep.
	general := generalRoomID(ana.hist.ws)
	head := feedHeld(t, ana, ben)
	old := time.Now().Add(-72 * time.Hour)
	oldText := []string{"purgecanary one", "purgecanary two", "purgecanary three"}
	fileA := make([]byte, 3<<20/2)
	fileB := make([]byte, 3<<20/2)
	rand.Read(fileA)
	rand.Read(fileB)
	mA := chunkFile(t, ana, general, "old-a.bin", fileA)
	mB := chunkFile(t, ana, general, "old-b.bin", fileB)
	contents := []struct {
		room wire.ID
		tm   time.Time
		c    *wire.Content
	}{
		{general, old, &wire.Content{Kind: wire.KindText, Text: oldText[0]}},
		{general, old, &wire.Content{Kind: wire.KindFile, File: mA}},
		{general, old, &wire.Content{Kind: wire.KindText, Text: oldText[1]}},
		{general, old, &wire.Content{Kind: wire.KindFile, File: mB}},
		{keep, old, &wire.Content{Kind: wire.KindText, Text: "keepcanary stays"}},
		{general, old, &wire.Content{Kind: wire.KindText, Text: oldText[2]}},
		{general, time.Now(), &wire.Content{Kind: wire.KindFile, File: mB}}, // a repost today
	}
	var raws [][]byte
	var ids []wire.ID
	prev := head.ID
	for i, x := range contents {
		env := forgeAt(t, ana, x.room, head.Seq+1+uint64(i), prev, 1<<40+uint64(i), x.tm, x.c)
		prev = env.ID()
		ids = append(ids, prev)
		raws = append(raws, env.Marshal())
	}
	for _, n := range []*Node{ana, ben} {
		if _, err := n.hist.ingestRaw(ctx, raws); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := ana.Send(ctx, "general", "freshcanary stays")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben holds the files and the fresh message", func() bool {
		_, held := find(t, ben, "general", fresh.ID)
		return held && fileState(ben, ids[1].String()) == "complete" && fileState(ben, ids[3].String()) == "complete"
	})
	for i, h := range []string{homes[0], homes[1]} {
		if !inDB(t, h, oldText[0]) {
			t.Fatalf("node %d: %q is in no database file before the purge: the checks below prove nothing", i, oldText[0])
		}
	}
	controls := map[*Node]map[wire.ID]bool{ana: controlEnvelopes(t, ana), ben: controlEnvelopes(t, ben)}

	// The policy op lowers retention; every node purges on its own.
	t0 := time.Now().UnixMilli()
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*Node{ana, ben} {
		var st Status
		eventually(t, 60*time.Second, fmt.Sprintf("node %d purges after the policy change", i), func() bool {
			var err error
			st, err = n.Status(ctx)
			return err == nil && st.LastPurge >= t0 && st.Purged > 0
		})
		// 5 envelopes: three texts and two files; #keep and the repost stay.
		if st.Purged != 5 || st.PurgedFiles != 2 || st.PurgedChunks != 2 || st.PurgedTotal < 5 {
			t.Errorf("node %d status: purged %d envelopes, %d files, %d chunks, total %d; want 5, 2, 2 (file A's), ≥5",
				i, st.Purged, st.PurgedFiles, st.PurgedChunks, st.PurgedTotal)
		}
	}
	for i, n := range []*Node{ana, ben} {
		name := fmt.Sprintf("node %d", i)
		for _, text := range oldText {
			noCanary(t, homes[i], text)
			if got, _ := n.Search(ctx, text, 10); len(got) > 0 {
				t.Errorf("%s: search still finds %q", name, text)
			}
		}
		noCanary(t, homes[i], "old-a.bin")
		log := strings.Join(texts(t, n, "general"), "|")
		if strings.Contains(log, "purgecanary") || !strings.Contains(log, "freshcanary stays") {
			t.Errorf("%s: #general after the purge: %s", name, log)
		}
		if log := strings.Join(texts(t, n, "keep"), "|"); !strings.Contains(log, "keepcanary stays") {
			t.Errorf("%s: #keep keeps everything, yet shows %q", name, log)
		}
		if got, _ := n.Search(ctx, "keepcanary", 10); len(got) != 1 {
			t.Errorf("%s: search misses #keep's old text", name)
		}
		for _, h := range mA.Chunks {
			if n.files.blobs.holds(h) {
				t.Errorf("%s: chunk %s of the purged file is still stored", name, h)
			}
		}
		for _, h := range mB.Chunks {
			if !n.files.blobs.holds(h) {
				t.Errorf("%s: chunk %s of the reposted file is gone", name, h)
			}
		}
		files, _ := n.Files(ctx, "")
		if len(files) != 1 || files[0].ID != ids[6].String() {
			t.Errorf("%s: files after the purge: %+v", name, files)
		}
		for _, i := range []int{0, 1, 2, 3, 5} {
			e, err := n.st.Envelope(ctx, ids[i])
			if err != nil || e.Raw != nil || e.Seq != head.Seq+1+uint64(i) || e.Time != old.UnixMilli() || e.Room != general {
				t.Errorf("%s: tombstone of seq %d: %+v, %v", name, head.Seq+1+uint64(i), e, err)
			}
		}
		if after := controlEnvelopes(t, n); len(after) < len(controls[n]) {
			t.Errorf("%s: %d roster ops and key shares, before %d", name, len(after), len(controls[n]))
		} else {
			for id, body := range controls[n] {
				if body && !after[id] {
					t.Errorf("%s: control envelope %s lost its body", name, id)
				}
			}
		}
	}

	// The laptop comes back and syncs from ana.
	cai = openNode(t, homes[2], ana.Addrs()[0])
	eventually(t, 60*time.Second, "cai catches up with ana", func() bool { return sameHeads(ana, cai) })
	for _, i := range []int{0, 1, 2, 3, 5} {
		e, err := cai.st.Envelope(ctx, ids[i])
		if err != nil || e.Raw != nil || !e.Key.IsZero() || e.Prev != mustEnvelope(t, ana, ids[i]).Prev {
			t.Errorf("cai: seq %d should be a tombstone from a peer: %+v, %v", head.Seq+1+uint64(i), e, err)
		}
	}
	for _, text := range oldText {
		noCanary(t, homes[2], text)
	}
	eventually(t, 30*time.Second, "cai reads what was kept", func() bool {
		g := strings.Join(texts(t, cai, "general"), "|")
		k := strings.Join(texts(t, cai, "keep"), "|")
		return strings.Contains(g, "freshcanary stays") && strings.Contains(k, "keepcanary stays")
	})
	st, _ := cai.Status(ctx)
	if st.Rejected[reasonTombstone] != 0 || st.Rejected[reasonYoung] != 0 {
		t.Errorf("cai refused tombstones: %v", st.Rejected)
	}
	// Nothing is left to ask for, either way, and a pull brings nothing.
	for _, pair := range [][2]*Node{{ana, cai}, {cai, ana}} {
		v, held := vectorOf(t, pair[1])
		if envs, err := pair[0].missing(ctx, v, held); err != nil || len(envs) != 0 {
			t.Errorf("%s would still send %d envelopes: %v", pair[0].PeerID(), len(envs), err)
		}
	}
	if got, err := cai.pull(ctx, ana.PeerID()); err != nil || got != 0 {
		t.Errorf("a pull after catching up stored %d: %v", got, err)
	}
}

// inDB reports whether text is in any of home's database files.
func inDB(t *testing.T, home, text string) bool {
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
			return true
		}
	}
	return false
}

func mustEnvelope(t *testing.T, n *Node, id wire.ID) store.Envelope {
	t.Helper()
	e, err := n.st.Envelope(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestTombstoneRules: a tombstone from a peer is taken only for content this
// node's policy would have purged, only where it continues the chain held on
// both sides, never in place of what is held; a signed envelope at its place
// replaces it, and its lamport never moves the clock.
func TestTombstoneRules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir() + "/ana"
	initHome(t, home)
	ana := openNode(t, home)
	general := generalRoomID(ana.hist.ws)
	self := ana.hist.self
	headOf := func() store.Head {
		t.Helper()
		heads, err := ana.st.Heads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range heads {
			if bytes.Equal(h.Author, self) {
				return h
			}
		}
		t.Fatal("no own feed")
		return store.Head{}
	}
	old := time.Now().Add(-72 * time.Hour).UnixMilli()
	fake := func(b byte) wire.ID { var id wire.ID; id[31] = b; return id } // lower than any real ID
	tomb := func(seq uint64, id, prev wire.ID, tm int64) wire.Tombstone {
		return wire.Tombstone{Author: self, Seq: seq, ID: id, Prev: prev, Lamport: 1 << 40, Time: tm,
			Class: wire.ClassContent, Room: general}
	}
	take := func(ts ...wire.Tombstone) int {
		t.Helper()
		n, err := ana.hist.ingestTombstones(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	refused := func(reason string) int64 { return ana.hist.rejectedCounts()[reason] }
	moved := func(h store.Head) bool { now := headOf(); return now.Seq != h.Seq || now.ID != h.ID }

	// Retention off: this node keeps everything, so it takes no tombstone.
	h := headOf()
	if take(tomb(h.Seq+1, fake(1), h.ID, old)) != 0 || refused(reasonYoung) != 1 || moved(h) {
		t.Fatalf("with retention off a tombstone was taken (young refusals %d)", refused(reasonYoung))
	}
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	h = headOf()
	roster := tomb(h.Seq+1, fake(1), h.ID, old)
	roster.Class, roster.Room = wire.ClassRoster, wire.ID{}
	wrongPrev := tomb(h.Seq+1, fake(1), fake(9), old)
	tests := []struct {
		name   string
		t      wire.Tombstone
		reason string // counted; "" for none
	}{
		{"a roster op is never purged", roster, reasonTombstone},
		{"newer than the retention", tomb(h.Seq+1, fake(1), h.ID, time.Now().Add(-time.Hour).UnixMilli()), reasonYoung},
		{"above a gap", tomb(h.Seq+2, fake(2), fake(1), old), ""},
		{"another prev than held", wrongPrev, reasonTombstone},
		{"in place of what is held", tomb(h.Seq, fake(3), h.ID, old), reasonTombstone},
	}
	for _, tt := range tests {
		before := refused(tt.reason)
		if got := take(tt.t); got != 0 || moved(h) {
			t.Errorf("%s: stored %d, head %+v", tt.name, got, headOf())
		}
		if tt.reason != "" && refused(tt.reason) != before+1 {
			t.Errorf("%s: not counted as %s", tt.name, tt.reason)
		}
	}

	// A tombstone that fits is taken, once, and its lamport is no claim on the clock.
	big := tomb(h.Seq+1, fake(1), h.ID, old)
	big.Lamport = wire.MaxLamport
	if take(big) != 1 || take(big) != 0 || headOf().ID != fake(1) {
		t.Fatalf("a fitting tombstone: head %+v", headOf())
	}
	if l, err := ana.st.MaxLamport(ctx); err != nil || l == wire.MaxLamport {
		t.Errorf("MaxLamport = %d, %v: a peer's tombstone moved the clock", l, err)
	}

	// The signed envelope at its place replaces it, though its ID is higher.
	e1 := forgeAt(t, ana, general, h.Seq+1, h.ID, 1<<40+1, time.Now(), &wire.Content{Kind: wire.KindText, Text: "real one"})
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{e1.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if headOf().ID != e1.ID() {
		t.Fatalf("the signed envelope did not replace the tombstone: head %+v", headOf())
	}

	// Two false tombstones above it; the signed envelopes arrive last one
	// first: each replaces the tombstone at its place and the one below it.
	if take(tomb(h.Seq+2, fake(2), e1.ID(), old), tomb(h.Seq+3, fake(3), fake(2), old)) != 2 || headOf().Seq != h.Seq+3 {
		t.Fatalf("two chained tombstones: head %+v", headOf())
	}
	e2 := forgeAt(t, ana, general, h.Seq+2, e1.ID(), 1<<40+2, time.Now(), &wire.Content{Kind: wire.KindText, Text: "real two"})
	e3 := forgeAt(t, ana, general, h.Seq+3, e2.ID(), 1<<40+3, time.Now(), &wire.Content{Kind: wire.KindText, Text: "real three"})
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{e3.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if hd := headOf(); hd.ID != e1.ID() {
		t.Fatalf("after seq %d: head %+v, want seq %d", h.Seq+3, hd, h.Seq+1)
	}
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{e2.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if hd := headOf(); hd.ID != e3.ID() {
		t.Fatalf("after seq %d: head %+v, want seq %d", h.Seq+2, hd, h.Seq+3)
	}
	if fs, _ := ana.st.ForkHeaders(ctx); len(fs) != 0 {
		t.Errorf("%d forks held", len(fs))
	}
	if got := strings.Join(texts(t, ana, "general"), "|"); !strings.Contains(got, "real one|real two|real three") {
		t.Errorf("#general: %s", got)
	}

	// Above a gap, the envelope held above names the ID a tombstone must have.
	e4 := forgeAt(t, ana, general, h.Seq+4, e3.ID(), 1<<40+4, time.UnixMilli(old), &wire.Content{Kind: wire.KindText, Text: "four"})
	e5 := forgeAt(t, ana, general, h.Seq+5, e4.ID(), 1<<40+5, time.Now(), &wire.Content{Kind: wire.KindText, Text: "five"})
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{e5.Marshal()}); err != nil {
		t.Fatal(err)
	}
	before := refused(reasonTombstone)
	if take(tomb(h.Seq+4, fake(4), e3.ID(), old)) != 0 || refused(reasonTombstone) != before+1 {
		t.Error("a tombstone the envelope above does not name was taken")
	}
	if take(tomb(h.Seq+4, e4.ID(), e3.ID(), old)) != 1 || headOf().ID != e5.ID() {
		t.Errorf("the tombstone that fills the gap: head %+v", headOf())
	}
}

// TestOldArrivalPurgedSoon: content that arrives already older than its
// room's retention (from a peer that has not purged it yet) goes within
// moments, not at the next hourly purge.
func TestOldArrivalPurgedSoon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir() + "/ana"
	initHome(t, home)
	ana := openNode(t, home)
	eventually(t, 10*time.Second, "the purge at start", func() bool { return ana.lastPurge().Time > 0 })
	t0 := time.Now().UnixMilli()
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "2", ""); err != nil {
		t.Fatal(err)
	}
	// The purge the policy change brings runs first, so what follows is the
	// late arrival's doing.
	eventually(t, 10*time.Second, "the purge after the policy change", func() bool {
		return ana.lastPurge().Time >= t0
	})
	heads, err := ana.st.Heads(ctx)
	if err != nil || len(heads) != 1 {
		t.Fatalf("heads %v, %v", heads, err)
	}
	h := heads[0]
	late := forgeAt(t, ana, generalRoomID(ana.hist.ws), h.Seq+1, h.ID, 1<<40, time.Now().Add(-72*time.Hour),
		&wire.Content{Kind: wire.KindText, Text: "latecanary"})
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{late.Marshal()}); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now().UnixMilli()
	eventually(t, 10*time.Second, "the late old message is purged", func() bool {
		e, err := ana.st.Envelope(ctx, late.ID())
		return err == nil && e.Raw == nil && ana.lastPurge().Time >= t1
	})
	if got, _ := ana.Search(ctx, "latecanary", 5); len(got) != 0 {
		t.Errorf("search finds the purged message: %+v", got)
	}
	noCanary(t, home, "latecanary")
}

// TestSecurityTombstoneTakesNoID: a tombstone's ID is only its sender's
// word. A member sends one for another member's next seq that names the ID
// of an envelope of ana's this node has yet to receive. When that envelope
// comes, it is stored at its place (the tombstone that took its ID was a
// lie), not refused, and its batch is not lost.
func TestSecurityTombstoneTakesNoID(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	ana, ben := founderAndIdentity(t, t.TempDir())
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	head, ok, err := func() (store.Head, bool, error) {
		var h store.Head
		var ok bool
		err := ana.st.Update(ctx, false, func(tx *store.Tx) error {
			var err error
			h, ok, err = tx.Head(ana.hist.self)
			return err
		})
		return h, ok, err
	}()
	if err != nil || !ok {
		t.Fatalf("ana's head: %v, %v", ok, err)
	}
	next := forgeContent(t, ana, head.Seq+1, head.ID, 1<<40, &wire.Content{Kind: wire.KindText, Text: "on its way"})
	old := time.Now().Add(-72 * time.Hour).UnixMilli()
	n, err := ana.hist.ingestTombstones(ctx, []wire.Tombstone{{Author: []byte(ben.PeerID()), Seq: 1, ID: next.ID(),
		Lamport: 1, Time: old, Class: wire.ClassContent, Room: generalRoomID(ana.hist.ws)}})
	if err != nil || n != 1 {
		t.Fatalf("the planted tombstone: stored %d, %v; the test needs it stored", n, err)
	}
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{next.Marshal()}); err != nil {
		t.Fatalf("a batch with the envelope whose ID a tombstone took failed: %v", err)
	}
	if err := ana.st.Update(ctx, false, func(tx *store.Tx) error {
		id, ok, err := tx.EnvelopeAt(ana.hist.self, head.Seq+1)
		if err == nil && (!ok || id != next.ID()) {
			err = fmt.Errorf("ana's seq %d is %s, %v; want %s", head.Seq+1, id, ok, next.ID())
		}
		return err
	}); err != nil {
		t.Error(err)
	}
}
