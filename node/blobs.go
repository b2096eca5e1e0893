package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// diskFull names the disk when err is a full one: what the user must free.
func diskFull(err error, dir string) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: no space left on the disk holding %s; free some space there and the download resumes from the chunks already stored", ErrDiskFull, dir)
	}
	return err
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
				if n.files.blobs.holds(h) {
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
// frame and checked against its hash first: a chunk damaged on disk is
// dropped, never sent. A chunk not held is answered with an empty frame.
func (b *blobStore) serve(w io.Writer, h wire.ID) error {
	for _, r := range b.lookup(h) {
		if !r.p.has(r.i) {
			continue
		}
		size := r.p.l.chunkLen(r.i)
		buf := getChunkBuf(binary.MaxVarintLen64 + size)
		k := len(binary.AppendUvarint((*buf)[:0], uint64(size)))
		if _, err := r.p.read(r.i, (*buf)[k:k+size]); err != nil {
			chunkBufs.Put(buf)
			continue
		}
		_, err := w.Write((*buf)[:k+size])
		chunkBufs.Put(buf)
		if err != nil {
			return fmt.Errorf("write chunk: %w", err)
		}
		return nil
	}
	return wire.WriteFrame(w, nil)
}

// holds reports whether chunk h is held in any pack.
func (b *blobStore) holds(h wire.ID) bool {
	for _, r := range b.lookup(h) {
		if r.p.has(r.i) {
			return true
		}
	}
	return false
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
	m    *wire.FileManifest
	pack *pack

	mu       sync.Mutex // guards the fields below
	changed  sync.Cond  // on mu: a chunk was given back or finished
	pending  []int      // chunk indices neither held nor being fetched
	inflight int        // chunks being fetched
	held     map[peer.ID][]bool
	refused  map[int]map[peer.ID]bool // a peer that failed chunk i is not asked for i again
	bad      map[peer.ID]int
	storeErr error // the first chunk this node could not store (disk full)
}

func newFetchPlan(m *wire.FileManifest, p *pack) *fetchPlan {
	f := &fetchPlan{m: m, pack: p, held: map[peer.ID][]bool{}, refused: map[int]map[peer.ID]bool{}, bad: map[peer.ID]int{}}
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
// members that hold it, several at once from each, and stores each in the
// file's pack after checking its hash. It returns nil once every chunk is
// held and recorded.
func (n *Node) fetchChunks(ctx context.Context, m *wire.FileManifest) (err error) {
	p := n.files.blobs.open(layoutOf(m))
	plan := newFetchPlan(m, p)
	var want []wire.ID
	var idx []int
	for i, h := range m.Chunks {
		if !p.has(i) {
			plan.pending = append(plan.pending, i)
			want = append(want, h)
			idx = append(idx, i)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if err := p.beginWrite(); err != nil {
		return err
	}
	defer func() {
		// Record what was stored even when the fetch was cut short, so a
		// restart resumes from it.
		if rerr := p.endWrite(); err == nil && ctx.Err() == nil {
			err = rerr
		}
	}()
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
		if sha256.Sum256(data) != h {
			err = errBadChunk
		} else {
			var taken bool
			taken, err = plan.pack.store(i, data, buf)
			if taken {
				buf = nil // the reader of the file took it
			}
		}
		if buf != nil {
			chunkBufs.Put(buf)
		}
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
