package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The size issue 5 names for the three-node test: 64 chunks and more, well
// over the default auto-download size, so every download here is asked for.
const bigFileSize = 64 << 20

// TestFile64MiBThreeNodes: a 64 MiB file posted by A arrives byte-identical
// at B and at C, and C, asking once B holds it all, fetches from both A and B.
func TestFile64MiBThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test moving 128 MiB; run without -short")
	}
	nodes, _ := fileWorkspace(t, 0, 0, 0)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	eventually(t, 60*time.Second, "c connected to a and b", func() bool { return len(c.connectedMembers()) == 2 })
	path, data := randomFile(t, "all-hands.mkv", bigFileSize)
	want := sha256.Sum256(data)

	start := time.Now()
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	posted := time.Since(start)
	if f.State != "complete" || f.Size != bigFileSize || f.Chunks <= bigFileSize/chunkSize {
		t.Fatalf("posted: %+v", f)
	}
	for _, n := range []*Node{b, c} {
		eventually(t, 60*time.Second, "the file message arrives", func() bool { _, err := n.File(ctx, f.ID); return err == nil })
		if s := fileState(n, f.ID); s != "missing" {
			t.Fatalf("a file over the auto-download size is %s before any get", s)
		}
	}

	got := func(n *Node, name string) time.Duration {
		t.Helper()
		out := filepath.Join(t.TempDir(), name)
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		start := time.Now()
		v, err := n.GetFile(ctx, f.ID, out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		took := time.Since(start)
		if v.State != "complete" || v.HaveBytes != v.CipherSize || v.Size != bigFileSize {
			t.Fatalf("%s after get: %+v", name, v)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(b) != want || !bytes.Equal(b, data) {
			t.Fatalf("%s got %d bytes that differ from the %d posted", name, len(b), len(data))
		}
		return took
	}
	tookB := got(b, "b-copy")
	if src := b.BlobSources(); int(src[a.PeerID().String()].Chunks) != f.Chunks {
		t.Fatalf("b's sources: %+v; want all %d chunks from a", src, f.Chunks)
	}
	tookC := got(c, "c-copy")

	src := c.BlobSources()
	fromA, fromB := src[a.PeerID().String()], src[b.PeerID().String()]
	t.Logf("posted in %v; b got it in %v; c in %v, %d chunks from a and %d from b",
		posted.Round(time.Millisecond), tookB.Round(time.Millisecond), tookC.Round(time.Millisecond), fromA.Chunks, fromB.Chunks)
	if fromA.Chunks == 0 || fromB.Chunks == 0 || int(fromA.Chunks+fromB.Chunks) != f.Chunks || fromA.Bad+fromB.Bad != 0 {
		t.Fatalf("c's sources: a %+v, b %+v; want both, %d chunks in all", fromA, fromB, f.Chunks)
	}
	if fromA.Bytes+fromB.Bytes != int64(f.CipherSize) {
		t.Fatalf("c fetched %d bytes, the ciphertext is %d", fromA.Bytes+fromB.Bytes, f.CipherSize)
	}
}
