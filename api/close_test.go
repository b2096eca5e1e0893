package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// slowPoster is a real node whose SendFile first waits for release,
// whatever its context says: it stands for a post of a large file, whose
// copy and encryption do not look at the request's context.
type slowPoster struct {
	*node.Node
	entered chan struct{}
	release chan struct{}
	done    atomic.Bool // the call returned
}

func (p *slowPoster) SendFile(ctx context.Context, room, path string) (node.File, error) {
	close(p.entered)
	<-p.release
	defer p.done.Store(true)
	return p.Node.SendFile(ctx, room, path)
}

// TestCloseWaitsForHandlers: Server.Close returns only once every handler
// has returned, even one that outlives the shutdown timeout, so that
// 'charla run', which closes the node right after, never has a handler run
// on a closed store; and a request that comes once Close has begun is
// refused, not served.
func TestCloseWaitsForHandlers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and waits out the shutdown timeout")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "n0")
	if _, err := node.Init(ctx, home, node.InitOptions{Name: "Ana", Workspace: "Acme"}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, MDNS: false})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	p := &slowPoster{Node: n, entered: make(chan struct{}), release: make(chan struct{})}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := NewToken()
	srv := NewServer(p, token, nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()

	file := filepath.Join(t.TempDir(), "contract.pdf")
	if err := os.WriteFile(file, []byte("a contract"), 0o600); err != nil {
		t.Fatal(err)
	}
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/rooms/general/files",
			strings.NewReader(`{"path":"`+file+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case <-p.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the post never reached the node")
	}

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case <-closed:
		close(p.release)
		t.Fatal("Server.Close returned while a request was still running on the node")
	case <-time.After(shutdownTimeout + time.Second):
	}

	// A request that comes now is refused; the listener is closed, so it
	// can only come on a connection opened before.
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/status", nil)
	req.Host = addr
	req.Header.Set("Authorization", "Bearer "+token)
	req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, l.Addr()))
	srv.srv.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a request during Close: %d, want 503", rec.Code)
	}

	close(p.release)
	if err := <-closed; err != nil {
		t.Logf("Close: %v", err) // the connection of the late request was closed under it
	}
	if !p.done.Load() {
		t.Fatal("the handler's node call was still running when Close returned")
	}
	<-served
	<-answered
}
