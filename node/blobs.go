package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// blobProtocol serves ciphertext chunks by hash (wire/doc.go "Blob frames").
// A stream carries requests one at a time; the requester checks every chunk
// against its hash, so a server can send nothing readable or wrong.
const blobProtocol = protocol.ID("/charla/blob/1")

// Bounds and pace of file transfer.
const (
	chunkSize          = 1 << 20 // ciphertext bytes per chunk; the last is shorter
	blobStreamsPerPeer = 4       // chunks in flight per peer: memory and yamux windows stay bounded
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
	p := b.path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".part-*")
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
		return fmt.Errorf("store chunk: %w", err)
	}
	return nil
}

// read returns chunk h, checked against its hash; a damaged chunk is
// removed and reported as errBadChunk.
func (b blobDir) read(h wire.ID) ([]byte, error) {
	f, err := os.Open(b.path(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, wire.MaxChunkBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > wire.MaxChunkBytes || sha256.Sum256(data) != h {
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
	if err := c.blobs.put(h, c.buf); err != nil {
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
		var answer []byte
		switch req.Op {
		case wire.BlobHave:
			answer = make([]byte, wire.BlobHaveLen(len(req.Chunks)))
			for i, h := range req.Chunks {
				if n.files.blobs.has(h, -1) {
					answer[i/8] |= 1 << (i % 8)
				}
			}
		case wire.BlobGet:
			answer, _ = n.files.blobs.read(req.Chunks[0]) // nothing when not held or damaged
		}
		if err := wire.WriteFrame(s, answer); err != nil {
			s.Reset()
			return
		}
	}
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
}

func newFetchPlan(m *wire.FileManifest) *fetchPlan {
	f := &fetchPlan{m: m, held: map[peer.ID][]bool{}, refused: map[int]map[peer.ID]bool{}, bad: map[peer.ID]int{}}
	f.changed.L = &f.mu
	return f
}

// take returns a pending chunk p holds and may be asked for. While none is
// pending but others are in flight it waits, since one may come back.
func (f *fetchPlan) take(ctx context.Context, p peer.ID) (int, bool) {
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
		if f.inflight == 0 {
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
	if left := plan.left(); left > 0 {
		return fmt.Errorf("%d of %d chunks held by no connected member", left, len(m.Chunks))
	}
	return nil
}

// fetchFrom asks p for chunks of plan until none is left that p holds.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, c *blobClient, plan *fetchPlan) {
	for ctx.Err() == nil {
		i, ok := plan.take(ctx, p)
		if !ok {
			return
		}
		h, size := plan.m.Chunks[i], plan.m.ChunkLen(i)
		data, err := c.ask(&wire.BlobRequest{Op: wire.BlobGet, Chunks: []wire.ID{h}}, size)
		if err != nil {
			c.s.Reset()
			plan.giveBack(i, p, false)
			return
		}
		if len(data) == 0 { // no longer held there
			plan.giveBack(i, p, true)
			continue
		}
		err = n.files.blobs.put(h, data)
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
			n.log.Warn("store chunk", "err", err)
			return
		}
		n.files.stats.add(p, len(data), false)
		plan.finish()
		if hook := n.files.hook.Load(); hook != nil {
			(*hook)(p, h)
		}
	}
}

// chunkReader reads a file's ciphertext chunk by chunk from the blob store,
// each checked against its hash before any of it is returned: one chunk in
// memory whatever the size of the file.
type chunkReader struct {
	blobs blobDir
	m     *wire.FileManifest
	next  int
	cur   *bytes.Reader
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.cur.Len() == 0 {
		if r.next == len(r.m.Chunks) {
			return 0, io.EOF
		}
		data, err := r.blobs.read(r.m.Chunks[r.next])
		if err == nil && len(data) != r.m.ChunkLen(r.next) {
			err = errBadChunk
		}
		if err != nil {
			return 0, fmt.Errorf("chunk %d of %d: %w", r.next+1, len(r.m.Chunks), err)
		}
		r.cur = bytes.NewReader(data)
		r.next++
	}
	return r.cur.Read(p)
}
