package node

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// maxCheckWorkers bounds the goroutines of one checkAll. Checking is CPU
// work (an Ed25519 verify and an age decrypt per envelope) plus one read of
// the store's read pool, which has no more connections than this.
const maxCheckWorkers = 4

// checkResult is what check said about one envelope.
type checkResult struct {
	c      *checked
	out    outcome
	reason string
}

// checkAll runs check over raws on min(GOMAXPROCS, maxCheckWorkers)
// goroutines and returns the results in the order of raws. Accepted content
// whose room key this node already holds is decrypted and decoded here as
// well (into checked.plain and checked.content), so that the write
// transaction, which runs alone, is left with storing. check and preDecrypt
// write nothing shared but counters and caches: ingestRaw acts on the
// results in the order of raws, whatever the order the work was done in.
func (h *history) checkAll(ctx context.Context, raws [][]byte) []checkResult {
	res := make([]checkResult, len(raws))
	keys := &storedKeys{}
	one := func(i int) {
		c, out, reason := h.check(ctx, raws[i])
		if out == outAccept {
			h.noteTime(c.hdr, time.Now())
			h.preDecrypt(ctx, c, keys)
		}
		res[i] = checkResult{c: c, out: out, reason: reason}
	}
	workers := min(runtime.GOMAXPROCS(0), maxCheckWorkers, len(raws))
	if workers <= 1 {
		for i := range raws {
			one(i)
		}
		return res
	}
	// Envelopes differ in cost (a duplicate is only looked up, a roster op
	// only verified, a large message takes longer to decrypt), so workers
	// take the next index rather than a fixed share.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) {
					return
				}
				one(i)
			}
		})
	}
	wg.Wait()
	return res
}

// preDecrypt decrypts c's body when it is content this node can read with
// a key it already holds, as applyContent would. On any failure it leaves
// c.plain nil, and applyContent does the work, and the counting, as usual.
func (h *history) preDecrypt(ctx context.Context, c *checked, keys *storedKeys) {
	hd := c.hdr
	if hd.Version != wire.Version || hd.Class != wire.ClassContent {
		return
	}
	k, ok := h.heldKey(ctx, hd.Room, hd.Key, keys)
	if !ok {
		return // a key not yet held, perhaps shared in this very batch
	}
	plain, err := crypto.DecryptContent(crypto.RoomKey(k.Key), hd.Body)
	if err != nil {
		return
	}
	c.plain = plain
	if content, err := wire.DecodeContent(plain); err == nil {
		c.content = content
	}
}

// heldKey returns room's key keyID from the history's key cache, or else
// from the store, which it reads once per room and checkAll. A key read from
// the store goes into the cache as applyContent would put it there: keys
// are never deleted, so a committed key is one every later transaction
// finds too.
func (h *history) heldKey(ctx context.Context, room, keyID wire.ID, keys *storedKeys) (store.RoomKey, bool) {
	h.mu.Lock()
	k, ok := h.keys[keyID]
	h.mu.Unlock()
	if ok {
		return k, k.Room == room
	}
	keys.mu.Lock()
	defer keys.mu.Unlock()
	if keys.read[room] {
		return store.RoomKey{}, false // read in this checkAll, and keyID not among them
	}
	ks, err := h.st.RoomKeys(ctx, room)
	if err != nil {
		return store.RoomKey{}, false // not remembered: the next envelope asks again
	}
	if keys.read == nil {
		keys.read = map[wire.ID]bool{}
	}
	keys.read[room] = true
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sk := range ks {
		if _, ok := h.keys[sk.KeyID]; !ok {
			h.keys[sk.KeyID] = sk
		}
		if sk.KeyID == keyID && sk.Room == room {
			k, ok = sk, true
		}
	}
	return k, ok
}

// storedKeys remembers, for one checkAll, the rooms whose keys were read
// from the store. Its mutex is held over the read, so workers that lack the
// same room's key wait for one read instead of each making their own.
type storedKeys struct {
	mu   sync.Mutex // guards read
	read map[wire.ID]bool
}
