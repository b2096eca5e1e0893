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
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
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
	fileSizeEnv       = "CHARLA_BENCH_FILE_MB" // MiB of plaintext; default fileDefaultMB
	fileDefaultMB     = 1024
	fileRoundsEnv     = "CHARLA_BENCH_FILE_ROUNDS" // rounds of fetch, get and baselines; default fileDefaultRounds
	fileDefaultRounds = 5
	fileProfileEnv    = "CHARLA_BENCH_FILE_CPUPROFILE" // a directory: each round's fetch and bare stream write their CPU profiles there
	fileBareProto     = "/bench/bulk/1"
	fileCopyBuf       = 1 << 20 // the baselines write and read in pieces of this size
	rssPollInterval   = 100 * time.Millisecond
	mb                = 1e6 // the MB of the MB/s metrics
)

// BenchmarkFileTransfer moves one file of random bytes between charla
// nodes in this process on 127.0.0.1, and the same number of bytes over a
// bare libp2p stream with the same transport and private network, and over
// a raw TCP connection. The file is 1 GiB unless CHARLA_BENCH_FILE_MB says
// how many MiB. A fixed workload of two minutes or so on two cores; run it
// once, without -short (which skips it) and without -race:
//
//	go test -run='^$' -bench=FileTransfer -benchtime=1x ./bench
//	CHARLA_BENCH_FILE_MB=2048 go test -run='^$' -bench=FileTransfer -benchtime=1x ./bench
//
// Node A posts the file to #general with SendFile, once. Then come 5
// rounds (CHARLA_BENCH_FILE_ROUNDS says how many): in each, a fresh node,
// a member with automatic download off and A as its one peer, fetches the
// file with FetchFile (kept, not written out) and closes; another fresh
// node, set up the same way, gets it with GetFile and closes; and the
// baselines carry the same byte count, before the fetch in even rounds and
// after the get in odd ones. Every timed phase starts after a GC.
//
// One sample of these rates is not a measurement here: a bare stream alone,
// run again and again in one process on an otherwise idle machine, moved
// 250–400 MB/s at the same CPU per byte (4.4–5.1 ns/B), as the transport's
// goroutines kept 1.3 or 1.8 of the two cores busy, changing from one
// transfer to the next and within one. So each rate is the median of the
// rounds, the log gives every sample, and ratio is the ratio of the
// medians; the -min and -max figures give the spread. The metrics (MB is
// 10⁶ bytes):
//
//	prepare-MB/s      plaintext bytes / SendFile's time on A: read, encrypt
//	                  with age to the room key, cut into 1 MiB chunks, hash
//	                  and store each, post the manifest (one sample)
//	file-MB/s         median of ciphertext bytes / FetchFile's time: ask
//	                  which chunks A has, stream them, check each hash on
//	                  both ends, store each chunk in the fetcher's pack,
//	                  make the pack and its record durable
//	get-MB/s          median of plaintext bytes / GetFile's whole time: the
//	                  same fetch, and meanwhile decrypting the chunks in
//	                  order as they arrive and writing the output, then its
//	                  fsync
//	bare-stream-MB/s  median of the ciphertext's byte count / time to carry
//	                  it over one stream between two fresh libp2p hosts,
//	                  TCP + Noise + yamux in a private network with a
//	                  32-byte key, as a node's host is set up; written and
//	                  read 1 MiB at a time
//	raw-tcp-MB/s      median, the same byte count over one loopback TCP
//	                  connection
//	ratio             file-MB/s / bare-stream-MB/s (the medians)
//	ratio-min, ratio-max
//	                  the lowest and highest of file ÷ bare stream within a
//	                  round
//	file-min-MB/s, file-max-MB/s, get-min-MB/s, get-max-MB/s,
//	bare-min-MB/s, bare-max-MB/s
//	                  the spread of the samples
//	file-cpu-ns/B     median of process CPU (user + system) over
//	                  FetchFile's time, per ciphertext byte: both nodes'
//	                  work, sender and receiver
//	bare-cpu-ns/B     the same over the bare stream; steadier than the rates
//	get-cpu-ns/B      median of process CPU over GetFile's whole time, per
//	                  ciphertext byte: the fetch, decryption and the
//	                  output's writes
//	others-cores-max  the most cores that other processes kept busy, on
//	                  average, during any timed phase (from /proc/stat; the
//	                  log gives each, and the rate of disk writes): a
//	                  sample taken while others ran says little. Linux only.
//	peak-rss-MB       growth: the highest VmRSS of this process seen while A
//	                  posted and while any node fetched or got the file
//	                  (polled every 100 ms; the log gives each peak), less
//	                  VmRSS just before posting, after a GC that returned
//	                  freed memory to the OS; every node counts, as they
//	                  share the process. Linux only.
//
// All nodes, and both ends of each baseline, share this process and its
// cores, so every rate is bound by CPU and moves with whatever else the
// machine runs. Every output is checked against the input by SHA-256.
func BenchmarkFileTransfer(b *testing.B) {
	if testing.Short() {
		b.Skip("moves a 1 GiB file several times three ways; run without -short")
	}
	size := int64(fileDefaultMB) << 20
	if s := os.Getenv(fileSizeEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number of MiB", fileSizeEnv, s)
		}
		size = int64(v) << 20
	}
	rounds := fileDefaultRounds
	if s := os.Getenv(fileRoundsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q: want a positive number of rounds", fileRoundsEnv, s)
		}
		rounds = v
	}
	var r fileResult
	for b.Loop() {
		r = runFileTransfer(b, size, rounds)
	}
	rate := func(bytes uint64, d time.Duration) float64 { return float64(bytes) / mb / d.Seconds() }
	perByte := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(r.cipher) }
	var file, get, bare, tcp, ratio, fileCPU, getCPU, bareCPU []float64
	others := -1.0
	b.Logf("file: %d bytes, %d of ciphertext in %d chunks; posted in %v",
		r.size, r.cipher, r.chunks, r.prepare.Round(time.Millisecond))
	for i, s := range r.rounds {
		file = append(file, rate(r.cipher, s.fetch))
		get = append(get, rate(r.size, s.get))
		bare = append(bare, rate(r.cipher, s.bare))
		tcp = append(tcp, rate(r.cipher, s.tcp))
		ratio = append(ratio, s.bare.Seconds()/s.fetch.Seconds())
		fileCPU = append(fileCPU, perByte(s.fetchCPU))
		getCPU = append(getCPU, perByte(s.getCPU))
		bareCPU = append(bareCPU, perByte(s.bareCPU))
		// One line a round: testing keeps only the first 10 lines of a
		// benchmark's log.
		load := "no figures of the rest of the machine"
		if s.fetchLoad.ok && s.getLoad.ok && s.bareLoad.ok {
			load = fmt.Sprintf("other processes busy %.2f / %.2f / %.2f cores during the fetch / get / bare stream, disks written at %.0f / %.0f MB/s during the fetch / get",
				s.fetchLoad.others, s.getLoad.others, s.bareLoad.others, s.fetchLoad.diskMBps, s.getLoad.diskMBps)
			others = max(others, s.fetchLoad.others, s.getLoad.others, s.bareLoad.others)
		}
		b.Logf("round %d: file %.0f MB/s (%.2f ns/B, %.2f cores), get %.0f MB/s (%.2f ns/B, %.2f cores), bare stream %.0f MB/s (%.2f ns/B, %.2f cores), ratio %.2f, raw TCP %.0f MB/s; fetched from A %+v; %s",
			i, file[i], fileCPU[i], s.fetchCPU.Seconds()/s.fetch.Seconds(), get[i], getCPU[i], s.getCPU.Seconds()/s.get.Seconds(),
			bare[i], bareCPU[i], s.bareCPU.Seconds()/s.bare.Seconds(), ratio[i], tcp[i], s.source, load)
	}
	b.ReportMetric(rate(r.size, r.prepare), "prepare-MB/s")
	b.ReportMetric(median(file), "file-MB/s")
	b.ReportMetric(median(get), "get-MB/s")
	b.ReportMetric(median(bare), "bare-stream-MB/s")
	b.ReportMetric(median(tcp), "raw-tcp-MB/s")
	b.ReportMetric(median(file)/median(bare), "ratio")
	b.ReportMetric(slices.Min(ratio), "ratio-min")
	b.ReportMetric(slices.Max(ratio), "ratio-max")
	b.ReportMetric(slices.Min(file), "file-min-MB/s")
	b.ReportMetric(slices.Max(file), "file-max-MB/s")
	b.ReportMetric(slices.Min(get), "get-min-MB/s")
	b.ReportMetric(slices.Max(get), "get-max-MB/s")
	b.ReportMetric(slices.Min(bare), "bare-min-MB/s")
	b.ReportMetric(slices.Max(bare), "bare-max-MB/s")
	if median(fileCPU) > 0 && median(bareCPU) > 0 {
		b.ReportMetric(median(fileCPU), "file-cpu-ns/B")
		b.ReportMetric(median(bareCPU), "bare-cpu-ns/B")
	}
	if median(getCPU) > 0 {
		b.ReportMetric(median(getCPU), "get-cpu-ns/B")
	}
	if others >= 0 {
		b.ReportMetric(others, "others-cores-max")
	}
	if r.rssOK {
		b.Logf("VmRSS: %d KiB before, peak %d KiB while posting, %d KiB while fetching, %d KiB while getting",
			r.rssBase>>10, r.rssPrepare>>10, r.rssFetch>>10, r.rssGet>>10)
		b.ReportMetric(float64(max(r.rssPrepare, r.rssFetch, r.rssGet)-r.rssBase)/(1<<20), "peak-rss-MB")
	}
}

// median returns the middle of vs, or the mean of the two middle ones.
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fileResult is what one run measured.
type fileResult struct {
	size, cipher uint64 // plaintext and ciphertext bytes
	chunks       int
	prepare      time.Duration // SendFile
	rounds       []fileRound

	rssOK                                 bool
	rssBase, rssPrepare, rssFetch, rssGet int64 // bytes: before, and peaks while posting, fetching and getting
}

// fileRound is one round's samples.
type fileRound struct {
	fetch, fetchCPU time.Duration // FetchFile on a fresh node, and process CPU over it
	get, getCPU     time.Duration // GetFile on another fresh node
	bare, bareCPU   time.Duration // the bare stream carrying the ciphertext's byte count
	tcp             time.Duration // raw TCP, the same
	source          node.BlobSource

	fetchLoad, getLoad, bareLoad phaseLoad // the rest of the machine meanwhile
}

// runFileTransfer writes a file of size random bytes and posts it on one
// node; then, rounds times, a fresh node fetches it, another gets it, and
// the baselines carry as many bytes.
func runFileTransfer(b *testing.B, size int64, rounds int) fileResult {
	ctx := context.Background()
	dir := b.TempDir()
	in := filepath.Join(dir, "in.bin")
	want := writeRandomFile(b, in, size)

	homeA := filepath.Join(dir, "a")
	if _, err := node.Init(ctx, homeA, node.InitOptions{Name: "Sender", Workspace: "Bench"}); err != nil {
		b.Fatal(err)
	}
	a, err := node.Open(ctx, node.Config{Home: homeA, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AutoDownload: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	// member provisions a fresh member node, opens it with A as its one
	// peer, and waits until it is connected, reads #general and holds file
	// id ("" for none yet). Every other member is closed by then, so A is
	// each fetch's one source.
	member := func(name, id string) (*node.Node, string) {
		home := filepath.Join(dir, name)
		if _, err := a.Provision(ctx, home, name); err != nil {
			b.Fatal(err)
		}
		n, err := node.Open(ctx, node.Config{
			Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []string{a.Addrs()[0]}, AutoDownload: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
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
		return n, home
	}
	// A first member before posting, so the file message has someone to
	// reach, as in an office.
	first, firstHome := member("fetcher-0", "")

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
	from := a.PeerID().String()

	for i := range rounds {
		var s fileRound
		baselines := func() {
			runtime.GC()
			stopProfile := profilePhase(b, "bare", i)
			mm := startMachine()
			s.bare, s.bareCPU = bareStream(b, int64(r.cipher))
			s.bareLoad = mm.stop()
			stopProfile()
			runtime.GC()
			s.tcp = rawTCP(b, int64(r.cipher))
		}
		if i%2 == 0 {
			baselines()
		}

		// The fetch alone: ask, stream, check, store, record.
		fetcher, home := first, firstHome
		if i > 0 {
			fetcher, home = member(fmt.Sprintf("fetcher-%d", i), f.ID)
		} else {
			waitFor(b, 30*time.Second, "the first fetcher holding the file message", func() bool {
				_, err := fetcher.File(ctx, f.ID)
				return err == nil
			})
		}
		runtime.GC()
		stopProfile := profilePhase(b, "fetch", i)
		poll = startRSSPoll(r.rssOK)
		mm := startMachine()
		start = time.Now()
		cpu0 := processCPU()
		v, err := fetcher.FetchFile(ctx, f.ID)
		s.fetch = time.Since(start)
		s.fetchCPU = processCPU() - cpu0
		stopProfile()
		s.fetchLoad = mm.stop()
		r.rssFetch = max(r.rssFetch, poll.stop())
		if err != nil {
			b.Fatal(err)
		}
		s.source = fetcher.BlobSources()[from]
		if v.State != "complete" || s.source.Bytes != int64(r.cipher) {
			b.Fatalf("fetch returned %+v, %+v from the sender; want all %d bytes", v, s.source, r.cipher)
		}
		// Closed, so that the getter has A as its one source, and removed,
		// so that the rounds do not fill the disk.
		fetcher.Close()
		os.RemoveAll(home)

		getter, home := member(fmt.Sprintf("getter-%d", i), f.ID)
		out := filepath.Join(dir, "out.bin")
		runtime.GC()
		poll = startRSSPoll(r.rssOK)
		mm = startMachine()
		start = time.Now()
		cpu0 = processCPU()
		_, err = getter.GetFile(ctx, f.ID, out)
		s.get = time.Since(start)
		s.getCPU = processCPU() - cpu0
		s.getLoad = mm.stop()
		r.rssGet = max(r.rssGet, poll.stop())
		if err != nil {
			b.Fatal(err)
		}
		if got := getter.BlobSources()[from]; got.Bytes != int64(r.cipher) {
			b.Fatalf("get fetched %+v from the sender, not %d bytes", got, r.cipher)
		}
		getter.Close()
		os.RemoveAll(home)
		if got := hashFile(b, out); got != want {
			b.Fatalf("the file got is not the file posted: sha256 %x, want %x", got, want)
		}
		os.Remove(out)

		if i%2 == 1 {
			baselines()
		}
		r.rounds = append(r.rounds, s)
	}
	return r
}

// profilePhase starts a CPU profile of round i's phase (fetch, bare) when
// CHARLA_BENCH_FILE_CPUPROFILE names a directory, and returns what stops it:
// a profile of the whole benchmark would mix the phases.
func profilePhase(b *testing.B, phase string, i int) func() {
	dir := os.Getenv(fileProfileEnv)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", phase, i)))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
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
	// Durable now, so that the kernel's writeback of it, 30 s later, does
	// not fall in a timed phase (it did: 283 MB/s of disk writes during a
	// fetch of 138 MB/s).
	if err := f.Sync(); err != nil {
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
