package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// The fanout workload.
const (
	fanoutNodes     = 10
	fanoutPublisher = 5 // a member two hops from some receivers, not the founder hub
	fanoutMessages  = 2000
	fanoutSize      = 1024             // bytes of text (charla) or payload (bare) per message
	fanoutDeadline  = 60 * time.Second // after the last send

	// Ready means: one warm-up message reached every receiver within
	// settleWithin, twice in a row. Once the nodes are connected only gossip
	// is that quick: sync pulls 500 ms after a gap, and every 30 s.
	settleWithin = 250 * time.Millisecond
	settleRounds = 2
	settleTries  = 100
)

// The burst phase: the same topology takes a burst published at burstRate
// by burstSenders goroutines on one node, and bare GossipSub gets pubsub's
// default queues (outbound 32 per peer, validation 32, subscription buffer
// 32), which FINDINGS.md measured dropping 16–22% of a burst while Publish
// returns nil. Here, bare on default queues delivered 100% at 170/s, 86% at
// 400/s and 78% at 1,000/s; burstRate is a rate where it loses. charla keeps
// its own queues and repairs what gossip lost with sync; its concurrent sends
// share durable commits (node/groupcommit.go), so it can keep that rate.
const (
	burstMessages       = 2000
	burstSize           = 1024
	burstRate           = 500              // sends per second, both runs
	burstSenders        = 16               // goroutines sending, both runs
	burstBareDeadline   = 20 * time.Second // after the last publish
	burstCharlaDeadline = 60 * time.Second // after the last send: two periodic pulls
	burstLate           = 2 * time.Second  // after the last send: a later delivery counts as repaired
	burstSkipEnv        = "CHARLA_BENCH_NO_BURST"
)

// workload is the traffic of one phase.
type workload struct {
	name     string
	messages int
	size     int     // bytes of text (charla) or payload (bare) per message
	tag      byte    // ends each stamp's header, so one phase never counts another's messages
	rate     float64 // sends per second; 0 sends as fast as the sender can
	senders  int     // goroutines sending; 0 or 1 sends one message at a time
}

var (
	steady = workload{name: "steady", messages: fanoutMessages, size: fanoutSize, tag: ' '}
	burst  = workload{name: "burst", messages: burstMessages, size: burstSize, tag: 'B', rate: burstRate, senders: burstSenders}
	// The burst once more, published on charla and bare GossipSub at once.
	together = workload{name: "together", messages: burstMessages, size: burstSize, tag: 'T', rate: burstRate, senders: burstSenders}
)

// GossipSub settings of node/gossip.go, repeated for the bare baseline; keep
// them in step.
const (
	bareD         = 4
	bareDlo       = 3
	bareDhi       = 5
	bareDout      = 1
	bareHeartbeat = 700 * time.Millisecond
	bareQueue     = 4096
	bareMaxMsg    = 1 << 20
)

// fanoutEdges is the topology of both runs, as pairs {a, b} with a < b, where
// b dials a (b starts later, so a's address is known).
//
// The founder, node 0, is connected to every member: a new member knows no
// one but the founder until it has synced the roster from it, and its gater
// admits no one else. The nine members form a ring in which each is also
// connected to its neighbours' neighbours (the circulant graph C9(1,2)).
// So the founder has 9 peers, every member 5, and any two nodes are at
// most two hops apart.
func fanoutEdges() [][2]int {
	var es [][2]int
	for m := 1; m < fanoutNodes; m++ {
		es = append(es, [2]int{0, m})
	}
	members := fanoutNodes - 1
	for i := range members {
		for _, d := range []int{1, 2} {
			a, b := 1+i, 1+(i+d)%members
			es = append(es, [2]int{min(a, b), max(a, b)})
		}
	}
	return es
}

func degrees(es [][2]int) []int {
	d := make([]int, fanoutNodes)
	for _, e := range es {
		d[e[0]]++
		d[e[1]]++
	}
	return d
}

// stamp is message seq of workload w: its send time in Unix nanoseconds
// (20 digits), seq (6 digits), w's tag, then filler up to w.size bytes.
func (w workload) stamp(seq int, sent time.Time) []byte {
	p := make([]byte, w.size)
	n := copy(p, fmt.Sprintf("%020d%06d%c", sent.UnixNano(), seq, w.tag))
	for i := n; i < len(p); i++ {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

// parseStamp reads what stamp wrote; ok is false for anything else, such
// as the warm-up messages and the other phase's messages.
func (w workload) parseStamp(p []byte) (seq int, sent time.Time, ok bool) {
	if len(p) != w.size || p[26] != w.tag {
		return 0, time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(p[:20]), 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	seq, err = strconv.Atoi(string(p[20:26]))
	if err != nil || seq < 0 || seq >= w.messages {
		return 0, time.Time{}, false
	}
	return seq, time.Unix(0, ns), true
}

// receiver records what one node received. Its fields are written by one
// goroutine and read once that goroutine has ended.
type receiver struct {
	w       workload
	seen    []bool
	count   int
	dups    int
	lat     []time.Duration
	arrived []time.Time // of each first delivery
	last    time.Time
	warm    chan string // warm-up texts; dropped when full
	done    func()      // called once, when every message has arrived
	ended   sync.WaitGroup

	// Sync pulls seen in charla's progress events once the workload's
	// first send is under way: envelopes they carried, and the last
	// event of each serving peer.
	measuring atomic.Bool
	synced    int64
	syncLast  map[string]node.SyncProgress
}

func newReceiver(w workload, done func()) *receiver {
	return &receiver{
		w:        w,
		seen:     make([]bool, w.messages),
		lat:      make([]time.Duration, 0, w.messages),
		arrived:  make([]time.Time, 0, w.messages),
		warm:     make(chan string, 64),
		done:     done,
		syncLast: map[string]node.SyncProgress{},
	}
}

func (r *receiver) record(p []byte) {
	now := time.Now()
	seq, sent, ok := r.w.parseStamp(p)
	if !ok {
		select {
		case r.warm <- string(p):
		default:
		}
		return
	}
	if r.seen[seq] {
		r.dups++
		return
	}
	r.seen[seq] = true
	r.count++
	r.lat = append(r.lat, now.Sub(sent))
	r.arrived = append(r.arrived, now)
	r.last = now
	if r.count == r.w.messages {
		r.done()
	}
}

// recordSync counts the envelopes of one sync batch from a progress event.
// An event carries the pull's running total, which restarts with each pull;
// a peer's pull is over once its remaining count reached zero, so the next
// event from that peer starts a new one.
func (r *receiver) recordSync(sp node.SyncProgress) {
	prev, ok := r.syncLast[sp.Peer]
	r.syncLast[sp.Peer] = sp
	if !r.measuring.Load() {
		return
	}
	if ok && prev.Remaining > 0 && sp.Received >= prev.Received {
		r.synced += sp.Received - prev.Received
	} else {
		r.synced += sp.Received
	}
}

// outcome is what one run measured.
type outcome struct {
	messages  int             // published
	delivered int             // deliveries over all receivers
	dups      int             // deliveries of a message the receiver already had
	lat       []time.Duration // every delivery's latency, sorted
	wall      time.Duration   // first send to last delivery on any receiver
	send      time.Duration   // first send to the return of the last one
	cpu       time.Duration   // process CPU from the first send until all arrived or the deadline
	late      int             // deliveries more than burstLate after the last send returned
	complete  time.Duration   // last send to the last delivery, when every message arrived; else -1
	synced    int64           // envelopes sync pulls carried to the receivers (charla)
	drops     int64           // messages GossipSub dropped from a full queue, over all nodes
}

// sendsPerSec is the rate at which the publisher got its messages out.
func (o outcome) sendsPerSec() float64 {
	if o.send <= 0 {
		return 0
	}
	return float64(o.messages) / o.send.Seconds()
}

func (o outcome) msgsPerSec() float64 {
	if o.wall <= 0 {
		return 0
	}
	return float64(o.delivered) / float64(fanoutNodes-1) / o.wall.Seconds()
}

func (o outcome) deliveredPct() float64 {
	return 100 * float64(o.delivered) / float64((fanoutNodes-1)*o.messages)
}

// pctMs is the q-quantile of the latencies in milliseconds.
func (o outcome) pctMs(q float64) float64 {
	if len(o.lat) == 0 {
		return 0
	}
	return float64(o.lat[int(q*float64(len(o.lat)-1))]) / float64(time.Millisecond)
}

// fanout is one run on started nodes: it waits until the mesh carries
// messages to every receiver, then publishes the workload and waits for it.
// publish must return once the message is handed to the network;
// subscribe starts delivering payloads to r for node i until ctx is done.
type fanout struct {
	publish   func(ctx context.Context, p []byte) error
	subscribe func(ctx context.Context, i int, r *receiver)
}

func (f fanout) run(b *testing.B, w workload, deadline time.Duration) outcome {
	return runTogether(b, w, leg{f, deadline})[0]
}

// leg is one fanout of a run, and how long its receivers may take after
// the last send.
type leg struct {
	f        fanout
	deadline time.Duration
}

// runTogether runs w on the legs at once: the sender goroutines publish
// each message on every leg, one leg after the other, so every leg sees
// the same messages at the same rate on the same busy machine. Each leg
// gets its own receivers and deadline, and its own outcome.
func runTogether(b *testing.B, w workload, legs ...leg) []outcome {
	type running struct {
		rs   []*receiver
		all  chan struct{}
		stop context.CancelFunc
	}
	runs := make([]running, len(legs))
	for k, l := range legs {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var remaining atomic.Int32
		remaining.Store(fanoutNodes - 1)
		all := make(chan struct{})
		var rs []*receiver
		for i := range fanoutNodes {
			if i == fanoutPublisher {
				continue
			}
			r := newReceiver(w, func() {
				if remaining.Add(-1) == 0 {
					close(all)
				}
			})
			rs = append(rs, r)
			l.f.subscribe(ctx, i, r)
		}
		l.f.settle(b, ctx, w, rs)
		runs[k] = running{rs: rs, all: all, stop: stop}
	}

	outs := make([]outcome, len(legs))
	for k := range runs {
		outs[k] = outcome{messages: w.messages, complete: -1}
		for _, r := range runs[k].rs {
			r.measuring.Store(true)
		}
	}
	publish := w.publishEach(legs)
	cpu0 := processCPU()
	first := time.Now()
	if err := w.send(context.Background(), first, publish); err != nil {
		b.Fatal(err)
	}
	sent := time.Since(first)
	lastSend := first.Add(sent)
	for k, l := range legs {
		o, run := &outs[k], runs[k]
		o.send = sent
		// The deadline runs from the last send, so that a slow sender is
		// measured as slow, not as lossy; it leaves time for a periodic sync
		// to fill what gossip lost.
		select {
		case <-run.all:
		case <-time.After(time.Until(lastSend.Add(l.deadline))):
		}
		o.cpu = processCPU() - cpu0
		run.stop()
		var lastDelivery time.Time
		for _, r := range run.rs {
			r.ended.Wait()
			o.delivered += r.count
			o.dups += r.dups
			o.synced += r.synced
			o.lat = append(o.lat, r.lat...)
			for _, t := range r.arrived {
				if t.Sub(lastSend) > burstLate {
					o.late++
				}
			}
			if d := r.last.Sub(first); r.count > 0 && d > o.wall {
				o.wall = d
			}
			if r.last.After(lastDelivery) {
				lastDelivery = r.last
			}
		}
		if o.delivered == (fanoutNodes-1)*w.messages {
			o.complete = max(lastDelivery.Sub(lastSend), 0)
		}
		slices.Sort(o.lat)
	}
	return outs
}

// publishEach publishes a message of w on every leg, one after the other,
// each with its own stamp taken as its publish begins: a later leg waits
// for the earlier ones (charla's durable send), and that wait is not its
// latency.
func (w workload) publishEach(legs []leg) func(context.Context, []byte) error {
	return func(ctx context.Context, p []byte) error {
		for i, l := range legs {
			if i > 0 {
				if seq, _, ok := w.parseStamp(p); ok {
					p = w.stamp(seq, time.Now())
				}
			}
			if err := l.f.publish(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
}

// send publishes w's messages from w.senders goroutines, message seq not
// before first + seq/w.rate.
func (w workload) send(ctx context.Context, first time.Time, publish func(context.Context, []byte) error) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range max(w.senders, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := int(next.Add(1) - 1)
				if seq >= w.messages || failed.Load() != nil {
					return
				}
				if w.rate > 0 {
					time.Sleep(time.Until(first.Add(time.Duration(float64(seq) / w.rate * float64(time.Second)))))
				}
				if err := publish(ctx, w.stamp(seq, time.Now())); err != nil {
					err = fmt.Errorf("publish message %d: %w", seq, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// settle publishes warm-up messages until settleRounds of them in a row
// each reached every receiver within settleWithin.
func (f fanout) settle(b *testing.B, ctx context.Context, w workload, rs []*receiver) {
	ok := 0
	for try := range settleTries {
		text := fmt.Sprintf("%s warm-up %d", w.name, try)
		if err := f.publish(ctx, []byte(text)); err != nil {
			b.Fatalf("publish warm-up: %v", err)
		}
		timeout := time.After(settleWithin)
		reached := 0
	wait:
		for _, r := range rs {
			for {
				select {
				case got := <-r.warm:
					if got != text {
						continue // a late one from an earlier round
					}
					reached++
					continue wait
				case <-timeout:
					break wait
				}
			}
		}
		if reached < len(rs) {
			ok = 0
			continue
		}
		if ok++; ok == settleRounds {
			return
		}
	}
	b.Fatalf("the mesh did not form: no %d warm-up messages in a row reached all %d receivers within %v",
		settleRounds, len(rs), settleWithin)
}

// waitFor polls cond until it holds, or fails the benchmark after d.
func waitFor(b *testing.B, d time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkFanout publishes 2,000 text messages of 1 KiB from one of ten
// nodes into #general through charla's whole pipeline, and the same payloads
// over bare GossipSub on the same topology. A second phase publishes a
// burst, with bare GossipSub on pubsub's default queues, and a third
// publishes it on both at once — each message on bare as charla's send of
// it returns — so both are seen at one rate on one busy machine; set
// CHARLA_BENCH_NO_BURST to skip them. The workload is fixed: run it with
// -benchtime=1x (see the package doc for the metrics).
func BenchmarkFanout(b *testing.B) {
	if testing.Short() {
		b.Skip("starts 30 libp2p hosts and runs for three or four minutes; run without -short")
	}
	withBurst := os.Getenv(burstSkipEnv) == ""
	var bare, charla, bareBurst, charlaBurst, bareAtCharla, together, bareTogether outcome
	for b.Loop() {
		bare = runBare(b, steady, bareQueue, fanoutDeadline)
		if withBurst {
			bareBurst = runBare(b, burst, 0, burstBareDeadline)
		}
		cr := runCharla(b, withBurst)
		charla, charlaBurst, together, bareTogether = cr.steady, cr.burst, cr.together, cr.bareTogether
		if withBurst {
			// charla may not keep burstRate on a busy machine: bare again,
			// at the rate charla did send, so both are seen at one rate.
			w := burst
			w.rate = charlaBurst.sendsPerSec()
			bareAtCharla = runBare(b, w, 0, burstBareDeadline)
		}
	}
	type named struct {
		name string
		o    outcome
	}
	runs := []named{{"bare", bare}, {"charla", charla}}
	if withBurst {
		runs = append(runs, named{"bare-burst", bareBurst}, named{"charla-burst", charlaBurst}, named{"bare-burst-at-charla-rate", bareAtCharla},
			named{"charla-together", together}, named{"bare-together", bareTogether})
	}
	for _, r := range runs {
		b.Logf("%s: delivered %d/%d (%d duplicates) in %v; sends took %v; p50 %.2f ms, p99 %.2f ms, max %.2f ms; CPU %v",
			r.name, r.o.delivered, (fanoutNodes-1)*r.o.messages, r.o.dups, r.o.wall.Round(time.Millisecond),
			r.o.send.Round(time.Millisecond), r.o.pctMs(0.5), r.o.pctMs(0.99), r.o.pctMs(1), r.o.cpu.Round(time.Millisecond))
	}
	b.ReportMetric(charla.msgsPerSec(), "charla-msgs/s")
	b.ReportMetric(bare.msgsPerSec(), "bare-msgs/s")
	if bare.msgsPerSec() > 0 {
		b.ReportMetric(charla.msgsPerSec()/bare.msgsPerSec(), "ratio")
	}
	b.ReportMetric(charla.pctMs(0.5), "charla-p50-ms")
	b.ReportMetric(charla.pctMs(0.99), "charla-p99-ms")
	b.ReportMetric(bare.pctMs(0.5), "bare-p50-ms")
	b.ReportMetric(bare.pctMs(0.99), "bare-p99-ms")
	b.ReportMetric(charla.deliveredPct(), "charla-delivered-%")
	b.ReportMetric(bare.deliveredPct(), "bare-delivered-%")
	if charla.delivered > 0 && charla.cpu > 0 {
		b.ReportMetric(float64(charla.cpu.Microseconds())/float64(charla.delivered), "charla-cpu-us/delivery")
	}
	if bare.delivered > 0 && bare.cpu > 0 {
		b.ReportMetric(float64(bare.cpu.Microseconds())/float64(bare.delivered), "bare-cpu-us/delivery")
	}
	if !withBurst {
		return
	}
	b.Logf("charla-burst: %d deliveries more than %v after the last send; sync pulls carried %d envelopes; last delivery %v after the last send",
		charlaBurst.late, burstLate, charlaBurst.synced, charlaBurst.complete.Round(time.Millisecond))
	b.ReportMetric(bareBurst.deliveredPct(), "bare-burst-delivered-%")
	b.ReportMetric(charlaBurst.deliveredPct(), "charla-burst-delivered-%")
	b.ReportMetric(float64(charlaBurst.late), "charla-burst-repaired")
	b.ReportMetric(float64(charlaBurst.synced), "charla-burst-synced")
	if charlaBurst.complete >= 0 {
		b.ReportMetric(charlaBurst.complete.Seconds(), "charla-burst-complete-s")
	}
	b.ReportMetric(float64(bareBurst.drops), "bare-burst-drops")
	b.ReportMetric(float64(charlaBurst.drops), "charla-burst-drops")
	b.ReportMetric(bareBurst.sendsPerSec(), "bare-burst-sends/s")
	b.ReportMetric(charlaBurst.sendsPerSec(), "charla-burst-sends/s")
	b.ReportMetric(bareAtCharla.deliveredPct(), "bare-at-charla-rate-delivered-%")
	b.ReportMetric(bareAtCharla.sendsPerSec(), "bare-at-charla-rate-sends/s")
	// The burst on both at once, at one rate: the rate charla's sends reach.
	b.Logf("together: charla %d deliveries more than %v after the last send, sync pulls carried %d envelopes, gossip drops %d; bare gossip drops %d",
		together.late, burstLate, together.synced, together.drops, bareTogether.drops)
	b.ReportMetric(together.sendsPerSec(), "together-sends/s")
	b.ReportMetric(together.deliveredPct(), "charla-together-delivered-%")
	b.ReportMetric(bareTogether.deliveredPct(), "bare-together-delivered-%")
	b.ReportMetric(float64(together.late), "charla-together-repaired")
	b.ReportMetric(float64(bareTogether.drops), "bare-together-drops")
}

// charlaRuns is what runCharla measured.
type charlaRuns struct {
	steady, burst          outcome
	together, bareTogether outcome // the burst on charla and on bare GossipSub at once
}

// runCharla starts ten charla nodes in homes under b.TempDir and runs the
// steady workload through node.Send and node.Subscribe, then, if withBurst,
// the burst on the same nodes, and the burst again with a bare network
// (pubsub's default queues) taking each message as charla's send returns.
func runCharla(b *testing.B, withBurst bool) (out charlaRuns) {
	ctx := context.Background()
	dir := b.TempDir()
	homes := make([]string, fanoutNodes)
	for i := range homes {
		homes[i] = filepath.Join(dir, fmt.Sprintf("n%d", i))
	}
	if _, err := node.Init(ctx, homes[0], node.InitOptions{Name: "Founder", Workspace: "Bench"}); err != nil {
		b.Fatal(err)
	}
	nodes := make([]*node.Node, 0, fanoutNodes)
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	open := func(home string, peers []string) {
		n, err := node.Open(ctx, node.Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers})
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	open(homes[0], nil)
	for i := 1; i < fanoutNodes; i++ {
		if _, err := nodes[0].Provision(ctx, homes[i], fmt.Sprintf("Member%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	edges := fanoutEdges()
	for i := 1; i < fanoutNodes; i++ {
		var peers []string
		for _, e := range edges {
			if e[1] == i {
				peers = append(peers, nodes[e[0]].Addrs()[0])
			}
		}
		open(homes[i], peers)
	}
	deg := degrees(edges)
	waitFor(b, 60*time.Second, "every node connected to its peers and reading #general", func() bool {
		for i, n := range nodes {
			st, err := n.Status(ctx)
			if err != nil || len(st.Peers) < deg[i] {
				return false
			}
			if _, err := n.Log(ctx, "general", 1); err != nil {
				return false
			}
		}
		return true
	})

	pub := nodes[fanoutPublisher]
	f := fanout{
		publish: func(ctx context.Context, p []byte) error {
			_, err := pub.Send(ctx, "general", string(p))
			return err
		},
		subscribe: func(ctx context.Context, i int, r *receiver) {
			events := nodes[i].Subscribe(ctx)
			r.ended.Add(1)
			go func() {
				defer r.ended.Done()
				for ev := range events {
					switch {
					case ev.Message != nil:
						r.record([]byte(ev.Message.Text))
					case ev.Sync != nil:
						r.recordSync(*ev.Sync)
					}
				}
			}()
		},
	}
	// status logs each node's counters, and returns its drops so that the
	// next phase can log its own.
	status := func(phase string, before []map[string]int64) []map[string]int64 {
		drops := make([]map[string]int64, len(nodes))
		for i, n := range nodes {
			st, err := n.Status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			drops[i] = st.Dropped
			d := st.Dropped
			if before != nil {
				d = map[string]int64{}
				for k, v := range st.Dropped {
					d[k] = v - before[i][k]
				}
			}
			b.Logf("charla node %d after the %s phase: %d peers, %d envelopes, dropped %v, rejected %v",
				i, phase, len(st.Peers), st.Envelopes, nonZero(d), nonZero(st.Rejected))
		}
		return drops
	}

	gossipDrops := func(before, after []map[string]int64) (sum int64) {
		for i := range after {
			for _, k := range []string{"rpc-queue-full", "slow-reader"} {
				sum += after[i][k] - before[i][k]
			}
		}
		return sum
	}
	out.steady = f.run(b, steady, fanoutDeadline)
	before := status(steady.name, nil)
	if !withBurst {
		return out
	}
	out.burst = f.run(b, burst, burstCharlaDeadline)
	after := status(burst.name, before)
	out.burst.drops = gossipDrops(before, after)

	bn := startBare(b, 0)
	defer bn.close()
	outs := runTogether(b, together, leg{f, burstCharlaDeadline}, leg{bn.f, burstBareDeadline})
	out.together, out.bareTogether = outs[0], outs[1]
	out.together.drops = gossipDrops(after, status(together.name, after))
	out.bareTogether.drops = bn.dropped(b, together.name)
	return out
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// runBare runs workload w on a bareNet started for it.
func runBare(b *testing.B, w workload, queue int, deadline time.Duration) outcome {
	n := startBare(b, queue)
	defer n.close()
	o := n.f.run(b, w, deadline)
	o.drops = n.dropped(b, w.name)
	return o
}

// bareNet is the baseline: ten hosts with GossipSub on one topic.
type bareNet struct {
	f     fanout
	queue int
	drops []*dropTracer
	close func()
}

// dropped logs what each host dropped and returns the sum.
func (n *bareNet) dropped(b *testing.B, phase string) int64 {
	var sum int64
	for i, d := range n.drops {
		sum += d.dropped()
		if s := d.String(); s != "" {
			b.Logf("bare host %d, %s phase, queues %s: %s", i, phase, queueName(n.queue), s)
		}
	}
	return sum
}

// startBare starts ten plain libp2p hosts in one private network, with
// GossipSub set up as node/gossip.go sets it up except that pubsub signs
// and verifies every message (the default policy) and there is no
// validator, and runs workload w over one topic. With queue 0 the outbound,
// validation and subscription queues keep pubsub's defaults (32 each);
// otherwise each gets queue slots, as in node/gossip.go.
func startBare(b *testing.B, queue int) *bareNet {
	ctx, cancel := context.WithCancel(context.Background())
	psk := make([]byte, 32)
	rand.Read(psk)
	params := pubsub.DefaultGossipSubParams()
	params.D, params.Dlo, params.Dhi, params.Dout = bareD, bareDlo, bareDhi, bareDout
	params.HeartbeatInterval = bareHeartbeat

	hosts := make([]host.Host, 0, fanoutNodes)
	closeAll := func() {
		cancel()
		for _, h := range hosts {
			h.Close()
		}
	}
	b.Cleanup(closeAll) // when a step below fails the benchmark
	topics := make([]*pubsub.Topic, fanoutNodes)
	subs := make([]*pubsub.Subscription, fanoutNodes)
	drops := make([]*dropTracer, fanoutNodes)
	for i := range fanoutNodes {
		h := bareHost(b, psk)
		hosts = append(hosts, h)
		drops[i] = &dropTracer{}
		opts := []pubsub.Option{
			pubsub.WithGossipSubParams(params),
			pubsub.WithMaxMessageSize(bareMaxMsg),
			pubsub.WithFloodPublish(false),
			pubsub.WithRawTracer(drops[i]),
		}
		var subOpts []pubsub.SubOpt
		if queue > 0 {
			opts = append(opts, pubsub.WithPeerOutboundQueueSize(queue), pubsub.WithValidateQueueSize(queue))
			subOpts = append(subOpts, pubsub.WithBufferSize(queue))
		}
		ps, err := pubsub.NewGossipSub(ctx, h, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if topics[i], err = ps.Join("/bench/fanout"); err != nil {
			b.Fatal(err)
		}
		if subs[i], err = topics[i].Subscribe(subOpts...); err != nil {
			b.Fatal(err)
		}
	}
	edges := fanoutEdges()
	for _, e := range edges {
		a := hosts[e[0]]
		if err := hosts[e[1]].Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
			b.Fatal(err)
		}
	}
	// Like a charla node, the publisher reads its own subscription.
	go func() {
		for {
			if _, err := subs[fanoutPublisher].Next(ctx); err != nil {
				return
			}
		}
	}()
	deg := degrees(edges)
	waitFor(b, 30*time.Second, "every host sees its peers in the topic", func() bool {
		for i, t := range topics {
			if len(t.ListPeers()) < deg[i] {
				return false
			}
		}
		return true
	})

	f := fanout{
		publish: func(ctx context.Context, p []byte) error {
			return topics[fanoutPublisher].Publish(ctx, p)
		},
		subscribe: func(ctx context.Context, i int, r *receiver) {
			r.ended.Add(1)
			go func() {
				defer r.ended.Done()
				for {
					m, err := subs[i].Next(ctx)
					if err != nil {
						return
					}
					r.record(m.Data)
				}
			}()
		},
	}
	return &bareNet{f: f, queue: queue, drops: drops, close: closeAll}
}

func queueName(queue int) string {
	if queue == 0 {
		return "default"
	}
	return strconv.Itoa(queue)
}

// dropTracer counts what bare GossipSub dropped.
type dropTracer struct {
	rpc           atomic.Int64
	undeliverable atomic.Int64
	mu            sync.Mutex // guards rejected
	rejected      map[string]int64
}

var _ pubsub.RawTracer = (*dropTracer)(nil)

func (d *dropTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (d *dropTracer) OnClosedOutboundStream(peer.ID)                       {}
func (d *dropTracer) Join(string)                                          {}
func (d *dropTracer) Leave(string)                                         {}
func (d *dropTracer) Graft(peer.ID, string)                                {}
func (d *dropTracer) Prune(peer.ID, string)                                {}
func (d *dropTracer) ValidateMessage(*pubsub.Message)                      {}
func (d *dropTracer) DeliverMessage(*pubsub.Message)                       {}
func (d *dropTracer) DuplicateMessage(*pubsub.Message)                     {}
func (d *dropTracer) ThrottlePeer(peer.ID)                                 {}
func (d *dropTracer) RecvRPC(*pubsub.RPC)                                  {}
func (d *dropTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (d *dropTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (d *dropTracer) DropRPC(*pubsub.RPC, peer.ID)                         { d.rpc.Add(1) }
func (d *dropTracer) UndeliverableMessage(*pubsub.Message)                 { d.undeliverable.Add(1) }
func (d *dropTracer) RejectMessage(_ *pubsub.Message, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rejected == nil {
		d.rejected = map[string]int64{}
	}
	d.rejected[reason]++
}

// dropped is how many messages a full queue cost: outbound RPCs, deliveries
// to a slow subscription, and messages refused by a full validation queue.
func (d *dropTracer) dropped() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rpc.Load() + d.undeliverable.Load() + d.rejected[pubsub.RejectValidationQueueFull]
}

// String lists the non-zero counters, or is empty.
func (d *dropTracer) String() string {
	var s bytes.Buffer
	if n := d.rpc.Load(); n > 0 {
		fmt.Fprintf(&s, "rpc-queue-full %d ", n)
	}
	if n := d.undeliverable.Load(); n > 0 {
		fmt.Fprintf(&s, "slow-reader %d ", n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.rejected {
		fmt.Fprintf(&s, "rejected %q %d ", k, v)
	}
	return string(bytes.TrimSpace(s.Bytes()))
}

// bareHost is a plain libp2p host on loopback set up as a node's is (TCP,
// Noise, yamux, the private network of psk): the baseline's transport.
func bareHost(b *testing.B, psk []byte) host.Host {
	b.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.PrivateNetwork(psk),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		b.Fatal(err)
	}
	return h
}
