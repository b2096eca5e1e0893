package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The file transfer workload.
const (
	fileSizeEnv     = "CHARLA_BENCH_FILE_MB" // MiB of plaintext; default fileDefaultMB
	fileDefaultMB   = 1024
	fileBareProto   = "/bench/bulk/1"
	fileCopyBuf     = 1 << 20 // the baselines write and read in pieces of this size
	rssPollInterval = 100 * time.Millisecond
	mb              = 1e6 // the MB of the MB/s metrics
)

// BenchmarkFileTransfer moves one file of random bytes between two charla
// nodes in this process on 127.0.0.1, and the same number of bytes over a
// bare libp2p stream with the same transport and private network, and over
// a raw TCP connection. The file is 1 GiB unless CHARLA_BENCH_FILE_MB says
// how many MiB. A fixed workload of a minute or so on two cores; run it
// once, without -short (which skips it) and without -race:
//
//	go test -run='^$' -bench=FileTransfer -benchtime=1x ./bench
//	CHARLA_BENCH_FILE_MB=2048 go test -run='^$' -bench=FileTransfer -benchtime=1x ./bench
//
// Node A posts the file to #general with SendFile; node B, a member with
// automatic download off and A as its one peer, fetches it with FetchFile
// (kept, not written out); then B closes and node C, set up as B was, gets
// it with GetFile. The metrics (MB is 10⁶ bytes):
//
//	prepare-MB/s      plaintext bytes / SendFile's time on A: read, encrypt
//	                  with age to the room key, cut into 1 MiB chunks, hash
//	                  and store each, post the manifest
//	file-MB/s         ciphertext bytes / FetchFile's time on B: ask which
//	                  chunks A has, stream them on two streams with three
//	                  requests in flight on each, check each hash on both
//	                  ends, store each chunk in B's pack, make the pack and
//	                  its record durable
//	get-MB/s          plaintext bytes / GetFile's whole time on C: the same
//	                  fetch, and meanwhile decrypting the chunks in order as
//	                  they arrive and writing the output, then its fsync
//	bare-stream-MB/s  the ciphertext's byte count / time to carry it over one
//	                  stream between two fresh libp2p hosts, TCP + Noise +
//	                  yamux in a private network with a 32-byte key, as a
//	                  node's host is set up; written and read 1 MiB at a time
//	raw-tcp-MB/s      the same byte count over one loopback TCP connection
//	ratio             file-MB/s / bare-stream-MB/s
//	file-cpu-ns/B     process CPU (user + system) over FetchFile's time, per
//	                  ciphertext byte: both nodes' work, sender and receiver
//	bare-cpu-ns/B     the same over the bare stream; steadier than the rates
//	                  on a shared machine
//	get-cpu-ns/B      process CPU over GetFile's whole time, per ciphertext
//	                  byte: the fetch, decryption and the output's writes
//	peak-rss-MB       growth: the highest VmRSS of this process seen while A posted,
//	                  B fetched and C got the file (polled every 100 ms; the
//	                  log gives each peak), less VmRSS
//	                  just before, after a GC that returned freed memory to
//	                  the OS; every node counts, as they share the process.
//	                  Linux only.
//
// Both nodes, and both ends of each baseline, share this process and its
// cores, so every rate is bound by CPU and moves with whatever else the
// machine runs; the ratio is the steadier figure. The output is checked
// against the input by SHA-256.
func BenchmarkFileTransfer(b *testing.B) {
	if testing.Short() {
		b.Skip("moves a 1 GiB file three ways; run without -short")
	}
	size := int64(fileDefaultMB) << 20
	if s := os.Getenv(fileSizeEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number of MiB", fileSizeEnv, s)
		}
		size = int64(v) << 20
	}
	var r fileResult
	for b.Loop() {
		r = runFileTransfer(b, size)
		r.bare, r.bareCPU = bareStream(b, int64(r.cipher))
		r.tcp = rawTCP(b, int64(r.cipher))
	}
	rate := func(bytes uint64, d time.Duration) float64 { return float64(bytes) / mb / d.Seconds() }
	b.Logf("file: %d bytes, %d of ciphertext in %d chunks; posted in %v, fetched in %v (CPU %v), got in %v (CPU %v); fetched from A %+v",
		r.size, r.cipher, r.chunks, r.prepare.Round(time.Millisecond), r.fetch.Round(time.Millisecond),
		r.fetchCPU.Round(time.Millisecond), r.get.Round(time.Millisecond), r.getCPU.Round(time.Millisecond), r.source)
	b.Logf("baselines: bare stream %v (CPU %v), raw TCP %v for %d bytes",
		r.bare.Round(time.Millisecond), r.bareCPU.Round(time.Millisecond), r.tcp.Round(time.Millisecond), r.cipher)
	b.ReportMetric(rate(r.size, r.prepare), "prepare-MB/s")
	b.ReportMetric(rate(r.cipher, r.fetch), "file-MB/s")
	b.ReportMetric(rate(r.size, r.get), "get-MB/s")
	b.ReportMetric(rate(r.cipher, r.bare), "bare-stream-MB/s")
	b.ReportMetric(rate(r.cipher, r.tcp), "raw-tcp-MB/s")
	b.ReportMetric(r.bare.Seconds()/r.fetch.Seconds(), "ratio")
	if r.fetchCPU > 0 && r.bareCPU > 0 {
		b.ReportMetric(float64(r.fetchCPU.Nanoseconds())/float64(r.cipher), "file-cpu-ns/B")
		b.ReportMetric(float64(r.bareCPU.Nanoseconds())/float64(r.cipher), "bare-cpu-ns/B")
	}
	if r.getCPU > 0 {
		b.ReportMetric(float64(r.getCPU.Nanoseconds())/float64(r.cipher), "get-cpu-ns/B")
	}
	if r.rssOK {
		b.Logf("VmRSS: %d KiB before, peak %d KiB while posting, %d KiB while fetching, %d KiB while getting",
			r.rssBase>>10, r.rssPrepare>>10, r.rssFetch>>10, r.rssGet>>10)
		b.ReportMetric(float64(max(r.rssPrepare, r.rssFetch, r.rssGet)-r.rssBase)/(1<<20), "peak-rss-MB")
	}
}

// fileResult is what one run measured.
type fileResult struct {
	size, cipher uint64 // plaintext and ciphertext bytes
	chunks       int
	prepare      time.Duration // SendFile
	fetch        time.Duration // FetchFile on the fetcher
	fetchCPU     time.Duration // process CPU over fetch
	get          time.Duration // GetFile on the getter
	getCPU       time.Duration // process CPU over get
	source       node.BlobSource
	bare, tcp    time.Duration // the baselines carrying cipher bytes
	bareCPU      time.Duration // process CPU over bare

	rssOK                                 bool
	rssBase, rssPrepare, rssFetch, rssGet int64 // bytes: before, and peaks while posting, fetching and getting
}

// runFileTransfer writes a file of size random bytes, posts it on one
// node, fetches it on a second and gets it on a third.
func runFileTransfer(b *testing.B, size int64) fileResult {
	ctx := context.Background()
	dir := b.TempDir()
	in := filepath.Join(dir, "in.bin")
	want := writeRandomFile(b, in, size)

	homeA, homeB, homeC := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	if _, err := node.Init(ctx, homeA, node.InitOptions{Name: "Sender", Workspace: "Bench"}); err != nil {
		b.Fatal(err)
	}
	open := func(home string, peers ...string) *node.Node {
		n, err := node.Open(ctx, node.Config{
			Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers, AutoDownload: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	a := open(homeA)
	defer a.Close()
	for _, h := range []struct{ home, name string }{{homeB, "Fetcher"}, {homeC, "Getter"}} {
		if _, err := a.Provision(ctx, h.home, h.name); err != nil {
			b.Fatal(err)
		}
	}
	// ready waits until n is connected, reads #general and holds file id
	// ("" for none yet). A is the one node up besides n, so it is each
	// fetch's one source.
	ready := func(n *node.Node, id string) {
		waitFor(b, 30*time.Second, "a receiver connected to the sender, reading #general and holding the file message", func() bool {
			st, err := n.Status(ctx)
			if err != nil || len(st.Peers) == 0 {
				return false
			}
			if _, err = n.Log(ctx, "general", 1); err != nil || id == "" {
				return err == nil
			}
			_, err = n.File(ctx, id)
			return err == nil
		})
	}
	fetcher := open(homeB, a.Addrs()[0])
	defer fetcher.Close()
	ready(fetcher, "")

	var r fileResult
	debug.FreeOSMemory()
	base, err := vmRSS()
	r.rssOK = err == nil
	if err != nil {
		b.Logf("no resident memory figure: %v", err)
	}
	r.rssBase = base

	poll := startRSSPoll(r.rssOK)
	start := time.Now()
	f, err := a.SendFile(ctx, "general", in)
	if err != nil {
		b.Fatal(err)
	}
	r.prepare = time.Since(start)
	r.rssPrepare = poll.stop()
	r.size, r.cipher, r.chunks = f.Size, f.CipherSize, f.Chunks
	ready(fetcher, f.ID)
	from := a.PeerID().String()

	// The fetch alone: ask, stream, check, store, record.
	poll = startRSSPoll(r.rssOK)
	start = time.Now()
	cpu0 := processCPU()
	v, err := fetcher.FetchFile(ctx, f.ID)
	r.fetch = time.Since(start)
	r.fetchCPU = processCPU() - cpu0
	r.rssFetch = poll.stop()
	if err != nil {
		b.Fatal(err)
	}
	r.source = fetcher.BlobSources()[from]
	if v.State != "complete" || r.source.Bytes != int64(r.cipher) {
		b.Fatalf("fetch returned %+v, %+v from the sender; want all %d bytes", v, r.source, r.cipher)
	}
	// Closed, so that the getter has A as its one source.
	fetcher.Close()

	getter := open(homeC, a.Addrs()[0])
	defer getter.Close()
	ready(getter, f.ID)
	out := filepath.Join(dir, "out.bin")
	poll = startRSSPoll(r.rssOK)
	start = time.Now()
	cpu0 = processCPU()
	_, err = getter.GetFile(ctx, f.ID, out)
	r.get = time.Since(start)
	r.getCPU = processCPU() - cpu0
	r.rssGet = poll.stop()
	if err != nil {
		b.Fatal(err)
	}
	if got := getter.BlobSources()[from]; got.Bytes != int64(r.cipher) {
		b.Fatalf("get fetched %+v from the sender, not %d bytes", got, r.cipher)
	}
	if got := hashFile(b, out); got != want {
		b.Fatalf("the file got is not the file posted: sha256 %x, want %x", got, want)
	}
	return r
}

// writeRandomFile writes size random bytes to path, a piece at a time, and
// returns their SHA-256.
func writeRandomFile(b *testing.B, path string, size int64) [32]byte {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), fileCopyBuf)
	if _, err := io.CopyN(w, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func hashFile(b *testing.B, path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// sink reads r to its end, fileCopyBuf at a time, and returns the count.
func sink(r io.Reader) (int64, error) {
	buf := make([]byte, fileCopyBuf)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// pour writes n bytes to w from one random buffer of fileCopyBuf bytes.
func pour(w io.Writer, n int64) error {
	buf := make([]byte, fileCopyBuf)
	rand.Read(buf)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// bareStream times n bytes over one stream between two new libp2p hosts
// set up as a node's host is: TCP, Noise, yamux, a private network, and
// returns the process CPU it took too.
func bareStream(b *testing.B, n int64) (time.Duration, time.Duration) {
	ctx := context.Background()
	psk := make([]byte, 32)
	rand.Read(psk)
	src, dst := bareHost(b, psk), bareHost(b, psk)
	defer src.Close()
	defer dst.Close()
	type got struct {
		n   int64
		err error
	}
	done := make(chan got, 1)
	dst.SetStreamHandler(fileBareProto, func(s network.Stream) {
		k, err := sink(s)
		s.Close()
		done <- got{k, err}
	})
	if err := src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()}); err != nil {
		b.Fatal(err)
	}
	s, err := src.NewStream(ctx, dst.ID(), fileBareProto)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cpu0 := processCPU()
	if err := pour(s, n); err != nil {
		b.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	g := <-done
	took, cpu := time.Since(start), processCPU()-cpu0
	s.Close()
	if g.err != nil || g.n != n {
		b.Fatalf("bare stream carried %d of %d bytes: %v", g.n, n, g.err)
	}
	return took, cpu
}

// rawTCP times n bytes over one TCP connection on 127.0.0.1.
func rawTCP(b *testing.B, n int64) time.Duration {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	type got struct {
		n   int64
		err error
	}
	done := make(chan got, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- got{0, err}
			return
		}
		defer c.Close()
		k, err := sink(c)
		done <- got{k, err}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := pour(c, n); err != nil {
		b.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	g := <-done
	took := time.Since(start)
	if g.err != nil || g.n != n {
		b.Fatalf("TCP carried %d of %d bytes: %v", g.n, n, g.err)
	}
	return took
}

// vmRSS reads this process's resident set size from /proc/self/status.
func vmRSS() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		var kib int64
		if _, err := fmt.Sscanf(string(rest), "%d kB", &kib); err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
		}
		return kib << 10, nil
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// rssPoll records the highest VmRSS seen from start to stop.
type rssPoll struct {
	peak atomic.Int64
	quit chan struct{}
	wg   sync.WaitGroup
}

// startRSSPoll polls VmRSS every rssPollInterval until stop; it does
// nothing, and stop returns 0, when on is false.
func startRSSPoll(on bool) *rssPoll {
	p := &rssPoll{quit: make(chan struct{})}
	if !on {
		return p
	}
	sample := func() {
		if v, err := vmRSS(); err == nil && v > p.peak.Load() {
			p.peak.Store(v)
		}
	}
	sample()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(rssPollInterval)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return p
}

// stop ends the polling and returns the peak, in bytes.
func (p *rssPoll) stop() int64 {
	close(p.quit)
	p.wg.Wait()
	return p.peak.Load()
}
