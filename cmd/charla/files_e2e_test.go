package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	// The poster holds every chunk: fetch has nothing to do and says so.
	if _, stderr, err := runCharla(ctx, bin, "fetch", id, "--home", home); err != nil || !strings.Contains(stderr, "held on this node and verified") {
		t.Fatalf("fetch of a file held: %v: %s", err, stderr)
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

	// A byte of the stored ciphertext rots: get fails, with no other member
	// to fetch a good copy from, writes nothing, and the file lists as partial.
	damageBlob(t, filepath.Join(home, "blobs"), 2<<20+7)
	again := filepath.Join(t.TempDir(), "again.pdf")
	if _, stderr, err := runCharla(ctx, bin, "get", id, "-o", again, "--home", home); err == nil {
		t.Fatal("get exited 0 with a damaged chunk on disk")
	} else if !strings.Contains(stderr, "chunk") {
		t.Fatalf("get with a damaged chunk says: %s", stderr)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Fatalf("get with a damaged chunk left %s: %v", again, err)
	}
	decode(t, mustRun(ctx, t, bin, "files", "general", "--json", "--home", home), &files)
	if len(files) != 1 || files[0].State != "partial" {
		t.Fatalf("files after the damage: %+v, want partial", files)
	}
	// Nor can fetch restore it: no other member holds the chunk.
	if _, stderr, err := runCharla(ctx, bin, "fetch", id, "--home", home); err == nil {
		t.Fatal("fetch exited 0 with a chunk dropped and no member to fetch it from")
	} else if !strings.Contains(stderr, "no member connected") {
		t.Fatalf("fetch with a chunk dropped says: %s", stderr)
	}
}

// damageBlob flips the byte at off of the one blob pack under dir.
func damageBlob(t *testing.T, dir string, off int64) {
	t.Helper()
	var packs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.Contains(d.Name(), ".") {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) != 1 {
		t.Fatalf("blob packs under %s: %q, want one", dir, packs)
	}
	f, err := os.OpenFile(packs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFilesTwoNodes: Ana posts a file with the built binary; Ben, who joined
// by invite and found Ana through his address book, lists it and gets it,
// and the SHA-256 of what he wrote is the SHA-256 of what she posted.
func TestFilesTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two charla nodes; skipped in -short mode")
	}
	bin := buildCharla(t)
	dir := t.TempDir()
	ana, ben := filepath.Join(dir, "ana"), filepath.Join(dir, "ben")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", ana)
	anaNode := runNode(ctx, t, bin, ana)
	code := strings.TrimSpace(mustRun(ctx, t, bin, "invite", "--expires", "1h", "--home", ana))
	mustRun(ctx, t, bin, "join", code, "--name", "Ben", "--home", ben)
	benNode := runNode(ctx, t, bin, ben)

	// Over the default auto-download size, so that get does the fetching,
	// and not a whole number of chunks.
	in := filepath.Join(t.TempDir(), "grabacion.mp4")
	want := writeRandom(t, in, 20<<20+4321)
	id := strings.TrimSpace(mustRun(ctx, t, bin, "send", "general", "--file", in, "--home", ana))

	type file struct {
		ID, Room, Name, State string
		AuthorName            string `json:"author_name"`
		Size                  uint64
		HaveBytes             uint64 `json:"have_bytes"`
	}
	var listed []file
	eventually(t, 60*time.Second, func() bool {
		out, _, err := runCharla(ctx, bin, "files", "--json", "--home", ben)
		listed = nil
		return err == nil && json.Unmarshal([]byte(out), &listed) == nil && len(listed) == 1 && listed[0].ID == id
	}, func() string {
		return fmt.Sprintf("ben never listed file %s: %+v\nana stderr:\n%s\nben stderr:\n%s",
			id, listed, anaNode.stderr.String(), benNode.stderr.String())
	})
	if f := listed[0]; f.Name != "grabacion.mp4" || f.Size != 20<<20+4321 || f.AuthorName != "Ana" || f.State != "missing" {
		t.Fatalf("ben lists %+v", f)
	}
	out := filepath.Join(t.TempDir(), "copia.mp4")
	mustRun(ctx, t, bin, "get", id, "-o", out, "--home", ben)
	if got := sha256File(t, out); got != want {
		t.Fatalf("sha256 of ben's copy %s, of ana's file %s", got, want)
	}
	var after []file
	decode(t, mustRun(ctx, t, bin, "files", "general", "--json", "--home", ben), &after)
	if len(after) != 1 || after[0].State != "complete" || after[0].HaveBytes == 0 {
		t.Fatalf("after get ben lists %+v", after)
	}
}

// writeRandom writes size random bytes to path and returns their SHA-256 in hex.
func writeRandom(t *testing.T, path string, size int) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sha256File is sha256sum of the file at path.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestGetKeepsExistingFile: get writes a file under its own name in the
// current directory, or in the directory -o names, and never over a file
// of that name that is already there; a file -o names is replaced.
func TestGetKeepsExistingFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the charla binary; skipped in -short mode")
	}
	bin := buildCharla(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", home)
	runNode(ctx, t, bin, home)
	in := filepath.Join(t.TempDir(), "contrato.txt")
	if err := os.WriteFile(in, []byte("el contrato firmado\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustRun(ctx, t, bin, "send", "general", "--file", in, "--home", home))

	get := func(dir string, args ...string) (string, error) {
		cmd := command(ctx, bin, append([]string{"get", id, "--home", home}, args...)...)
		cmd.Dir = dir
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		err := cmd.Run()
		return errOut.String(), err
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mine := "my own notes\n"
	for _, tc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"current directory", func(string) []string { return nil }},
		{"-o a directory", func(dir string) []string { return []string{"-o", dir} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cwd := t.TempDir()
			if tc.args(dir) == nil {
				dir = cwd
			}
			if stderr, err := get(cwd, tc.args(dir)...); err != nil {
				t.Fatalf("get into an empty directory: %v: %s", err, stderr)
			}
			if got := read(filepath.Join(dir, "contrato.txt")); got != "el contrato firmado\n" {
				t.Fatalf("get wrote %q", got)
			}
			if err := os.WriteFile(filepath.Join(dir, "contrato.txt"), []byte(mine), 0o600); err != nil {
				t.Fatal(err)
			}
			stderr, err := get(cwd, tc.args(dir)...)
			if err == nil || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "-o PATH") {
				t.Fatalf("get over an existing file: %v: %s", err, stderr)
			}
			if got := read(filepath.Join(dir, "contrato.txt")); got != mine {
				t.Fatalf("get replaced the existing file with %q", got)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".charla-get-*")); len(left) > 0 {
				t.Fatalf("get left %v", left)
			}
		})
	}
	// A file named with -o is replaced: the user chose that name.
	named := filepath.Join(t.TempDir(), "copia.txt")
	if err := os.WriteFile(named, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	if stderr, err := get(t.TempDir(), "-o", named); err != nil {
		t.Fatalf("get -o an existing file: %v: %s", err, stderr)
	}
	if got := read(named); got != "el contrato firmado\n" {
		t.Fatalf("get -o FILE wrote %q", got)
	}
}
