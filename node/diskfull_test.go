package node

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes at a new directory and returns it;
// it skips the test where mounting is not allowed (not root, not Linux).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small disk needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskFullDownloadResumes: a download onto a full disk fails with an
// error naming that disk, keeps what it stored, and once space returns the
// same download completes without fetching the stored chunks again.
func TestDiskFullDownloadResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := fileWorkspace(t, -1, -1)
	a, b := nodes[0], nodes[1]
	path, want := randomFile(t, "video.bin", 12<<20)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b lists the file", func() bool {
		_, err := b.File(ctx, f.ID)
		return err == nil
	})
	// b's blobs live on a 5 MiB disk: a 12 MiB file does not fit.
	disk := smallDisk(t, "5m")
	blobs := filepath.Join(homes[1], "blobs")
	os.RemoveAll(blobs)
	if err := os.Symlink(disk, blobs); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "video.bin")
	_, err = b.GetFile(ctx, f.ID, out)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), blobs) {
		t.Fatalf("get onto a full disk: %v; want ErrDiskFull naming %s", err, blobs)
	}
	partial, _ := b.File(ctx, f.ID)
	if partial.HaveBytes == 0 || partial.State != "partial" {
		t.Fatalf("after the full disk b holds %+v; want the chunks stored so far kept", partial)
	}
	before := b.BlobSources()[a.PeerID().String()].Chunks
	if out, err := exec.Command("mount", "-o", "remount,size=64m", disk).CombinedOutput(); err != nil {
		t.Fatalf("grow the disk: %v: %s", err, out)
	}
	if _, err := b.GetFile(ctx, f.ID, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if string(got) != string(want) {
		t.Fatal("the resumed download differs from the file posted")
	}
	fetched := b.BlobSources()[a.PeerID().String()].Chunks - before
	held := int64(partial.HaveBytes / (1 << 20))
	if total := int64(len(want)+(1<<20)-1) / (1 << 20); fetched > total-held+1 {
		t.Fatalf("the resumed download fetched %d chunks; %d of %d were held", fetched, held, total)
	}
}
