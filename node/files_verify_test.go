package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// corruptChunk flips bytes of chunk i of file m in the pack under home, as
// a failing disk or a careless hand would.
func corruptChunk(t *testing.T, home string, m *wire.FileManifest, i int) {
	t.Helper()
	path := newBlobStore(filepath.Join(home, blobsDir)).packPath(layoutOf(m).id())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := int64(i)*int64(m.ChunkSize) + 100
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for k := range b {
		b[k] ^= 0x5a
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func manifestOf(t *testing.T, n *Node, id string) *wire.FileManifest {
	t.Helper()
	_, m, err := n.lookupFile(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// onlySourceRots closes a, waits until c is connected to b alone, and
// damages chunk i of file m on b's disk (under bHome).
func onlySourceRots(t *testing.T, a, b, c *Node, bHome string, m *wire.FileManifest, i int) {
	t.Helper()
	a.Close()
	eventually(t, 60*time.Second, "c connected to b alone", func() bool {
		ps := c.connectedMembers()
		return len(ps) == 1 && ps[0] == b.PeerID()
	})
	corruptChunk(t, bHome, m, i)
}

// A chunk damaged on disk after it was stored is never served nor decrypted:
// the node that holds it answers as if it did not, lists the file as
// partial, and its own get fails until a good copy is fetched again.
func TestFileCorruptChunkOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := fileWorkspace(t, -1, -1, -1)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	path, data := randomFile(t, "ledger.ods", 6<<20+12345)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{b, c} {
		eventually(t, 60*time.Second, "the file message arrives", func() bool { _, err := n.File(ctx, f.ID); return err == nil })
	}
	getAndCompare(t, b, f.ID, data)
	m := manifestOf(t, b, f.ID)

	// With a gone, b is the only source; its chunk 2 rots on disk.
	onlySourceRots(t, a, b, c, homes[1], m, 2)
	if s := fileState(b, f.ID); s != "complete" {
		t.Fatalf("before any read b lists the file as %s", s) // the record, not a hash of every chunk
	}
	get := func(n *Node) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := n.GetFile(ctx, f.ID, filepath.Join(t.TempDir(), "out"))
		return err
	}
	if err := get(c); err == nil {
		t.Fatal("c got the file although its one source holds a damaged chunk")
	}
	// The get fails once chunk 2 has no source left; the fetch goes on for
	// the chunks after it.
	eventually(t, 30*time.Second, "c fetches every chunk but the damaged one", func() bool {
		return int(c.BlobSources()[b.PeerID().String()].Chunks) >= f.Chunks-1
	})
	if src := c.BlobSources()[b.PeerID().String()]; src.Bad != 0 || int(src.Chunks) != f.Chunks-1 {
		t.Fatalf("c's counts for b: %+v; want every chunk but the damaged one, and nothing bad sent", src)
	}
	if v, _ := b.File(ctx, f.ID); v.State != "partial" || v.HaveBytes != v.CipherSize-uint64(m.ChunkLen(2)) {
		t.Fatalf("b after serving: %+v; want partial without chunk 2", v)
	}
	if held := heldOnDisk(t, homes[1], m); held != f.Chunks-1 {
		t.Fatalf("b's record names %d chunks; want %d", held, f.Chunks-1)
	}

	// b's own get reads chunk 4, damaged too, from disk: it fails, since no
	// connected member holds chunks 2 and 4.
	corruptChunk(t, homes[1], m, 4)
	err = get(b)
	if err == nil {
		t.Fatal("b got a file with damaged chunks and no source for them")
	}
	t.Logf("b's get: %v", err)
	if v, _ := b.File(ctx, f.ID); v.State != "partial" {
		t.Fatalf("b after its get: %+v", v)
	}

	// a returns: both fetch the good chunks again and get the file.
	a = openFileNode(t, homes[0], -1, b.Addrs()[0], c.Addrs()[0])
	eventually(t, 60*time.Second, "b and c reconnect to a", func() bool {
		return len(b.connectedMembers()) == 2 && len(c.connectedMembers()) == 2
	})
	getAndCompare(t, b, f.ID, data)
	getAndCompare(t, c, f.ID, data)
}

// A chunk enters the pack's record only once an fsync that began after it
// was written has returned, so a record read after a crash names only
// chunks on disk; the end of a write records the rest.
func TestPackRecordFollowsSync(t *testing.T) {
	dir := t.TempDir()
	chunks := packCheckpoint + 3
	l, data := chunkLayout(chunks, func(i int) []byte {
		b := make([]byte, 4096)
		b[0] = byte(i)
		return b
	})
	recorded := func() int {
		t.Helper()
		p := newBlobStore(dir).open(l) // a fresh store: what a restart sees
		n, _ := p.count()
		return n
	}
	s := newBlobStore(dir)
	p := s.open(l)
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	for i := range packCheckpoint - 1 {
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.drain(); err != nil { // written, held, not synced
		t.Fatal(err)
	}
	if n, _ := p.count(); n != packCheckpoint-1 {
		t.Fatalf("%d of %d chunks held once written", n, packCheckpoint-1)
	}
	if n := recorded(); n != 0 {
		t.Fatalf("%d chunks recorded before any sync", n)
	}
	for i := packCheckpoint - 1; i < chunks-1; i++ {
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.drain(); err != nil {
		t.Fatal(err)
	}
	p.waitSynced() // the checkpoint the 32nd chunk written started
	if n := recorded(); n < packCheckpoint || n > chunks-1 {
		t.Fatalf("%d chunks recorded after a checkpoint; want %d to %d", n, packCheckpoint, chunks-1)
	}
	if err := p.store(chunks-1, data[chunks-1], nil); err != nil {
		t.Fatal(err)
	}
	if err := p.endWrite(); err != nil {
		t.Fatal(err)
	}
	if n := recorded(); n != chunks {
		t.Fatalf("%d of %d chunks recorded after the write ended", n, chunks)
	}
	// A damaged record is not believed.
	rec := p.path + heldSuffix
	raw, _ := os.ReadFile(rec)
	raw[len(raw)-40] ^= 1
	os.WriteFile(rec, raw, 0o600)
	if n := recorded(); n != 0 {
		t.Fatalf("a damaged record names %d chunks", n)
	}
	if _, _, err := decodeHeld(raw); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("decode a damaged record: %v", err)
	}
}

func sha256Sum(b []byte) wire.ID { return wire.ID(sha256.Sum256(b)) }

// chunkLayout is the layout of n chunks of 4 KiB, chunk i being fill(i),
// and the chunks.
func chunkLayout(n int, fill func(i int) []byte) (layout, [][]byte) {
	l := layout{cipherSize: uint64(n) * 4096, chunkSize: 4096, chunks: make([]wire.ID, n)}
	data := make([][]byte, n)
	for i := range data {
		data[i] = fill(i)
		l.chunks[i] = sha256Sum(data[i])
	}
	return l, data
}

// Fetches of one pack that begin and end while others write, as two file
// messages with the same content may, share its writers: none writes to a
// closed queue, and every chunk stored is recorded once the last ends.
func TestPackWritersOverlap(t *testing.T) {
	dir := t.TempDir()
	const chunks = 48
	l, data := chunkLayout(chunks, func(i int) []byte {
		b := make([]byte, 4096)
		b[0], b[1] = byte(i), 0xa5
		return b
	})
	p := newBlobStore(dir).open(l)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 6 {
				if err := p.beginWrite(); err != nil {
					errs <- err
					return
				}
				for i := w + 4*round*2; i < chunks && i < w+4*(round*2+2); i += 4 {
					if err := p.store(i, data[i], nil); err != nil {
						errs <- err
					}
				}
				if err := p.endWrite(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	q := newBlobStore(dir).open(l) // what a restart sees
	if n, _ := q.count(); n != chunks {
		t.Fatalf("%d of %d chunks recorded", n, chunks)
	}
	for i := range chunks {
		if got, err := q.read(i, nil); err != nil || !bytes.Equal(got, data[i]) {
			t.Fatalf("chunk %d read back: %v", i, err)
		}
	}
}

// A pack's reads check a chunk this process stored against a CRC-32C of its
// bytes, and a chunk it did not store (a restart) against its hash first:
// damage on disk is caught both ways, and a good chunk passes both ways.
func TestPackReadCatchesDamageBothWays(t *testing.T) {
	dir := t.TempDir()
	const chunks = 4
	l, data := chunkLayout(chunks, func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 4096) })
	p := newBlobStore(dir).open(l)
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	for i := range chunks {
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.endWrite(); err != nil {
		t.Fatal(err)
	}
	damage := func(i int) {
		t.Helper()
		f, err := os.OpenFile(p.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{0xff}, int64(i)*4096+7); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		p       *pack
		i       int
		damaged bool
	}{
		{"stored here, good", p, 0, false},
		{"stored here, damaged", p, 1, true},
		{"after a restart, good", nil, 2, false},
		{"after a restart, damaged", nil, 3, true},
		{"after a restart, good, read again", nil, 2, false},
	}
	fresh := newBlobStore(dir).open(l) // what a restart sees: nothing summed
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.p
			if q == nil {
				q = fresh
			}
			if tc.damaged {
				damage(tc.i)
			}
			got, err := q.read(tc.i, nil)
			if tc.damaged {
				if !errors.Is(err, errBadChunk) || q.has(tc.i) {
					t.Fatalf("damaged chunk %d read: %v, held %v; want errBadChunk and dropped", tc.i, err, q.has(tc.i))
				}
				return
			}
			if err != nil || !bytes.Equal(got, data[tc.i]) {
				t.Fatalf("good chunk %d read: %v", tc.i, err)
			}
		})
	}
}

// Forgetting a pack while chunks are served changes the index under the
// store's lock only: a lookup's callers range over what it returned without
// that lock, so forget must not rewrite it in place (run with -race).
func TestPackForgetWhileServing(t *testing.T) {
	dir := t.TempDir()
	shared := bytes.Repeat([]byte{0x42}, 4096)
	la, da := chunkLayout(1, func(int) []byte { return shared })
	lb, db := chunkLayout(2, func(i int) []byte {
		if i == 0 {
			return shared
		}
		return bytes.Repeat([]byte{0x43}, 4096)
	})
	s := newBlobStore(dir)
	for _, c := range []struct {
		l    layout
		data [][]byte
	}{{la, da}, {lb, db}} {
		p := s.open(c.l)
		if err := p.beginWrite(); err != nil {
			t.Fatal(err)
		}
		for i, b := range c.data {
			if err := p.store(i, b, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.endWrite(); err != nil {
			t.Fatal(err)
		}
	}
	h := la.chunks[0]
	if refs := s.lookup(h); len(refs) != 2 {
		t.Fatalf("the shared chunk is in %d packs, want 2", len(refs))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var served atomic.Int64
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a := s.answer(h) // ranges over lookup's refs, as handleBlob does
			if a.buf == nil || !bytes.Equal(a.frame[len(a.frame)-4096:], shared) {
				t.Error("the shared chunk was not served while another pack holds it")
				return
			}
			chunkBufs.Put(a.buf)
			served.Add(1)
		}
	}()
	for served.Load() < 10 { // the server is under way when the forget comes
		select {
		case <-done:
			t.Fatal("the server stopped before the forget")
		default:
			runtime.Gosched()
		}
	}
	if got := s.forget(la.id()); got != 1 {
		t.Errorf("forget reported %d chunks, want 1", got)
	}
	close(stop)
	<-done
	if refs := s.lookup(h); len(refs) != 1 || refs[0].p.id != lb.id() {
		t.Fatalf("after forget the shared chunk is in %d packs, want the other one", len(refs))
	}
}

// failSyncs makes the next n syncs of pack files fail as a disk's failed
// write-back does, until the test ends.
func failSyncs(t *testing.T, n int) {
	t.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	fsyncFile = func(f *os.File) error {
		if left.Add(-1) >= 0 {
			return syscall.EIO
		}
		return f.Sync()
	}
	t.Cleanup(func() { fsyncFile = (*os.File).Sync })
}

// A failed sync is reported once, as the kernel does: the chunks written
// before it are no longer held, the fetch that wrote them fails, and a
// later sync that succeeds does not record them as if they were on disk.
func TestPackSyncFailureNotRecordedLater(t *testing.T) {
	dir := t.TempDir()
	const chunks = 6
	l, data := chunkLayout(chunks, func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 4096) })
	p := newBlobStore(dir).open(l)
	failSyncs(t, 1)
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.endWrite(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("endWrite after a failed sync: %v; want the disk's error", err)
	}
	if n, _ := p.count(); n != 0 {
		t.Fatalf("%d chunks held after their sync failed; want none", n)
	}
	// A later fetch writes chunk 4; its sync succeeds.
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	if err := p.store(4, data[4], nil); err != nil {
		t.Fatal(err)
	}
	if err := p.endWrite(); err != nil {
		t.Fatal(err)
	}
	q := newBlobStore(dir).open(l) // what a restart sees
	for i := range chunks {
		if want := i == 4; q.has(i) != want {
			t.Errorf("chunk %d recorded %v after a restart; want %v", i, q.has(i), want)
		}
	}
}

// A file whose pack lost a background sync is not posted: its commit fails
// although the last sync succeeds.
func TestPackWriterBackgroundSyncFailureFailsCommit(t *testing.T) {
	b := newBlobStore(t.TempDir())
	w, err := newPackWriter(b, 4096)
	if err != nil {
		t.Fatal(err)
	}
	failSyncs(t, 1) // the first background sync, after packCheckpoint chunks
	if _, err := w.Write(make([]byte, (packCheckpoint+3)*4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.commit(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit after a failed background sync: %v; want the disk's error", err)
	}
}

// A get whose next chunk no connected member holds fails soon after the
// fetch learns that, not after it has fetched every other chunk, each held
// back while it is too far ahead of the reader: that took 22 s for this
// 96 MiB file (8 s for 40 MiB, 38 s for 160 MiB).
func TestFileGetFailsSoonWithoutSource(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test moving 192 MiB; run without -short")
	}
	a, b, c, homes, f, data := fileHeldByTwo(t, "archive.tar", 96<<20)
	ctx := context.Background()
	m := manifestOf(t, b, f.ID)
	// With a gone, b is c's only source, and b's chunk 1 rots on disk.
	onlySourceRots(t, a, b, c, homes[1], m, 1)

	gctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.GetFile(gctx, f.ID, filepath.Join(t.TempDir(), "out"))
	took := time.Since(start)
	t.Logf("c's get of %d chunks failed after %v: %v", len(m.Chunks), took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("c got the file although its one source lacks chunk 1")
	}
	if gctx.Err() != nil {
		t.Fatalf("c's get ended only at its deadline: %v", err)
	}
	if !errors.Is(err, errNoSource) || !strings.Contains(err.Error(), fmt.Sprintf("chunk 2 of %d", len(m.Chunks))) {
		t.Errorf("c's get says %q; want it to name chunk 2 and say no connected member holds it", err)
	}
	if strings.Contains(err.Error(), "decrypt") || !strings.Contains(err.Error(), "once a member who has the file is online") {
		t.Errorf("c's get says %q; want what to do, without the decryption's layers", err)
	}
	if took > 10*time.Second {
		t.Fatalf("c's get took %v to fail; want it to fail soon after the fetch finds no source for chunk 1", took.Round(time.Millisecond))
	}

	// The fetch goes on without the reader and stores every other chunk;
	// once a returns, a get fetches chunk 1 alone.
	eventually(t, 60*time.Second, "c holds every chunk but chunk 1", func() bool {
		v, _ := c.File(ctx, f.ID)
		return v.HaveBytes == v.CipherSize-uint64(m.ChunkLen(1))
	})
	fetched := func() int {
		sum := 0
		for _, s := range c.BlobSources() {
			sum += int(s.Chunks)
		}
		return sum
	}
	before := fetched()
	a = openFileNode(t, homes[0], -1, b.Addrs()[0], c.Addrs()[0])
	eventually(t, 60*time.Second, "c reconnects to a", func() bool { return len(c.connectedMembers()) == 2 })
	getAndCompare(t, c, f.ID, data)
	if again := fetched() - before; again != 1 {
		t.Fatalf("c fetched %d chunks after a returned; want chunk 1 alone", again)
	}
}

// A chunk has no source once every peer of the fetch that holds it has
// failed it, sent too many bad chunks, or stopped; not while it is in
// flight, and not when the fetch ends for another reason.
func TestFilePlanSourceless(t *testing.T) {
	l, _ := chunkLayout(3, func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 10) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plan := newFetchPlan(ctx, &wire.FileManifest{Chunks: l.chunks}, newPack(l.id(), l, filepath.Join(t.TempDir(), "pack")))
	a, b := peer.ID("a"), peer.ID("b")
	plan.pending = []int{0, 1, 2}
	plan.held[a] = []bool{true, true, true}
	plan.held[b] = []bool{true, false, true}
	plan.live[a], plan.live[b] = 1, 2
	check := func(what string, want ...bool) {
		t.Helper()
		for i, w := range want {
			if got := plan.sourceless(i); got != w {
				t.Fatalf("%s: chunk %d sourceless %v, want %v", what, i, got, w)
			}
		}
	}
	check("at the start", false, false, false)
	if i, ok := plan.take(ctx, a, false); !ok || i != 0 {
		t.Fatalf("a takes %d, %v", i, ok)
	}
	plan.giveBack(0, a, true)
	check("a failed chunk 0", false, false, false)
	if i, ok := plan.take(ctx, a, false); !ok || i != 1 {
		t.Fatalf("a takes %d, %v", i, ok)
	}
	check("chunk 1 in flight", false, false, false)
	plan.giveBack(1, a, true)
	check("a failed chunks 0 and 1", false, true, false)
	plan.leave(b)
	check("one of b's workers stopped", false, true, false)
	plan.leave(b)
	check("b's workers stopped", true, true, false)
	plan.bad[a] = blobMaxBad
	check("a sent too many bad chunks", true, true, true)
	plan.storeErr = errors.New("disk full")
	check("the fetch failed to store", false, false, false)
	plan.storeErr = nil
	cancel()
	check("the fetch was cancelled", false, false, false)
}

// A background checkpoint whose sync fails after the fetch's last chunk
// was written, while endWrite waits for it, fails endWrite: else the
// fetch ends without error and the file shows as partial, the disk's
// error reported nowhere.
func TestPackSyncFailureInBackgroundFailsEndWrite(t *testing.T) {
	dir := t.TempDir()
	l, data := chunkLayout(packCheckpoint, func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 4096) })
	p := newBlobStore(dir).open(l)
	var calls atomic.Int64
	fsyncFile = func(f *os.File) error {
		if calls.Add(1) > 1 {
			return f.Sync()
		}
		// The background sync: it fails once endWrite waits for it,
		// every chunk written.
		time.Sleep(100 * time.Millisecond)
		return syscall.EIO
	}
	t.Cleanup(func() { fsyncFile = (*os.File).Sync })
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	for i := range packCheckpoint { // the last starts a background checkpoint
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	err := p.endWrite()
	if calls.Load() == 0 {
		t.Fatal("no background sync ran")
	}
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("endWrite after its background sync failed: %v; want the disk's error", err)
	}
	if n, _ := p.count(); n != 0 {
		t.Errorf("%d chunks held after their sync failed; want none", n)
	}
}

// A chunk written while a checkpoint's failing sync runs was on the file
// when the sync began, so its write-back may be the one that failed: the
// writers of a fetch go on writing during a background checkpoint. No
// later sync that succeeds may record it.
func TestPackSyncFailureCoversChunksWrittenDuringIt(t *testing.T) {
	dir := t.TempDir()
	const chunks = packCheckpoint + 4
	l, data := chunkLayout(chunks, func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 4096) })
	p := newBlobStore(dir).open(l)
	late := packCheckpoint // written while the background sync runs
	var calls atomic.Int64
	fsyncFile = func(f *os.File) error {
		if calls.Add(1) > 1 {
			return f.Sync()
		}
		// The first sync: a writer stores another chunk before the
		// kernel reports that the write-back failed.
		if err := p.store(late, data[late], nil); err != nil {
			t.Errorf("store chunk %d during the sync: %v", late, err)
		}
		for !p.has(late) {
			time.Sleep(time.Millisecond)
		}
		return syscall.EIO
	}
	t.Cleanup(func() { fsyncFile = (*os.File).Sync })
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	for i := range packCheckpoint { // the last starts a background checkpoint
		if err := p.store(i, data[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	p.drain() // the last chunk written has started the checkpoint
	p.waitSynced()
	if calls.Load() == 0 {
		t.Fatal("no background sync ran")
	}
	p.endWrite()
	// A later fetch of the pack writes another chunk; its sync succeeds.
	if err := p.beginWrite(); err != nil {
		t.Fatal(err)
	}
	if err := p.store(chunks-1, data[chunks-1], nil); err != nil {
		t.Fatal(err)
	}
	if err := p.endWrite(); err != nil {
		t.Fatal(err)
	}
	q := newBlobStore(dir).open(l) // what a restart sees
	for i := range chunks {
		if want := i == chunks-1; q.has(i) != want {
			t.Errorf("chunk %d recorded %v after a restart; want %v", i, q.has(i), want)
		}
	}
}

// A fetch whose pack's last background sync fails, after every chunk was
// written, fails with the disk's error: it does not report the file
// fetched and leave it partial.
func TestFileFetchFailsOnLastBackgroundSync(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := fileWorkspace(t, -1, -1)
	a, c := nodes[0], nodes[1]
	ctx := context.Background()
	// packCheckpoint chunks of ciphertext: the last chunk written starts
	// the background sync.
	path, _ := randomFile(t, "minutes.odt", (packCheckpoint-1)<<20+512<<10)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(manifestOf(t, a, f.ID).Chunks); n != packCheckpoint {
		t.Fatalf("the file has %d chunks; the test needs %d", n, packCheckpoint)
	}
	eventually(t, 60*time.Second, "the file message arrives", func() bool { _, err := c.File(ctx, f.ID); return err == nil })
	var calls atomic.Int64
	fsyncFile = func(f *os.File) error {
		if calls.Add(1) > 1 {
			return f.Sync()
		}
		time.Sleep(200 * time.Millisecond) // fails once the fetch waits for it
		return syscall.EIO
	}
	t.Cleanup(func() { fsyncFile = (*os.File).Sync })
	v, err := c.FetchFile(ctx, f.ID)
	t.Logf("c's fetch: state %q, %d of %d bytes, err %v; %d syncs", v.State, v.HaveBytes, v.CipherSize, err, calls.Load())
	if calls.Load() == 0 {
		t.Fatal("no sync of c's pack ran")
	}
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("c's fetch, whose sync failed: %v; want the disk's error", err)
	}
}
