package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// blobProtocol serves ciphertext chunks by hash (wire/doc.go "Blob frames").
// A server answers a stream's requests in the order they came; a requester
// may send several before reading the first answer. The requester checks
// every chunk against its hash, so a server can send nothing readable or
// wrong, and the server does not hash what it sends.
const blobProtocol = protocol.ID("/charla/blob/1")

// Bounds and pace of file transfer.
const (
	chunkSize          = 1 << 20 // ciphertext bytes per chunk; the last is shorter
	blobStreamsPerPeer = 2       // streams a fetch opens to each peer
	blobDepth          = 3       // requests in flight per stream: the next chunks travel while one is stored
	blobStepTimeout    = 30 * time.Second
	blobMaxBad         = 3 // bad chunks from one peer before a fetch stops asking it
	blobsDir           = "blobs"
)

// errBadChunk is a chunk whose bytes do not hash to its name.
var errBadChunk = errors.New("chunk does not match its hash")

// blobDir stores ciphertext chunks content-addressed: <home>/blobs/<hex[:2]>/<hex>.
// A chunk file appears, by rename, only once its bytes matched its hash, so a
// chunk present is a chunk verified, and an interrupted write leaves no chunk.
type blobDir struct{ dir string }

func (b blobDir) path(h wire.ID) string {
	x := h.String()
	return filepath.Join(b.dir, x[:2], x)
}

// has reports whether chunk h is stored with size bytes (any size when size < 0).
func (b blobDir) has(h wire.ID, size int) bool {
	fi, err := os.Stat(b.path(h))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == int64(size))
}

// put stores data as chunk h if it hashes to h. It does not fsync: a chunk
// damaged by a crash fails its hash when read and is fetched again.
func (b blobDir) put(h wire.ID, data []byte) error {
	if sha256.Sum256(data) != h {
		return errBadChunk
	}
	return b.store(h, data)
}

// store writes data as chunk h, which the caller has just computed or
// checked, through a temporary file renamed into place.
func (b blobDir) store(h wire.ID, data []byte) error {
	p := b.path(h)
	f, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if errors.Is(err, fs.ErrNotExist) { // the first chunk under this prefix
		if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
			f, err = os.CreateTemp(filepath.Dir(p), ".part-*")
		}
	}
	if err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return diskFull(fmt.Errorf("store chunk: %w", err), b.dir)
	}
	return nil
}

// diskFull names the disk when err is a full one: what the user must free.
func diskFull(err error, dir string) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: no space left on the disk holding %s; free some space there and the download resumes from the chunks already stored", ErrDiskFull, dir)
	}
	return err
}

// read returns chunk h, checked against its hash, in buf when it has room;
// a damaged chunk is removed and reported as errBadChunk.
func (b blobDir) read(h wire.ID, buf []byte) ([]byte, error) {
	f, err := os.Open(b.path(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > wire.MaxChunkBytes {
		os.Remove(b.path(h))
		return nil, errBadChunk
	}
	if int64(cap(buf)) < fi.Size() {
		buf = make([]byte, fi.Size())
	}
	data := buf[:fi.Size()]
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	if sha256.Sum256(data) != h {
		os.Remove(b.path(h))
		return nil, errBadChunk
	}
	return data, nil
}

// chunker cuts what is written to it into chunks and stores each.
type chunker struct {
	blobs  blobDir
	buf    []byte
	hashes []wire.ID
	total  uint64
}

func newChunker(b blobDir, size int) *chunker {
	return &chunker{blobs: b, buf: make([]byte, 0, size)}
}

func (c *chunker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(cap(c.buf)-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (c *chunker) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	h := sha256.Sum256(c.buf)
	if err := c.blobs.store(h, c.buf); err != nil {
		return err
	}
	c.hashes = append(c.hashes, h)
	c.total += uint64(len(c.buf))
	c.buf = c.buf[:0]
	return nil
}

// handleBlob serves chunk requests from a member. Any chunk held is served to
// any member: chunks are ciphertext, readable only with the room key.
func (n *Node) handleBlob(s network.Stream) {
	defer s.Close()
	if !n.hist.isMember(s.Conn().RemotePeer()) {
		s.Reset()
		return
	}
	r := bufio.NewReader(s)
	for {
		s.SetDeadline(time.Now().Add(blobStepTimeout))
		b, err := wire.ReadFrame(r, wire.MaxBlobRequestBytes)
		if err == io.EOF {
			return
		}
		if err != nil {
			s.Reset()
			return
		}
		req, err := wire.DecodeBlobRequest(b)
		if err != nil {
			n.hist.count(reasonMalformed)
			s.Reset()
			return
		}
		var err2 error
		switch req.Op {
		case wire.BlobHave:
			answer := make([]byte, wire.BlobHaveLen(len(req.Chunks)))
			for i, h := range req.Chunks {
				if n.files.blobs.has(h, -1) {
					answer[i/8] |= 1 << (i % 8)
				}
			}
			err2 = wire.WriteFrame(s, answer)
		case wire.BlobGet:
			err2 = n.files.blobs.serve(s, req.Chunks[0])
		}
		if err2 != nil {
			s.Reset()
			return
		}
	}
}

// chunkBufs holds buffers of a frame's length prefix and a whole chunk, so
// that serving and fetching a file allocate a few of them, not one a chunk.
var chunkBufs = sync.Pool{New: func() any { return new([]byte) }}

func getChunkBuf(n int) *[]byte {
	b := chunkBufs.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n, max(n, chunkSize+binary.MaxVarintLen64))
	}
	*b = (*b)[:n]
	return b
}

// serve writes chunk h to w as one frame, read from disk straight into the
// frame, unchecked: the requester checks it. A chunk not held, or of an
// impossible size, is answered with an empty frame.
func (b blobDir) serve(w io.Writer, h wire.ID) error {
	f, err := os.Open(b.path(h))
	if err != nil {
		return wire.WriteFrame(w, nil)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > wire.MaxChunkBytes {
		return wire.WriteFrame(w, nil)
	}
	size := int(fi.Size())
	buf := getChunkBuf(binary.MaxVarintLen64 + size)
	defer chunkBufs.Put(buf)
	frame := binary.AppendUvarint((*buf)[:0], uint64(size))
	k := len(frame)
	frame = frame[:k+size]
	if _, err := io.ReadFull(f, frame[k:]); err != nil {
		return wire.WriteFrame(w, nil)
	}
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("write chunk: %w", err)
	}
	return nil
}

// BlobSource counts what this node fetched from one peer since it started.
type BlobSource struct {
	Chunks int64 `json:"chunks"`
	Bytes  int64 `json:"bytes"`
	Bad    int64 `json:"bad"` // chunks that failed their hash, discarded
}

// blobStats counts chunks fetched per peer.
type blobStats struct {
	mu sync.Mutex // guards m
	m  map[peer.ID]*BlobSource
}

func (b *blobStats) add(p peer.ID, bytes int, bad bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[peer.ID]*BlobSource{}
	}
	s := b.m[p]
	if s == nil {
		s = &BlobSource{}
		b.m[p] = s
	}
	if bad {
		s.Bad++
		return
	}
	s.Chunks++
	s.Bytes += int64(bytes)
}

func (b *blobStats) snapshot() map[string]BlobSource {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]BlobSource, len(b.m))
	for p, s := range b.m {
		out[p.String()] = *s
	}
	return out
}

// BlobSources reports, per peer, the chunks this node fetched from it.
func (n *Node) BlobSources() map[string]BlobSource { return n.files.stats.snapshot() }

// blobClient is one stream to a peer for chunk requests.
type blobClient struct {
	s network.Stream
	r *bufio.Reader
}

func (n *Node) openBlob(ctx context.Context, p peer.ID) (*blobClient, error) {
	s, err := n.host.NewStream(ctx, p, blobProtocol)
	if err != nil {
		return nil, err
	}
	return &blobClient{s: s, r: bufio.NewReaderSize(s, 64<<10)}, nil
}

func (c *blobClient) ask(req *wire.BlobRequest, max int) ([]byte, error) {
	c.s.SetDeadline(time.Now().Add(blobStepTimeout))
	if err := wire.WriteFrame(c.s, req.Marshal()); err != nil {
		return nil, err
	}
	return wire.ReadFrame(c.r, max)
}

func (c *blobClient) close() { c.s.Close() }

// have asks which of chunks the peer holds.
func (c *blobClient) have(chunks []wire.ID) ([]bool, error) {
	b, err := c.ask(&wire.BlobRequest{Op: wire.BlobHave, Chunks: chunks}, wire.BlobHaveLen(len(chunks)))
	if err != nil {
		return nil, err
	}
	if len(b) != wire.BlobHaveLen(len(chunks)) {
		return nil, fmt.Errorf("have: bitmap of %d bytes for %d chunks", len(b), len(chunks))
	}
	out := make([]bool, len(chunks))
	for i := range out {
		out[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return out, nil
}

// fetchPlan is the chunks of one file still to fetch, shared by the workers
// of every source peer.
type fetchPlan struct {
	m *wire.FileManifest

	mu       sync.Mutex // guards the fields below
	changed  sync.Cond  // on mu: a chunk was given back or finished
	pending  []int      // chunk indices neither held nor being fetched
	inflight int        // chunks being fetched
	held     map[peer.ID][]bool
	refused  map[int]map[peer.ID]bool // a peer that failed chunk i is not asked for i again
	bad      map[peer.ID]int
	storeErr error // the first chunk this node could not store (disk full)
}

func newFetchPlan(m *wire.FileManifest) *fetchPlan {
	f := &fetchPlan{m: m, held: map[peer.ID][]bool{}, refused: map[int]map[peer.ID]bool{}, bad: map[peer.ID]int{}}
	f.changed.L = &f.mu
	return f
}

// take returns a pending chunk p holds and may be asked for. While none is
// pending but others are in flight it waits, when wait is set, since one may
// come back.
func (f *fetchPlan) take(ctx context.Context, p peer.ID, wait bool) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ctx.Err() == nil && f.bad[p] < blobMaxBad {
		for k, i := range f.pending {
			if f.held[p][i] && !f.refused[i][p] {
				f.pending = append(f.pending[:k], f.pending[k+1:]...)
				f.inflight++
				return i, true
			}
		}
		if f.inflight == 0 || !wait {
			break
		}
		f.changed.Wait()
	}
	return 0, false
}

// giveBack returns chunk i to the pending set, refused by p when bad.
func (f *fetchPlan) giveBack(i int, p peer.ID, bad bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, i)
	f.inflight--
	if bad {
		if f.refused[i] == nil {
			f.refused[i] = map[peer.ID]bool{}
		}
		f.refused[i][p] = true
		f.bad[p]++
	}
	f.changed.Broadcast()
}

// finish records that chunk i is stored.
func (f *fetchPlan) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	f.changed.Broadcast()
}

// wake lets waiting workers see that ctx is done.
func (f *fetchPlan) wake() {
	f.mu.Lock()
	f.changed.Broadcast()
	f.mu.Unlock()
}

// failStore records that a chunk could not be stored: every worker stops,
// since no other peer's copy would fit either.
func (f *fetchPlan) failStore(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.storeErr == nil {
		f.storeErr = err
	}
	f.bad = map[peer.ID]int{}
	for p := range f.held {
		f.bad[p] = blobMaxBad // take hands out nothing more
	}
	f.changed.Broadcast()
}

func (f *fetchPlan) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// fetchChunks fetches every chunk of m this node lacks from the connected
// members that hold it, several at once from each, and stores each after
// checking its hash. It returns nil once every chunk is held.
func (n *Node) fetchChunks(ctx context.Context, m *wire.FileManifest) error {
	plan := newFetchPlan(m)
	var want []wire.ID
	var idx []int
	for i, h := range m.Chunks {
		if !n.files.blobs.has(h, m.ChunkLen(i)) {
			plan.pending = append(plan.pending, i)
			want = append(want, h)
			idx = append(idx, i)
		}
	}
	if len(want) == 0 {
		return nil
	}
	peers := n.connectedMembers()
	if len(peers) == 0 {
		return fmt.Errorf("%d of %d chunks missing and no member connected", len(want), len(m.Chunks))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	clients := map[peer.ID]*blobClient{}
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := n.openBlob(ctx, p)
			if err != nil {
				return
			}
			has, err := c.have(want)
			if err != nil {
				c.s.Reset()
				return
			}
			full := make([]bool, len(m.Chunks))
			for k, i := range idx {
				full[i] = has[k]
			}
			mu.Lock()
			clients[p] = c
			plan.mu.Lock()
			plan.held[p] = full
			plan.mu.Unlock()
			mu.Unlock()
		}()
	}
	wg.Wait()
	for p, first := range clients {
		for w := range blobStreamsPerPeer {
			c := first
			wg.Add(1)
			go func() {
				defer wg.Done()
				if w > 0 {
					var err error
					if c, err = n.openBlob(ctx, p); err != nil {
						return
					}
				}
				defer c.close()
				n.fetchFrom(ctx, p, c, plan)
			}()
		}
	}
	stop := context.AfterFunc(ctx, plan.wake)
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	plan.mu.Lock()
	storeErr := plan.storeErr
	plan.mu.Unlock()
	if storeErr != nil {
		return storeErr
	}
	if left := plan.left(); left > 0 {
		return fmt.Errorf("%d of %d chunks held by no connected member", left, len(m.Chunks))
	}
	return nil
}

// fetchFrom asks p for chunks of plan until none is left that p holds,
// keeping up to blobDepth requests in flight on c: the next chunks cross the
// network while one is checked and stored. Answers come in request order.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, c *blobClient, plan *fetchPlan) {
	var queue []int // chunks asked for, not yet answered, oldest first
	fail := func() {
		c.s.Reset()
		for _, i := range queue {
			plan.giveBack(i, p, false)
		}
	}
	for ctx.Err() == nil {
		for len(queue) < blobDepth {
			i, ok := plan.take(ctx, p, len(queue) == 0)
			if !ok {
				break
			}
			queue = append(queue, i)
			c.s.SetWriteDeadline(time.Now().Add(blobStepTimeout))
			if err := wire.WriteFrame(c.s, (&wire.BlobRequest{Op: wire.BlobGet, Chunks: []wire.ID{plan.m.Chunks[i]}}).Marshal()); err != nil {
				fail()
				return
			}
		}
		if len(queue) == 0 {
			return
		}
		i := queue[0]
		h, size := plan.m.Chunks[i], plan.m.ChunkLen(i)
		c.s.SetReadDeadline(time.Now().Add(blobStepTimeout))
		buf, err := readChunkFrame(c.r, size)
		if err != nil {
			fail()
			return
		}
		queue = queue[1:]
		data := *buf
		if len(data) == 0 { // no longer held there
			chunkBufs.Put(buf)
			plan.giveBack(i, p, true)
			continue
		}
		err = n.files.blobs.put(h, data)
		chunkBufs.Put(buf)
		if errors.Is(err, errBadChunk) {
			n.files.stats.add(p, len(data), true)
			n.log.Warn("discarded a chunk that failed its hash", "peer", p, "chunk", h)
			plan.giveBack(i, p, true)
			continue
		}
		if err != nil {
			// Disk full or unwritable: the chunks held so far stay, the
			// download resumes from them later.
			plan.giveBack(i, p, false)
			plan.failStore(err)
			fail()
			n.log.Warn("store chunk", "err", err)
			return
		}
		n.files.stats.add(p, len(data), false)
		plan.finish()
		if hook := n.files.hook.Load(); hook != nil {
			(*hook)(p, h)
		}
	}
	fail()
}

// readChunkFrame reads one frame of at most max bytes, as wire.ReadFrame
// does, into a buffer from chunkBufs that the caller puts back.
func readChunkFrame(r *bufio.Reader, max int) (*[]byte, error) {
	k, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("read chunk frame: %w", err)
	}
	if k > uint64(max) {
		return nil, fmt.Errorf("read chunk frame: length %d, over the limit of %d: %w", k, max, wire.ErrTooLarge)
	}
	buf := getChunkBuf(int(k))
	if _, err := io.ReadFull(r, *buf); err != nil {
		chunkBufs.Put(buf)
		return nil, fmt.Errorf("read chunk frame: %w", err)
	}
	return buf, nil
}

// chunkReader reads a file's ciphertext chunk by chunk from the blob store,
// each checked against its hash before any of it is returned: one chunk in
// memory whatever the size of the file.
type chunkReader struct {
	blobs blobDir
	m     *wire.FileManifest
	next  int
	cur   bytes.Reader
	buf   []byte // the chunk being read, reused for the next
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur.Len() == 0 {
		if r.next == len(r.m.Chunks) {
			return 0, io.EOF
		}
		data, err := r.blobs.read(r.m.Chunks[r.next], r.buf)
		if err == nil && len(data) != r.m.ChunkLen(r.next) {
			err = errBadChunk
		}
		if err != nil {
			return 0, fmt.Errorf("chunk %d of %d: %w", r.next+1, len(r.m.Chunks), err)
		}
		r.buf = data
		r.cur.Reset(data)
		r.next++
	}
	return r.cur.Read(p)
}
