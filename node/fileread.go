package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/charla-im/charla/wire"
)

// tapWindow is how many chunks ahead of the reader a tap keeps in memory:
// more than a peer's requests in flight (blobStreamsPerPeer × blobDepth), as
// its streams answer out of order; with 4, 60% of the chunks of a 256 MiB
// get were read back from disk on a loaded machine, with 8 none.
const tapWindow = 8

// tapWait bounds how long a fetch holds a chunk too far ahead of the reader.
const tapWait = 500 * time.Millisecond

// errNoSource is a chunk that a get needs next and that no connected member
// holds, or none but members that failed to send it.
var errNoSource = errors.New("held by no connected member")

// noSourceError says what a get that stopped on errNoSource means to its
// user, without the layers of the decryption that met it.
func (r *packReader) noSourceError(name string) error {
	others := ""
	if plan := r.run.plan.Load(); plan != nil && plan.busy() {
		others = "; the chunks that connected members hold are being fetched meanwhile"
	}
	return fmt.Errorf("get %s: chunk %d of %d is %w: get it again once a member who has the file is online%s",
		name, r.next+1, len(r.p.l.chunks), errNoSource, others)
}

// getRefetches bounds how often one read fetches a chunk again that was
// found damaged on disk after a fetch had stored it.
const getRefetches = 2

// chunkTap hands chunks that a fetch has just checked to the reader of the
// same pack, when they are among the next few it reads, so they are neither
// read back nor hashed again. Its fields are guarded by the pack's mu.
type chunkTap struct {
	next int             // the chunk the reader wants next
	bufs map[int]*[]byte // chunks from the fetch, from chunkBufs
}

// offer takes buf as chunk i when the reader will want it soon.
func (t *chunkTap) offer(i int, buf *[]byte) bool {
	if i < t.next || i >= t.next+tapWindow || t.bufs[i] != nil {
		return false
	}
	t.bufs[i] = buf
	return true
}

// advance moves the reader to chunk i, giving back buffers it passed. The
// caller broadcasts on the pack's changed, for fetches waiting on the tap.
func (t *chunkTap) advance(i int) {
	t.next = i
	for k, b := range t.bufs {
		if k < i {
			chunkBufs.Put(b)
			delete(t.bufs, k)
		}
	}
}

// packReader reads a file's ciphertext in order while it is being fetched:
// each chunk from the tap when the fetch handed it over, else from the pack,
// checked against its hash, else once the fetch has stored it. One chunk in
// use and tapWindow ahead, whatever the size of the file.
type packReader struct {
	n    *Node
	ctx  context.Context
	file wire.ID
	p    *pack
	tap  *chunkTap // nil when another reader of the pack holds the tap

	run       *fetchRun
	refetches int
	stopWake  func() bool
	watched   *fetchRun // the run a goroutine waits on to wake the reader

	fromTap, fromDisk int // chunks read each way

	next int
	cur  bytes.Reader
	own  *[]byte // the chunk being read, when it came from the tap
	buf  []byte  // the chunk being read, when read from disk
}

// newPackReader starts fetching what file id lacks, unless a fetch of it
// runs already, and returns a reader of its ciphertext. The caller closes it.
func (n *Node) newPackReader(ctx context.Context, id wire.ID, l layout) *packReader {
	p := n.files.blobs.open(l)
	r := &packReader{n: n, ctx: ctx, file: id, p: p}
	p.mu.Lock()
	if p.tap == nil {
		r.tap = &chunkTap{bufs: map[int]*[]byte{}}
		p.tap = r.tap
	}
	p.mu.Unlock()
	r.stopWake = context.AfterFunc(ctx, r.wake)
	r.run = n.startFetch(id)
	return r
}

func (r *packReader) wake() { r.p.wake() }

func (r *packReader) close() {
	r.stopWake()
	r.release()
	r.p.mu.Lock()
	if r.tap != nil && r.p.tap == r.tap {
		r.p.tap = nil
		r.tap.advance(len(r.p.held) + tapWindow)
		r.p.changed.Broadcast()
	}
	r.p.mu.Unlock()
}

func (r *packReader) release() {
	if r.own != nil {
		chunkBufs.Put(r.own)
		r.own = nil
	}
}

func (r *packReader) Read(b []byte) (int, error) {
	for r.cur.Len() == 0 {
		r.release()
		if r.next == len(r.p.l.chunks) {
			return 0, io.EOF
		}
		data, err := r.chunk(r.next)
		if err != nil {
			return 0, fmt.Errorf("chunk %d of %d: %w", r.next+1, len(r.p.l.chunks), err)
		}
		r.cur.Reset(data)
		r.next++
	}
	return r.cur.Read(b)
}

// chunk returns chunk k once it is held, checked against its hash.
func (r *packReader) chunk(k int) ([]byte, error) {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if r.tap != nil {
			if b := r.tap.bufs[k]; b != nil {
				delete(r.tap.bufs, k)
				r.tap.advance(k + 1)
				p.changed.Broadcast()
				r.own = b
				r.fromTap++
				return *b, nil
			}
		}
		if p.held[k] {
			p.mu.Unlock()
			data, err := p.read(k, r.buf)
			p.mu.Lock()
			if err == nil {
				r.buf = data
				r.fromDisk++
				if r.tap != nil {
					r.tap.advance(k + 1)
					p.changed.Broadcast()
				}
				return data, nil
			}
			if !errors.Is(err, errBadChunk) && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			continue // dropped: fetched again below
		}
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-r.run.done:
			if r.run.err != nil {
				return nil, r.run.err
			}
			// The fetch ended with every chunk held, and this one was
			// dropped since: it failed its hash on disk.
			if r.refetches == getRefetches {
				return nil, fmt.Errorf("%w, again after fetching it %d times", errBadChunk, getRefetches)
			}
			r.refetches++
			p.mu.Unlock()
			r.run = r.n.startFetch(r.file)
			p.mu.Lock()
			continue
		default:
		}
		// The fetch goes on for the other chunks, which a later get then
		// finds held; this one waits no longer for a chunk it will lack.
		if plan := r.run.plan.Load(); plan != nil && plan.sourceless(k) {
			return nil, errNoSource
		}
		if r.watched != r.run {
			r.watched = r.run
			go func(run *fetchRun) {
				select {
				case <-run.done:
				case <-r.ctx.Done():
				}
				r.wake()
			}(r.run)
		}
		p.changed.Wait()
	}
}
