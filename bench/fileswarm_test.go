package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// The swarm workload.
const (
	swarmSizeEnv   = "CHARLA_BENCH_SWARM_MB" // MiB of plaintext; default swarmDefaultMB
	swarmDefaultMB = 256
)

// BenchmarkFileSwarm measures a receiver fetching one file from three peers
// that hold it, against one peer fetching it from a single source, in the
// same run. Four charla nodes in this process on 127.0.0.1, automatic
// download off:
//
//  1. A posts a file of random bytes to #general (SendFile).
//  2. B, connected to A alone, gets it: the single source.
//  3. C, connected to A and B, gets it.
//  4. D, opened only now and connected to A, B and C, gets it from all three.
//
// The file is 256 MiB unless CHARLA_BENCH_SWARM_MB says how many MiB; run
// it once, without -short (which skips it) and without -race:
//
//	go test -run='^$' -bench=FileSwarm -benchtime=1x ./bench
//
// Metrics (MB is 10⁶ bytes), each rate ciphertext bytes over the time from
// GetFile's call until the receiver's BlobSources count every ciphertext
// byte (polled every 2 ms), as file-MB/s in BenchmarkFileTransfer:
//
//	single-MB/s    B's fetch from A
//	two-MB/s       C's fetch from A and B
//	swarm-MB/s     D's fetch from A, B and C
//	ratio          swarm-MB/s / single-MB/s
//	from-A-chunks  chunks D fetched from A; from-B-chunks, from-C-chunks
//	               likewise (BlobSources)
//
// All four nodes share this process and its two cores here, so three
// sources do not bring three times the CPU: every byte is still encrypted
// by a sender and decrypted, checked and stored by the one receiver. What
// the swarm shows on one machine is that the sources share the work
// without losing to the single one. Every copy is checked by SHA-256.
func BenchmarkFileSwarm(b *testing.B) {
	if testing.Short() {
		b.Skip("moves a file to three nodes; run without -short")
	}
	size := int64(swarmDefaultMB) << 20
	if s := os.Getenv(swarmSizeEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number of MiB", swarmSizeEnv, s)
		}
		size = int64(v) << 20
	}
	var r swarmResult
	for b.Loop() {
		r = runFileSwarm(b, size)
	}
	rate := func(d time.Duration) float64 { return float64(r.cipher) / mb / d.Seconds() }
	b.Logf("file: %d bytes, %d of ciphertext in %d chunks; B fetched from A in %v, C from A and B in %v (%v), D from A, B and C in %v",
		r.size, r.cipher, r.chunks, r.single.Round(time.Millisecond), r.two.Round(time.Millisecond), r.twoFrom,
		r.swarm.Round(time.Millisecond))
	b.Logf("D's sources: A %+v, B %+v, C %+v", r.from[0], r.from[1], r.from[2])
	b.ReportMetric(rate(r.single), "single-MB/s")
	b.ReportMetric(rate(r.two), "two-MB/s")
	b.ReportMetric(rate(r.swarm), "swarm-MB/s")
	b.ReportMetric(r.single.Seconds()/r.swarm.Seconds(), "ratio")
	for i, name := range []string{"A", "B", "C"} {
		b.ReportMetric(float64(r.from[i].Chunks), "from-"+name+"-chunks")
	}
}

// swarmResult is what one swarm run measured.
type swarmResult struct {
	size, cipher       uint64
	chunks             int
	single, two, swarm time.Duration // B's, C's and D's fetch
	twoFrom            []int64       // chunks C fetched from A and from B
	from               [3]node.BlobSource
}

func runFileSwarm(b *testing.B, size int64) swarmResult {
	ctx := context.Background()
	dir := b.TempDir()
	in := filepath.Join(dir, "in.bin")
	want := writeRandomFile(b, in, size)

	homes := make([]string, 4)
	for i, name := range []string{"a", "b", "c", "d"} {
		homes[i] = filepath.Join(dir, name)
	}
	if _, err := node.Init(ctx, homes[0], node.InitOptions{Name: "A", Workspace: "Bench"}); err != nil {
		b.Fatal(err)
	}
	open := func(home string, peers ...*node.Node) *node.Node {
		var addrs []string
		for _, p := range peers {
			addrs = append(addrs, p.Addrs()[0])
		}
		n, err := node.Open(ctx, node.Config{
			Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: addrs, AutoDownload: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		return n
	}
	a := open(homes[0])
	// Every member is provisioned before the file is posted, so that A, B
	// and C know D when it asks.
	for i, name := range []string{"B", "C", "D"} {
		if _, err := a.Provision(ctx, homes[i+1], name); err != nil {
			b.Fatal(err)
		}
	}
	nb := open(homes[1], a)
	nc := open(homes[2], a, nb)
	connected := func(n *node.Node, peers int) {
		waitFor(b, 30*time.Second, "a node connected to its peers and reading #general", func() bool {
			st, err := n.Status(ctx)
			if err != nil || len(st.Peers) < peers {
				return false
			}
			_, err = n.Log(ctx, "general", 1)
			return err == nil
		})
	}
	connected(nb, 1)
	connected(nc, 2)

	f, err := a.SendFile(ctx, "general", in)
	if err != nil {
		b.Fatal(err)
	}
	r := swarmResult{size: f.Size, cipher: f.CipherSize, chunks: f.Chunks}
	r.single = swarmGet(b, nb, f, want, filepath.Join(dir, "b.out"))
	r.two = swarmGet(b, nc, f, want, filepath.Join(dir, "c.out"))
	src := nc.BlobSources()
	r.twoFrom = []int64{src[a.PeerID().String()].Chunks, src[nb.PeerID().String()].Chunks}

	nd := open(homes[3], a, nb, nc)
	connected(nd, 3)
	r.swarm = swarmGet(b, nd, f, want, filepath.Join(dir, "d.out"))
	src = nd.BlobSources()
	for i, n := range []*node.Node{a, nb, nc} {
		r.from[i] = src[n.PeerID().String()]
	}
	return r
}

// swarmGet gets file f on n, fresh to it, checks the output against want,
// and returns the time until n had fetched every ciphertext byte.
func swarmGet(b *testing.B, n *node.Node, f node.File, want [32]byte, out string) time.Duration {
	ctx := context.Background()
	waitFor(b, 30*time.Second, "the file message reached the receiver", func() bool {
		_, err := n.File(ctx, f.ID)
		return err == nil
	})
	fetchedBytes := func() int64 {
		var sum int64
		for _, s := range n.BlobSources() {
			sum += s.Bytes
		}
		return sum
	}
	fetched := make(chan time.Duration, 1)
	getDone := make(chan struct{})
	start := time.Now()
	go func() {
		for fetchedBytes() < int64(f.CipherSize) {
			select {
			case <-getDone:
				fetched <- 0
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
		fetched <- time.Since(start)
	}()
	_, err := n.GetFile(ctx, f.ID, out)
	close(getDone)
	d := <-fetched
	if err != nil {
		b.Fatal(err)
	}
	if d == 0 {
		b.Fatalf("get completed but the receiver counts %v, not %d bytes", n.BlobSources(), f.CipherSize)
	}
	if got := hashFile(b, out); got != want {
		b.Fatalf("the file got is not the file posted: sha256 %x, want %x", got, want)
	}
	os.Remove(out)
	return d
}
