package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// endpoint is one method of one API pattern, with its path values filled in.
type endpoint struct {
	method, pattern, path string
}

// endpoints lists every method of every pattern the server registered, its
// {room} and {id} filled with a real room, message or file, plus the
// methods the patterns do not take.
func endpoints(t *testing.T, srv *Server, room, msg, file, member string) (allowed, other []endpoint) {
	t.Helper()
	if len(srv.routes) == 0 {
		t.Fatal("the server registered no routes")
	}
	for pattern, ms := range srv.routes {
		path := strings.ReplaceAll(pattern, "{room}", room)
		path = strings.ReplaceAll(path, "{member}", member)
		if strings.HasPrefix(pattern, "/api/files/") {
			path = strings.ReplaceAll(path, "{id}", file)
		}
		path = strings.ReplaceAll(path, "{id}", msg)
		if strings.Contains(path, "{") {
			t.Fatalf("pattern %s has a path value this test does not fill", pattern)
		}
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			e := endpoint{m, pattern, path}
			_, ok := ms[m]
			if m == "HEAD" {
				_, ok = ms["GET"] // net/http answers HEAD with the GET handler
			}
			if ok {
				allowed = append(allowed, e)
			} else {
				other = append(other, e)
			}
		}
	}
	slices.SortFunc(allowed, func(a, b endpoint) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	slices.SortFunc(other, func(a, b endpoint) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	return allowed, other
}

// strangerBody is the body of every refused request that takes one: a send
// that would succeed if it got through.
const strangerBody = `{"text":"from a stranger"}`

// rawCall sends one request to addr with the given Host and headers and,
// but for GET and HEAD, strangerBody; it returns the status.
func rawCall(t *testing.T, addr, host, method, path string, header map[string]string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if method != "GET" && method != "HEAD" {
		body = strings.NewReader(strangerBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode
}

// snapshot is what a request could change, as the node reports it: not
// delivery states and presence, which Ben's node changes.
func snapshot(t *testing.T, n *node.Node) string {
	t.Helper()
	ctx := context.Background()
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rooms, _ := n.Rooms(ctx)
	members, _ := n.Members(ctx)
	log, _ := n.Log(ctx, "general", 1000)
	files, _ := n.Files(ctx, "")
	// What other nodes change meanwhile is not the request's doing.
	for i := range log {
		log[i].State = ""
	}
	for i := range members {
		members[i].Presence = ""
	}
	invites, _ := n.Invites(ctx, true)
	policy, _ := n.Policy(ctx)
	b, err := json.Marshal(map[string]any{
		"envelopes": st.Envelopes, "rooms": rooms, "members": members, "log": log, "files": files,
		"invites": invites, "policy": policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecurityLocalAPI walks every endpoint of a real node's API, every
// method, with every way a web page or another local user could try it: no
// token or a wrong one is 401, a foreign Origin or Host (DNS rebinding) is
// 403 before the token is even looked at, and no GET or HEAD, authorized or
// not, changes anything; nor does any refused request.
func TestSecurityLocalAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	ln := workspace(t, "Ana", "Ben")[0]
	msg, err := ln.node.Send(ctx, "general", "hola")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(path, []byte("a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := ln.node.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	allowed, other := endpoints(t, ln.srv, msg.Room, msg.ID, file.ID, "Ben")
	_, port, _ := net.SplitHostPort(ln.addr)
	p, _ := strconv.Atoi(port)
	session := ln.session(t)
	token := "Bearer " + session
	before := snapshot(t, ln.node)

	hosts := []string{
		"evil.example", "evil.example:" + port, "127.0.0.1", "localhost", "127.0.0.1:" + strconv.Itoa(p+1),
		"localhost:" + strconv.Itoa(p+1), "127.0.0.2:" + port, "[::1]", "localhost." + ":" + port,
		"LOCALHOST:" + port, "localhost:" + port + ".evil.example", "0.0.0.0:" + port,
	}
	origins := []string{
		"http://evil.example", "null", "https://localhost:" + port, "http://localhost:" + strconv.Itoa(p+1),
		"http://localhost:" + port + ".evil.example", "http://evil.example:" + port, "file://", "",
	}
	var requests int
	for _, e := range append(append([]endpoint{}, allowed...), other...) {
		// A foreign Host: refused whatever the token.
		for _, h := range hosts {
			if got := rawCall(t, ln.addr, h, e.method, e.path, map[string]string{"Authorization": token}); got != http.StatusForbidden {
				t.Errorf("%s %s with Host %q: %d, want 403", e.method, e.path, h, got)
			}
			requests++
		}
		// A foreign Origin: refused whatever the token.
		for _, o := range origins {
			if got := rawCall(t, ln.addr, ln.addr, e.method, e.path, map[string]string{"Authorization": token, "Origin": o}); got != http.StatusForbidden {
				t.Errorf("%s %s with Origin %q: %d, want 403", e.method, e.path, o, got)
			}
			requests++
		}
		if e.pattern == "/api/session" {
			continue // how the page gets a token: it needs none
		}
		// No token, a wrong one, a near miss: 401.
		for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", token[:len(token)-1], token + "x", "Basic " + session, "Bearer " + strings.ToUpper(session)} {
			h := map[string]string{}
			if auth != "" {
				h["Authorization"] = auth
			}
			if got := rawCall(t, ln.addr, ln.addr, e.method, e.path, h); got != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d, want 401", e.method, e.path, auth, got)
			}
			requests++
		}
	}
	if after := snapshot(t, ln.node); after != before {
		t.Fatalf("refused requests changed the node:\nbefore %s\nafter  %s", before, after)
	}

	// Authorized GET and HEAD of every endpoint, from the loopback names
	// the API answers to, change nothing either. The event stream is cut
	// short by the request's timeout.
	for _, host := range []string{ln.addr, "localhost:" + port} {
		for _, e := range allowed {
			if e.method != "GET" && e.method != "HEAD" {
				continue
			}
			if e.pattern == "/api/events" {
				evCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				req, _ := http.NewRequestWithContext(evCtx, e.method, "http://"+ln.addr+e.path, nil)
				req.Host = host
				req.Header.Set("Authorization", token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
				continue
			}
			got := rawCall(t, ln.addr, host, e.method, e.path+"?text=x&expires=1h&name=x", map[string]string{"Authorization": token})
			if got >= 500 {
				t.Errorf("%s %s: %d", e.method, e.path, got)
			}
			requests++
		}
	}
	if after := snapshot(t, ln.node); after != before {
		t.Fatalf("GET requests changed the node:\nbefore %s\nafter  %s", before, after)
	}

	// The control: the same session token does change things by POST, so
	// the checks above could have failed.
	if got := rawCall(t, ln.addr, ln.addr, "POST", "/api/rooms/general/messages", map[string]string{"Authorization": token}); got != http.StatusCreated {
		t.Fatalf("authorized POST: %d", got)
	}
	if after := snapshot(t, ln.node); after == before {
		t.Fatal("an authorized POST changed nothing")
	}
	t.Logf("%d endpoints × methods, %d requests", len(allowed)+len(other), requests)
}
