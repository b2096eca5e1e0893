package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

// TestTombstoneTrueIDFalseTime: a member lies about a new message this node
// lacks, sending its tombstone with the true ID, prev and place but an old
// time, so that this node takes it. The signed envelope, arriving later,
// must still be stored and shown (SECURITY.md: a signed envelope beats a
// tombstone, so a liar can hide old envelopes, not new ones), not dropped
// as a duplicate of the tombstone.
func TestTombstoneTrueIDFalseTime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir() + "/ana"
	initHome(t, home)
	ana := openNode(t, home)
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	general := generalRoomID(ana.hist.ws)
	var head wire.VectorEntry
	heads, err := ana.st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if bytes.Equal(h.Author, ana.hist.self) {
			head = wire.VectorEntry{Author: h.Author, Seq: h.Seq, ID: h.ID}
		}
	}
	// A new message of this feed that the node does not hold yet (as if
	// written on another device of the same member, or restored).
	e := forgeAt(t, ana, general, head.Seq+1, head.ID, 1<<40, time.Now(),
		&wire.Content{Kind: wire.KindText, Text: "the new message a liar hides"})
	lie := wire.Tombstone{Author: ana.hist.self, Seq: head.Seq + 1, ID: e.ID(), Prev: head.ID, Lamport: 1 << 40,
		Time: time.Now().Add(-72 * time.Hour).UnixMilli(), Class: wire.ClassContent, Room: general}
	if n, err := ana.hist.ingestTombstones(ctx, []wire.Tombstone{lie}); err != nil || n != 1 {
		t.Fatalf("the lying tombstone: stored %d, %v (this test needs it taken)", n, err)
	}
	if _, err := ana.hist.ingestRaw(ctx, [][]byte{e.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(t, ana, "general"), "|"); !strings.Contains(got, "the new message a liar hides") {
		t.Fatalf("the signed envelope did not replace a tombstone with its ID: #general holds %q", got)
	}
	if raw, held, err := ana.st.EnvelopeRaw(ctx, e.ID()); err != nil || !held || !bytes.Equal(raw, e.Marshal()) {
		t.Fatalf("envelope %s: held %v, body restored %v, %v", e.ID(), held, raw != nil, err)
	}
}
