package discovery_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/discovery"
	"github.com/charla-im/charla/internal/netns"
	"github.com/multiformats/go-multiaddr"
)

// The test binary re-executed inside a namespace runs one MDNS
// (TestHelperMDNSProcess) configured by these variables.
const (
	helperEnv     = "CHARLA_MDNS_HELPER" // "1" to act as the helper
	helperPortEnv = "CHARLA_MDNS_PORT"
	helperTagsEnv = "CHARLA_MDNS_TAGS" // comma-separated; the first is advertised
)

// helperLine is one line of the helper's stdout.
type helperLine struct {
	Addrs   []string              `json:"addrs,omitempty"`    // a Found
	AfterMS int64                 `json:"after_ms,omitempty"` // since the helper started
	Status  *discovery.MDNSStatus `json:"status,omitempty"`   // printed when it changes
}

// TestMDNSOnLAN runs five nodes on a namespace LAN: three of workspace A (one
// of them advertising the previous hour's tag) and two of workspace B. Each
// must find exactly the others of its workspace.
func TestMDNSOnLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped with -short")
	}
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	lan, err := netns.NewLAN(t, 5)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []struct {
		tags      string
		workspace string
	}{
		{"a1,a0", "A"},
		{"a1,a0", "A"},
		{"a0,a1", "A"}, // a clock still in the previous hour
		{"b1,b0", "B"},
		{"b1,b0", "B"},
	}
	port := func(i int) int { return 4701 + i }

	var mu sync.Mutex                             // guards found and firstAt
	found := make([]map[string]int64, len(nodes)) // host → IP found → ms after start
	helpers := make([]*mdnsHelper, len(nodes))
	start := time.Now()
	for i, n := range nodes {
		found[i] = map[string]int64{}
		h := lan.Host(i)
		helpers[i] = startMDNSHelper(t, h, port(i), n.tags, func(l helperLine) {
			for _, a := range l.Addrs {
				ip, p, err := ipPort(a)
				if err != nil {
					t.Errorf("%s reported %q: %v", h.Name, a, err)
					continue
				}
				if owner := hostIndex(lan, ip); owner >= 0 && p != port(owner) {
					t.Errorf("%s reported %s with port %d, want %d", h.Name, a, p, port(owner))
				}
				mu.Lock()
				if _, ok := found[i][ip]; !ok {
					found[i][ip] = l.AfterMS
				}
				mu.Unlock()
			}
		})
	}

	want := func(i int) []string {
		var ips []string
		for j, n := range nodes {
			if j != i && n.workspace == nodes[i].workspace {
				ips = append(ips, lan.Host(j).IP)
			}
		}
		return ips
	}
	allFound := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range nodes {
			for _, ip := range want(i) {
				if _, ok := found[i][ip]; !ok {
					return false
				}
			}
		}
		return true
	}
	poll(t, 20*time.Second, allFound, func() string {
		mu.Lock()
		for i := range nodes {
			t.Logf("%s found %v, want %v", lan.Host(i).Name, found[i], want(i))
		}
		mu.Unlock()
		for _, h := range helpers {
			h.dumpLog(t)
		}
		return "nodes did not find each other within 20 s"
	})
	t.Logf("all %d nodes found their workspace's others %v after start", len(nodes), time.Since(start).Round(time.Millisecond))

	for _, h := range helpers {
		h.stdin.Close() // all at once: each takes up to a query timeout to stop
	}
	for i, h := range helpers {
		st := h.stop(t)
		if !st.Serving || st.LastError != "" || !slices.Contains(st.Interfaces, "eth0") {
			t.Errorf("%s status = %+v, want serving on eth0 without error", lan.Host(i).Name, st)
			h.dumpLog(t)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for i := range nodes {
		var got, first []string
		var firstMS int64 = -1
		for ip, ms := range found[i] {
			got = append(got, ip)
			if firstMS < 0 || ms < firstMS {
				firstMS = ms
			}
		}
		for _, ip := range want(i) {
			first = append(first, fmt.Sprintf("%s after %d ms", ip, found[i][ip]))
		}
		slices.Sort(got)
		if w := want(i); !slices.Equal(got, w) {
			t.Errorf("%s (workspace %s, tags %s) found %v, want exactly %v", lan.Host(i).Name, nodes[i].workspace, nodes[i].tags, got, w)
		}
		t.Logf("%s (%s): first discovery after %d ms; %s", lan.Host(i).IP, nodes[i].workspace, firstMS, strings.Join(first, ", "))
	}
}

// TestMDNSWithoutMulticastRoute starts a node on a host without a route for
// multicast: it must keep running, say why it is not serving, and start
// serving and be found soon after a route appears (FINDINGS.md, "mDNS").
func TestMDNSWithoutMulticastRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped with -short")
	}
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lan, err := netns.NewLAN(t, 2)
	if err != nil {
		t.Fatal(err)
	}
	office, laptop := lan.Host(0), lan.Host(1)
	// IPv6 link-local alone would let mDNS work, so turn IPv6 off too.
	inNS(ctx, t, laptop, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	inNS(ctx, t, laptop, "ip", "route", "del", "default")

	var mu sync.Mutex // guards officeFound
	var officeFound []string
	startMDNSHelper(t, office, 4747, "a1,a0", func(l helperLine) {
		mu.Lock()
		defer mu.Unlock()
		officeFound = append(officeFound, l.Addrs...)
	})
	laptopFound := make(chan string, 16)
	h := startMDNSHelper(t, laptop, 4747, "a1,a0", func(l helperLine) {
		for _, a := range l.Addrs {
			select {
			case laptopFound <- a:
			default:
			}
		}
	})

	poll(t, 10*time.Second, func() bool {
		st := h.status()
		return !st.Serving && strings.Contains(st.LastError, "no multicast listeners")
	}, func() string {
		return fmt.Sprintf("laptop status %+v, want not serving for lack of multicast", h.status())
	})
	t.Logf("without a route: %+v", h.status())

	inNS(ctx, t, laptop, "ip", "route", "add", "default", "dev", "eth0")
	routed := time.Now()
	poll(t, 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(officeFound, "/ip4/"+laptop.IP+"/tcp/4747")
	}, func() string {
		h.dumpLog(t)
		return fmt.Sprintf("office did not find the laptop after its route appeared; status %+v", h.status())
	})
	t.Logf("office found the laptop %v after its route appeared", time.Since(routed).Round(time.Millisecond))
	select {
	case a := <-laptopFound:
		if a != "/ip4/"+office.IP+"/tcp/4747" {
			t.Errorf("laptop found %s, want the office at %s", a, office.IP)
		}
	case <-time.After(10 * time.Second):
		t.Error("laptop did not find the office")
	}
	if st := h.stop(t); !st.Serving || st.LastError != "" {
		t.Errorf("laptop status %+v, want serving without error", st)
	}
}

func inNS(ctx context.Context, t *testing.T, h *netns.Host, name string, args ...string) {
	t.Helper()
	if out, err := h.Command(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %s %s: %v: %s", h.Name, name, strings.Join(args, " "), err, out)
	}
}

// poll waits until cond holds, failing with msg() after timeout.
func poll(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHelperMDNSProcess is not a test: it is the node TestMDNSOnLAN runs in
// each namespace. It prints a helperLine per Found and per change of status,
// and stops when stdin closes.
func TestHelperMDNSProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	os.Exit(runMDNSHelper())
}

func runMDNSHelper() int {
	start := time.Now()
	port, err := strconv.Atoi(os.Getenv(helperPortEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "port:", err)
		return 2
	}
	tags := strings.Split(os.Getenv(helperTagsEnv), ",")
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var mu sync.Mutex // guards out
	out := json.NewEncoder(os.Stdout)
	m := discovery.NewMDNS(port, func() []string { return tags }, func(f discovery.Found) {
		l := helperLine{AfterMS: time.Since(start).Milliseconds()}
		for _, a := range f.Addrs {
			l.Addrs = append(l.Addrs, a.String())
		}
		mu.Lock()
		defer mu.Unlock()
		out.Encode(l)
	}, logger)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	var last *discovery.MDNSStatus
	for stop := false; !stop; {
		select {
		case <-stdinClosed:
			stop = true
		case <-time.After(100 * time.Millisecond):
		}
		st := m.Status()
		if last == nil || !reflect.DeepEqual(st, *last) {
			last = &st
			mu.Lock()
			out.Encode(helperLine{Status: &st})
			mu.Unlock()
		}
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

type mdnsHelper struct {
	name   string
	stdin  io.Closer
	log    *lockedBuffer
	exited chan error
	kill   context.CancelFunc

	mu   sync.Mutex // guards last
	last discovery.MDNSStatus
}

// status returns the last status the helper printed.
func (h *mdnsHelper) status() discovery.MDNSStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// startMDNSHelper runs the helper in h; onLine is called from another
// goroutine for every Found line. The helper is stopped at cleanup if the
// test has not stopped it.
func startMDNSHelper(t *testing.T, h *netns.Host, port int, tags string, onLine func(helperLine)) *mdnsHelper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, kill := context.WithCancel(context.Background())
	cmd := h.Command(ctx, exe, "-test.run=^TestHelperMDNSProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperPortEnv+"="+strconv.Itoa(port), helperTagsEnv+"="+tags)
	cmd.WaitDelay = 5 * time.Second
	hp := &mdnsHelper{name: h.Name, log: &lockedBuffer{}, exited: make(chan error, 1), kill: kill}
	cmd.Stderr = hp.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	hp.stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		kill()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l helperLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				hp.log.Write([]byte("unparsable stdout: " + sc.Text() + "\n"))
				continue
			}
			if l.Status != nil {
				hp.mu.Lock()
				hp.last = *l.Status
				hp.mu.Unlock()
				continue
			}
			onLine(l)
		}
		hp.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		timer := time.AfterFunc(10*time.Second, kill)
		defer timer.Stop()
		<-hp.exited
		kill()
	})
	return hp
}

// stop closes the helper's stdin and returns the last status it printed
// before stopping; it fails the test if the helper does not exit cleanly.
func (h *mdnsHelper) stop(t *testing.T) discovery.MDNSStatus {
	t.Helper()
	h.stdin.Close()
	select {
	case err := <-h.exited:
		if err != nil {
			t.Errorf("%s: %v", h.name, err)
			h.dumpLog(t)
		}
		h.exited <- err // for the cleanup
	case <-time.After(10 * time.Second):
		h.kill()
		t.Fatalf("%s: Run did not return 10 s after its context was cancelled", h.name)
	}
	return h.status()
}

func (h *mdnsHelper) dumpLog(t *testing.T) {
	t.Helper()
	b := h.log.Bytes()
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	t.Logf("%s log:\n%s", h.name, b)
}

// ipPort splits /ip4/<ip>/tcp/<port>.
func ipPort(s string) (string, int, error) {
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		return "", 0, err
	}
	ip, err := a.ValueForProtocol(multiaddr.P_IP4)
	if err != nil {
		return "", 0, err
	}
	p, err := a.ValueForProtocol(multiaddr.P_TCP)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return ip, port, err
}

func hostIndex(lan *netns.LAN, ip string) int {
	for i := range lan.Len() {
		if lan.Host(i).IP == ip {
			return i
		}
	}
	return -1
}

type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
