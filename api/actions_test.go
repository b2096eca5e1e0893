package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/charla-im/charla/node"
)

// TestActionsAgainstNode edits, reacts to, replies to and deletes a message
// through the API of a real node, by hand and with the Go client.
func TestActionsAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ln := workspace(t, "Ana")[0]
	session := ln.session(t)

	var sent node.Message
	if code := ln.call(t, session, "POST", "/api/rooms/general/messages", `{"text":"lunch at one"}`, &sent); code != 201 {
		t.Fatalf("send: %d", code)
	}
	base := "/api/rooms/general/messages/" + sent.ID
	var m node.Message
	if code := ln.call(t, session, "POST", base+"/edit", `{"text":"lunch at two"}`, &m); code != 200 || !m.Edited || m.Text != "lunch at two" {
		t.Fatalf("edit: %d %+v", code, m)
	}
	if code := ln.call(t, session, "POST", base+"/edit", `{"text":" "}`, nil); code != 400 {
		t.Fatalf("empty edit: %d, want 400", code)
	}
	if code := ln.call(t, session, "POST", base+"/reactions", `{"emoji":"👍"}`, &m); code != 200 ||
		len(m.Reactions) != 1 || m.Reactions[0].Count != 1 || !m.Reactions[0].Mine {
		t.Fatalf("react: %d %+v", code, m)
	}
	var reply node.Message
	if code := ln.call(t, session, "POST", "/api/rooms/general/messages", `{"text":"ok","reply_to":"`+sent.ID+`"}`, &reply); code != 201 ||
		reply.ReplyTo != sent.ID || reply.ReplyText != "lunch at two" {
		t.Fatalf("reply: %d %+v", code, reply)
	}
	unknown := "/api/rooms/general/messages/" + "00000000000000000000000000000000000000000000000000000000000000aa"
	if code := ln.call(t, session, "POST", unknown+"/delete", `{}`, nil); code != 404 {
		t.Fatalf("delete of an unknown message: %d, want 404", code)
	}
	if code := ln.call(t, session, "GET", base+"/edit", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET edit: %d, want 405", code)
	}

	c := NewClient(Info{API: ln.addr, Token: session})
	ctx := context.Background()
	if m, err := c.React(ctx, "general", sent.ID, "👍"); err != nil || len(m.Reactions) != 0 {
		t.Fatalf("react again takes it back: %+v %v", m, err)
	}
	if m, err := c.Delete(ctx, "general", sent.ID); err != nil || !m.Deleted || m.Text != "" {
		t.Fatalf("delete: %+v %v", m, err)
	}
	if _, err := c.Edit(ctx, "general", sent.ID, "too late"); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("edit after delete: %v, want ErrInvalid", err)
	}
	if _, err := c.Reply(ctx, "general", "nope", "x"); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("reply to a bad ID: %v, want ErrInvalid", err)
	}
}
