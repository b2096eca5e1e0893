package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// Retention (issue "Office control", DESIGN.md "Storage"). Every node
// enforces the roster's policy on its own copy: content older than its
// room's limit loses its body, its plaintext, its search entry and its file
// chunks, and keeps its header as a tombstone, so the author's feed stays
// whole (envelope N+1 still names N in prev) and the envelope counts in the
// vector and is never asked for again. Roster ops, key shares and the room
// ops this node can read are never purged. A purge runs at start, hourly,
// soon after a policy change lowers a retention, and soon after content
// older than its limit arrives (a peer that has not purged it yet sent it).
//
// A peer that lacks a purged envelope (a laptop back after months) is sent
// its tombstone in the sync batch. Nobody can prove a tombstone: the ID is
// the hash of signed bytes that are gone. So a receiver takes one only where
// it costs nothing it would keep: content whose time is already past the
// receiver's own retention for its room, that continues a chain the receiver
// holds (prev is the ID it holds at seq-1, and the envelope it holds at
// seq+1, if any, names this ID), and never in place of anything it holds. It
// stores it with no key ID, marked unverified, and a signed envelope that
// turns up at its place later replaces it. A node whose policy keeps that
// envelope refuses the tombstone (counted as "tombstone-young") and keeps
// the gap, in case a peer that still holds the envelope comes along.

// Pace and bounds of purging.
const (
	purgeEvery      = time.Hour
	purgeSettle     = time.Second       // a policy change or old arrivals: purge this soon after
	purgeBatch      = 500               // envelopes per transaction: ingest waits at most one batch
	orphanChunkAge  = 24 * time.Hour    // unreferenced chunks older than this go (a fetch that raced a purge)
	metaLastPurge   = "last-purge"      // meta key: the PurgeReport of the last purge, JSON
	metaCompactDue  = "compact-due"     // meta key: "1" while a failed Compact waits for the next purge
	reasonTombstone = "tombstone"       // a tombstone that does not fit the chain or is not content
	reasonYoung     = "tombstone-young" // a tombstone this node's policy would keep the envelope of
)

// PurgeReport is what the last purge did, as status shows it.
type PurgeReport struct {
	Time      int64 `json:"time"`      // unix ms when it ran; 0: never
	Envelopes int   `json:"envelopes"` // content envelopes emptied to tombstones
	Messages  int   `json:"messages"`  // readable messages among them
	Files     int   `json:"files"`     // files among them
	Chunks    int   `json:"chunks"`    // blob chunks deleted
	Total     int64 `json:"total"`     // envelopes emptied by every purge of this node
}

// retention is a node's purge state.
type retention struct {
	kick chan struct{}

	mu   sync.Mutex // guards last, seen and compactDue
	last PurgeReport
	seen Policy // the policy the last change was compared with
	// compactDue: a purge emptied envelopes but its Compact failed, so the
	// purged text may still be in the search index's segments and the
	// write-ahead log; the next purge compacts even if it empties nothing.
	compactDue bool
}

func (n *Node) initRetention(ctx context.Context) {
	n.ret.kick = make(chan struct{}, 1)
	n.ret.seen = n.hist.currentPolicy()
	if b, err := n.st.Meta(ctx, metaLastPurge); err == nil {
		json.Unmarshal(b, &n.ret.last) // a damaged record only loses the report
	}
	b, err := n.st.Meta(ctx, metaCompactDue)
	n.ret.compactDue = err == nil && string(b) == "1" // a failed Compact before a restart
}

// kickPurge asks the retention loop to purge soon.
func (n *Node) kickPurge() {
	select {
	case n.ret.kick <- struct{}{}:
	default:
	}
}

// lastPurge returns the report of the last purge.
func (n *Node) lastPurge() PurgeReport {
	n.ret.mu.Lock()
	defer n.ret.mu.Unlock()
	return n.ret.last
}

// retentionLoop purges at start, every purgeEvery, and when kicked.
func (n *Node) retentionLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.ret.kick:
			select { // gather a burst of arrivals into one purge
			case <-time.After(purgeSettle):
			case <-ctx.Done():
				return
			}
		}
		if _, err := n.purge(ctx, time.Now()); err != nil && ctx.Err() == nil {
			n.log.Warn("retention: purge", "err", err)
		}
		t.Reset(purgeEvery)
	}
}

// retentionRules turns the policy into the store's cutoffs at now.
func retentionRules(p Policy, now time.Time) store.Retention {
	cutoff := func(days int) int64 {
		if days <= 0 {
			return 0
		}
		return now.Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
	}
	r := store.Retention{Default: cutoff(p.RetentionDays), Rooms: map[wire.ID]int64{}}
	for s, days := range p.RoomRetention {
		if id, err := wire.ParseID(s); err == nil {
			r.Rooms[id] = cutoff(days)
		}
	}
	return r
}

// purging reports whether r purges anything at all.
func purging(r store.Retention) bool {
	if r.Default > 0 {
		return true
	}
	for _, c := range r.Rooms {
		if c > 0 {
			return true
		}
	}
	return false
}

// purge applies the policy at now: it empties what is too old, then compacts
// the database and deletes the chunks of the files that went, and records
// what it did.
func (n *Node) purge(ctx context.Context, now time.Time) (PurgeReport, error) {
	n.ret.mu.Lock()
	rep := PurgeReport{Time: now.UnixMilli(), Total: n.ret.last.Total}
	n.ret.mu.Unlock()
	rules := retentionRules(n.hist.currentPolicy(), now)
	var err error
	if purging(rules) {
		err = n.purgeWith(ctx, rules, &rep)
	}
	rep.Total += int64(rep.Envelopes)
	n.ret.mu.Lock()
	n.ret.last = rep
	n.ret.mu.Unlock()
	if b, jerr := json.Marshal(rep); jerr == nil {
		err = errors.Join(err, n.st.SetMeta(ctx, metaLastPurge, b))
	}
	if rep.Envelopes > 0 {
		n.log.Info("retention: purged", "envelopes", rep.Envelopes, "files", rep.Files, "chunks", rep.Chunks)
	}
	return rep, err
}

func (n *Node) purgeWith(ctx context.Context, rules store.Retention, rep *PurgeReport) error {
	var manifests [][]byte
	forks := 0
	var from int64
	for {
		p, err := n.st.Purge(ctx, rules, from, purgeBatch)
		if err != nil {
			if rep.Envelopes+forks > 0 { // batches before this one emptied some
				n.ret.mu.Lock()
				n.ret.compactDue = true
				n.ret.mu.Unlock()
			}
			return err
		}
		rep.Envelopes += p.Envelopes
		rep.Messages += p.Messages
		rep.Files += len(p.Manifests)
		manifests = append(manifests, p.Manifests...)
		forks += p.Forks
		if from = p.Next; from == 0 {
			break
		}
	}
	n.ret.mu.Lock()
	due := n.ret.compactDue
	n.ret.mu.Unlock()
	var cerr error
	if rep.Envelopes+forks > 0 || due {
		cerr = n.compact(ctx)
	}
	// The purged files' records are gone: their chunks go now, or only as
	// orphans a day later, whether or not Compact worked.
	chunks, err := n.dropChunks(ctx, manifests)
	rep.Chunks = chunks
	return errors.Join(cerr, err)
}

// compact runs the store's Compact and remembers, across restarts, whether
// it still has to.
func (n *Node) compact(ctx context.Context) error {
	err := n.st.Compact(ctx)
	n.ret.mu.Lock()
	was := n.ret.compactDue
	n.ret.compactDue = err != nil
	n.ret.mu.Unlock()
	switch {
	case err != nil && !was:
		return errors.Join(err, n.st.SetMeta(ctx, metaCompactDue, []byte("1")))
	case err == nil && was:
		return n.st.SetMeta(ctx, metaCompactDue, []byte("0"))
	}
	return err
}

// dropChunks deletes the packs of the purged files' manifests that no kept
// file stores, and any pack no file names that is older than orphanChunkAge
// (a download that raced a purge stored it after; a file being posted is
// younger). It returns how many chunks it deleted.
func (n *Node) dropChunks(ctx context.Context, manifests [][]byte) (int, error) {
	kept := map[wire.ID]bool{}
	files, err := n.st.Files(ctx, wire.ID{})
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		if m, err := wire.DecodeFileManifest(f.Manifest); err == nil {
			kept[layoutOf(m).id()] = true
		}
	}
	gone := 0
	for _, b := range manifests {
		m, err := wire.DecodeFileManifest(b)
		if err != nil {
			continue
		}
		if id := layoutOf(m).id(); !kept[id] {
			kept[id] = true // counted once
			gone += n.files.blobs.forget(id)
		}
	}
	old := time.Now().Add(-orphanChunkAge)
	err = filepath.WalkDir(n.files.blobs.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // no blobs yet
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(old) {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, postPrefix) || strings.HasPrefix(name, ".held-") {
			os.Remove(path) // left by a crash
			return nil
		}
		id, perr := wire.ParseID(strings.TrimSuffix(name, heldSuffix))
		if perr != nil || kept[id] {
			return nil
		}
		gone += n.files.blobs.forget(id)
		return nil
	})
	return gone, err
}

// retentionChanged runs after every roster computation: a lower retention
// than before purges soon.
func (n *Node) retentionChanged() {
	p := n.hist.currentPolicy()
	n.ret.mu.Lock()
	lower := lowered(n.ret.seen, p)
	n.ret.seen = p
	n.ret.mu.Unlock()
	if lower {
		n.kickPurge()
	}
}

// lowered reports whether q keeps some room's history for less time than p.
func lowered(p, q Policy) bool {
	less := func(a, b int) bool { return b > 0 && (a == 0 || b < a) }
	if less(p.RetentionDays, q.RetentionDays) {
		return true
	}
	for _, m := range []map[string]int{p.RoomRetention, q.RoomRetention} {
		for s := range m {
			id, err := wire.ParseID(s)
			if err == nil && less(p.Retention(id), q.Retention(id)) {
				return true
			}
		}
	}
	return false
}

// retentionSeen runs on newly stored messages: one already past its room's
// retention (a peer that had not purged it yet sent it) is purged soon.
func (n *Node) retentionSeen(ms []store.Message) {
	p := n.hist.currentPolicy()
	if p.RetentionDays == 0 && len(p.RoomRetention) == 0 {
		return
	}
	now := time.Now()
	for _, m := range ms {
		if d := p.Retention(m.Room); d > 0 && m.Time < now.Add(-time.Duration(d)*24*time.Hour).UnixMilli() {
			n.kickPurge()
			return
		}
	}
}

// tombstoneOf is what sync sends of an envelope this node holds as a tombstone.
func tombstoneOf(e store.Envelope) wire.Tombstone {
	return wire.Tombstone{Author: e.Author, Seq: e.Seq, ID: e.ID, Prev: e.Prev, Lamport: e.Lamport,
		Time: e.Time, Class: e.Class, Room: e.Room}
}

// ingestTombstones takes the tombstones a sync peer sent, as the comment at
// the top of this file says, and returns how many it stored. One whose
// predecessor is not held waits for a later sync.
func (h *history) ingestTombstones(ctx context.Context, ts []wire.Tombstone) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	sort.SliceStable(ts, func(i, j int) bool {
		if c := bytes.Compare(ts[i].Author, ts[j].Author); c != 0 {
			return c < 0
		}
		return ts[i].Seq < ts[j].Seq
	})
	pol, now := h.currentPolicy(), time.Now()
	var (
		stored int
		counts map[string]int64
	)
	err := h.st.Update(ctx, false, func(tx *store.Tx) error {
		stored, counts = 0, map[string]int64{}
		for _, t := range ts {
			verdict, err := h.judgeTombstone(tx, t, pol, now)
			if err != nil {
				return err
			}
			switch verdict {
			case "":
				if _, err := tx.PutTombstone(store.Envelope{
					ID: t.ID, Author: t.Author, Seq: t.Seq, Prev: t.Prev, Lamport: t.Lamport,
					Time: t.Time, Class: t.Class, Room: t.Room, Received: now.UnixMilli(),
				}); err != nil {
					return err
				}
				stored++
			case verdictSkip:
			default:
				counts[verdict]++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	for r, c := range counts {
		h.rejected[r] += c
	}
	h.mu.Unlock()
	return stored, nil
}

// verdictSkip: a tombstone held already, or that cannot be judged yet (its
// author or the envelope below it is not held); a later sync offers it again.
const verdictSkip = "skip"

// judgeTombstone says whether t may be stored (""), is skipped, or is
// refused for the reason returned.
func (h *history) judgeTombstone(tx *store.Tx, t wire.Tombstone, pol Policy, now time.Time) (string, error) {
	if t.Class != wire.ClassContent || t.Room.IsZero() {
		return reasonTombstone, nil // roster ops and key shares are never purged
	}
	m, ok := h.member(t.Author)
	switch {
	case !ok:
		return verdictSkip, nil // the roster has not caught up
	case m.refuses(t.Seq, t.ID):
		return reasonRemoved, nil
	}
	days := pol.Retention(t.Room)
	if days == 0 || min(t.Time, now.UnixMilli()) >= now.Add(-time.Duration(days)*24*time.Hour).UnixMilli() {
		return reasonYoung, nil
	}
	have, ok, err := tx.EnvelopeAt(t.Author, t.Seq)
	switch {
	case err != nil:
		return "", err
	case ok && have == t.ID:
		return verdictSkip, nil
	case ok:
		return reasonTombstone, nil // a tombstone never displaces what is held
	}
	if t.Seq > 1 {
		prev, ok, err := tx.EnvelopeAt(t.Author, t.Seq-1)
		switch {
		case err != nil:
			return "", err
		case !ok:
			return verdictSkip, nil
		case prev != t.Prev:
			return reasonTombstone, nil
		}
	}
	if next, ok, err := tx.EnvelopeAt(t.Author, t.Seq+1); err != nil {
		return "", err
	} else if ok {
		e, _, err := tx.Envelope(next)
		if err != nil {
			return "", err
		}
		if e.Prev != t.ID {
			return reasonTombstone, nil
		}
	}
	return "", nil
}
