package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver the store uses, for PRAGMA integrity_check

	"github.com/charla-im/charla/internal/netns"
	"github.com/charla-im/charla/node"
	"github.com/charla-im/charla/store"
)

// The LAN tests of issue 4: a field laptop catches up, a partition heals,
// kill -9 loses nothing. They run the real binary in network namespaces,
// with every node on mDNS and at debug level, whose log tails are printed
// when a test fails.

var messageID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// skipUnlessLAN skips a test that needs namespaces and time.
func skipUnlessLAN(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds network namespaces and runs many nodes; skipped in -short mode")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("LAN test needs network namespaces: %v", err)
	}
}

// office is a workspace on a namespace LAN: hosts[0] founded it, the others
// joined by invite, and every node runs with mDNS and no --peer.
type office struct {
	lan   *netns.LAN
	bin   string
	hosts []*lanHost
}

// newOffice builds the LAN, the workspace and its members, starts every
// node, and waits until each is connected to all the others.
func newOffice(ctx context.Context, t *testing.T, names ...string) *office {
	t.Helper()
	o := &office{bin: buildCharla(t)}
	var err error
	if o.lan, err = netns.NewLAN(t, len(names)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, name := range names {
		o.hosts = append(o.hosts, &lanHost{Host: o.lan.Host(i), name: name, home: filepath.Join(dir, name)})
	}
	founder := o.hosts[0]
	founder.mustCharla(ctx, t, o.bin, "init", "--name", founder.name, "--workspace", "Acme")
	o.launch(t, founder)
	for _, h := range o.hosts[1:] {
		code := strings.TrimSpace(founder.mustCharla(ctx, t, o.bin, "invite", "--expires", "1h"))
		h.mustCharla(ctx, t, o.bin, "join", code, "--name", h.name)
	}
	for _, h := range o.hosts[1:] {
		o.launch(t, h)
	}
	start := time.Now()
	o.waitConnected(ctx, t, o.hosts...)
	t.Logf("%d nodes connected to each other %v after start", len(o.hosts), time.Since(start).Round(time.Millisecond))
	return o
}

// launch starts h's node at debug level. Unlike lanHost.start it may be
// called again after the node stopped, and a failed test prints the tail of
// every node's log.
func (o *office) launch(t *testing.T, h *lanHost) {
	t.Helper()
	cmd := h.Command(context.Background(), o.bin, "run", "--home", h.home, "--api", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CHARLA_DEBUG=1")
	run := &background{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = run.stdout, run.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.run = run
	go func() { run.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (pid %d) log, last lines:\n%s", h.name, cmd.Process.Pid, logTail(run.stderr.String(), 60))
		}
		run.cmd.Process.Kill()
		<-run.done
		run.done <- nil
	})
	eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-run.done:
			run.done <- err
			t.Fatalf("%s: run exited: %v\n%s", h.name, err, run.stderr.String())
		default:
		}
		return strings.Contains(run.stdout.String(), "running; API on")
	}, func() string { return h.name + " never became ready:\n" + run.stderr.String() })
}

// stop interrupts h's node and waits for it to exit.
func (o *office) stop(t *testing.T, h *lanHost) {
	t.Helper()
	if err := h.run.interrupt(); err != nil {
		t.Fatalf("%s: run after an interrupt: %v\n%s", h.name, err, logTail(h.run.stderr.String(), 40))
	}
}

// waitConnected waits until each of hosts is connected to all the others.
func (o *office) waitConnected(ctx context.Context, t *testing.T, hosts ...*lanHost) {
	t.Helper()
	eventually(t, 60*time.Second, func() bool {
		for _, h := range hosts {
			st, err := o.status(ctx, h)
			if err != nil || len(st.Peers) < len(hosts)-1 {
				return false
			}
		}
		return true
	}, func() string { return "nodes not all connected:\n" + o.describe(ctx, hosts...) })
}

func (o *office) status(ctx context.Context, h *lanHost) (node.Status, error) {
	var st node.Status
	out, err := h.charla(ctx, o.bin, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: status --json: %w", h.name, err)
	}
	return st, nil
}

// describe says how many envelopes and peers each host has, for failures.
func (o *office) describe(ctx context.Context, hosts ...*lanHost) string {
	var b strings.Builder
	for _, h := range hosts {
		st, err := o.status(ctx, h)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", h.name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %d envelopes, %d peers, rejected %v, dropped %v\n",
			h.name, st.Envelopes, len(st.Peers), st.Rejected, st.Dropped)
	}
	return b.String()
}

// envelopeCounts returns every host's envelope count, or nil if a status
// failed.
func (o *office) envelopeCounts(ctx context.Context, hosts ...*lanHost) []int64 {
	var counts []int64
	for _, h := range hosts {
		st, err := o.status(ctx, h)
		if err != nil {
			return nil
		}
		counts = append(counts, st.Envelopes)
	}
	return counts
}

// waitConverged waits until hosts report the same envelope count, and at
// least min, and returns it.
func (o *office) waitConverged(ctx context.Context, t *testing.T, timeout time.Duration, min int64, hosts ...*lanHost) int64 {
	t.Helper()
	var counts []int64
	eventually(t, timeout, func() bool {
		counts = o.envelopeCounts(ctx, hosts...)
		if len(counts) != len(hosts) || counts[0] < min {
			return false
		}
		for _, c := range counts {
			if c != counts[0] {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("no convergence on %d+ envelopes in %v:\n%s", min, timeout, o.describe(ctx, hosts...))
	})
	return counts[0]
}

// send posts lines to room with 'send ROOM -' on h and returns the IDs it
// printed, and the error it ended with.
func (o *office) send(ctx context.Context, h *lanHost, room string, lines []string) ([]string, error) {
	cmd := h.Command(ctx, o.bin, "send", room, "-", "--home", h.home)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ids := printedIDs(stdout.String())
	if err != nil {
		return ids, fmt.Errorf("%s: send %s: %v: %s", h.name, room, err, stderr.String())
	}
	if len(ids) != len(lines) {
		return ids, fmt.Errorf("%s: send %s printed %d IDs for %d lines", h.name, room, len(ids), len(lines))
	}
	return ids, nil
}

// printedIDs returns the complete ID lines of send's output.
func printedIDs(out string) []string {
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if messageID.MatchString(line) {
			ids = append(ids, line)
		}
	}
	return ids
}

// messages returns room's whole history on h, as 'log --json' prints it.
func (o *office) messages(ctx context.Context, h *lanHost, room string) ([]node.Message, error) {
	out, err := h.charla(ctx, o.bin, "log", room, "--limit", "10000", "--json")
	if err != nil {
		return nil, err
	}
	var msgs []node.Message
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m node.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("%s: log %s --json line %q: %w", h.name, room, line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// checkHistory checks that room on h holds no message twice and is in
// display order, by lamport first, and returns its message IDs.
func (o *office) checkHistory(ctx context.Context, t *testing.T, h *lanHost, room string) map[string]bool {
	t.Helper()
	msgs, err := o.messages(ctx, h, room)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		if ids[m.ID] {
			t.Errorf("%s: %s shows message %s twice", h.name, room, m.ID)
		}
		ids[m.ID] = true
		if i > 0 {
			// Authors compare as bytes, which the peer IDs' text does not show.
			if p := msgs[i-1]; p.Lamport > m.Lamport {
				t.Errorf("%s: %s shows %s (lamport %d) after %s (lamport %d)", h.name, room, m.ID, m.Lamport, p.ID, p.Lamport)
			}
		}
	}
	return ids
}

// heldEnvelopes opens the history of a stopped node and returns the IDs of
// every envelope it holds. It fails the test if an ID is held twice, if the
// database fails PRAGMA integrity_check, or if the node recorded a fork.
func heldEnvelopes(ctx context.Context, t *testing.T, h *lanHost) map[string]bool {
	t.Helper()
	path := filepath.Join(h.home, "charla.db")
	checkIntegrity(ctx, t, path)
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]bool)
	rows := 0
	for _, hd := range heads {
		envs, err := s.EnvelopesAfter(ctx, hd.Author, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			rows++
			if ids[e.ID.String()] {
				t.Errorf("%s holds envelope %s twice", h.name, e.ID)
			}
			ids[e.ID.String()] = true
		}
	}
	count, err := s.EnvelopeCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(rows) != count {
		t.Errorf("%s: %d envelopes listed by author, %d in the table", h.name, rows, count)
	}
	forks, err := s.ForkHeaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forks {
		t.Errorf("%s holds a fork at seq %d: %s", h.name, f.Seq, f.ID)
	}
	return ids
}

// checkIntegrity runs PRAGMA integrity_check on the database at path, with
// no node running on it.
func checkIntegrity(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check %s: %v", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("%s fails integrity_check:\n%s", path, strings.Join(problems, "\n"))
	}
}

// sameSet reports the first difference between two sets of IDs.
func sameSet(a, b map[string]bool) error {
	if missing := missingFrom(b, a); len(missing) > 0 {
		return fmt.Errorf("%d of %d missing, e.g. %s", len(missing), len(a), missing[0])
	}
	if extra := missingFrom(a, b); len(extra) > 0 {
		return fmt.Errorf("%d extra, e.g. %s", len(extra), extra[0])
	}
	return nil
}

// missingFrom returns the IDs of want that set lacks, sorted.
func missingFrom(set, want map[string]bool) []string {
	var missing []string
	for id := range want {
		if !set[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing
}

// numbered returns n lines of format, numbered from 1.
func numbered(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// logTail returns the last n lines of s.
func logTail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// runParallel runs fns at once and returns their errors.
func runParallel(fns ...func() error) []error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errs
}

// TestLaptopCatchesUp: a laptop leaves the office LAN; the others exchange
// 1,000 messages, 200 of them direct messages to the laptop, while the
// laptop writes 100 offline. The laptop comes back while the author of its
// direct messages is stopped: a node that cannot read them delivers them,
// and every running node ends with the same envelopes, none twice.
func TestLaptopCatchesUp(t *testing.T) {
	skipUnlessLAN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o := newOffice(ctx, t, "Ana", "Ben", "Cai", "Lap")
	ana, ben, cai, lap := o.hosts[0], o.hosts[1], o.hosts[2], o.hosts[3]
	before := o.waitConverged(ctx, t, 30*time.Second, 1, o.hosts...)

	if err := lap.Disconnect(); err != nil {
		t.Fatal(err)
	}
	away := time.Now()
	var anaIDs, benIDs, dmIDs, lapIDs []string
	send := func(ids *[]string, h *lanHost, room string, lines []string) func() error {
		return func() (err error) {
			*ids, err = o.send(ctx, h, room, lines)
			return err
		}
	}
	errs := runParallel(
		send(&anaIDs, ana, "general", numbered("Ana to the office %d", 400)),
		send(&benIDs, ben, "general", numbered("Ben to the office %d", 400)),
		send(&dmIDs, ben, "@Lap", numbered("Ben to Lap %d", 200)),
		send(&lapIDs, lap, "general", numbered("Lap, offline, %d", 100)),
	)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	stormed := time.Since(away)
	// Ana, Ben and Cai hold the 1,000 messages (and the direct room's key
	// share): Ben may stop now without taking any away with him.
	officeCount := o.waitConverged(ctx, t, 60*time.Second, before+1000, ana, ben, cai)
	exchanged := time.Since(away)
	// The cable really was out: nothing crossed it either way.
	if counts := o.envelopeCounts(ctx, lap); len(counts) != 1 || counts[0] != before+100 {
		t.Fatalf("Lap holds %v envelopes after writing 100 offline, had %d", counts, before)
	}
	if ids := o.checkHistory(ctx, t, ana, "general"); len(ids) != len(anaIDs)+len(benIDs) {
		t.Fatalf("Ana's #general holds %d messages while Lap is away, want %d", len(ids), len(anaIDs)+len(benIDs))
	}
	o.stop(t, ben)

	if err := lap.Reconnect(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	eventually(t, 90*time.Second, func() bool {
		msgs, err := o.messages(ctx, lap, "@Ben")
		return err == nil && len(msgs) >= len(dmIDs)
	}, func() string { return "Lap never got Ben's direct messages:\n" + o.describe(ctx, ana, cai, lap) })
	dmsIn := time.Since(back)
	total := o.waitConverged(ctx, t, 90*time.Second, officeCount+100, ana, cai, lap)
	caughtUp := time.Since(back)
	t.Logf("storm of 1,100 sends %v; office converged %v after the laptop left; laptop back: Ben's 200 DMs in %v, all %d envelopes in %v",
		stormed.Round(time.Millisecond), exchanged.Round(time.Millisecond), dmsIn.Round(time.Millisecond), total, caughtUp.Round(time.Millisecond))

	general := make(map[string]bool)
	for _, ids := range [][]string{anaIDs, benIDs, lapIDs} {
		for _, id := range ids {
			general[id] = true
		}
	}
	for _, h := range []*lanHost{ana, cai, lap} {
		if err := sameSet(o.checkHistory(ctx, t, h, "general"), general); err != nil {
			t.Errorf("%s: #general: %v", h.name, err)
		}
	}
	dms := make(map[string]bool)
	for _, id := range dmIDs {
		dms[id] = true
	}
	if err := sameSet(o.checkHistory(ctx, t, lap, "@Ben"), dms); err != nil {
		t.Errorf("Lap: direct messages from Ben: %v", err)
	}
	// Neither Ana nor Cai can read them: they delivered ciphertext.
	if msgs, err := o.messages(ctx, lap, "@Ben"); err == nil && len(msgs) > 0 {
		room := msgs[0].Room
		if byID, err := o.messages(ctx, lap, room); err != nil || len(byID) != len(msgs) {
			t.Errorf("Lap: log by room ID %s: %d messages, %v; want %d", room, len(byID), err, len(msgs))
		}
		for _, h := range []*lanHost{ana, cai} {
			if msgs, err := o.messages(ctx, h, room); err == nil && len(msgs) > 0 {
				t.Errorf("%s reads %d messages of Ben and Lap's direct room, e.g. %q", h.name, len(msgs), msgs[0].Text)
			}
		}
	}

	for _, h := range []*lanHost{ana, cai, lap} {
		o.stop(t, h)
	}
	held := make(map[string]map[string]bool)
	for _, h := range o.hosts {
		held[h.name] = heldEnvelopes(ctx, t, h)
	}
	for _, name := range []string{"Cai", "Lap"} {
		if err := sameSet(held[name], held["Ana"]); err != nil {
			t.Errorf("%s's envelopes differ from Ana's: %v", name, err)
		}
	}
	if int64(len(held["Ana"])) != total {
		t.Errorf("Ana's database holds %d envelopes, status said %d", len(held["Ana"]), total)
	}
	if extra := missingFrom(held["Ana"], held["Ben"]); len(extra) > 0 {
		t.Errorf("Ben holds %d envelopes the others lack, e.g. %s", len(extra), extra[0])
	}
	for _, id := range slices.Concat(anaIDs, benIDs, dmIDs, lapIDs) {
		if !held["Ana"][id] {
			t.Errorf("message %s is not in Ana's database", id)
			break
		}
	}
}

// TestPartitionHeals splits four nodes 2|2; both sides keep talking, and
// once the switch is whole again every node holds the same envelopes.
func TestPartitionHeals(t *testing.T) {
	skipUnlessLAN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newOffice(ctx, t, "Ana", "Ben", "Cai", "Dan")
	before := o.waitConverged(ctx, t, 30*time.Second, 1, o.hosts...)

	var across []string // the peer IDs of the other side, seen from Ana
	for _, h := range o.hosts[2:] {
		st, err := o.status(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		across = append(across, st.PeerID)
	}
	if err := o.lan.Partition([]int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	split := time.Now()
	// A cut link shows: the connections across it close by yamux's
	// keepalive (node.muxer), not only when a send fails.
	eventually(t, 90*time.Second, func() bool {
		st, err := o.status(ctx, o.hosts[0])
		return err == nil && !slices.ContainsFunc(st.Peers, func(p string) bool { return slices.Contains(across, p) })
	}, func() string { return "Ana still connected across the partition:\n" + o.describe(ctx, o.hosts...) })
	t.Logf("Ana's connections across the partition closed %v after it", time.Since(split).Round(100*time.Millisecond))
	sent := make([][]string, len(o.hosts))
	var fns []func() error
	for i, h := range o.hosts {
		fns = append(fns, func() (err error) {
			sent[i], err = o.send(ctx, h, "general", numbered(h.name+" in the partition %d", 100))
			return err
		})
	}
	for _, err := range runParallel(fns...) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each side hears itself, and only itself.
	left := o.waitConverged(ctx, t, 60*time.Second, before+200, o.hosts[0], o.hosts[1])
	right := o.waitConverged(ctx, t, 60*time.Second, before+200, o.hosts[2], o.hosts[3])
	if left != before+200 || right != before+200 {
		t.Errorf("sides hold %d and %d envelopes, want %d each: something crossed the partition", left, right, before+200)
	}
	t.Logf("both sides sent and converged within %v", time.Since(split).Round(time.Millisecond))

	if err := o.lan.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	total := o.waitConverged(ctx, t, 90*time.Second, before+400, o.hosts...)
	t.Logf("after Heal all four hold %d envelopes in %v", total, time.Since(healed).Round(time.Millisecond))
	if total != before+400 {
		t.Errorf("%d envelopes after healing, want %d", total, before+400)
	}

	want := make(map[string]bool)
	for _, ids := range sent {
		for _, id := range ids {
			want[id] = true
		}
	}
	for _, h := range o.hosts {
		if err := sameSet(o.checkHistory(ctx, t, h, "general"), want); err != nil {
			t.Errorf("%s: #general: %v", h.name, err)
		}
	}
	for _, h := range o.hosts {
		o.stop(t, h)
	}
	first := heldEnvelopes(ctx, t, o.hosts[0])
	for _, h := range o.hosts[1:] {
		if err := sameSet(heldEnvelopes(ctx, t, h), first); err != nil {
			t.Errorf("%s's envelopes differ from %s's: %v", h.name, o.hosts[0].name, err)
		}
	}
}

// TestKillNineLosesNothing kills Ana's node with SIGKILL in the middle of a
// send storm, three times: every message whose ID send printed is in Ana's
// history after the restart and reaches Ben, and the database passes
// integrity_check.
func TestKillNineLosesNothing(t *testing.T) {
	skipUnlessLAN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newOffice(ctx, t, "Ana", "Ben")
	ana, ben := o.hosts[0], o.hosts[1]
	dbPath := filepath.Join(ana.home, "charla.db")

	acked := make(map[string]bool)
	for round := 1; round <= 3; round++ {
		// Kill after a different number of acknowledgements each round.
		killAfter := 100 + 150*round
		cmd := ana.Command(ctx, o.bin, "send", "general", "-", "--home", ana.home)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() { sent <- cmd.Wait() }()
		go func() {
			// The client reads a line, sends it, waits for the ID: the pipe
			// paces the storm, and the writer blocks once send stops reading.
			defer stdin.Close()
			for _, line := range numbered(fmt.Sprintf("storm %d message %%d", round), 1000) {
				if _, err := io.WriteString(stdin, line+"\n"); err != nil {
					return
				}
			}
		}()
		storm := time.Now()
		eventually(t, 60*time.Second, func() bool {
			return len(printedIDs(stdout.String())) >= killAfter
		}, func() string {
			return fmt.Sprintf("round %d: send printed %d IDs: %s", round, len(printedIDs(stdout.String())), stderr.String())
		})
		if err := ana.run.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-ana.run.done
		ana.run.done <- nil // for the cleanup
		var sendErr error
		select {
		case sendErr = <-sent:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: send still running 30s after its node was killed", round)
		}
		ids := printedIDs(stdout.String())
		if sendErr == nil && len(ids) < 1000 {
			t.Errorf("round %d: send succeeded with %d IDs for 1,000 lines", round, len(ids))
		}
		t.Logf("round %d: killed the node %v into the storm, after %d IDs; send: %v: %s", round,
			time.Since(storm).Round(time.Millisecond), len(ids), sendErr, strings.TrimSpace(stderr.String()))
		for _, id := range ids {
			acked[id] = true
		}

		checkIntegrity(ctx, t, dbPath)
		restart := time.Now()
		o.launch(t, ana)
		msgs, err := o.messages(ctx, ana, "general")
		if err != nil {
			t.Fatal(err)
		}
		have := make(map[string]bool, len(msgs))
		for _, m := range msgs {
			have[m.ID] = true
		}
		if lost := missingFrom(have, acked); len(lost) > 0 {
			t.Fatalf("round %d: %d acknowledged messages are not in Ana's history after the restart, e.g. %s", round, len(lost), lost[0])
		}
		var lost []string
		eventually(t, 60*time.Second, func() bool {
			msgs, err := o.messages(ctx, ben, "general")
			if err != nil {
				return false
			}
			have := make(map[string]bool, len(msgs))
			for _, m := range msgs {
				have[m.ID] = true
			}
			lost = missingFrom(have, acked)
			return len(lost) == 0
		}, func() string {
			return fmt.Sprintf("round %d: Ben lacks %d acknowledged messages, e.g. %s\n%s", round, len(lost), lost[0], o.describe(ctx, ana, ben))
		})
		t.Logf("round %d: Ana restarted and Ben holds all %d acknowledged messages %v after the kill",
			round, len(acked), time.Since(restart).Round(time.Millisecond))
	}

	// Ana still writes after three crashes, on a feed with no fork.
	if _, err := o.send(ctx, ana, "general", []string{"still here"}); err != nil {
		t.Fatal(err)
	}
	o.waitConverged(ctx, t, 30*time.Second, int64(len(acked)), ana, ben)
	o.checkHistory(ctx, t, ana, "general")
	o.checkHistory(ctx, t, ben, "general")
	o.stop(t, ana)
	o.stop(t, ben)
	if err := sameSet(heldEnvelopes(ctx, t, ben), heldEnvelopes(ctx, t, ana)); err != nil {
		t.Errorf("Ben's envelopes differ from Ana's: %v", err)
	}
}
