// Package netns builds throwaway LANs out of Linux network namespaces for
// tests: a switch namespace holding a bridge, and host namespaces wired to it
// by veth pairs, with addresses that exist only inside them.
//
// Nothing is added to the root network namespace: the bridge and the switch
// ends of the veths live in the switch namespace, the host ends in the hosts.
// Deleting the namespaces deletes everything. It needs root and iproute2's
// ip; tests call Available and skip with its error otherwise.
//
// It is not a _test.go file so that other packages' tests can use it, and it
// does not import "testing" (STYLE.md): it takes the small TB interface.
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// namePrefix starts every namespace this package creates. The next field is
// the creating process's ID, which lets a later run remove what a killed run
// left behind.
const namePrefix = "charla-"

const (
	maxHosts  = 250 // a /24 leaves room for 254 hosts; keep it round
	ipTimeout = 15 * time.Second
	hostIface = "eth0" // the host end of its veth, inside the host namespace
	bridge    = "br0"  // inside the switch namespace
)

// TB is the part of testing.TB that NewLAN uses.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Cleanup(func())
}

// Available returns nil if this process can create network namespaces: Linux,
// root, iproute2's ip, and `ip netns add` working (it does not in some
// containers). Otherwise the error says which is missing.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("network namespaces need Linux, this is %s", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("network namespaces need root, running as uid %d", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network namespaces need iproute2's ip command: %w", err)
	}
	name := newPrefix() + "-probe"
	if err := ip("netns", "add", name); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	if err := ip("netns", "del", name); err != nil {
		return fmt.Errorf("cannot delete network namespace %s: %w", name, err)
	}
	return nil
}

// LAN is a switch and the hosts plugged into it.
type LAN struct {
	Subnet string // e.g. 10.77.42.0/24
	sw     string // switch namespace
	hosts  []*Host

	mu      sync.Mutex // guards created
	created []string   // namespaces to delete, in creation order
}

// Host is one machine on a LAN: a network namespace with one interface,
// eth0, holding IP/24 and the default route.
type Host struct {
	Name string // network namespace, as `ip netns exec` takes it
	IP   string // IPv4 address on the LAN, e.g. 10.77.42.1
	lan  *LAN
	port string // the switch end of the host's veth, in lan.sw
}

// NewLAN creates a LAN of n hosts, registered for removal with t.Cleanup. It
// first removes namespaces left behind by test processes that no longer
// exist. On error, whatever it created is removed before it returns.
//
// Host namespaces are named charla-<pid>-<random>-h1 … hn and host i has
// address 10.77.<k>.<i+1>/24, k chosen at random per LAN (LANs never share a
// namespace, so the choice only helps reading logs). Each host has lo up, eth0
// up and a default route through eth0: hashicorp/mdns needs a route for
// 224.0.0.0/4 (FINDINGS.md, "mDNS"), and there is nowhere else to go.
func NewLAN(t TB, n int) (*LAN, error) {
	t.Helper()
	if n < 1 || n > maxHosts {
		return nil, fmt.Errorf("a LAN has 1 to %d hosts, not %d", maxHosts, n)
	}
	reapStale(t)
	prefix := newPrefix()
	var k [1]byte
	rand.Read(k[:])
	subnet := fmt.Sprintf("10.77.%d", k[0])
	l := &LAN{Subnet: subnet + ".0/24", sw: prefix + "-sw"}
	t.Cleanup(func() {
		if err := l.close(); err != nil {
			t.Logf("netns: %v", err)
		}
	})
	if err := l.build(prefix, subnet, n); err != nil {
		if cerr := l.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return l, nil
}

func (l *LAN) build(prefix, subnet string, n int) error {
	if err := l.addNS(l.sw); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", l.sw, "link", "set", "dev", "lo", "up"},
		// No STP, no forwarding delay, no IGMP snooping: ports forward at once
		// and multicast floods to every port, as on a dumb office switch.
		{"-n", l.sw, "link", "add", "name", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"-n", l.sw, "link", "set", "dev", bridge, "up"},
	}
	if err := ipSteps(steps); err != nil {
		return err
	}
	for i := range n {
		h := &Host{
			Name: fmt.Sprintf("%s-h%d", prefix, i+1),
			IP:   fmt.Sprintf("%s.%d", subnet, i+1),
			lan:  l,
			port: fmt.Sprintf("p%d", i+1),
		}
		if err := l.addNS(h.Name); err != nil {
			return err
		}
		steps := [][]string{
			{"-n", h.Name, "link", "set", "dev", "lo", "up"},
			// Created inside the switch namespace with its peer sent straight
			// to the host's, so neither end ever exists in the root namespace.
			{"-n", l.sw, "link", "add", "name", h.port, "type", "veth", "peer", "name", hostIface, "netns", h.Name},
			{"-n", l.sw, "link", "set", "dev", h.port, "master", bridge, "up"},
			{"-n", h.Name, "addr", "add", h.IP + "/24", "dev", hostIface},
			{"-n", h.Name, "link", "set", "dev", hostIface, "up"},
			{"-n", h.Name, "route", "add", "default", "dev", hostIface},
		}
		if err := ipSteps(steps); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		l.hosts = append(l.hosts, h)
	}
	return nil
}

func (l *LAN) addNS(name string) error {
	if err := ip("netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.created = append(l.created, name)
	l.mu.Unlock()
	return nil
}

// close deletes every namespace the LAN created; the veths and the bridge go
// with them. Processes still running in a namespace keep it alive until they
// exit, so tests stop their processes first (t.Cleanup runs last-in first).
// It is safe to call twice.
func (l *LAN) close() error {
	l.mu.Lock()
	created := l.created
	l.created = nil
	l.mu.Unlock()
	var errs []error
	for _, name := range created {
		if err := ip("netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Len returns the number of hosts.
func (l *LAN) Len() int { return len(l.hosts) }

// Host returns host i, 0 ≤ i < Len(): the namespace ending in -h<i+1>.
func (l *LAN) Host(i int) *Host { return l.hosts[i] }

// Command returns a command that runs name with args inside the host's
// namespace, through `ip netns exec`, which replaces itself with the program:
// cancelling ctx kills the program itself. name is looked up in PATH; give an
// absolute path for anything else (os.Executable, not /proc/self/exe, which
// would name ip).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Disconnect pulls the host's cable at the switch: the switch end of its veth
// goes down, so the host keeps its address and routes but sees no carrier,
// and nothing passes either way. It models a partition, not the host turning
// its interface off.
func (h *Host) Disconnect() error {
	return ip("-n", h.lan.sw, "link", "set", "dev", h.port, "down")
}

// Reconnect plugs the cable back in.
func (h *Host) Reconnect() error {
	return ip("-n", h.lan.sw, "link", "set", "dev", h.port, "up")
}

// newPrefix returns a fresh namespace name prefix: charla-<pid>-<6 hex>.
func newPrefix() string {
	var b [3]byte
	rand.Read(b[:])
	return namePrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// reapStale deletes namespaces of the form charla-<pid>-… whose process is
// gone: a test killed by -timeout or ^C does not run its cleanups.
func reapStale(t TB) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := creatorPID(e.Name())
		if !ok || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue
		}
		if err := ip("netns", "del", e.Name()); err != nil {
			t.Logf("netns: remove stale namespace: %v", err)
			continue
		}
		t.Logf("netns: removed namespace %s left by process %d", e.Name(), pid)
	}
}

// creatorPID parses the process ID out of a name made by newPrefix.
func creatorPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	pidStr, rest, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	rnd, _, _ := strings.Cut(rest, "-")
	if len(rnd) != 6 {
		return 0, false
	}
	if _, err := hex.DecodeString(rnd); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func ipSteps(steps [][]string) error {
	for _, args := range steps {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// ip runs iproute2's ip with args.
func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
