package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// TestSearchAndFileBytesAgainstNode searches a real node's history, uploads
// bytes to one node and reads them back, decrypted, from the other.
func TestSearchAndFileBytesAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	ctx := context.Background()
	nodes := workspace(t, "Ana", "Bruno")
	ana, bruno := nodes[0], nodes[1]
	ca := NewClient(Info{API: ana.addr, Token: ana.session(t)})
	cb := NewClient(Info{API: bruno.addr, Token: bruno.session(t)})

	for _, text := range []string{"the projector is broken", "lunch at noon", "new projector arrives Friday"} {
		if _, err := ca.Send(ctx, "general", text); err != nil {
			t.Fatal(err)
		}
	}
	// The sender's own search finds them at once: the index is brought up
	// to date before a search, even though it is written after the send.
	if got, err := ca.Search(ctx, "projector", 10); err != nil || len(got) != 2 {
		t.Errorf("Ana's search right after her sends: %d messages, %v; want 2", len(got), err)
	}
	var found []node.Message
	eventually(t, 20*time.Second, "Bruno finds both projector messages", func() bool {
		found, _ = cb.Search(ctx, "proj*", 10)
		return len(found) == 2
	})
	if found[0].Text != "new projector arrives Friday" || found[0].RoomName != "general" {
		t.Errorf("search: newest first with its room, got %+v", found[0])
	}
	if msgs, err := cb.Search(ctx, "noon lunch", 0); err != nil || len(msgs) != 1 {
		t.Errorf("search for two words: %v, %v", msgs, err)
	}
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"empty query", "/api/search?q=+", http.StatusBadRequest},
		{"limit too large", "/api/search?q=a&limit=100000", http.StatusBadRequest},
		{"POST", "/api/search?q=a", http.StatusMethodNotAllowed},
	} {
		method := http.MethodGet
		if tc.name == "POST" {
			method = http.MethodPost
		}
		if got := bruno.call(t, cb.token, method, tc.query, "", nil); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}

	data := make([]byte, 300<<10) // several chunks
	rand.Read(data)
	f, err := ca.Upload(ctx, "general", "plan ñ.bin", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "plan ñ.bin" || f.Size != uint64(len(data)) {
		t.Fatalf("upload: %+v", f)
	}
	eventually(t, 20*time.Second, "Bruno sees the file", func() bool {
		_, err := cb.File(ctx, f.ID)
		return err == nil
	})
	req, _ := http.NewRequest(http.MethodGet, "http://"+bruno.addr+"/api/files/"+f.ID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+cb.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("content: %d bytes differ from the %d uploaded", len(got), len(data))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "plan") {
		t.Errorf("Content-Disposition %q", cd)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}

	for _, tc := range []struct {
		name, fname string
	}{
		{"path", "../escape"},
		{"dot dot", ".."},
		{"control", "a\nb"},
	} {
		if _, err := ca.Upload(ctx, "general", tc.fname, strings.NewReader("x")); !errors.Is(err, node.ErrInvalid) {
			t.Errorf("%s: upload %q: %v, want ErrInvalid", tc.name, tc.fname, err)
		}
	}
	if _, err := ca.Upload(ctx, "nosuchroom", "a.txt", strings.NewReader("x")); !errors.Is(err, node.ErrUnknownRoom) {
		t.Errorf("unknown room: %v", err)
	}
	if _, err := cb.Content(ctx, strings.Repeat("00", 32)); !errors.Is(err, node.ErrUnknownFile) {
		t.Errorf("unknown file: %v", err)
	}
}
