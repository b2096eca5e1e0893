package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Defaults of Config's file settings.
const (
	DefaultAutoDownload = 16 << 20 // room members fetch files up to this size on arrival
	DefaultMaxFileSize  = 4 << 30  // the largest file a node posts
)

// fileRetry is how often downloads that are wanted but incomplete are tried
// again; a new connection tries them at once.
const fileRetry = 30 * time.Second

// ErrUnknownFile is returned (wrapped) for a file ID this node does not know
// or cannot read.
var ErrUnknownFile = errors.New("no such file")

// ErrDiskFull is returned (wrapped, naming the disk) when a chunk or a saved
// file does not fit; what was stored stays, and the download resumes.
var ErrDiskFull = errors.New("disk full")

// FileBackend is what the local API asks of a node about files. It is apart
// from Backend so that backends without files still serve the rest.
type FileBackend interface {
	// SendFile posts the file at path, an absolute path on this machine, to
	// a room named as Send accepts it.
	SendFile(ctx context.Context, room, path string) (File, error)
	// Files lists the files of a room, or of every readable room for "".
	Files(ctx context.Context, room string) ([]File, error)
	// File describes one file by its hex ID.
	File(ctx context.Context, id string) (File, error)
	// GetFile fetches a file's missing chunks, verifies and decrypts it to
	// path (absolute), and returns once it is complete.
	GetFile(ctx context.Context, id, path string) (File, error)
	// FetchFile fetches a file's missing chunks and verifies and stores
	// them on this node, without decrypting it anywhere, and returns once
	// it is complete: kept for offline use and for serving to others.
	FetchFile(ctx context.Context, id string) (File, error)
}

var _ FileBackend = (*Node)(nil)

// File is a file posted in a room, as a user sees it.
type File struct {
	ID         string    `json:"id"` // the file message's ID, hex
	Room       string    `json:"room"`
	RoomName   string    `json:"room_name"`
	Name       string    `json:"name"`
	Size       uint64    `json:"size"` // plaintext bytes
	Type       string    `json:"type"`
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name"`
	Time       time.Time `json:"time"`
	State      string    `json:"state"`       // complete, partial, missing
	HaveBytes  uint64    `json:"have_bytes"`  // ciphertext bytes held, of cipher_size
	CipherSize uint64    `json:"cipher_size"` // ciphertext bytes
	Chunks     int       `json:"chunks"`
}

// files is a node's file transfer state.
type files struct {
	blobs *blobStore
	stats blobStats
	hook  atomic.Pointer[func(peer.ID, wire.ID)] // tests: called after each chunk fetched
	// starting is for tests: startFetch calls it, under mu, once it has
	// counted a fetch of the ID and before the fetch's goroutine starts.
	starting atomic.Pointer[func(wire.ID)]
	kick     chan struct{}

	mu      sync.Mutex // guards running
	running map[wire.ID]*fetchRun

	connMu    sync.Mutex    // guards connected
	connected chan struct{} // closed, and replaced, when a peer connects: running fetches look for new sources
}

// fetchRun is one download under way; callers asking for the same file wait
// for it rather than start another.
type fetchRun struct {
	done chan struct{}
	err  error
	plan atomic.Pointer[fetchPlan] // set once the fetch knows which peers hold which chunks
}

func (n *Node) initFiles() {
	n.files.blobs = newBlobStore(filepath.Join(n.cfg.Home, blobsDir))
	n.files.kick = make(chan struct{}, 1)
	n.files.running = map[wire.ID]*fetchRun{}
	n.files.connected = make(chan struct{})
}

// peerConnected tells running fetches that a peer connected.
func (n *Node) peerConnected() {
	n.files.connMu.Lock()
	defer n.files.connMu.Unlock()
	close(n.files.connected)
	n.files.connected = make(chan struct{})
}

// nextConnect returns a channel closed when a peer connects from now on.
func (n *Node) nextConnect() <-chan struct{} {
	n.files.connMu.Lock()
	defer n.files.connMu.Unlock()
	return n.files.connected
}

func (n *Node) autoDownload() int64 {
	if n.cfg.AutoDownload == 0 {
		return DefaultAutoDownload
	}
	return n.cfg.AutoDownload
}

// fetchesOnArrival reports whether file m is fetched as soon as its message
// arrives: its plaintext is within autoDownload, and its ciphertext, what a
// fetch stores, is no more than age makes of that plaintext. The plaintext
// size is only the author's word until the file is decrypted.
func (n *Node) fetchesOnArrival(m *wire.FileManifest) bool {
	auto := n.autoDownload()
	return auto >= 0 && m.Size <= uint64(auto) && m.CipherSize <= m.Size+ageOverhead(m.Size)
}

// ageOverhead bounds what age adds to size bytes of plaintext: a header
// (crypto.DecryptContentFrom refuses one over 16 KiB), a 16-byte nonce, and
// a 16-byte tag for each 64 KiB piece, of which there is at least one.
func ageOverhead(size uint64) uint64 { return 16<<10 + 16 + 16*(size/(64<<10)+1) }

// maxFileSize is the largest file this node posts: its own limit, or the
// workspace policy's when that is lower.
func (n *Node) maxFileSize() int64 {
	limit := n.cfg.MaxFileSize
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	if p := n.hist.currentPolicy(); p.MaxFileSize > 0 && p.MaxFileSize < limit {
		limit = p.MaxFileSize
	}
	return limit
}

// SendFile encrypts the file at path to the room key as it reads it, stores
// the ciphertext as chunks named by their hashes, and posts the manifest.
func (n *Node) SendFile(ctx context.Context, room, path string) (File, error) {
	if !filepath.IsAbs(path) {
		return File{}, fmt.Errorf("%w: file path %q is not absolute", ErrInvalid, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, path)
	}
	if err := n.hist.currentPolicy().checkFile(fi.Size()); err != nil {
		return File{}, err
	}
	if fi.Size() > n.maxFileSize() {
		return File{}, fmt.Errorf("%w: %s is %d bytes; the largest file is %d bytes", ErrInvalid, path, fi.Size(), n.maxFileSize())
	}
	name := filepath.Base(path)
	if len(name) > wire.MaxNameBytes {
		return File{}, fmt.Errorf("%w: file name is over %d bytes", ErrInvalid, wire.MaxNameBytes)
	}
	typ, _, _ := strings.Cut(mime.TypeByExtension(filepath.Ext(name)), ";")
	if len(typ) > wire.MaxMIMETypeBytes {
		typ = ""
	}
	id, other, err := n.resolveRoom(ctx, room)
	if err != nil {
		return File{}, err
	}
	if other != nil && string(other) == string(n.hist.self) {
		return File{}, fmt.Errorf("%w: a direct message needs another member", ErrInvalid)
	}
	n.awaitOwnHead(ctx)
	if other != nil {
		if _, err := n.hist.sendKey(ctx, id); errors.Is(err, ErrUnknownRoom) {
			cs, err := n.hist.createRoom(ctx, id, wire.RoomDirect, "", [][]byte{other}, false)
			if err != nil {
				return File{}, err
			}
			for _, c := range cs {
				n.publish(c)
			}
		}
	}
	k, err := n.hist.sendKey(ctx, id)
	if err != nil {
		return File{}, err
	}
	pw, err := newPackWriter(n.files.blobs, chunkSize)
	if err != nil {
		return File{}, fmt.Errorf("post %s: %w", name, err)
	}
	w, err := crypto.EncryptContentTo(crypto.RoomKey(k.Key), pw)
	if err != nil {
		pw.abort()
		return File{}, err
	}
	size, err := io.Copy(w, io.LimitReader(f, n.maxFileSize()+1))
	if err == nil {
		err = w.Close()
	}
	if err == nil && size > n.maxFileSize() {
		err = fmt.Errorf("%w: %s grew past %d bytes while being read", ErrInvalid, path, n.maxFileSize())
	}
	if err == nil && len(pw.hashes) > wire.MaxFileChunks {
		err = fmt.Errorf("%w: %s needs %d chunks; the limit is %d", ErrInvalid, path, len(pw.hashes), wire.MaxFileChunks)
	}
	if err != nil {
		pw.abort()
		return File{}, fmt.Errorf("post %s: %w", name, err)
	}
	l, err := pw.commit()
	if err != nil {
		return File{}, fmt.Errorf("post %s: %w", name, err)
	}
	m := &wire.FileManifest{
		Name: name, Size: uint64(size), Type: typ,
		CipherSize: l.cipherSize, ChunkSize: uint32(l.chunkSize), Chunks: l.chunks,
	}
	c, _, err := n.hist.postContent(ctx, id, &wire.Content{Kind: wire.KindFile, File: m})
	if err != nil {
		return File{}, err
	}
	n.publish(c)
	return n.File(ctx, c.id.String())
}

// Files lists the files of a room, or of every room for "", newest first.
func (n *Node) Files(ctx context.Context, room string) ([]File, error) {
	var id wire.ID
	if room != "" {
		var err error
		if id, _, err = n.resolveRoom(ctx, room); err != nil {
			return nil, err
		}
	}
	fs, err := n.st.Files(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(fs))
	for _, f := range fs {
		if v, err := n.fileView(ctx, f); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// File describes the file of message id.
func (n *Node) File(ctx context.Context, id string) (File, error) {
	f, _, err := n.lookupFile(ctx, id)
	if err != nil {
		return File{}, err
	}
	return n.fileView(ctx, f)
}

// minFileIDDigits is the shortest start of a file's ID that names it, as
// for invites: what a user types from 'charla files'.
const minFileIDDigits = 8

// lookupFile finds the file whose ID is s, or starts with s when s has at
// least minFileIDDigits hex digits and only one file's does.
func (n *Node) lookupFile(ctx context.Context, s string) (store.File, *wire.FileManifest, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < minFileIDDigits || len(s) > 2*len(wire.ID{}) || strings.Trim(s, "0123456789abcdef") != "" {
		return store.File{}, nil, fmt.Errorf("%w: file ID %q: give the ID, or at least its first %d hex digits, as 'charla files' lists it", ErrInvalid, s, minFileIDDigits)
	}
	lo, _ := wire.ParseID(s + strings.Repeat("0", 2*len(wire.ID{})-len(s)))
	hi, _ := wire.ParseID(s + strings.Repeat("f", 2*len(wire.ID{})-len(s)))
	found, err := n.st.FilesFrom(ctx, lo, hi, 2)
	if err != nil {
		return store.File{}, nil, err
	}
	switch len(found) {
	case 0:
		return store.File{}, nil, fmt.Errorf("%w %s", ErrUnknownFile, s)
	case 2:
		return store.File{}, nil, fmt.Errorf("%w: several files' IDs start with %s; give more digits", ErrAmbiguous, s)
	}
	f := found[0]
	m, err := wire.DecodeFileManifest(f.Manifest)
	if err != nil {
		return store.File{}, nil, fmt.Errorf("file %s: %w", s, err)
	}
	return f, m, nil
}

func (n *Node) fileView(ctx context.Context, f store.File) (File, error) {
	m, err := wire.DecodeFileManifest(f.Manifest)
	if err != nil {
		return File{}, err
	}
	author, _ := n.hist.member(f.Author)
	v := File{
		ID: f.ID.String(), Room: f.Room.String(), Name: m.Name, Size: m.Size, Type: m.Type,
		Author: peer.ID(f.Author).String(), AuthorName: author.name, Time: time.UnixMilli(f.Time).UTC(),
		CipherSize: m.CipherSize, Chunks: len(m.Chunks),
	}
	if r, err := n.hist.room(ctx, f.Room); err == nil {
		v.RoomName = n.roomView(r).Name
	}
	// The record of what is held, not a hash of every chunk: a listing
	// stays cheap for a 4 GiB file. Every read of a chunk checks its hash
	// and drops a damaged one, after which the file shows as partial.
	held, have := n.files.blobs.open(layoutOf(m)).count()
	v.HaveBytes = have
	switch held {
	case len(m.Chunks):
		v.State = "complete"
	case 0:
		v.State = "missing"
	default:
		v.State = "partial"
	}
	return v, nil
}

// GetFile fetches the chunks of file id this node lacks and decrypts the
// file to path as they arrive: a chunk the fetch has just checked is handed
// to the decryption in memory when it is the next one in order, and any
// other is read back from the pack and checked again. The file is marked
// wanted first, so a download cut short resumes after a restart.
func (n *Node) GetFile(ctx context.Context, id, path string) (File, error) {
	if !filepath.IsAbs(path) {
		return File{}, fmt.Errorf("%w: output path %q is not absolute", ErrInvalid, path)
	}
	f, m, err := n.lookupFile(ctx, id)
	if err != nil {
		return File{}, err
	}
	key, err := n.fileKey(ctx, f)
	if err != nil {
		return File{}, fmt.Errorf("get %s: %w", m.Name, err)
	}
	if err := n.st.SetFileWanted(ctx, f.ID, true); err != nil {
		return File{}, err
	}
	r := n.newPackReader(ctx, f.ID, layoutOf(m))
	defer r.close()
	err = n.decryptFile(key, r, m, path)
	n.log.Debug("file read", "file", f.ID, "chunks_in_memory", r.fromTap, "chunks_from_disk", r.fromDisk)
	if errors.Is(err, errNoSource) {
		return File{}, r.noSourceError(m.Name)
	}
	if err != nil {
		return File{}, fmt.Errorf("get %s: %w", m.Name, err)
	}
	return n.fileView(ctx, f)
}

// FetchFile fetches the chunks of file id this node lacks, checks each
// against its hash and stores it, and returns once every chunk is held: the
// file is then on this node to be read offline, opened at once, and served
// to other members, and nothing is decrypted or written out. The file is
// marked wanted first, so a fetch cut short resumes, after a restart too.
// A ctx that ends makes FetchFile return; the fetch goes on in the
// background, as for any wanted file.
func (n *Node) FetchFile(ctx context.Context, id string) (File, error) {
	f, m, err := n.lookupFile(ctx, id)
	if err != nil {
		return File{}, err
	}
	if err := n.st.SetFileWanted(ctx, f.ID, true); err != nil {
		return File{}, err
	}
	run := n.startFetch(f.ID)
	select {
	case <-run.done:
	case <-ctx.Done():
		return File{}, fmt.Errorf("fetch %s: %w", m.Name, ctx.Err())
	}
	if run.err != nil {
		return File{}, fmt.Errorf("fetch %s: %w", m.Name, run.err)
	}
	return n.fileView(ctx, f)
}

// fileKey returns the room key that encrypts file f.
func (n *Node) fileKey(ctx context.Context, f store.File) (crypto.RoomKey, error) {
	keys, err := n.st.RoomKeys(ctx, f.Room)
	if err != nil {
		return crypto.RoomKey{}, err
	}
	for i := range keys {
		if keys[i].KeyID == f.Key {
			return crypto.RoomKey(keys[i].Key), nil
		}
	}
	return crypto.RoomKey{}, fmt.Errorf("room key %s not held", f.Key)
}

// decryptFile writes the plaintext of the ciphertext r reads to path,
// through a temporary file beside it, so path holds either nothing new or
// all of it.
func (n *Node) decryptFile(key crypto.RoomKey, r io.Reader, m *wire.FileManifest, path string) error {
	pr, err := crypto.DecryptContentFrom(key, r)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".charla-get-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	sw := newSeqWriter(tmp)
	written, err := io.Copy(sw, pr)
	if cerr := sw.close(); err == nil {
		err = cerr
	}
	err = diskFull(err, filepath.Dir(path))
	if err == nil && uint64(written) != m.Size {
		err = fmt.Errorf("decrypted %d bytes, the manifest says %d", written, m.Size)
	}
	if err == nil {
		err = diskFull(tmp.Sync(), filepath.Dir(path))
	}
	if cerr := tmp.Close(); err == nil {
		err = diskFull(cerr, filepath.Dir(path))
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// startFetch starts fetching file id unless a fetch of it is under way, and
// returns the run to wait on.
func (n *Node) startFetch(id wire.ID) *fetchRun {
	n.files.mu.Lock()
	defer n.files.mu.Unlock()
	if r, ok := n.files.running[id]; ok {
		return r
	}
	r := &fetchRun{done: make(chan struct{})}
	// Counted before running is set, under mu: Close waits for every run
	// another caller may find in running, and none starts once it began.
	if n.ctx.Err() != nil || !n.work.enter() {
		r.err = context.Canceled
		close(r.done)
		return r
	}
	n.files.running[id] = r
	if f := n.files.starting.Load(); f != nil {
		(*f)(id)
	}
	go func() {
		defer n.work.leave()
		r.err = n.fetchFile(n.ctx, id, r)
		n.files.mu.Lock()
		delete(n.files.running, id)
		n.files.mu.Unlock()
		close(r.done)
		if r.err != nil && n.ctx.Err() == nil {
			n.log.Info("file download incomplete", "file", id, "err", r.err)
		}
	}()
	return r
}

func (n *Node) fetchFile(ctx context.Context, id wire.ID, run *fetchRun) error {
	f, err := n.st.File(ctx, id)
	if err != nil {
		return err
	}
	m, err := wire.DecodeFileManifest(f.Manifest)
	if err != nil {
		return err
	}
	return n.fetchChunks(ctx, m, run)
}

// filesArrived starts downloading, after commit, each new file small enough
// to fetch on arrival.
func (n *Node) filesArrived(ms []store.Message) {
	for _, m := range ms {
		if wire.ContentKind(m.Kind) != wire.KindFile || n.autoDownload() < 0 {
			continue
		}
		f, err := n.st.File(n.ctx, m.ID)
		if err != nil {
			continue
		}
		if mf, err := wire.DecodeFileManifest(f.Manifest); err == nil && n.fetchesOnArrival(mf) {
			n.startFetch(m.ID)
		}
	}
}

// kickFiles asks fileLoop to retry incomplete downloads soon.
func (n *Node) kickFiles() {
	select {
	case n.files.kick <- struct{}{}:
	default:
	}
}

// fileLoop retries downloads that are wanted, or small enough to fetch
// automatically, and not complete: periodically and when a peer connects.
func (n *Node) fileLoop(ctx context.Context) {
	t := time.NewTicker(fileRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.files.kick:
			select { // let the new connection settle, and gather several
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		fs, err := n.st.Files(ctx, wire.ID{})
		if err != nil {
			continue
		}
		for _, f := range fs {
			m, err := wire.DecodeFileManifest(f.Manifest)
			if err != nil {
				continue
			}
			if !f.Wanted && !n.fetchesOnArrival(m) {
				continue
			}
			if v, err := n.fileView(ctx, f); err == nil && v.State != "complete" {
				n.startFetch(f.ID)
			}
		}
	}
}
