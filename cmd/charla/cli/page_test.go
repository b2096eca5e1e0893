package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

// pagingNode adds node.Pager to fakeNode, whose messages are m0…m4.
type pagingNode struct {
	*fakeNode
	before string // the last LogBefore's cursor
}

var _ node.Pager = (*pagingNode)(nil)

func (p *pagingNode) LogBefore(ctx context.Context, room, before string, limit int) ([]node.Message, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before, p.limit = before, limit
	for i, m := range p.messages {
		if m.ID == before {
			return p.messages[max(0, i-limit):i], nil
		}
	}
	return nil, fmt.Errorf("%w: no message %s", node.ErrInvalid, before)
}

// serveBackend serves b's API and publishes it in a new home.
func serveBackend(t *testing.T, b node.Backend) string {
	t.Helper()
	home := t.TempDir()
	l, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := api.NewToken()
	srv := api.NewServer(b, token, nil)
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	if err := api.WriteInfo(home, api.Info{API: l.Addr().String(), Token: token, PID: 4242}); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestLogBefore(t *testing.T) {
	p := &pagingNode{fakeNode: &fakeNode{events: make(chan node.Event), subscribed: make(chan struct{})}}
	for i := range 5 {
		if _, err := p.Send(context.Background(), "general", fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	home := serveBackend(t, p)
	cursor := p.messages[3].ID
	out, _, err := charla(t, "", "log", "general", "--before", cursor, "--limit", "2", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Ana: m1\n") || !strings.Contains(out, "Ana: m2\n") || strings.Contains(out, "m3") {
		t.Errorf("log --before printed\n%s\nwant m1 and m2", out)
	}
	p.mu.Lock()
	gotBefore, gotLimit := p.before, p.limit
	p.mu.Unlock()
	if gotBefore != cursor || gotLimit != 2 {
		t.Errorf("LogBefore got cursor %q limit %d, want %q 2", gotBefore, gotLimit, cursor)
	}
	_, _, err = charla(t, "", "log", "general", "--before", "nope", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "no message nope") {
		t.Errorf("log --before nope: %v, want the node's error", err)
	}
}
