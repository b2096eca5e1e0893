package node

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// TestPendingBoundedInBytes: envelopes signed by authors nobody admitted
// wait for them in memory, bounded in bytes as well as in count, and a set
// left full by old ones takes new ones once those are older than pendingTTL.
func TestPendingBoundedInBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNodeAlone(t, filepath.Join(dir, "ana"))
	h := ana.hist
	// Made-up authors, each with one envelope near the size limit: far
	// fewer than the count bound fill the byte bound.
	body := make([]byte, wire.MaxBodyBytes-1<<10)
	rand.Read(body)
	made := func() []byte {
		id, err := crypto.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		env, err := id.SealEnvelope(&wire.Header{
			Version: wire.Version, Workspace: h.ws, Author: []byte(id.PeerID()), Seq: 1,
			Lamport: 1, Time: time.Now().UnixMilli(), Class: wire.ClassContent,
			Room: generalRoomID(h.ws), Key: wire.ID{1}, Body: body,
		})
		if err != nil {
			t.Fatal(err)
		}
		return env.Marshal()
	}
	fits := wire.MaxPendingBytes / len(made())
	sent := fits + 8
	for range sent {
		if _, err := h.ingestRaw(ctx, [][]byte{made()}); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	held, bytes, refused := h.npending, h.pendingBytes, h.rejected[reasonPendingCap]
	h.mu.Unlock()
	if bytes > wire.MaxPendingBytes || held > fits {
		t.Errorf("%d envelopes of %d bytes wait, over the bound of %d bytes", held, bytes, wire.MaxPendingBytes)
	}
	if held == 0 || refused != int64(sent-held) {
		t.Errorf("%d of %d envelopes wait, %d counted as %s; want the rest counted", held, sent, refused, reasonPendingCap)
	}

	// The authors held came more than pendingTTL ago: a new one is taken.
	h.mu.Lock()
	for a := range h.pendingSince {
		h.pendingSince[a] = time.Now().Add(-pendingTTL - time.Second)
	}
	h.mu.Unlock()
	if _, err := h.ingestRaw(ctx, [][]byte{made()}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.npending != 1 || h.rejected[reasonPendingCap] != refused {
		t.Errorf("after the others expired: %d envelopes wait, %d refused; want the new one alone, none more refused", h.npending, h.rejected[reasonPendingCap]-refused)
	}
	total := 0
	for _, ps := range h.pending {
		for _, c := range ps {
			total += len(c.raw)
		}
	}
	if total != h.pendingBytes {
		t.Errorf("pendingBytes %d, but the envelopes waiting hold %d", h.pendingBytes, total)
	}
}
