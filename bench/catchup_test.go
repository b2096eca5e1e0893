package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// BenchmarkCatchUp: a laptop that missed 10,000 messages of 1 KiB from five
// authors catches up from one peer through the whole pipeline (sync pull:
// vector → batches → verify → decrypt → store), and, in the same run, the
// same envelopes go straight into a fresh store with no network and no
// crypto. A fixed workload of a few minutes on two cores, most of it the
// 10,000 durable sends of the setup; run it once, without -short (which
// skips it) and without -race:
//
//	go test -run='^$' -bench=CatchUp -benchtime=1x ./bench
//
// The workspace: five authors — the founder and four members — each
// connected to a sixth member, the "server" (the members to the founder as
// well), send 2,000 texts each into #general; once the server holds all
// 10,000 every node is closed. The server is opened again; a seventh
// member, the laptop, was admitted (and handed the roster and #general's
// key) before the first text, but is opened only now, with the server as
// its one static peer.
//
// Set CHARLA_BENCH_CATCHUP_SETUP to a directory to keep the setup there
// and reuse it in later runs (delete it after changing what the setup
// writes): a run then takes seconds, and a -cpuprofile shows the catch-up
// rather than the 10,000 sends. CHARLA_BENCH_CATCHUP_PROFILE=FILE writes a
// CPU profile of the catch-up alone (from opening the laptop until it holds
// everything) to FILE, of the last round.
//
// A run times CHARLA_BENCH_CATCHUP_ROUNDS rounds (default 5), each from a
// fresh copy of the laptop's home and with its own store baseline (before
// the catch-up in even rounds, after it in odd ones, counting from 1); the
// log has a line a round. Its metrics are medians of the rounds, and
// catchup-msgs/s-min/-max, cpu-us/msg-min/-max their spread:
//
//	catchup-msgs/s  10,000 / catchup-s of a round
//	catchup-s       10,000 / the median catchup-msgs/s; a round's is from
//	                node.Open of the laptop until it holds every
//	                envelope the server holds (its Status().Envelopes,
//	                polled every 20 ms: a count of the envelopes table,
//	                which every 5 ms took ~3% of the CPU measured); this includes starting the
//	                laptop's host and the connection, and the envelopes of
//	                the founder's feed the laptop already holds from
//	                Provision, which come again and are dropped as
//	                duplicates
//	store-msgs/s    the 10,000 content envelopes and their messages written
//	                straight into a fresh store, tx.PutEnvelope +
//	                tx.PutMessage, 256 to a transaction
//	ratio           catchup-msgs/s ÷ store-msgs/s (of the medians): the
//	                share of the store's own speed the whole pipeline keeps
//	cpu-us/msg      process CPU (user + system, getrusage) over catchup-s,
//	                divided by 10,000. The server runs in this process too,
//	                so this is both sides of the pull: the server reading,
//	                sorting and framing its envelopes, both ends' transport
//	                encryption, and the laptop's verify, decrypt and store.
//
// catchup-s is wall time on a machine whose cores the server shares with
// the laptop, and moves with anything else the machine runs; cpu-us/msg is
// the steadier figure.
func BenchmarkCatchUp(b *testing.B) {
	if testing.Short() {
		b.Skip("starts 7 nodes, writes 10,000 messages and runs for minutes; run without -short")
	}
	var rs []catchUpResult
	for b.Loop() {
		rs = runCatchUp(b, catchUpRounds(b))
	}
	var rates, stores, cpus []float64
	for i, r := range rs {
		rate := float64(catchUpMessages) / r.catchUp.Seconds()
		storeRate := float64(catchUpMessages) / r.store.Seconds()
		cpu := float64(r.cpu.Microseconds()) / catchUpMessages
		rates, stores, cpus = append(rates, rate), append(stores, storeRate), append(cpus, cpu)
		b.Logf("round %d: catch-up %d envelopes (%d messages) in %v, %.0f msg/s, CPU %v (%.0f µs/msg, %.2f cores), first stored after %v; store alone %v, %.0f msg/s (%s)",
			i+1, r.envelopes, catchUpMessages, r.catchUp.Round(time.Millisecond), rate, r.cpu.Round(time.Millisecond), cpu,
			r.cpu.Seconds()/r.catchUp.Seconds(), r.first.Round(time.Millisecond), r.store.Round(time.Millisecond), storeRate, r.order)
	}
	b.ReportMetric(median(rates), "catchup-msgs/s")
	b.ReportMetric(slices.Min(rates), "catchup-msgs/s-min")
	b.ReportMetric(slices.Max(rates), "catchup-msgs/s-max")
	b.ReportMetric(median(stores), "store-msgs/s")
	b.ReportMetric(median(rates)/median(stores), "ratio")
	b.ReportMetric(float64(catchUpMessages)/median(rates), "catchup-s")
	b.ReportMetric(median(cpus), "cpu-us/msg")
	b.ReportMetric(slices.Min(cpus), "cpu-us/msg-min")
	b.ReportMetric(slices.Max(cpus), "cpu-us/msg-max")
}

// catchUpRounds is how many catch-ups (and store baselines) a run times:
// CHARLA_BENCH_CATCHUP_ROUNDS, or catchUpDefaultRounds.
func catchUpRounds(b *testing.B) int {
	v := os.Getenv("CHARLA_BENCH_CATCHUP_ROUNDS")
	if v == "" {
		return catchUpDefaultRounds
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("CHARLA_BENCH_CATCHUP_ROUNDS=%q: want a number of rounds, 1 or more", v)
	}
	return n
}

// The catch-up workload.
const (
	catchUpAuthors  = 5
	catchUpPer      = 2000 // texts per author
	catchUpMessages = catchUpAuthors * catchUpPer
	catchUpSize     = 1024 // bytes of text per message
	catchUpTxSize   = 256  // envelopes per transaction of the store baseline, as in one sync batch
	catchUpPoll     = 20 * time.Millisecond
	catchUpDeadline = 5 * time.Minute

	// One catch-up is one sample of a rate that moved 2× between runs at
	// the same load: a run times several, each from a fresh copy of the
	// laptop's home, with the store baseline after the catch-up in rounds
	// 1, 3, 5 and before it in rounds 2, 4, and reports medians.
	catchUpDefaultRounds = 5
)

// catchUpResult is what one round measured.
type catchUpResult struct {
	catchUp   time.Duration // laptop opened → it holds everything the server holds
	first     time.Duration // laptop opened → it holds more than it started with
	cpu       time.Duration // process CPU over catchUp
	envelopes int64         // envelopes the laptop holds at the end
	store     time.Duration // the baseline: the 10,000 written straight into a store
	order     string        // whether the baseline ran before or after the catch-up
}

// catchUpText is text j of author a: a label, then filler up to catchUpSize bytes.
func catchUpText(a, j int) string {
	p := make([]byte, catchUpSize)
	n := copy(p, fmt.Sprintf("author %d text %05d ", a, j))
	for i := n; i < len(p); i++ {
		p[i] = 'a' + byte((i+j)%26)
	}
	return string(p)
}

// runCatchUp sets the workload up (or reuses it) and times rounds
// catch-ups, each with its store baseline.
func runCatchUp(b *testing.B, rounds int) []catchUpResult {
	dir := b.TempDir()
	serverHome := filepath.Join(dir, "server")
	pristine := filepath.Join(dir, "laptop")
	if keep := os.Getenv("CHARLA_BENCH_CATCHUP_SETUP"); keep != "" {
		reuseCatchUpSetup(b, keep, serverHome, pristine)
	} else {
		setupCatchUp(b, dir, serverHome, pristine)
	}
	var rs []catchUpResult
	for i := range rounds {
		laptopHome := filepath.Join(dir, fmt.Sprintf("laptop-%d", i+1))
		if err := os.CopyFS(laptopHome, os.DirFS(pristine)); err != nil {
			b.Fatalf("copy the laptop's home: %v", err)
		}
		baseline := func() time.Duration {
			db := filepath.Join(dir, fmt.Sprintf("baseline-%d.db", i+1))
			return storeBaseline(b, filepath.Join(serverHome, "charla.db"), db)
		}
		var r catchUpResult
		if i%2 == 0 {
			r = catchUpOnce(b, serverHome, laptopHome)
			r.store, r.order = baseline(), "after"
		} else {
			store := baseline()
			r = catchUpOnce(b, serverHome, laptopHome)
			r.store, r.order = store, "before"
		}
		rs = append(rs, r)
		// Each round's laptop holds the whole history: free the disk.
		if err := os.RemoveAll(laptopHome); err != nil {
			b.Fatal(err)
		}
	}
	return rs
}

// catchUpOnce opens the server afresh, as after a restart, then the laptop,
// and times the laptop's catch-up; both are closed when it returns.
func catchUpOnce(b *testing.B, serverHome, laptopHome string) catchUpResult {
	ctx := context.Background()
	start, closeAll := opener(b)
	defer closeAll()
	server := start(serverHome)
	serverAddr := server.Addrs()[0]
	final, err := server.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if got := countMessages(b, server); got != catchUpMessages {
		b.Fatalf("the server reads %d messages in #general, want %d", got, catchUpMessages)
	}

	var r catchUpResult
	runtime.GC()
	stopProfile := profileCatchUp(b)
	cpu0 := processCPU()
	t0 := time.Now()
	laptop := start(laptopHome, serverAddr)
	deadline := t0.Add(catchUpDeadline)
	held0 := int64(-1)
	for {
		st, err := laptop.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if held0 < 0 {
			held0 = st.Envelopes
		} else if r.first == 0 && st.Envelopes > held0 {
			r.first = time.Since(t0)
		}
		if st.Envelopes >= final.Envelopes {
			r.envelopes = st.Envelopes
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %v the laptop holds %d of %d envelopes (rejected %v)",
				catchUpDeadline, st.Envelopes, final.Envelopes, nonZero(st.Rejected))
		}
		time.Sleep(catchUpPoll)
	}
	r.catchUp = time.Since(t0)
	r.cpu = processCPU() - cpu0
	stopProfile()

	if got := countMessages(b, laptop); got != catchUpMessages {
		b.Fatalf("the laptop reads %d messages in #general, want %d", got, catchUpMessages)
	}
	if st, err := laptop.Status(ctx); err == nil && len(st.Rejected) > 0 {
		b.Logf("laptop: rejected %v", nonZero(st.Rejected))
	}
	if err := laptop.Close(); err != nil {
		b.Fatal(err)
	}
	if err := server.Close(); err != nil {
		b.Fatal(err)
	}
	return r
}

// setupCatchUp writes the workload: the authors' texts held by the server,
// and a laptop provisioned before the first of them. Every node is closed
// when it returns.
// opener returns start, which opens a node at home on loopback dialling
// peers, and closeAll, which closes every node start opened.
func opener(b *testing.B) (start func(home string, peers ...string) *node.Node, closeAll func()) {
	var open []*node.Node
	start = func(home string, peers ...string) *node.Node {
		n, err := node.Open(context.Background(), node.Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers})
		if err != nil {
			b.Fatal(err)
		}
		open = append(open, n)
		return n
	}
	closeAll = func() {
		for _, n := range open {
			n.Close()
		}
	}
	return start, closeAll
}

func setupCatchUp(b *testing.B, dir, serverHome, laptopHome string) {
	ctx := context.Background()
	authorHomes := make([]string, catchUpAuthors)
	for i := range authorHomes {
		authorHomes[i] = filepath.Join(dir, fmt.Sprintf("author%d", i+1))
	}
	start, closeAll := opener(b)
	defer closeAll()

	// Author 1 founds the workspace and admits the others. Provision hands
	// each new member the roster and #general's key as they stand: the
	// server, admitted after the authors, accepts them all, and the laptop,
	// admitted last, knows every member and the key before the first text
	// is written. The authors learn of the server from the founder.
	if _, err := node.Init(ctx, authorHomes[0], node.InitOptions{Name: "Author1", Workspace: "Bench"}); err != nil {
		b.Fatal(err)
	}
	founder := start(authorHomes[0])
	for i, home := range authorHomes[1:] {
		if _, err := founder.Provision(ctx, home, fmt.Sprintf("Author%d", i+2)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := founder.Provision(ctx, serverHome, "Server"); err != nil {
		b.Fatal(err)
	}
	if _, err := founder.Provision(ctx, laptopHome, "Laptop"); err != nil {
		b.Fatal(err)
	}

	server := start(serverHome, founder.Addrs()[0])
	serverAddr := server.Addrs()[0]
	authors := []*node.Node{founder}
	for _, home := range authorHomes[1:] {
		authors = append(authors, start(home, serverAddr, founder.Addrs()[0]))
	}
	serverID := server.PeerID().String()
	// Ready: every author connected and reading #general, and the server
	// holding all the founder holds (the laptop's admission among it).
	waitFor(b, 60*time.Second, "every author connected to the server and reading #general, the server up to date", func() bool {
		for _, n := range authors {
			st, err := n.Status(ctx)
			if err != nil || !slices.Contains(st.Peers, serverID) {
				return false
			}
			if _, err := n.Log(ctx, "general", 1); err != nil {
				return false
			}
		}
		fs, err1 := founder.Status(ctx)
		ss, err2 := server.Status(ctx)
		return err1 == nil && err2 == nil && ss.Envelopes == fs.Envelopes
	})
	before, err := server.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}

	sendStart := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, catchUpAuthors)
	for i, n := range authors {
		wg.Go(func() {
			for j := range catchUpPer {
				if _, err := n.Send(ctx, "general", catchUpText(i+1, j)); err != nil {
					errs[i] = fmt.Errorf("author %d, text %d: %w", i+1, j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	sent := time.Since(sendStart)
	// The authors write nothing but their texts, so the server holds them
	// all once it holds that many more envelopes.
	want := before.Envelopes + catchUpMessages
	waitFor(b, 2*time.Minute, fmt.Sprintf("the server holds all %d texts", catchUpMessages), func() bool {
		st, err := server.Status(ctx)
		return err == nil && st.Envelopes >= want
	})
	held := time.Since(sendStart)
	final, err := server.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d authors sent %d texts in %v; the server held them all after %v (%d envelopes; rejected %v, dropped %v)",
		catchUpAuthors, catchUpMessages, sent.Round(time.Millisecond), held.Round(time.Millisecond),
		final.Envelopes, nonZero(final.Rejected), nonZero(final.Dropped))
	for _, n := range append(authors, server) {
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// reuseCatchUpSetup copies the server's and the laptop's homes from keep
// into serverHome and laptopHome, after writing them there with
// setupCatchUp if keep holds none yet. The setup is most of the
// benchmark's time (10,000 durable sends); keeping it lets one measure a
// change to the catch-up in seconds. Delete keep after changing anything
// the setup writes (the store's schema, the envelope format, the workload).
func reuseCatchUpSetup(b *testing.B, keep, serverHome, laptopHome string) {
	kServer, kLaptop := filepath.Join(keep, "server"), filepath.Join(keep, "laptop")
	if _, err := os.Stat(kServer); errors.Is(err, fs.ErrNotExist) {
		tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(keep)), ".catchup-setup-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		setupCatchUp(b, tmp, filepath.Join(tmp, "server"), filepath.Join(tmp, "laptop"))
		for i := range catchUpAuthors { // not needed again
			if err := os.RemoveAll(filepath.Join(tmp, fmt.Sprintf("author%d", i+1))); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.RemoveAll(keep); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, keep); err != nil {
			b.Fatalf("keep the catch-up setup in %s: %v", keep, err)
		}
	} else if err != nil {
		b.Fatal(err)
	}
	for _, c := range [][2]string{{kServer, serverHome}, {kLaptop, laptopHome}} {
		if err := os.CopyFS(c[1], os.DirFS(c[0])); err != nil {
			b.Fatalf("copy the kept catch-up setup: %v", err)
		}
	}
}

// profileCatchUp starts a CPU profile of the catch-up alone when
// CHARLA_BENCH_CATCHUP_PROFILE names a file (-cpuprofile would also cover
// opening the server, the checks after the catch-up and the store
// baseline), and returns the function that stops it.
func profileCatchUp(b *testing.B) func() {
	path := os.Getenv("CHARLA_BENCH_CATCHUP_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("profile the catch-up (not with -cpuprofile as well): %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// countMessages is how many messages n reads in #general.
func countMessages(b *testing.B, n *node.Node) int {
	b.Helper()
	ms, err := n.Log(context.Background(), "general", catchUpMessages+1)
	if err != nil {
		b.Fatal(err)
	}
	return len(ms)
}

// storeBaseline reads the texts' envelopes and messages from the closed
// server's database at from, then times writing them into a fresh store at
// to, catchUpTxSize to a transaction: the store's share of a catch-up, with
// no network, no decoding and no crypto.
func storeBaseline(b *testing.B, from, to string) time.Duration {
	ctx := context.Background()
	src, err := store.Open(ctx, from)
	if err != nil {
		b.Fatal(err)
	}
	heads, err := src.Heads(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var envs []store.Envelope
	rooms := map[wire.ID]bool{}
	for _, h := range heads {
		es, err := src.EnvelopesAfter(ctx, h.Author, 0, catchUpMessages+1)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			if e.Class == wire.ClassContent {
				envs = append(envs, e)
				rooms[e.Room] = true
			}
		}
	}
	msgs := map[wire.ID]store.Message{}
	for room := range rooms {
		ms, err := src.Messages(ctx, room, catchUpMessages+1)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			msgs[m.ID] = m
		}
	}
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	// Only content with a message (not #general's naming op), in the order
	// sync sends it.
	envs = slices.DeleteFunc(envs, func(e store.Envelope) bool {
		_, ok := msgs[e.ID]
		return !ok
	})
	slices.SortFunc(envs, func(x, y store.Envelope) int {
		return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), slices.Compare(x.Author, y.Author), cmp.Compare(x.Seq, y.Seq))
	})
	if len(envs) != catchUpMessages {
		b.Fatalf("the server's database holds %d texts, want %d", len(envs), catchUpMessages)
	}
	for i := range envs {
		envs[i].Received = 0 // now, as on arrival
	}

	dst, err := store.Open(ctx, to)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	t0 := time.Now()
	for batch := range slices.Chunk(envs, catchUpTxSize) {
		err := dst.Update(ctx, false, func(tx *store.Tx) error {
			for _, e := range batch {
				if _, err := tx.PutEnvelope(e); err != nil {
					return err
				}
				if err := tx.PutMessage(msgs[e.ID]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0)
}
