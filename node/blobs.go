package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
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
//
// It reads, checks and frames the answer to one request while a goroutine
// of its own writes the answer before it: the disk read and the hash of the
// next chunk overlap the transport's work on the last one.
func (n *Node) handleBlob(s network.Stream) {
	defer s.Close()
	if !n.hist.isMember(s.Conn().RemotePeer()) {
		s.Reset()
		return
	}
	answers := make(chan blobAnswer) // one answer written, the next one ready
	written := make(chan struct{})
	go func() {
		defer close(written)
		failed := false
		for a := range answers {
			if !failed {
				s.SetWriteDeadline(time.Now().Add(blobStepTimeout))
				if _, err := s.Write(a.frame); err != nil {
					failed = true
					s.Reset()
				}
			}
			if a.buf != nil {
				chunkBufs.Put(a.buf)
			}
		}
	}()
	defer func() {
		close(answers)
		<-written
	}()
	r := bufio.NewReader(s)
	for {
		s.SetReadDeadline(time.Now().Add(blobStepTimeout))
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
		switch req.Op {
		case wire.BlobHave:
			bits := make([]byte, wire.BlobHaveLen(len(req.Chunks)))
			for i, h := range req.Chunks {
				if n.files.blobs.holds(h) {
					bits[i/8] |= 1 << (i % 8)
				}
			}
			answers <- blobAnswer{frame: append(binary.AppendUvarint(nil, uint64(len(bits))), bits...)}
		case wire.BlobGet:
			answers <- n.files.blobs.answer(req.Chunks[0])
		}
	}
}

// blobAnswer is one framed answer; buf, when set, holds frame and goes back
// to chunkBufs once it is written.
type blobAnswer struct {
	frame []byte
	buf   *[]byte
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

// answer frames chunk h, read from disk straight into the frame and checked
// against its hash first: a chunk damaged on disk is dropped, never sent. A
// chunk not held is answered with an empty frame.
func (b *blobStore) answer(h wire.ID) blobAnswer {
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
		return blobAnswer{frame: (*buf)[:k+size], buf: buf}
	}
	return blobAnswer{frame: binary.AppendUvarint(nil, 0)}
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
//
// A reader of the pack waits on the pack's changed, not on the plan's, and
// holds the pack's mu when it asks the plan whether a chunk has a source:
// the plan's mu is taken after the pack's, never before.
type fetchPlan struct {
	ctx  context.Context // the fetch's
	m    *wire.FileManifest
	pack *pack

	mu       sync.Mutex // guards the fields below
	changed  sync.Cond  // on mu: a chunk was given back or finished
	pending  []int      // chunk indices neither held nor being fetched, in order
	inflight int        // chunks being fetched
	held     map[peer.ID][]bool
	live     map[peer.ID]int          // workers still fetching from each peer
	workers  int                      // workers still fetching, from every peer
	ended    bool                     // the last worker has left: no peer joins any more
	refused  map[int]map[peer.ID]bool // a peer that failed chunk i is not asked for i again
	bad      map[peer.ID]int
	storeErr error // the first chunk this node could not store (disk full)
}

func newFetchPlan(ctx context.Context, m *wire.FileManifest, p *pack) *fetchPlan {
	f := &fetchPlan{ctx: ctx, m: m, pack: p, held: map[peer.ID][]bool{}, live: map[peer.ID]int{},
		refused: map[int]map[peer.ID]bool{}, bad: map[peer.ID]int{}}
	f.changed.L = &f.mu
	return f
}

// sourceless reports whether chunk i is still to fetch and no peer of this
// fetch is left to ask for it, so the fetch will end without it. A reader
// waiting for chunk i fails then, rather than when the fetch ends: that
// came after every other chunk, each held back up to tapWait while too far
// ahead of the reader, ~0.23 s a chunk (22 s for a 96 MiB file).
func (f *fetchPlan) sourceless(i int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil || f.storeErr != nil {
		return false // the fetch ends for another reason, which its run reports
	}
	if _, ok := slices.BinarySearch(f.pending, i); !ok {
		return false
	}
	for p, held := range f.held {
		if held[i] && !f.refused[i][p] && f.bad[p] < blobMaxBad && f.live[p] > 0 {
			return false
		}
	}
	return true
}

// leave records that a worker fetching from p has stopped.
func (f *fetchPlan) leave(p peer.ID) {
	f.mu.Lock()
	f.live[p]--
	if f.workers--; f.workers == 0 {
		f.ended = true
	}
	f.changed.Broadcast()
	f.mu.Unlock()
	f.pack.wake() // a reader may have lost its chunk's last source
}

// waitEnded waits until the fetch's last worker has left.
func (f *fetchPlan) waitEnded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.ended {
		f.changed.Wait()
	}
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
	defer func() {
		f.mu.Unlock()
		if bad {
			f.pack.wake() // a reader may have lost its chunk's last source
		}
	}()
	// In order, so it is asked for again before chunks after it: the file's
	// reader waits for it.
	f.pending = slices.Insert(f.pending, sort.SearchInts(f.pending, i), i)
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

// busy reports whether workers are still fetching chunks.
func (f *fetchPlan) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers > 0 && len(f.pending)+f.inflight > 0
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
//
// The plan is published on run once the peers have said what they hold, so
// that a reader of the file learns when a chunk it waits for has no source.
func (n *Node) fetchChunks(ctx context.Context, m *wire.FileManifest, run *fetchRun) (err error) {
	p := n.files.blobs.open(layoutOf(m))
	plan := newFetchPlan(ctx, m, p)
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
	connected := n.nextConnect() // before the members are listed: none is missed
	peers := n.connectedMembers()
	if len(peers) == 0 {
		return fmt.Errorf("%d of %d chunks missing and no member connected", len(want), len(m.Chunks))
	}
	// ask asks p which chunks it holds, on a stream that is then its first
	// worker's.
	ask := func(ctx context.Context, p peer.ID) (*blobClient, []bool) {
		c, err := n.openBlob(ctx, p)
		if err != nil {
			return nil, nil
		}
		stop := context.AfterFunc(ctx, func() { c.s.Reset() })
		defer stop()
		has, err := c.have(want)
		if err != nil {
			c.s.Reset()
			return nil, nil
		}
		full := make([]bool, len(m.Chunks))
		for k, i := range idx {
			full[i] = has[k]
		}
		return c, full
	}
	var wg sync.WaitGroup
	// work starts p's workers, the first on c; plan.live counts them
	// already.
	work := func(p peer.ID, first *blobClient) {
		for w := range blobStreamsPerPeer {
			c := first
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer plan.leave(p)
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
	var mu sync.Mutex
	clients := map[peer.ID]*blobClient{}
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, full := ask(ctx, p); c != nil {
				mu.Lock()
				clients[p] = c
				mu.Unlock()
				plan.mu.Lock()
				plan.held[p] = full
				plan.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Every first answer is in before any worker starts, so that no worker
	// ends the fetch for lack of chunks another peer is about to offer.
	plan.mu.Lock()
	for p := range clients {
		plan.live[p] = blobStreamsPerPeer
		plan.workers += blobStreamsPerPeer
	}
	if plan.workers == 0 {
		plan.ended = true
	}
	plan.mu.Unlock()
	run.plan.Store(plan)
	p.wake()
	for p, c := range clients {
		work(p, c)
	}
	// A member that connects while the fetch runs becomes a source too: a
	// laptop back on the LAN, or the sender back from a restart, speeds up
	// the fetch and fills in what no one else holds. It joins while any
	// worker is still at work; once the last one ends, so does the fetch,
	// and the file loop tries again later.
	joinCtx, stopJoining := context.WithCancel(ctx)
	var joining sync.WaitGroup
	joining.Go(func() {
		// A member is asked again when it has no worker left in the fetch:
		// one that went away and came back, as the sender after a restart,
		// or whose first answer failed. One ask at a time per member.
		var askMu sync.Mutex
		asking := map[peer.ID]bool{}
		for {
			select {
			case <-connected:
			case <-joinCtx.Done():
				return
			}
			connected = n.nextConnect()
			for _, p := range n.connectedMembers() {
				plan.mu.Lock()
				working := plan.live[p] > 0
				plan.mu.Unlock()
				askMu.Lock()
				skip := working || asking[p]
				if !skip {
					asking[p] = true
				}
				askMu.Unlock()
				if skip {
					continue
				}
				joining.Go(func() {
					defer func() {
						askMu.Lock()
						delete(asking, p)
						askMu.Unlock()
					}()
					c, full := ask(joinCtx, p)
					if c == nil {
						return
					}
					plan.mu.Lock()
					if plan.ended || plan.storeErr != nil || plan.live[p] > 0 {
						plan.mu.Unlock()
						c.close()
						return
					}
					plan.held[p] = full
					plan.live[p] += blobStreamsPerPeer
					plan.workers += blobStreamsPerPeer
					plan.changed.Broadcast()
					plan.mu.Unlock()
					work(p, c) // wg is above zero: a worker that has not left holds it
				})
			}
		}
	})
	stop := context.AfterFunc(ctx, plan.wake)
	plan.waitEnded()
	stopJoining()
	joining.Wait()
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
// keeping up to blobDepth requests in flight on c. A goroutine reads the
// answers, which come in request order, while this one checks and stores
// the last: the stream keeps flowing while a chunk is hashed and written.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, c *blobClient, plan *fetchPlan) {
	asked := make(chan int, blobDepth)
	got := make(chan chunkFrame, blobDepth)
	go func() {
		defer close(got)
		for i := range asked {
			c.s.SetReadDeadline(time.Now().Add(blobStepTimeout))
			buf, err := readChunkFrame(c.r, plan.m.ChunkLen(i))
			got <- chunkFrame{i, buf, err}
			if err != nil {
				return
			}
		}
	}()
	var out []int // chunks asked for and not yet stored, oldest first
	stop := func(failed bool) {
		if failed {
			c.s.Reset()
		}
		close(asked)
		for f := range got {
			if f.buf != nil {
				chunkBufs.Put(f.buf)
			}
		}
		for _, i := range out {
			plan.giveBack(i, p, false)
		}
	}
	for {
		for len(out) < blobDepth && ctx.Err() == nil {
			i, ok := plan.take(ctx, p, len(out) == 0)
			if !ok {
				break
			}
			c.s.SetWriteDeadline(time.Now().Add(blobStepTimeout))
			if err := wire.WriteFrame(c.s, (&wire.BlobRequest{Op: wire.BlobGet, Chunks: []wire.ID{plan.m.Chunks[i]}}).Marshal()); err != nil {
				plan.giveBack(i, p, false)
				stop(true)
				return
			}
			out = append(out, i)
			asked <- i
		}
		if len(out) == 0 {
			stop(ctx.Err() != nil)
			return
		}
		var f chunkFrame
		select {
		case f = <-got:
		case <-ctx.Done():
			stop(true)
			return
		}
		if f.err != nil {
			stop(true)
			return
		}
		i := out[0]
		out = out[1:]
		h, buf := plan.m.Chunks[i], f.buf
		data := *buf
		if len(data) == 0 { // no longer held there
			chunkBufs.Put(buf)
			plan.giveBack(i, p, true)
			continue
		}
		var err error
		// The length too: a hash that a manifest's author made of fewer
		// bytes than its layout gives the chunk would pass alone.
		if len(data) != plan.m.ChunkLen(i) || sha256.Sum256(data) != h {
			err = errBadChunk
		} else if err = plan.pack.store(i, data, buf); err == nil {
			buf = nil // the pack's until written, then maybe the reader's
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
			stop(true)
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

// chunkFrame is the answer to a request for chunk i.
type chunkFrame struct {
	i   int
	buf *[]byte
	err error
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
