package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/charla-im/charla/node"
)

func TestLogBeforeAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	ln := workspace(t, "Ana")[0]
	session := ln.session(t)
	for i := range 5 {
		if _, err := ln.node.Send(ctx, "general", fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var newest []node.Message
	if code := ln.call(t, session, "GET", "/api/rooms/general/messages?limit=2", "", &newest); code != 200 || len(newest) != 2 {
		t.Fatalf("log: %d %+v", code, newest)
	}

	tests := []struct {
		name  string
		query string
		code  int
		want  []string
	}{
		{"page above", "limit=2&before=" + newest[0].ID, 200, []string{"m1", "m2"}},
		{"default limit", "before=" + newest[0].ID, 200, []string{"m0", "m1", "m2"}},
		{"not an ID", "before=nope", 400, nil},
		{"unknown message", "before=" + fmt.Sprintf("%064x", 7), 400, nil},
		{"bad limit", "limit=0&before=" + newest[0].ID, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var page []node.Message
			code := ln.call(t, session, "GET", "/api/rooms/general/messages?"+tt.query, "", &page)
			if code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			var got []string
			for _, m := range page {
				got = append(got, m.Text)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("page = %q, want %q", got, tt.want)
			}
		})
	}
	var page []node.Message
	q := url.Values{"before": {newest[0].ID}}
	if code := ln.call(t, session, "GET", "/api/rooms/nowhere/messages?"+q.Encode(), "", &page); code != 404 {
		t.Errorf("unknown room: status %d, want 404", code)
	}

	c := NewClient(Info{API: ln.addr, Token: session})
	msgs, err := c.LogBefore(ctx, "#general", newest[0].ID, 1)
	if err != nil || len(msgs) != 1 || msgs[0].Text != "m2" {
		t.Fatalf("Client.LogBefore = %+v, %v", msgs, err)
	}
	msgs, err = c.LogBefore(ctx, "general", msgs[0].ID, 0)
	if err != nil || len(msgs) != 2 || msgs[0].Text != "m0" {
		t.Fatalf("Client.LogBefore, default limit = %+v, %v", msgs, err)
	}
	if _, err := c.LogBefore(ctx, "general", "nope", 1); !errors.Is(err, node.ErrInvalid) {
		t.Errorf("Client.LogBefore of a bad ID: %v, want ErrInvalid", err)
	}
}
