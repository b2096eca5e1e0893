package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/api"
)

// TestEndToEnd drives the built binary as a user would: init, run, send, log,
// tail, status, rooms, a second run on the same home, and the API's refusals.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the charla binary; skipped in -short mode")
	}
	bin := buildCharla(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out := mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", home)
	peerID := strings.TrimSpace(out)
	if peerID == "" || strings.ContainsAny(peerID, " \n") {
		t.Fatalf("init printed %q, want a peer ID", out)
	}

	node := startCharla(ctx, t, bin, "run", "--home", home,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--no-mdns")
	var info api.Info
	eventually(t, 30*time.Second, func() bool {
		select {
		case err := <-node.done:
			node.done <- err
			t.Fatalf("run exited: %v; stderr:\n%s", err, node.stderr.String())
		default:
		}
		var err error
		info, err = api.ReadInfo(home)
		return err == nil && strings.Contains(node.stdout.String(), "running; API on http://"+info.API)
	}, func() string { return "run never became ready; stderr:\n" + node.stderr.String() })
	if info.PID != node.cmd.Process.Pid {
		t.Errorf("api.json names pid %d, the node is %d", info.PID, node.cmd.Process.Pid)
	}
	if !strings.Contains(node.stdout.String(), "charla: node "+peerID+" running") {
		t.Errorf("run printed %q, want the peer ID %s", node.stdout.String(), peerID)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(home, api.InfoFile))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("api.json has mode %o, want 600", mode)
		}
	}

	t.Run("send and log", func(t *testing.T) {
		out := mustRun(ctx, t, bin, "send", "general", "hola", "--home", home)
		id := strings.TrimSpace(out)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Fatalf("send printed %q, want a message ID", out)
		}
		out = mustRun(ctx, t, bin, "log", "general", "--json", "--home", home)
		found := false
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var m struct{ ID, Text, Author string }
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log --json line %q: %v", line, err)
			}
			if m.ID == id {
				found = true
				if m.Text != "hola" || m.Author != peerID {
					t.Errorf("logged %+v, want hola by %s", m, peerID)
				}
			}
		}
		if !found {
			t.Errorf("log --json printed %q, without message %s", out, id)
		}
		if out := mustRun(ctx, t, bin, "log", "#general", "--home", home); !strings.Contains(out, "Ana: hola") {
			t.Errorf("log printed %q, want Ana: hola", out)
		}
	})

	t.Run("status and rooms", func(t *testing.T) {
		var st struct {
			PeerID        string   `json:"peer_id"`
			WorkspaceName string   `json:"workspace_name"`
			Addrs         []string `json:"addrs"`
			API           string   `json:"api"`
		}
		decode(t, mustRun(ctx, t, bin, "status", "--json", "--home", home), &st)
		if st.PeerID != peerID || st.WorkspaceName != "Acme" || st.API != info.API {
			t.Errorf("status %+v, want peer %s in Acme with API %s", st, peerID, info.API)
		}
		for _, a := range st.Addrs {
			if !strings.HasSuffix(a, "/p2p/"+peerID) {
				t.Errorf("address %q does not end in /p2p/%s", a, peerID)
			}
		}
		var rooms []struct{ ID, Name, Kind string }
		decode(t, mustRun(ctx, t, bin, "rooms", "--json", "--home", home), &rooms)
		found := false
		for _, r := range rooms {
			found = found || strings.TrimPrefix(r.Name, "#") == "general"
		}
		if !found {
			t.Errorf("rooms %+v, want general", rooms)
		}
	})

	t.Run("tail", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("interrupting a child process needs a console on Windows")
		}
		tail := startCharla(ctx, t, bin, "tail", "--json", "--home", home)
		// tail may not have subscribed yet: send until it shows a message.
		for i := 0; !strings.Contains(tail.stdout.String(), `"text":"hola tail`); i++ {
			if i == 50 {
				t.Fatalf("tail printed %q; stderr %q", tail.stdout.String(), tail.stderr.String())
			}
			mustRun(ctx, t, bin, "send", "general", fmt.Sprintf("hola tail %d", i), "--home", home)
			time.Sleep(200 * time.Millisecond)
		}
		if err := tail.interrupt(); err != nil {
			t.Errorf("interrupted tail: %v; stderr %q", err, tail.stderr.String())
		}
	})

	t.Run("second run", func(t *testing.T) {
		_, stderr, err := runCharla(ctx, bin, "run", "--home", home,
			"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--no-mdns")
		if err == nil {
			t.Fatal("a second run on the same home succeeded")
		}
		if !strings.Contains(stderr, "pid "+strconv.Itoa(node.cmd.Process.Pid)) {
			t.Errorf("second run said %q, want the pid %d", stderr, node.cmd.Process.Pid)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			token  string
			host   string
			origin string
			want   int
		}{
			{name: "with token", token: info.Token, want: http.StatusOK},
			{name: "no token", want: http.StatusUnauthorized},
			{name: "wrong token", token: strings.Repeat("0", 64), want: http.StatusUnauthorized},
			{name: "foreign host", token: info.Token, host: "evil.com", want: http.StatusForbidden},
			{name: "foreign origin", token: info.Token, origin: "http://evil.com", want: http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(ctx, "GET", "http://"+info.API+"/api/status", nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.token != "" {
					req.Header.Set("Authorization", "Bearer "+tt.token)
				}
				if tt.host != "" {
					req.Host = tt.host
				}
				if tt.origin != "" {
					req.Header.Set("Origin", tt.origin)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
				}
			})
		}
	})

	if runtime.GOOS == "windows" {
		return
	}
	if err := node.interrupt(); err != nil {
		t.Errorf("run after an interrupt: %v; stderr:\n%s", err, node.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(home, api.InfoFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("api.json is left behind after run stopped: %v", err)
	}
	_, stderr, err := runCharla(ctx, bin, "status", "--home", home)
	if err == nil || !strings.Contains(stderr, "no running node in "+home) || !strings.Contains(stderr, "charla: hint: start it with 'charla run'") {
		t.Errorf("status with no node: %v, said %q", err, stderr)
	}
}

func buildCharla(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build charla with:", err)
	}
	bin := filepath.Join(t.TempDir(), "charla")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHARLA_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CHARLA_NO_BROWSER=1") // a test never opens a desktop browser
	return cmd
}

func runCharla(ctx context.Context, bin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := command(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func mustRun(ctx context.Context, t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, stderr, err := runCharla(ctx, bin, args...)
	if err != nil {
		t.Fatalf("charla %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// background is a charla process left running.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan error
}

func startCharla(ctx context.Context, t *testing.T, bin string, args ...string) *background {
	t.Helper()
	b := &background{cmd: command(ctx, bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

// interrupt stops the process as Ctrl-C would and returns how it exited.
func (b *background) interrupt() error {
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case err := <-b.done:
		b.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		return errors.New("still running 20s after an interrupt")
	}
}

// runNode starts `charla run` on home, on loopback with no mDNS, and waits
// until it serves its API.
func runNode(ctx context.Context, t *testing.T, bin, home string) *background {
	t.Helper()
	n := startCharla(ctx, t, bin, "run", "--home", home,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--no-mdns")
	eventually(t, 30*time.Second, func() bool {
		info, err := api.ReadInfo(home)
		return err == nil && strings.Contains(n.stdout.String(), "running; API on http://"+info.API)
	}, func() string { return home + ": run never became ready; stderr:\n" + n.stderr.String() })
	return n
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a process may write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
