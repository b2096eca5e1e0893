package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/api"
)

// TestFilesEndToEnd posts a file with the built binary, lists it and gets it
// back byte for byte.
func TestFilesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the charla binary; skipped in -short mode")
	}
	bin := buildCharla(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", home)
	node := startCharla(ctx, t, bin, "run", "--home", home,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--no-mdns")
	eventually(t, 30*time.Second, func() bool {
		info, err := api.ReadInfo(home)
		return err == nil && strings.Contains(node.stdout.String(), "running; API on http://"+info.API)
	}, func() string { return "run never became ready; stderr:\n" + node.stderr.String() })

	data := make([]byte, 3<<20+123)
	rand.Read(data)
	in := filepath.Join(t.TempDir(), "informe.pdf")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(ctx, t, bin, "send", "general", "--file", in, "--home", home))
	var files []struct{ ID, Name, State, Type string }
	decode(t, mustRun(ctx, t, bin, "files", "general", "--json", "--home", home), &files)
	if len(files) != 1 || files[0].ID != id || files[0].Name != "informe.pdf" || files[0].State != "complete" || files[0].Type != "application/pdf" {
		t.Fatalf("files: %+v, want %s", files, id)
	}
	out := filepath.Join(t.TempDir(), "copy.pdf")
	mustRun(ctx, t, bin, "get", id, "-o", out, "--home", home)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("get wrote %d bytes, not the %d posted", len(got), len(data))
	}
}
