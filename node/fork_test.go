package node

import (
	"bytes"
	"context"
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
	general := generalRoomID(ana.hist.ws)
	eventually(t, 20*time.Second, "everyone reads #general and holds ana's feed", func() bool {
		for _, n := range []*Node{ben, cai} {
			if _, _, err := n.resolveRoom(ctx, "general"); err != nil {
				return false
			}
		}
		a, _ := ana.st.Heads(ctx)
		b, _ := ben.st.Heads(ctx)
		c, _ := cai.st.Heads(ctx)
		return len(a) > 0 && len(a) == len(b) && len(b) == len(c)
	})
	var head store.Head
	heads, _ := ana.st.Heads(ctx)
	for _, h := range heads {
		if bytes.Equal(h.Author, ana.hist.self) {
			head = h
		}
	}
	k, err := ana.hist.sendKey(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(text string) []byte {
		body, err := crypto.EncryptContent(crypto.RoomKey(k.Key), (&wire.Content{Kind: wire.KindText, Text: text}).Marshal())
		if err != nil {
			t.Fatal(err)
		}
		env, err := ana.id.SealEnvelope(&wire.Header{
			Version: wire.Version, Workspace: ana.hist.ws, Author: ana.hist.self, Seq: head.Seq + 1, Prev: head.ID,
			Lamport: 1 << 40, Time: time.Now().UnixMilli(), Class: wire.ClassContent, Room: general, Key: k.KeyID, Body: body,
		})
		if err != nil {
			t.Fatal(err)
		}
		return env.Marshal()
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
