package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeNode is a node.Backend with one room, "general".
type fakeNode struct {
	events     chan node.Event
	subscribed chan struct{} // closed on the first Subscribe
	cut        chan struct{} // a send ends one subscription, as a node does for a slow one

	mu       sync.Mutex // guards the fields below
	messages []node.Message
	limit    int
	once     sync.Once
}

var _ node.Backend = (*fakeNode)(nil)

func (f *fakeNode) Status(ctx context.Context) (node.Status, error) {
	return node.Status{PeerID: "12D3KooWAna", Name: "Ana", Workspace: "ab12", WorkspaceName: "Acme",
		Addrs: []string{"/ip4/127.0.0.1/tcp/4747/p2p/12D3KooWAna"}, Rejected: map[string]int64{"forged": 2}}, nil
}

func (f *fakeNode) Rooms(ctx context.Context) ([]node.Room, error) {
	return []node.Room{{ID: "cd34", Name: "#general", Kind: "channel", Members: []string{"12D3KooWAna"}}}, nil
}

func (f *fakeNode) Members(ctx context.Context) ([]node.Member, error) { return nil, nil }

func (f *fakeNode) Peers(ctx context.Context) ([]node.Peer, error) { return nil, nil }

func (f *fakeNode) Send(ctx context.Context, room, text string) (node.Message, error) {
	if room != "general" && room != "#general" {
		return node.Message{}, fmt.Errorf("%w: %s", node.ErrUnknownRoom, room)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := node.Message{
		ID:         fmt.Sprintf("%064x", len(f.messages)+1),
		Room:       "cd34",
		RoomName:   "#general",
		Author:     "12D3KooWAna",
		AuthorName: "Ana",
		Time:       time.Date(2026, 11, 26, 14, 3, 0, 0, time.Local),
		Kind:       "text",
		Text:       text,
	}
	f.messages = append(f.messages, m)
	return m, nil
}

func (f *fakeNode) Log(ctx context.Context, room string, limit int) ([]node.Message, error) {
	if room != "general" && room != "#general" {
		return nil, fmt.Errorf("%w: %s", node.ErrUnknownRoom, room)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
	return slices.Clone(f.messages), nil
}

func (f *fakeNode) lastLimit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limit
}

func (f *fakeNode) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var texts []string
	for _, m := range f.messages {
		texts = append(texts, m.Text)
	}
	return texts
}

func (f *fakeNode) Subscribe(ctx context.Context) <-chan node.Event {
	f.once.Do(func() { close(f.subscribed) })
	out := make(chan node.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.cut:
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (f *fakeNode) Invite(ctx context.Context, expires time.Duration) (string, error) {
	return "invite-" + expires.String(), nil
}

// startNode serves a fakeNode's API and publishes it in a new home, as
// 'charla run' would.
func startNode(t *testing.T) (home string, f *fakeNode) {
	t.Helper()
	home, f, _ = startNodeServer(t)
	return home, f
}

// startNodeServer is startNode, and stops the API as the node would.
func startNodeServer(t *testing.T) (home string, f *fakeNode, stop func()) {
	t.Helper()
	home = t.TempDir()
	f = &fakeNode{events: make(chan node.Event), subscribed: make(chan struct{}), cut: make(chan struct{})}
	l, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := api.NewToken()
	srv := api.NewServer(f, token, nil)
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	stop = func() { srv.Close(); <-done }
	t.Cleanup(stop)
	if err := api.WriteInfo(home, api.Info{API: l.Addr().String(), Token: token, PID: 4242}); err != nil {
		t.Fatal(err)
	}
	return home, f, stop
}

// charla runs the CLI with args and standard input stdin.
func charla(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return charlaCtx(context.Background(), t, stdin, args...)
}

func charlaCtx(ctx context.Context, t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

var messageID = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestSend(t *testing.T) {
	home, f := startNode(t)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantSent []string
	}{
		{name: "one word", args: []string{"send", "general", "hola", "--home", home}, wantSent: []string{"hola"}},
		{name: "home first", args: []string{"--home", home, "send", "#general", "hola"}, wantSent: []string{"hola"}},
		{name: "words joined", args: []string{"send", "--home", home, "general", "hola", "que", "tal"}, wantSent: []string{"hola que tal"}},
		{name: "text starting with a dash", args: []string{"send", "general", "--home", home, "--", "-text", "--json"}, wantSent: []string{"-text --json"}},
		{name: "standard input", args: []string{"send", "general", "-", "--home", home}, stdin: "uno\n\n  \r\ndos\r\ntres",
			wantSent: []string{"uno", "dos", "tres"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.texts())
			out, _, err := charla(t, tt.stdin, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.texts()[before:]; !slices.Equal(got, tt.wantSent) {
				t.Errorf("sent %q, want %q", got, tt.wantSent)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(tt.wantSent) {
				t.Fatalf("printed %q, want %d IDs", out, len(tt.wantSent))
			}
			for _, l := range lines {
				if !messageID.MatchString(l) {
					t.Errorf("printed %q, not a message ID", l)
				}
			}
		})
	}

	t.Run("empty text", func(t *testing.T) {
		for _, text := range []string{"", "  "} {
			_, _, err := charla(t, "", "send", "general", text, "--home", home)
			if err == nil || !strings.Contains(err.Error(), "empty message") || errors.Is(err, ErrUsage) {
				t.Errorf("send %q: error %v, want 'empty message'", text, err)
			}
		}
	})
	t.Run("unknown room", func(t *testing.T) {
		_, _, err := charla(t, "", "send", "nowhere", "hola", "--home", home)
		if !errors.Is(err, node.ErrUnknownRoom) || Hint(err) == "" {
			t.Errorf("error %v, hint %q: want the node's unknown room with a hint", err, Hint(err))
		}
	})
}

func TestLog(t *testing.T) {
	home, f := startNode(t)
	for _, text := range []string{"hola", "two\nlines\x1b[2J"} {
		if _, _, err := charla(t, "", "send", "general", text, "--home", home); err != nil {
			t.Fatal(err)
		}
	}

	out, _, err := charla(t, "", "log", "general", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-26 14:03  Ana: hola\n" +
		"2026-11-26 14:03  Ana: two\n" +
		"                  lines\uFFFD[2J\n"
	if out != want {
		t.Errorf("log printed\n%s\nwant\n%s", out, want)
	}
	if got := f.lastLimit(); got != api.DefaultLogLimit {
		t.Errorf("default limit %d, want %d", got, api.DefaultLogLimit)
	}

	out, _, err = charla(t, "", "log", "general", "--json", "--limit", "7", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.lastLimit(); got != 7 {
		t.Errorf("limit %d, want 7", got)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("log --json printed %q, want 2 lines", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"id", "room", "room_name", "author", "author_name", "time", "kind", "text"} {
		if _, ok := m[key]; !ok {
			t.Errorf("log --json has no %q: %s", key, lines[0])
		}
	}
	if m["text"] != "hola" {
		t.Errorf("text %v, want hola", m["text"])
	}

	if _, _, err := charla(t, "", "log", "general", "--limit", "0", "--home", home); !errors.Is(err, ErrUsage) {
		t.Errorf("--limit 0: %v, want a usage error", err)
	}
}

func TestListsAndStatus(t *testing.T) {
	home, _ := startNode(t)
	tests := []struct {
		args []string
		want string // a prefix of the output
	}{
		{args: []string{"rooms", "--json"}, want: `[{"id":"cd34","name":"#general","kind":"channel","members":["12D3KooWAna"]}]` + "\n"},
		{args: []string{"members", "--json"}, want: "[]\n"},
		{args: []string{"peers", "--json"}, want: "[]\n"},
		{args: []string{"status", "--json"}, want: `{"peer_id":"12D3KooWAna","name":"Ana","workspace":"ab12","workspace_name":"Acme",`},
		{args: []string{"rooms"}, want: "#general  channel  1 members  cd34\n"},
		{args: []string{"status"}, want: "peer ID    12D3KooWAna\nname       Ana\nworkspace  Acme (ab12)\n"},
		{args: []string{"invite", "--expires", "24h"}, want: "invite-24h0m0s\n"},
		{args: []string{"invite"}, want: "invite-168h0m0s\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := charla(t, "", append(tt.args, "--home", home)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, tt.want) {
				t.Errorf("printed\n%s\nwant it to start\n%s", out, tt.want)
			}
		})
	}

	out, _, err := charla(t, "", "status", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "rejected   forged 2\n") {
		t.Errorf("status does not show rejections:\n%s", out)
	}
}

func TestCharlaHomeEnv(t *testing.T) {
	home, _ := startNode(t)
	t.Setenv("CHARLA_HOME", home)
	if _, _, err := charla(t, "", "rooms"); err != nil {
		t.Errorf("with CHARLA_HOME: %v", err)
	}
	// --home wins over the environment.
	other := t.TempDir()
	_, _, err := charla(t, "", "rooms", "--home", other)
	if err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("--home %s: %v", other, err)
	}
}

func TestTail(t *testing.T) {
	home, f := startNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"tail", "--home", home}, strings.NewReader(""), out, io.Discard) }()

	select {
	case <-f.subscribed:
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("tail never subscribed")
	}
	m := node.Message{RoomName: "#general", AuthorName: "Ana", Text: "hola", Kind: "text",
		Time: time.Date(2026, 11, 26, 14, 3, 0, 0, time.Local)}
	f.events <- node.Event{Type: "presence"}
	f.events <- node.Event{Type: "message", Message: &m}
	want := "2026-11-26 14:03  #general  Ana: hola\n"
	eventually(t, 5*time.Second, func() bool { return out.String() == want })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interrupted tail: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail goes on after its context is done")
	}
}

// TestTailAfterFallingBehind: the node ends the event stream of a client
// that fell behind. tail must say it missed messages and carry on with a new
// stream, not report that the node stopped.
func TestTailAfterFallingBehind(t *testing.T) {
	home, f := startNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"tail", "--home", home}, strings.NewReader(""), stdout, stderr) }()
	select {
	case <-f.subscribed:
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("tail never subscribed")
	}
	f.cut <- struct{}{}
	m := node.Message{RoomName: "#general", AuthorName: "Ana", Text: "after the gap", Kind: "text",
		Time: time.Date(2026, 11, 26, 14, 3, 0, 0, time.Local)}
	select {
	case f.events <- node.Event{Type: "message", Message: &m}:
	case err := <-done:
		t.Fatalf("tail ended when its stream did: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("tail never subscribed again")
	}
	want := "2026-11-26 14:03  #general  Ana: after the gap\n"
	eventually(t, 5*time.Second, func() bool { return stdout.String() == want })
	if !strings.Contains(stderr.String(), "missed messages") {
		t.Errorf("stderr %q does not say messages were missed", stderr.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interrupted tail: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail goes on after its context is done")
	}
}

// TestTailNodeStops: when the node stops, its stream ends and no new one
// opens: tail says the node stopped.
func TestTailNodeStops(t *testing.T) {
	home, f, stop := startNodeServer(t)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"tail", "--home", home}, strings.NewReader(""), io.Discard, io.Discard)
	}()
	select {
	case <-f.subscribed:
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("tail never subscribed")
	}
	stop()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "the node stopped") {
			t.Errorf("tail after the node stopped: %v, want 'the node stopped'", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail goes on after the node stopped")
	}
}

func TestNoRunningNode(t *testing.T) {
	empty := t.TempDir()

	// A home whose node died and left its api.json behind.
	stale := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := api.WriteInfo(stale, api.Info{API: addr, Token: "x", PID: 1}); err != nil {
		t.Fatal(err)
	}

	for _, home := range []string{empty, stale} {
		for _, args := range [][]string{
			{"send", "general", "hola"},
			{"send", "general", "-"},
			{"log", "general"},
			{"tail"},
			{"rooms"},
			{"status", "--json"},
			{"members"},
			{"peers"},
			{"invite"},
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, _, err := charla(t, "hola\n", append(args, "--home", home)...)
				if err == nil {
					t.Fatalf("succeeded, printed %q", out)
				}
				if want := "no running node in " + home; err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
				if hint := Hint(err); hint != "start it with 'charla run'" {
					t.Errorf("hint %q", hint)
				}
				if errors.Is(err, ErrUsage) {
					t.Error("a usage error")
				}
			})
		}
	}
}

func TestRunRefusesSecondNode(t *testing.T) {
	home, _ := startNode(t)
	_, _, err := charla(t, "", "run", "--home", home, "--api", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "pid 4242") || Hint(err) == "" {
		t.Errorf("error %v, hint %q: want one naming pid 4242, with a hint", err, Hint(err))
	}
}

func TestUsage(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{
		{"nope"},
		{"--nope"},
		{"log"},
		{"log", "a", "b"},
		{"log", "general", "--limit"},
		{"send", "general"},
		{"send", "general", "-5"},
		{"rooms", "extra"},
		{"invite", "--expires", "soon"},
		{"init", "--workspace", " "},
		{"help", "nope"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, err := charla(t, "", append(args, "--home", home)...)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if Hint(err) == "" {
				t.Error("no hint")
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{args: []string{"help"}, want: "commands:"},
		{args: []string{"-h"}, want: "commands:"},
		{args: []string{"--help"}, want: "commands:"},
		{args: []string{"help", "send"}, want: "usage: charla send ROOM TEXT..."},
		{args: []string{"send", "-h"}, want: "usage: charla send ROOM TEXT..."},
		{args: []string{"log", "general", "--help"}, want: "--limit N"},
		{args: []string{"get", "--help"}, want: "\n  -o PATH\n"},
		{args: []string{"export", "--help"}, want: "\n  -o FILE\n"},
		{args: []string{"export", "--help"}, want: "\n  --format FORMAT\n"},
		{args: []string{"--version"}, want: "charla "},
		{args: []string{"version"}, want: "charla "},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := charla(t, "", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("printed\n%s\nwant %q in it", out, tt.want)
			}
		})
	}
	out, _, _ := charla(t, "", "help")
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
}

func TestHint(t *testing.T) {
	apiErr := &api.Error{Status: 404, Message: "no such room", Hint: "list them"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil},
		{name: "plain", err: errors.New("x")},
		{name: "api error", err: apiErr, want: "list them"},
		{name: "wrapped", err: fmt.Errorf("line 3: %w", apiErr), want: "list them"},
		{name: "joined", err: errors.Join(errors.New("x"), apiErr), want: "list them"},
		{name: "outer wins", err: withHint(fmt.Errorf("a: %w", apiErr), "outer"), want: "outer"},
		{name: "empty outer hint", err: &userError{err: apiErr}, want: "list them"},
	}
	for _, tt := range tests {
		if got := Hint(tt.err); got != tt.want {
			t.Errorf("%s: Hint = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDefaultHome(t *testing.T) {
	userHome := func() (string, error) { return "/home/ana", nil }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	tests := []struct {
		name     string
		goos     string
		env      map[string]string
		userHome func() (string, error)
		want     string // empty: an error
	}{
		{name: "linux", goos: "linux", userHome: userHome, want: "/home/ana/.local/share/charla"},
		{name: "xdg", goos: "linux", env: map[string]string{"XDG_DATA_HOME": "/data"}, userHome: userHome, want: "/data/charla"},
		{name: "relative xdg ignored", goos: "freebsd", env: map[string]string{"XDG_DATA_HOME": "data"}, userHome: userHome, want: "/home/ana/.local/share/charla"},
		{name: "macos", goos: "darwin", env: map[string]string{"XDG_DATA_HOME": "/data"}, userHome: userHome, want: "/home/ana/Library/Application Support/charla"},
		{name: "windows", goos: "windows", env: map[string]string{"LocalAppData": "/appdata"}, userHome: userHome, want: "/appdata/charla"},
		{name: "windows without LocalAppData", goos: "windows", userHome: userHome},
		{name: "no home", goos: "linux", userHome: noHome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := defaultHome(tt.goos, func(k string) string { return tt.env[k] }, tt.userHome)
			if tt.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != filepath.FromSlash(tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hola", "hola"},
		{"a\tb\nc", "a\tb\nc"},
		{"line\r\n", "line\n"},
		{"\x1b]0;pwned\x07", "\uFFFD]0;pwned\uFFFD"},
		{"\u009b2J", "\uFFFD2J"},
		{"abc\u202edcba", "abc\uFFFDdcba"},
		{"¡olé! 👋", "¡olé! 👋"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that a command may write while the test reads.
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

func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	// Keep the user's own CHARLA_HOME from leaking into tests.
	os.Unsetenv("CHARLA_HOME")
	os.Exit(m.Run())
}

// TestInitSaysWhatNext: init prints the peer ID alone on standard output,
// for scripts, and on standard error the command that starts the node of
// that home.
func TestInitSaysWhatNext(t *testing.T) {
	home := filepath.Join(t.TempDir(), "my home")
	out, errOut, err := charla(t, "", "init", "--home", home, "--name", "Ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Decode(strings.TrimSpace(out)); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("init printed %q, want a peer ID alone", out)
	}
	if want := "start the node with: charla --home '" + home + "' run"; !strings.Contains(errOut, want) {
		t.Errorf("init said %q on standard error, want %q", errOut, want)
	}
}

// TestPolicyValue: policy's table says what a 0 and a byte count mean.
func TestPolicyValue(t *testing.T) {
	tests := []struct {
		p    node.Policy
		key  string
		want string
	}{
		{node.Policy{}, node.PolicyRetentionDays, "0 (history kept forever)"},
		{node.Policy{RetentionDays: 30}, node.PolicyRetentionDays, "30 (history older than 30 days deleted)"},
		{node.Policy{}, node.PolicyMaxFileSize, "0 (no limit)"},
		{node.Policy{MaxFileSize: 20_000_000}, node.PolicyMaxFileSize, "20000000 (19.1 MiB)"},
		{node.Policy{Files: true}, node.PolicyFiles, "on"},
		{node.Policy{Invite: "admins"}, node.PolicyInvite, "admins"},
	}
	for _, tt := range tests {
		if got := policyValue(tt.p, tt.key); got != tt.want {
			t.Errorf("policyValue(%+v, %s) = %q, want %q", tt.p, tt.key, got, tt.want)
		}
	}
}

// TestFormatMessageShowsActions: log's lines show a file with the command
// that gets it, a reply with what it answers, and the reactions.
func TestFormatMessageShowsActions(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 30, 0, 0, time.Local)
	base := node.Message{ID: "0b9def6112345678", AuthorName: "Ana", Time: at, Kind: "text", Text: "hola"}
	tests := []struct {
		name string
		edit func(m *node.Message)
		want string
	}{
		{"text", func(m *node.Message) {}, "Ana: hola"},
		{"file", func(m *node.Message) { m.Kind, m.Text = "file", "contrato.pdf" }, "Ana: [file] contrato.pdf  (charla get 0b9def61)"},
		{"reply", func(m *node.Message) { m.ReplyTo, m.ReplyAuthor, m.ReplyText = "aa", "Ben", "¿vienes?" }, `Ana: (reply to Ben: "¿vienes?") hola`},
		{"reactions", func(m *node.Message) {
			m.Reactions = []node.Reaction{{Emoji: "👍", Count: 2}, {Emoji: "🎉", Count: 1}}
		}, "Ana: hola  [👍 2, 🎉 1]"},
		{"edited", func(m *node.Message) { m.Edited = true }, "Ana: hola (edited)"},
		{"deleted file", func(m *node.Message) { m.Kind, m.Text, m.Deleted, m.Edited = "file", "", true, true }, "Ana: (deleted)"},
	}
	for _, tt := range tests {
		m := base
		tt.edit(&m)
		got := formatMessage(m, false)
		if want := at.Format(timeLayout) + "  " + tt.want; got != want {
			t.Errorf("%s: %q, want %q", tt.name, got, want)
		}
	}
}

// TestHelpNamesJSONFields: the help of log and status names every field
// their --json prints: scripts are written from it.
func TestHelpNamesJSONFields(t *testing.T) {
	for _, tt := range []struct {
		cmd string
		v   any
	}{
		{"log", node.Message{}},
		{"status", node.Status{}},
	} {
		var help string
		for _, c := range commands() {
			if c.name == tt.cmd {
				help = c.long
			}
		}
		if help == "" {
			t.Fatalf("no command %s", tt.cmd)
		}
		typ := reflect.TypeOf(tt.v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !regexp.MustCompile(`\b` + name + `\b`).MatchString(help) {
				t.Errorf("%s --help does not name the JSON field %s", tt.cmd, name)
			}
		}
	}
}
