package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// fakeBackend is a node.Backend with one room, "general", and a member name
// "dup" that two members share.
type fakeBackend struct {
	events chan node.Event // what Subscribe delivers

	mu       sync.Mutex // guards the fields below
	sent     []sentMessage
	rooms    []string // the room argument of every Send and Log
	limit    int      // the limit of the last Log
	expires  time.Duration
	invites  int
	messages []node.Message
}

type sentMessage struct{ room, text string }

var _ node.Backend = (*fakeBackend)(nil)

func newFakeBackend() *fakeBackend {
	return &fakeBackend{events: make(chan node.Event)}
}

func (f *fakeBackend) room(name string) error {
	f.mu.Lock()
	f.rooms = append(f.rooms, name)
	f.mu.Unlock()
	switch name {
	case "general", "#general", "@Ana", "a/b c?d":
		return nil
	case "@dup":
		return errAmbiguous
	}
	return errors.Join(node.ErrUnknownRoom, errors.New("no room "+name))
}

func (f *fakeBackend) Status(ctx context.Context) (node.Status, error) {
	return node.Status{PeerID: "12D3KooWself", Name: "Ana", WorkspaceName: "Acme"}, nil
}

func (f *fakeBackend) Rooms(ctx context.Context) ([]node.Room, error) {
	return []node.Room{{ID: "ab12", Name: "general", Kind: "channel", Members: []string{"12D3KooWself"}}}, nil
}

func (f *fakeBackend) Members(ctx context.Context) ([]node.Member, error) { return nil, nil }

func (f *fakeBackend) Peers(ctx context.Context) ([]node.Peer, error) {
	return nil, errors.New("peer table on fire")
}

func (f *fakeBackend) Send(ctx context.Context, room, text string) (node.Message, error) {
	if err := f.room(room); err != nil {
		return node.Message{}, err
	}
	if len(text) > 100 {
		return node.Message{}, errors.Join(node.ErrInvalid, errors.New("text over the limit"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentMessage{room, text})
	m := node.Message{ID: strings.Repeat("ab", 32), Room: "ab12", RoomName: "general", Kind: "text", Text: text,
		Time: time.Date(2026, 11, 26, 14, 3, 0, 0, time.UTC)}
	f.messages = append(f.messages, m)
	return m, nil
}

var errAmbiguous = errors.Join(node.ErrAmbiguous, errors.New("@dup names 12D3KooWA and 12D3KooWB"))

func (f *fakeBackend) Log(ctx context.Context, room string, limit int) ([]node.Message, error) {
	if err := f.room(room); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
	return f.messages, nil
}

func (f *fakeBackend) Subscribe(ctx context.Context) <-chan node.Event {
	out := make(chan node.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
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

func (f *fakeBackend) Invite(ctx context.Context, expires time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invites++
	f.expires = expires
	return "charla-invite-code", nil
}

// changes counts the calls that would change the node.
func (f *fakeBackend) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent) + f.invites
}

const testToken = "s3cret-token"

type testServer struct {
	srv   *Server
	info  Info
	port  string
	fake  *fakeBackend
	close func()
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeBackend()
	srv := NewServer(fake, testToken, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	ts := &testServer{srv: srv, info: Info{API: l.Addr().String(), Token: testToken}, port: port, fake: fake}
	var once sync.Once
	ts.close = func() {
		once.Do(func() {
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(ts.close)
	return ts
}

type request struct {
	method, path string
	host         string            // empty: the listener's address
	header       map[string]string // set after the token; "" deletes
	body         string
}

func (ts *testServer) do(t *testing.T, r request) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, "http://"+ts.info.API+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		req.Host = r.host
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

func TestRequests(t *testing.T) {
	ts := startServer(t)
	p := ts.port
	tests := []struct {
		name string
		req  request
		want int
	}{
		{name: "status", req: request{path: "/api/status"}, want: 200},
		{name: "localhost", req: request{path: "/api/status", host: "localhost:" + p}, want: 200},
		{name: "ipv6 loopback host", req: request{path: "/api/status", host: "[::1]:" + p}, want: 200},
		{name: "own origin", req: request{path: "/api/rooms", header: map[string]string{"Origin": "http://localhost:" + p}}, want: 200},
		{name: "lowercase bearer", req: request{path: "/api/rooms", header: map[string]string{"Authorization": "bearer " + testToken}}, want: 200},

		{name: "no token", req: request{path: "/api/status", header: map[string]string{"Authorization": ""}}, want: 401},
		{name: "wrong token", req: request{path: "/api/status", header: map[string]string{"Authorization": "Bearer nope"}}, want: 401},
		{name: "token prefix", req: request{path: "/api/status", header: map[string]string{"Authorization": "Bearer " + testToken[:4]}}, want: 401},
		{name: "basic auth", req: request{path: "/api/status", header: map[string]string{"Authorization": "Basic " + testToken}}, want: 401},

		{name: "foreign host", req: request{path: "/api/status", host: "evil.com"}, want: 403},
		{name: "foreign host with our port", req: request{path: "/api/status", host: "evil.com:" + p}, want: 403},
		{name: "host without port", req: request{path: "/api/status", host: "localhost"}, want: 403},
		{name: "host with another port", req: request{path: "/api/status", host: "127.0.0.1:1"}, want: 403},
		{name: "foreign host, no token", req: request{path: "/api/status", host: "evil.com", header: map[string]string{"Authorization": ""}}, want: 403},
		{name: "foreign origin", req: request{path: "/api/status", header: map[string]string{"Origin": "http://evil.com"}}, want: 403},
		{name: "null origin", req: request{path: "/api/status", header: map[string]string{"Origin": "null"}}, want: 403},
		{name: "https origin", req: request{path: "/api/status", header: map[string]string{"Origin": "https://localhost:" + p}}, want: 403},
		{name: "origin with another port", req: request{path: "/api/status", header: map[string]string{"Origin": "http://127.0.0.1:1"}}, want: 403},
		{name: "foreign origin on POST", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"hola"}`,
			header: map[string]string{"Origin": "http://evil.com"}}, want: 403},

		{name: "send", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"hola"}`}, want: 201},
		{name: "send to unknown room", req: request{method: "POST", path: "/api/rooms/nowhere/messages", body: `{"text":"hola"}`}, want: 404},
		{name: "send to ambiguous name", req: request{method: "POST", path: "/api/rooms/@dup/messages", body: `{"text":"hola"}`}, want: 409},
		{name: "send over the limit", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"` + strings.Repeat("x", 101) + `"}`}, want: 400},
		{name: "send empty text", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"  "}`}, want: 400},
		{name: "send unknown field", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"hola","x":1}`}, want: 400},
		{name: "send trailing data", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"hola"}{}`}, want: 400},
		{name: "send not json", req: request{method: "POST", path: "/api/rooms/general/messages", body: `text=hola`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, want: 415},
		{name: "send huge body", req: request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"` + strings.Repeat("x", MaxBodyBytes) + `"}`}, want: 413},
		{name: "log unknown room", req: request{path: "/api/rooms/nowhere/messages"}, want: 404},
		{name: "log unknown member", req: request{path: "/api/rooms/@nobody/messages"}, want: 404},
		{name: "log bad limit", req: request{path: "/api/rooms/general/messages?limit=x"}, want: 400},
		{name: "log zero limit", req: request{path: "/api/rooms/general/messages?limit=0"}, want: 400},
		{name: "log huge limit", req: request{path: "/api/rooms/general/messages?limit=10001"}, want: 400},
		{name: "backend failure", req: request{path: "/api/peers"}, want: 500},
		{name: "invite", req: request{method: "POST", path: "/api/invites", body: `{"expires":"24h"}`}, want: 201},
		{name: "invite bad expiry", req: request{method: "POST", path: "/api/invites", body: `{"expires":"-1h"}`}, want: 400},
		{name: "PUT invites", req: request{method: http.MethodPut, path: "/api/invites"}, want: 405},
		{name: "POST status", req: request{method: "POST", path: "/api/status", body: `{}`}, want: 405},
		{name: "unknown endpoint", req: request{path: "/api/nope"}, want: 404},
		{name: "API root", req: request{path: "/api/"}, want: 404}, // "/" is the web UI: see session_test.go
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.want >= 400 && !strings.Contains(body, `"error":`) {
				t.Errorf("error body %s has no error", body)
			}
		})
	}
}

func TestGETChangesNothing(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{
		"/api/status", "/api/rooms", "/api/members", "/api/peers",
		"/api/rooms/general/messages", "/api/invites", "/api/rooms/general/messages?text=hola",
	} {
		// A body on a GET is ignored, not obeyed.
		ts.do(t, request{path: path, body: `{"text":"hola","expires":"1h"}`})
		ts.do(t, request{method: "HEAD", path: path})
	}
	if n := ts.fake.changes(); n != 0 {
		t.Errorf("GET and HEAD requests made %d changes", n)
	}
}

func TestClient(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.info)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerID != "12D3KooWself" || st.API != ts.info.API {
		t.Errorf("status %+v: want peer 12D3KooWself and API %s filled in", st, ts.info.API)
	}

	rooms, err := c.Rooms(ctx)
	if err != nil || len(rooms) != 1 || rooms[0].Name != "general" {
		t.Errorf("rooms %+v, %v", rooms, err)
	}
	members, err := c.Members(ctx)
	if err != nil || members == nil || len(members) != 0 {
		t.Errorf("members %#v, %v: want an empty list", members, err)
	}

	for _, room := range []string{"general", "#general", "@Ana", "a/b c?d"} {
		msg, err := c.Send(ctx, room, "hola "+room)
		if err != nil {
			t.Fatalf("send to %q: %v", room, err)
		}
		if msg.Text != "hola "+room {
			t.Errorf("send to %q returned %+v", room, msg)
		}
	}
	msgs, err := c.Log(ctx, "#general", 0)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("log: %d messages, %v", len(msgs), err)
	}
	ts.fake.mu.Lock()
	got, limit := ts.fake.rooms, ts.fake.limit
	ts.fake.mu.Unlock()
	want := []string{"general", "#general", "@Ana", "a/b c?d", "#general"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("backend saw rooms %q, want %q", got, want)
	}
	if limit != DefaultLogLimit {
		t.Errorf("default limit %d, want %d", limit, DefaultLogLimit)
	}
	if _, err := c.Log(ctx, "general", 7); err != nil {
		t.Fatal(err)
	}
	ts.fake.mu.Lock()
	limit = ts.fake.limit
	ts.fake.mu.Unlock()
	if limit != 7 {
		t.Errorf("limit %d, want 7", limit)
	}

	code, err := c.Invite(ctx, 36*time.Hour)
	if err != nil || code != "charla-invite-code" {
		t.Errorf("invite %q, %v", code, err)
	}
	ts.fake.mu.Lock()
	expires := ts.fake.expires
	ts.fake.mu.Unlock()
	if expires != 36*time.Hour {
		t.Errorf("invite expires %v, want 36h", expires)
	}
}

func TestClientErrors(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	c := NewClient(ts.info)

	tests := []struct {
		name     string
		call     func() error
		status   int
		sentinel error
		hint     bool
	}{
		{name: "unknown room", call: func() error { _, err := c.Send(ctx, "nowhere", "hola"); return err },
			status: 404, sentinel: node.ErrUnknownRoom, hint: true},
		{name: "ambiguous", call: func() error { _, err := c.Send(ctx, "@dup", "hola"); return err },
			status: 409, sentinel: node.ErrAmbiguous, hint: true},
		{name: "invalid", call: func() error { _, err := c.Send(ctx, "general", strings.Repeat("x", 101)); return err },
			status: 400, sentinel: node.ErrInvalid},
		{name: "internal", call: func() error { _, err := c.Peers(ctx); return err }, status: 500},
		{name: "wrong token", call: func() error {
			_, err := NewClient(Info{API: ts.info.API, Token: "nope"}).Status(ctx)
			return err
		}, status: 401, hint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Status != tt.status || e.Message == "" {
				t.Errorf("error %+v, want status %d with a message", e, tt.status)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not match %v", err, tt.sentinel)
			}
			if tt.hint != (e.Hint != "") {
				t.Errorf("hint %q, want one: %v", e.Hint, tt.hint)
			}
		})
	}
}

func TestClientNoNode(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = NewClient(Info{API: addr, Token: testToken}).Status(context.Background())
	if !errors.Is(err, ErrNoNode) {
		t.Fatalf("error %v, want ErrNoNode", err)
	}
}

func TestEvents(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := NewClient(ts.info).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	for _, text := range []string{"hola", "line one\nline two"} {
		want := node.Event{Type: "message", Message: &node.Message{ID: "ab", RoomName: "general", Text: text}}
		select {
		case ts.fake.events <- want:
		case <-ctx.Done():
			t.Fatal("the server never subscribed")
		}
		got, err := stream.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != "message" || got.Message == nil || got.Message.Text != text {
			t.Errorf("event %+v, want %+v", got, want)
		}
	}

	// Close must end open streams rather than wait for them.
	closed := make(chan struct{})
	go func() { ts.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(shutdownTimeout / 2):
		t.Fatal("Close waited for the event stream")
	}
	if _, err := stream.Next(); err == nil {
		t.Error("the stream goes on after Close")
	}
}

func TestEventFrames(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.info.API+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ts.fake.events <- node.Event{Type: "message", Message: &node.Message{Text: "hola"}}
	want := "event: message\ndata: {\"type\":\"message\",\"message\":{"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != want {
		t.Errorf("frame starts %q, want %q", buf, want)
	}
}
