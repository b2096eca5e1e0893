package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveNode is a real node on 127.0.0.1 with its API served.
type liveNode struct {
	node *node.Node
	srv  *Server
	addr string // host:port of the API
}

// workspace starts real nodes in one workspace "Acme", one per name: the
// first founds it and provisions the others, each with its API, as
// node_test.go's helper does.
func workspace(t *testing.T, names ...string) []*liveNode {
	t.Helper()
	ctx := context.Background()
	homes := make([]string, len(names))
	for i := range homes {
		homes[i] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i))
	}
	if _, err := node.Init(ctx, homes[0], node.InitOptions{Name: names[0], Workspace: "Acme"}); err != nil {
		t.Fatal(err)
	}
	owner := startLiveNode(t, homes[0])
	nodes := []*liveNode{owner}
	for i := 1; i < len(names); i++ {
		if _, err := owner.node.Provision(ctx, homes[i], names[i]); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startLiveNode(t, homes[i], owner.node.Addrs()[0]))
	}
	return nodes
}

func startLiveNode(t *testing.T, home string, peers ...string) *liveNode {
	t.Helper()
	return startLiveNodeWith(t, node.Config{Home: home, Peers: peers})
}

// startLiveNodeWith starts a node with cfg on loopback, without mDNS.
func startLiveNodeWith(t *testing.T, cfg node.Config) *liveNode {
	t.Helper()
	cfg.Listen, cfg.MDNS = []string{"/ip4/127.0.0.1/tcp/0"}, false
	n, err := node.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(n, NewToken(), nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &liveNode{node: n, srv: srv, addr: l.Addr().String()}
}

// session logs in as the page does: a login URL's token for a session token.
func (ln *liveNode) session(t *testing.T) string {
	t.Helper()
	login := strings.TrimPrefix(ln.srv.NewLoginURL(ln.addr), "http://"+ln.addr+"/#login=")
	body := strings.NewReader(`{"login":"` + login + `"}`)
	resp, err := http.Post("http://"+ln.addr+"/api/session", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sr SessionResponse
	if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/session: %d, %v", resp.StatusCode, err)
	}
	return sr.Token
}

func (ln *liveNode) call(t *testing.T, session, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ln.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+session)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// TestSessionAgainstNode walks the page's path through a real node: log in,
// read, send, and see the message come back on the event stream.
func TestSessionAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ln := workspace(t, "Ana")[0]
	session := ln.session(t)

	var st node.Status
	if code := ln.call(t, session, "GET", "/api/status", "", &st); code != 200 || st.Name != "Ana" {
		t.Fatalf("status: %d %+v", code, st)
	}

	req, _ := http.NewRequest("GET", "http://"+ln.addr+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+session)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/events: %v %v", resp, err)
	}
	defer resp.Body.Close()

	var sent node.Message
	if code := ln.call(t, session, "POST", "/api/rooms/general/messages", `{"text":"hola **equipo**"}`, &sent); code != 201 {
		t.Fatalf("send: %d", code)
	}
	var log []node.Message
	if code := ln.call(t, session, "GET", "/api/rooms/"+sent.Room+"/messages?limit=5", "", &log); code != 200 ||
		len(log) == 0 || log[len(log)-1].ID != sent.ID {
		t.Fatalf("log: %d %+v", code, log)
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, maxEventBytes)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev node.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "message" && ev.Message.ID == sent.ID {
			return
		}
	}
	t.Fatalf("the event stream ended without the message: %v", sc.Err())
}

// TestEventStreamEndsAfterDrop: a client stops reading its event stream
// while messages keep coming. Once the node drops an event for it, the
// server must end that stream (after what was queued), so that the client
// reconnects and reads the history: a stream that went on after a gap left
// the web UI missing messages it never knew of.
func TestEventStreamEndsAfterDrop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	if _, err := node.Init(ctx, home, node.InitOptions{Name: "Ana", Workspace: "Acme"}); err != nil {
		t.Fatal(err)
	}
	ln := startLiveNodeWith(t, node.Config{Home: home, EventBuffer: 2})
	session := ln.session(t)
	open := func(ctx context.Context) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.addr+"/api/events", nil)
		req.Header.Set("Authorization", "Bearer "+session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/events: %v %v", resp, err)
		}
		return resp
	}
	streamCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	stalled := open(streamCtx)
	defer stalled.Body.Close()

	// Big messages fill the socket's buffers, then the handler's writes
	// block and the node's queue for this client overflows.
	text := strings.Repeat("x", 32<<10)
	drops := func() int64 {
		st, err := ln.node.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Rejected["slow-subscriber"]
	}
	sent := 0
	for deadline := time.Now().Add(2 * time.Minute); drops() == 0; sent++ {
		if time.Now().After(deadline) {
			t.Fatalf("no event dropped after %d messages of %d bytes to a client that reads nothing", sent, len(text))
		}
		if _, err := ln.node.Send(ctx, "general", text); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("first drop after %d messages", sent)

	// The client reads again: it gets what was queued, then the end.
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stalled.Body)
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("the stream broke rather than ended: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the event stream goes on after the node dropped an event for its client")
	}

	// Reconnecting works and carries what comes next.
	fresh := open(streamCtx)
	defer fresh.Body.Close()
	m, err := ln.node.Send(ctx, "general", "after the gap")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(fresh.Body)
	sc.Buffer(nil, maxEventBytes)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev node.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "message" && ev.Message.ID == m.ID {
			return
		}
	}
	t.Fatalf("the new stream ended without the next message: %v", sc.Err())
}
