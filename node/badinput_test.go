package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// TestBadEnvelopesRejected feeds the pipeline what a hostile or broken peer
// could send; each is refused, counted by reason, and nothing is stored.
func TestBadEnvelopesRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "a")
	initHome(t, home)
	n := openNode(t, home)
	before, _ := n.st.EnvelopeCount(ctx)

	stranger, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	header := func(id *crypto.Identity, ws wire.ID) *wire.Header {
		return &wire.Header{
			Version: wire.Version, Workspace: ws, Author: []byte(id.PeerID()), Seq: 1,
			Lamport: 1, Time: time.Now().UnixMilli(), Class: wire.ClassRoster,
			Body: (&wire.RosterOp{Kind: wire.RosterRole, Target: []byte(id.PeerID()), Role: wire.RoleOwner}).Marshal(),
		}
	}
	seal := func(id *crypto.Identity, h *wire.Header) []byte {
		e, err := id.SealEnvelope(h)
		if err != nil {
			t.Fatal(err)
		}
		return e.Marshal()
	}
	good := seal(n.id, func() *wire.Header { h := header(n.id, n.hist.ws); h.Seq = 99; h.Prev = wire.ID{1}; return h }())
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 1 // the signature's last byte
	foreign := seal(n.id, header(n.id, wire.ID{9}))
	nonMember := seal(stranger, header(stranger, n.hist.ws))
	oversized := make([]byte, wire.MaxEnvelopeBytes+1)

	tests := []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"malformed", []byte("not an envelope"), reasonMalformed},
		{"oversized", oversized, reasonOversized},
		{"forged", forged, reasonForged},
		{"foreign workspace", foreign, reasonForeign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			was := n.hist.rejectedCounts()[tt.reason]
			if _, err := n.hist.ingestRaw(ctx, [][]byte{tt.raw}); err != nil {
				t.Fatal(err)
			}
			if got := n.hist.rejectedCounts()[tt.reason]; got != was+1 {
				t.Fatalf("rejected[%s] = %d, want %d", tt.reason, got, was+1)
			}
		})
	}
	// A non-member's envelope waits, bounded, and is never stored.
	if _, err := n.hist.ingestRaw(ctx, [][]byte{nonMember}); err != nil {
		t.Fatal(err)
	}
	if after, _ := n.st.EnvelopeCount(ctx); after != before {
		t.Fatalf("bad input stored: %d envelopes, had %d", after, before)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{reasonMalformed, reasonOversized, reasonForged, reasonForeign} {
		if st.Rejected[r] == 0 {
			t.Errorf("status does not count %s", r)
		}
	}
	// And the node still works.
	if _, err := n.Send(ctx, "general", "still here"); err != nil {
		t.Fatal(err)
	}
}

func TestSendRefusesBadText(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "a")
	initHome(t, home)
	n := openNode(t, home)
	for _, text := range []string{"", "   ", string(make([]byte, wire.MaxTextBytes+1))} {
		if _, err := n.Send(ctx, "general", text); err == nil {
			t.Errorf("Send accepted a text of %d bytes", len(text))
		}
	}
	if _, err := n.Send(ctx, "nowhere", "hola"); err == nil {
		t.Error("Send to an unknown room succeeded")
	}
}
