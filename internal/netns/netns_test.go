package netns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a tiny TCP tool instead of running
// tests (TestHelperProcess); its value is "listen ADDR" or "dial ADDR".
const helperEnv = "CHARLA_NETNS_HELPER"

var _ TB = (*testing.T)(nil)

func TestCreatorPID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		pid  int
		ok   bool
	}{
		{"host", "charla-1234-a1b2c3-h2", 1234, true},
		{"switch", "charla-99-000000-sw", 99, true},
		{"probe", newPrefix() + "-probe", os.Getpid(), true},
		{"someone else's", "docker-1234-a1b2c3", 0, false},
		{"no random part", "charla-1234", 0, false},
		{"random part not hex", "charla-1234-zzzzzz-h1", 0, false},
		{"pid not a number", "charla-abc-a1b2c3-h1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, ok := creatorPID(tt.in)
			if pid != tt.pid || ok != tt.ok {
				t.Errorf("creatorPID(%q) = %d, %v; want %d, %v", tt.in, pid, ok, tt.pid, tt.ok)
			}
		})
	}
}

func TestLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped with -short")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var names []string
	t.Cleanup(func() {
		// Registered first, so it runs after the LAN's own cleanup.
		for _, name := range names {
			if _, err := os.Stat("/run/netns/" + name); err == nil {
				t.Errorf("namespace %s left behind", name)
			}
		}
	})
	lan, err := NewLAN(t, 3)
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, lan.sw)
	for i := range lan.Len() {
		h := lan.Host(i)
		names = append(names, h.Name)
		if len(hostIface) > 15 || len(h.port) > 15 {
			t.Errorf("interface names %q, %q longer than IFNAMSIZ-1", hostIface, h.port)
		}
		out, err := h.Command(ctx, "ip", "-4", "-o", "addr", "show", "dev", hostIface).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ip addr: %v: %s", h.Name, err, out)
		}
		if !strings.Contains(string(out), " "+h.IP+"/24 ") {
			t.Errorf("%s: eth0 lacks %s/24:\n%s", h.Name, h.IP, out)
		}
	}

	server := lan.Host(0)
	addr := net.JoinHostPort(server.IP, "4747")
	listen := startHelper(t, server, "listen "+addr)
	if line := listen.next(t, 10*time.Second); line != "listening" {
		t.Fatalf("listener said %q", line)
	}
	for _, i := range []int{1, 2} {
		h := lan.Host(i)
		out, err := runHelper(ctx, h, "dial "+addr)
		if err != nil {
			t.Fatalf("%s → %s: %v: %s", h.Name, addr, err, out)
		}
		if want := "echo from " + server.IP + ": hello from " + h.IP; out != want {
			t.Errorf("%s → %s: got %q, want %q", h.Name, addr, out, want)
		}
	}

	// A partition: h3's cable is pulled, then plugged back in.
	h3 := lan.Host(2)
	if err := h3.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if out, err := runHelper(ctx, h3, "dial "+addr); err == nil {
		t.Fatalf("%s reached %s while disconnected: %s", h3.Name, addr, out)
	}
	if err := h3.Reconnect(); err != nil {
		t.Fatal(err)
	}
	var out string
	eventually(t, 10*time.Second, func() bool {
		out, err = runHelper(ctx, h3, "dial "+addr)
		return err == nil
	}, func() string {
		return fmt.Sprintf("%s cannot reach %s after Reconnect: %v: %s", h3.Name, addr, err, out)
	})
}

// TestHelperProcess is not a test: it is the program TestLAN runs inside the
// namespaces.
func TestHelperProcess(t *testing.T) {
	mode, addr, ok := strings.Cut(os.Getenv(helperEnv), " ")
	if !ok {
		return
	}
	var err error
	switch mode {
	case "listen":
		err = helperListen(addr)
	case "dial":
		err = helperDial(addr)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperListen echoes one line per connection until stdin closes.
func helperListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			local, _, _ := net.SplitHostPort(c.LocalAddr().String())
			fmt.Fprintf(c, "echo from %s: %s", local, line)
		}()
	}
}

// helperDial sends a line naming its own address and prints the reply.
func helperDial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	local, _, _ := net.SplitHostPort(c.LocalAddr().String())
	fmt.Fprintf(c, "hello from %s\n", local)
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(reply)
	return nil
}

func helperCommand(ctx context.Context, h *Host, arg string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := h.Command(ctx, exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+arg)
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// runHelper runs the helper to completion and returns its trimmed output.
func runHelper(ctx context.Context, h *Host, arg string) (string, error) {
	cmd, err := helperCommand(ctx, h, arg)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

type helper struct {
	lines chan string
}

// startHelper starts a long-running helper, stopped at cleanup by closing its
// stdin, and killed if it has not stopped 10 s later.
func startHelper(t *testing.T, h *Host, arg string) *helper {
	t.Helper()
	ctx, kill := context.WithCancel(context.Background())
	cmd, err := helperCommand(ctx, h, arg)
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		kill()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		timer := time.AfterFunc(10*time.Second, kill)
		defer timer.Stop()
		defer kill()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper in %s: %v", h.Name, err)
		}
	})
	hp := &helper{lines: make(chan string, 16)}
	go func() {
		defer close(hp.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			hp.lines <- sc.Text()
		}
	}()
	return hp
}

func (h *helper) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatal("helper exited")
		}
		return line
	case <-time.After(timeout):
		t.Fatalf("helper silent for %v", timeout)
		return ""
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
