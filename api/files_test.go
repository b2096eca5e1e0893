package api

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// TestFetchFileRoute: POST /api/files/{id}/fetch on a member's node fetches
// a file over the auto-download size and answers it complete; a body that is
// not JSON is refused, so no web page can post it.
func TestFetchFileRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	ctx := context.Background()
	nodes := workspace(t, "Ana", "Ben")
	ana, ben := nodes[0], nodes[1]
	data := make([]byte, node.DefaultAutoDownload+12345)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "video.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := ana.node.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben holds the file message", func() bool {
		v, err := ben.node.File(ctx, f.ID)
		return err == nil && v.State == "missing"
	})
	session := ben.session(t)
	route := "/api/files/" + f.ID + "/fetch"
	req, _ := http.NewRequest(http.MethodPost, "http://"+ben.addr+route, nil)
	req.Header.Set("Authorization", "Bearer "+session)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("fetch with a text/plain body: %d, want 415", resp.StatusCode)
	}
	var got node.File
	if code := ben.call(t, session, http.MethodPost, route, "{}", &got); code != http.StatusOK {
		t.Fatalf("fetch: %d", code)
	}
	if got.ID != f.ID || got.State != "complete" || got.HaveBytes != got.CipherSize {
		t.Fatalf("fetch answered %+v", got)
	}
	if code := ben.call(t, session, http.MethodPost, "/api/files/00/fetch", "{}", nil); code != http.StatusBadRequest {
		t.Fatalf("fetch of a malformed ID: %d, want 400", code)
	}
}
