package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fileWorkspace is workspace with a file setting per node: autos[i] is node
// i's AutoDownload (0 the default, negative never).
func fileWorkspace(t *testing.T, autos ...int64) ([]*Node, []string) {
	t.Helper()
	ctx := context.Background()
	homes := make([]string, len(autos))
	for i := range homes {
		homes[i] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i))
	}
	initHome(t, homes[0])
	owner := openFileNode(t, homes[0], autos[0])
	nodes := []*Node{owner}
	for i := 1; i < len(autos); i++ {
		if _, err := owner.Provision(ctx, homes[i], fmt.Sprintf("Member%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(autos); i++ {
		peers := []string{owner.Addrs()[0]}
		if i > 1 {
			peers = append(peers, nodes[i-1].Addrs()[0])
		}
		nodes = append(nodes, openFileNode(t, homes[i], autos[i], peers...))
	}
	eventually(t, 60*time.Second, "every node reads #general", func() bool {
		for _, n := range nodes {
			if _, _, err := n.resolveRoom(ctx, "general"); err != nil {
				return false
			}
		}
		return true
	})
	return nodes, homes
}

func openFileNode(t *testing.T, home string, auto int64, peers ...string) *Node {
	t.Helper()
	n, err := Open(context.Background(), Config{
		Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers, AutoDownload: auto,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// randomFile writes size random bytes to a new file and returns its path
// and contents.
func randomFile(t *testing.T, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func fileState(n *Node, id string) string {
	f, err := n.File(context.Background(), id)
	if err != nil {
		return err.Error()
	}
	return f.State
}

func getAndCompare(t *testing.T, n *Node, id string, want []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := n.GetFile(ctx, id, out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, not the %d posted", len(got), len(want))
	}
	if f.State != "complete" || f.HaveBytes != f.CipherSize {
		t.Fatalf("after get: %+v", f)
	}
}

func TestFileReachesMembersFromEveryPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := fileWorkspace(t, 0, 0, -1)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	path, data := randomFile(t, "video.mp4", 12<<20)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	if f.State != "complete" || f.Size != 12<<20 || f.Type != "video/mp4" || f.Chunks < 12 {
		t.Fatalf("posted: %+v", f)
	}
	// B fetches it on arrival (12 MiB is under the default); C does not.
	eventually(t, 60*time.Second, "b downloads the file by itself", func() bool { return fileState(b, f.ID) == "complete" })
	eventually(t, 60*time.Second, "c holds the file message", func() bool {
		_, err := c.File(ctx, f.ID)
		return err == nil
	})
	if s := fileState(c, f.ID); s != "missing" {
		t.Fatalf("c with auto-download off: %s", s)
	}
	getAndCompare(t, b, f.ID, data)
	eventually(t, 60*time.Second, "c connected to a and b", func() bool { return len(c.connectedMembers()) == 2 })
	getAndCompare(t, c, f.ID, data)
	src := c.BlobSources()
	fromA, fromB := src[a.PeerID().String()], src[b.PeerID().String()]
	t.Logf("c fetched %d chunks from a, %d from b", fromA.Chunks, fromB.Chunks)
	if fromA.Chunks == 0 || fromB.Chunks == 0 || int(fromA.Chunks+fromB.Chunks) != f.Chunks {
		t.Fatalf("c's sources: %+v", src)
	}
	files, err := c.Files(ctx, "general")
	if err != nil || len(files) != 1 || files[0].Name != "video.mp4" || files[0].AuthorName != "Ana" {
		t.Fatalf("c's files: %+v, %v", files, err)
	}
	if log := texts(t, c, "general"); len(log) != 1 || log[0] != "video.mp4" {
		t.Fatalf("c's log: %q", log)
	}
}

// TestFileFetchKeepsOffline: FetchFile leaves the whole file held and
// recorded on the receiver, wanted, with nothing written out, and it can
// then be got with its sender gone.
func TestFileFetchKeepsOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := fileWorkspace(t, -1, -1)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	path, data := randomFile(t, "plans.pdf", 5<<20+77)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b holds the file message", func() bool { _, err := b.File(ctx, f.ID); return err == nil })
	if _, err := b.FetchFile(ctx, "00"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fetch of a malformed ID: %v", err)
	}
	v, err := b.FetchFile(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != "complete" || v.HaveBytes != v.CipherSize {
		t.Fatalf("after fetch: %+v", v)
	}
	if got := b.BlobSources()[a.PeerID().String()]; int(got.Chunks) != f.Chunks {
		t.Fatalf("b fetched %+v from a, want %d chunks", got, f.Chunks)
	}
	fid, _ := wire.ParseID(f.ID)
	sf, err := b.st.File(ctx, fid)
	if err != nil || !sf.Wanted {
		t.Fatalf("after fetch the file is not marked wanted: %+v, %v", sf, err)
	}
	a.Close()
	eventually(t, 30*time.Second, "b sees a gone", func() bool { return len(b.connectedMembers()) == 0 })
	getAndCompare(t, b, f.ID, data)
	b.Close()
	m, err := wire.DecodeFileManifest(mustFile(t, homes[1], f.ID))
	if err != nil {
		t.Fatal(err)
	}
	if held := heldOnDisk(t, homes[1], m); held != len(m.Chunks) {
		t.Fatalf("the pack record names %d of %d chunks", held, len(m.Chunks))
	}
}

// A member that answers every chunk with garbage cannot make a receiver
// accept it: each bad chunk is counted against it and fetched elsewhere.
func TestFileBadChunkRefetched(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := fileWorkspace(t, -1, -1, -1)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	eventually(t, 60*time.Second, "c connected to a and b", func() bool { return len(c.connectedMembers()) == 2 })
	b.host.SetStreamHandler(blobProtocol, func(s network.Stream) {
		defer s.Close()
		for {
			req, err := wire.ReadFrame(s, wire.MaxBlobRequestBytes)
			if err != nil {
				return
			}
			r, err := wire.DecodeBlobRequest(req)
			if err != nil {
				return
			}
			answer := bytes.Repeat([]byte{0xff}, wire.BlobHaveLen(len(r.Chunks)))
			if r.Op == wire.BlobGet {
				answer = make([]byte, chunkSize) // garbage; the last chunk's length is wrong too
			}
			if wire.WriteFrame(s, answer) != nil {
				return
			}
		}
	})
	// Many more chunks than one peer keeps in flight, so that b is asked too.
	path, data := randomFile(t, "contract.pdf", 24<<20)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "c holds the file message", func() bool { _, err := c.File(ctx, f.ID); return err == nil })
	getAndCompare(t, c, f.ID, data)
	src := c.BlobSources()
	fromA, fromB := src[a.PeerID().String()], src[b.PeerID().String()]
	if fromB.Chunks != 0 || fromB.Bad == 0 || int(fromA.Chunks) != f.Chunks {
		t.Fatalf("c's sources: a %+v, b %+v", fromA, fromB)
	}
}

// A download cut short by a restart resumes from the chunks already held.
func TestFileResumeAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := fileWorkspace(t, -1, -1)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	path, data := randomFile(t, "backup.tar", 12<<20)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b holds the file message", func() bool { _, err := b.File(ctx, f.ID); return err == nil })
	var once sync.Once
	cut := make(chan struct{})
	got := 0
	var mu sync.Mutex
	hook := func(peer.ID, wire.ID) {
		mu.Lock()
		got++
		if got == 4 {
			once.Do(func() { close(cut) })
		}
		mu.Unlock()
	}
	b.files.hook.Store(&hook)
	errc := make(chan error, 1)
	go func() {
		_, err := b.GetFile(ctx, f.ID, filepath.Join(t.TempDir(), "out"))
		errc <- err
	}()
	select {
	case <-cut:
	case err := <-errc:
		t.Fatalf("get ended before the cut: %v", err)
	}
	b.Close()
	if err := <-errc; err == nil {
		t.Fatal("get completed although the node closed")
	}
	m, err := wire.DecodeFileManifest(mustFile(t, homes[1], f.ID))
	if err != nil {
		t.Fatal(err)
	}
	held := heldOnDisk(t, homes[1], m)
	if held < 4 || held == len(m.Chunks) {
		t.Fatalf("b held %d of %d chunks at the cut", held, len(m.Chunks))
	}
	b = openFileNode(t, homes[1], -1, a.Addrs()[0])
	eventually(t, 60*time.Second, "b reconnects", func() bool { return len(b.connectedMembers()) > 0 })
	getAndCompare(t, b, f.ID, data)
	fetched := int(b.BlobSources()[a.PeerID().String()].Chunks)
	t.Logf("held %d of %d chunks at the cut; fetched %d after the restart", held, len(m.Chunks), fetched)
	if again := fetched - (len(m.Chunks) - held); again >= 2 {
		t.Fatalf("fetched %d chunks it already held", again)
	}
}

// heldOnDisk counts the chunks of m that the pack record under home names
// as held: what a restarted node resumes from.
func heldOnDisk(t *testing.T, home string, m *wire.FileManifest) int {
	t.Helper()
	p := newBlobStore(filepath.Join(home, blobsDir)).open(layoutOf(m))
	n, _ := p.count()
	return n
}

// mustFile reads a file's manifest from a closed node's store.
func mustFile(t *testing.T, home, id string) []byte {
	t.Helper()
	n := openFileNode(t, home, -1)
	defer n.Close()
	fid, _ := wire.ParseID(id)
	f, err := n.st.File(context.Background(), fid)
	if err != nil {
		t.Fatal(err)
	}
	return f.Manifest
}

func TestFileNotInRoomNeverReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := fileWorkspace(t, 0, 0, 0)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	if _, err := a.CreateRoom(ctx, "board", []peer.ID{b.PeerID()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b reads #board", func() bool { _, _, err := b.resolveRoom(ctx, "board"); return err == nil })
	path, data := randomFile(t, "salaries.xlsx", 3<<20)
	f, err := a.SendFile(ctx, "board", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b downloads the file", func() bool { return fileState(b, f.ID) == "complete" })
	id, _ := wire.ParseID(f.ID)
	eventually(t, 60*time.Second, "c stores the file message as ciphertext", func() bool {
		_, err := c.st.Envelope(ctx, id)
		return err == nil
	})
	if _, err := c.File(ctx, f.ID); !errors.Is(err, ErrUnknownFile) {
		t.Fatalf("c describes a file of a room it is not in: %v", err)
	}
	if _, err := c.GetFile(ctx, f.ID, filepath.Join(t.TempDir(), "out")); !errors.Is(err, ErrUnknownFile) {
		t.Fatalf("c gets a file of a room it is not in: %v", err)
	}
	if fs, err := c.Files(ctx, ""); err != nil || len(fs) != 0 {
		t.Fatalf("c's files: %+v, %v", fs, err)
	}
	// Nothing under c's home holds any 4 KiB run of the plaintext.
	probe := data[1<<20 : 1<<20+4096]
	filepath.Walk(homes[2], func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer fh.Close()
		all, _ := io.ReadAll(fh)
		if bytes.Contains(all, probe) {
			t.Errorf("plaintext found in %s", p)
		}
		return nil
	})
}

func TestFileOverMaxRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	home := filepath.Join(t.TempDir(), "a")
	initHome(t, home)
	n, err := Open(context.Background(), Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, MaxFileSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	path, _ := randomFile(t, "big.bin", 1<<20+1)
	_, err = n.SendFile(context.Background(), "general", path)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "largest file") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := n.SendFile(context.Background(), "general", "relative.txt"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("relative path: %v", err)
	}
}

// The automatic download is bounded by what it fetches and stores, the
// ciphertext, not by the plaintext size a manifest claims: a member cannot
// make every node fetch gigabytes on arrival by posting a manifest that
// calls them a few bytes. Such a manifest is now refused on arrival
// (TestFilePolicyBoundsCiphertext), but a home may hold one stored before
// that: b is given its row as an older version stored it, and its file
// loop must not fetch it by itself.
func TestFileAutoDownloadBoundsCiphertext(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := fileWorkspace(t, 0, 0)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	eventually(t, 60*time.Second, "b connected to a", func() bool { return len(b.connectedMembers()) == 1 })

	// 24 MiB of ciphertext, over b's 16 MiB default, held and served by a,
	// under a manifest that claims 100 bytes of plaintext.
	c, m := postUnderstatedFile(t, a, 24<<20)
	lie := c.id.String()
	eventually(t, 60*time.Second, "b holds the file message", func() bool {
		msgs, _ := b.Log(ctx, "general", 20)
		for _, msg := range msgs {
			if msg.ID == lie {
				return true
			}
		}
		return false
	})
	if _, err := b.File(ctx, lie); !errors.Is(err, ErrUnknownFile) {
		t.Fatalf("b lists a file whose ciphertext outgrows its size: %v", err)
	}
	if err := b.st.Update(ctx, true, func(tx *store.Tx) error {
		return tx.PutFile(store.File{ID: c.id, Room: c.hdr.Room, Author: c.hdr.Author, Time: c.hdr.Time, Key: c.hdr.Key, Manifest: m.Marshal()})
	}); err != nil {
		t.Fatal(err)
	}
	b.kickFiles()

	// An honest small file after it is fetched on arrival: automatic
	// downloads work here, and b has had the manifest for a while.
	path, _ := randomFile(t, "small.txt", 3000)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b downloads the small file by itself", func() bool { return fileState(b, f.ID) == "complete" })
	if _, err := b.File(ctx, lie); err != nil {
		t.Fatalf("b does not list the file: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := b.File(ctx, lie); err != nil || v.State != "missing" {
			t.Fatalf("b fetched %d bytes of a 24 MiB ciphertext by itself: %+v, %v", v.HaveBytes, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Asked for, it is fetched whatever its size.
	if v, err := b.FetchFile(ctx, lie); err != nil || v.State != "complete" {
		t.Fatalf("b's fetch when asked: %+v, %v", v, err)
	}
}

// TestFilePolicyBoundsCiphertext: the workspace's max-file-size bounds the
// ciphertext a member stores and serves, not only the plaintext a manifest
// claims. A file message whose ciphertext is more than age makes of its
// claimed size is refused on arrival, as an over-size file is: it shows,
// counted under the policy, and its file is neither listed nor fetched.
func TestFilePolicyBoundsCiphertext(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, _ := fileWorkspace(t, -1, -1)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	eventually(t, 60*time.Second, "b connected to a", func() bool { return len(b.connectedMembers()) == 1 })
	if _, err := a.SetPolicy(ctx, PolicyMaxFileSize, "1MiB", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b knows the 1 MiB limit", func() bool {
		p, err := b.Policy(ctx)
		return err == nil && p.MaxFileSize == 1<<20
	})

	before := b.hist.rejectedCounts()[reasonPolicy]
	// 3 MiB of ciphertext, over the limit, held and served by a, under a
	// manifest that claims 100 bytes of plaintext.
	c, m := postUnderstatedFile(t, a, 3<<20)
	lie := c.id.String()

	var shown Message
	eventually(t, 60*time.Second, "b holds the file message", func() bool {
		msgs, err := b.Log(ctx, "general", 20)
		for _, msg := range msgs {
			if msg.ID == lie {
				shown = msg
			}
		}
		return err == nil && shown.ID == lie
	})
	if v, err := b.File(ctx, lie); err == nil {
		t.Fatalf("b lists a file of %d bytes of ciphertext, over the 1 MiB limit: %+v", m.CipherSize, v)
	}
	if !strings.Contains(shown.Text, "refused") {
		t.Errorf("b shows the message as %q, want it marked refused", shown.Text)
	}
	if got := b.hist.rejectedCounts()[reasonPolicy]; got != before+1 {
		t.Errorf("b counts %d files refused by policy, want %d", got, before+1)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if v, err := b.FetchFile(fctx, lie); err == nil {
		t.Fatalf("b fetched a file over the limit when asked: %+v", v)
	}
}

// checkManifest refuses what checkFile refuses, by the claimed plaintext
// size, and a ciphertext longer than age makes of that size, with or
// without a size limit.
func TestFilePolicyCheckManifest(t *testing.T) {
	limited := Policy{Files: true, MaxFileSize: 1 << 20}
	tests := []struct {
		name        string
		p           Policy
		size, ciph  uint64
		refused     bool
		errContains string
	}{
		{"honest, under the limit", limited, 1000, 1000 + ageOverhead(1000), false, ""},
		{"honest, at the limit", limited, 1 << 20, 1<<20 + ageOverhead(1<<20), false, ""},
		{"claimed size over the limit", limited, 1<<20 + 1, 1<<20 + 200, true, "at most"},
		{"ciphertext over what its size makes", limited, 100, 100 + ageOverhead(100) + 1, true, "encrypted form"},
		{"ciphertext over the limit, size under", limited, 100, 3 << 20, true, "encrypted form"},
		{"no limit, honest", defaultPolicy(), 8 << 30, 8<<30 + ageOverhead(8<<30), false, ""},
		{"no limit, ciphertext over what its size makes", defaultPolicy(), 100, 3 << 20, true, "encrypted form"},
		{"files off", Policy{}, 10, 10 + ageOverhead(10), true, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.checkManifest(&wire.FileManifest{Name: "f", Size: tt.size, CipherSize: tt.ciph})
			if (err != nil) != tt.refused {
				t.Fatalf("checkManifest = %v, want refused %v", err, tt.refused)
			}
			if err != nil && (!errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tt.errContains)) {
				t.Errorf("checkManifest = %v, want ErrForbidden saying %q", err, tt.errContains)
			}
		})
	}
}

// A fetch that startFetch let start just as Close began is waited for by
// Close: Close never returns with a fetch still to run on its closed store.
// The hook holds startFetch between its check and the start while Close
// runs; the deadline only bounds how long Close is given to return early.
func TestFileFetchNotStartedAfterClose(t *testing.T) {
	home := filepath.Join(t.TempDir(), "n0")
	initHome(t, home)
	n := openFileNode(t, home, -1)
	id := wire.ID{1}
	var r *fetchRun
	inWindow, release := make(chan struct{}), make(chan struct{})
	hook := func(got wire.ID) {
		if got == id {
			r = n.files.running[id] // under files.mu, as startFetch holds it
			close(inWindow)
			<-release
		}
	}
	n.files.starting.Store(&hook)
	started := make(chan struct{})
	go func() {
		n.startFetch(id)
		close(started)
	}()
	<-inWindow
	closed := make(chan struct{})
	var doneAtClose bool
	go func() {
		n.Close()
		select {
		case <-r.done:
			doneAtClose = true
		default:
		}
		close(closed)
	}()
	select { // a Close that does not wait for the fetch returns well within this
	case <-closed:
	case <-time.After(time.Second):
	}
	close(release)
	<-closed
	<-started
	<-r.done
	if !doneAtClose {
		t.Fatal("Close returned before a fetch it let start had run: the fetch ran on a closed store")
	}
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("the fetch started as Close began ended with %v, want context.Canceled", r.err)
	}
	n.files.starting.Store(nil)
	if after := n.startFetch(wire.ID{2}); !errors.Is(after.err, context.Canceled) {
		t.Errorf("a fetch asked for after Close: %v, want context.Canceled", after.err)
	}
}

// ageOverhead covers what age really adds, so fetchesOnArrival never turns
// down an honest file: sizes around its 64 KiB pieces, and none.
func TestFileAgeOverheadCoversRealCiphertext(t *testing.T) {
	k, err := crypto.NewRoomKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 20, 3<<20 + 17} {
		var buf bytes.Buffer
		w, err := crypto.EncryptContentTo(k, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, bound := uint64(buf.Len()), uint64(size)+ageOverhead(uint64(size)); got > bound {
			t.Errorf("%d bytes encrypt to %d, over the bound of %d", size, got, bound)
		}
	}
}

// A chunk is held only when it is as long as the manifest says, not only
// when it matches its hash: a manifest whose chunk hash names fewer bytes
// than its layout gives that chunk is never fetched as complete.
func TestFileShortChunkNotHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	nodes, homes := fileWorkspace(t, -1, -1)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	eventually(t, 60*time.Second, "b connected to a", func() bool { return len(b.connectedMembers()) == 1 })
	short := bytes.Repeat([]byte{7}, 4096)
	m := &wire.FileManifest{Name: "short.bin", Size: 100, CipherSize: 8192, ChunkSize: 8192, Chunks: []wire.ID{sha256Sum(short)}}
	a.host.SetStreamHandler(blobProtocol, func(s network.Stream) {
		defer s.Close()
		for {
			req, err := wire.ReadFrame(s, wire.MaxBlobRequestBytes)
			if err != nil {
				return
			}
			r, err := wire.DecodeBlobRequest(req)
			if err != nil {
				return
			}
			answer := bytes.Repeat([]byte{0xff}, wire.BlobHaveLen(len(r.Chunks)))
			if r.Op == wire.BlobGet {
				answer = short
			}
			if wire.WriteFrame(s, answer) != nil {
				return
			}
		}
	})
	room, _, err := a.resolveRoom(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := a.hist.postContent(ctx, room, &wire.Content{Kind: wire.KindFile, File: m})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(c)
	id := c.id.String()
	eventually(t, 60*time.Second, "b holds the file message", func() bool { _, err := b.File(ctx, id); return err == nil })
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if v, err := b.FetchFile(fctx, id); err == nil {
		t.Fatalf("b fetched a chunk of 4096 bytes as the 8192 its manifest says: %+v", v)
	}
	if v, err := b.File(ctx, id); err != nil || v.State != "missing" || v.HaveBytes != 0 {
		t.Fatalf("b after the fetch: %+v, %v", v, err)
	}
	if got := b.BlobSources()[a.PeerID().String()]; got.Chunks != 0 || got.Bad == 0 {
		t.Fatalf("b's counts for a: %+v; want the short chunk counted bad", got)
	}
	b.Close()
	if held := heldOnDisk(t, homes[1], m); held != 0 {
		t.Fatalf("b's record names %d chunks of the file", held)
	}
}

// fileHeldByTwo makes a workspace of a, b and c, where a posts a file of
// size random bytes and b fetches all of it; c holds the file message only.
func fileHeldByTwo(t *testing.T, name string, size int) (a, b, c *Node, homes []string, f File, data []byte) {
	t.Helper()
	nodes, homes := fileWorkspace(t, -1, -1, -1)
	a, b, c = nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	path, data := randomFile(t, name, size)
	f, err := a.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{b, c} {
		eventually(t, 60*time.Second, "the file message arrives", func() bool { _, err := n.File(ctx, f.ID); return err == nil })
	}
	if v, err := b.FetchFile(ctx, f.ID); err != nil || v.State != "complete" {
		t.Fatalf("b's fetch: %+v, %v", v, err)
	}
	return a, b, c, homes, f, data
}

// A member that connects while a fetch runs becomes one of its sources: b,
// which holds the file, comes back while c fetches it from a alone, and c
// fetches from b too, while a's workers are held.
func TestFileFetchTakesMemberThatConnects(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	a, b, c, homes, f, data := fileHeldByTwo(t, "site-survey.mp4", 12<<20)
	ctx := context.Background()
	b.Close()
	eventually(t, 60*time.Second, "c connected to a alone", func() bool {
		ps := c.connectedMembers()
		return len(ps) == 1 && ps[0] == a.PeerID()
	})

	release := make(chan struct{})
	var releaseOnce, firstOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	first := make(chan struct{})
	hook := func(p peer.ID, _ wire.ID) {
		if p != a.PeerID() {
			return
		}
		firstOnce.Do(func() { close(first) })
		<-release // a's workers wait here, each after its first chunk
	}
	c.files.hook.Store(&hook)
	errc := make(chan error, 1)
	go func() {
		_, err := c.FetchFile(ctx, f.ID)
		errc <- err
	}()
	select {
	case <-first:
	case err := <-errc:
		t.Fatalf("c's fetch ended before its first chunk: %v", err)
	}
	b = openFileNode(t, homes[1], -1, c.Addrs()[0])
	eventually(t, 60*time.Second, "c fetching from b, back while the fetch runs", func() bool {
		return c.BlobSources()[b.PeerID().String()].Chunks > 0
	})
	releaseOnce.Do(func() { close(release) })
	if err := <-errc; err != nil {
		t.Fatalf("c's fetch: %v", err)
	}
	getAndCompare(t, c, f.ID, data)
	src := c.BlobSources()
	t.Logf("c fetched %d chunks from a, %d from b", src[a.PeerID().String()].Chunks, src[b.PeerID().String()].Chunks)
}

// A source that goes away during a fetch and comes back, as the sender
// after a restart, is asked again: b serves c's fetch with a, restarts, and
// c fetches from b again while a's workers are held.
func TestFileFetchTakesMemberThatReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	a, b, c, homes, f, data := fileHeldByTwo(t, "floor-plan.pdf", 24<<20)
	ctx := context.Background()
	bID := b.PeerID()
	eventually(t, 60*time.Second, "c connected to a and b", func() bool { return len(c.connectedMembers()) == 2 })

	releaseA, bGone, firstB := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var releaseOnce, goneOnce, firstOnce sync.Once
	defer releaseOnce.Do(func() { close(releaseA) })
	defer goneOnce.Do(func() { close(bGone) })
	hook := func(p peer.ID, _ wire.ID) {
		switch p {
		case a.PeerID():
			<-releaseA // a's workers wait here, each after its first chunk
		case bID:
			firstOnce.Do(func() { close(firstB) })
			<-bGone // b's workers too, until b is closed
		}
	}
	c.files.hook.Store(&hook)
	errc := make(chan error, 1)
	go func() {
		_, err := c.FetchFile(ctx, f.ID)
		errc <- err
	}()
	select {
	case <-firstB:
	case err := <-errc:
		t.Fatalf("c's fetch ended before its first chunk from b: %v", err)
	}
	b.Close()
	goneOnce.Do(func() { close(bGone) })
	eventually(t, 60*time.Second, "c connected to a alone", func() bool { return len(c.connectedMembers()) == 1 })
	eventually(t, 10*time.Second, "c's workers for b gone", func() bool {
		var plan *fetchPlan
		c.files.mu.Lock()
		for _, run := range c.files.running { // c's fetch runs: a's workers are held
			plan = run.plan.Load()
		}
		c.files.mu.Unlock()
		if plan == nil {
			t.Fatal("c's fetch is not running")
		}
		plan.mu.Lock()
		defer plan.mu.Unlock()
		return plan.live[bID] == 0
	})
	before := c.BlobSources()[bID.String()].Chunks
	b = openFileNode(t, homes[1], -1, c.Addrs()[0])
	eventually(t, 30*time.Second, "c fetching from b again, back while the fetch runs", func() bool {
		return c.BlobSources()[bID.String()].Chunks > before
	})
	releaseOnce.Do(func() { close(releaseA) })
	if err := <-errc; err != nil {
		t.Fatalf("c's fetch: %v", err)
	}
	getAndCompare(t, c, f.ID, data)
	src := c.BlobSources()
	t.Logf("c fetched %d chunks from a, %d from b (%d before its restart)", src[a.PeerID().String()].Chunks, src[bID.String()].Chunks, before)
}

// postUnderstatedFile has a post a file message whose manifest claims 100
// bytes of plaintext for cipherBytes of random ciphertext, which a holds and
// serves: a lie no honest node tells.
func postUnderstatedFile(t *testing.T, a *Node, cipherBytes int) (*checked, *wire.FileManifest) {
	t.Helper()
	ctx := context.Background()
	pw, err := newPackWriter(a.files.blobs, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	bulk := make([]byte, cipherBytes)
	rand.Read(bulk)
	if _, err := pw.Write(bulk); err != nil {
		t.Fatal(err)
	}
	l, err := pw.commit()
	if err != nil {
		t.Fatal(err)
	}
	room, _, err := a.resolveRoom(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.FileManifest{Name: "note.txt", Size: 100, CipherSize: l.cipherSize, ChunkSize: uint32(l.chunkSize), Chunks: l.chunks}
	c, _, err := a.hist.postContent(ctx, room, &wire.Content{Kind: wire.KindFile, File: m})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(c)
	return c, m
}

// TestFileByIDPrefix: a file is named by its whole ID or by a start of it
// of at least 8 hex digits that no other file's shares, as 'charla files'
// lists IDs and as invites are revoked.
func TestFileByIDPrefix(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNodeAlone(t, filepath.Join(dir, "ana"))
	path, _ := randomFile(t, "acta.pdf", 3000)
	f, err := ana.SendFile(ctx, "general", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{f.ID, f.ID[:8], strings.ToUpper(f.ID[:12]), " " + f.ID[:20] + " "} {
		got, err := ana.File(ctx, s)
		if err != nil || got.ID != f.ID {
			t.Errorf("File(%q) = %s, %v; want %s", s, got.ID, err, f.ID)
		}
	}
	for _, s := range []string{f.ID[:7], "", "zzzzzzzz", f.ID + "0"} {
		if _, err := ana.File(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("File(%q): %v, want ErrInvalid", s, err)
		}
	}
	other := "ffffffff"
	if strings.HasPrefix(f.ID, other) {
		other = "00000000"
	}
	if _, err := ana.File(ctx, other); !errors.Is(err, ErrUnknownFile) {
		t.Errorf("File(%q), no such file: %v, want ErrUnknownFile", other, err)
	}
	// Two files whose IDs share a start name neither: store.TestFilesFrom
	// (a node cannot make two such IDs on purpose).
}
