package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Rejection and drop reasons, counted in status.
const (
	reasonMalformed  = "malformed"
	reasonOversized  = "oversized"
	reasonForged     = "forged"
	reasonForeign    = "foreign"
	reasonNonMember  = "non-member"
	reasonRemoved    = "removed"
	reasonForbidden  = "forbidden" // a roster or key op its author may not make
	reasonFork       = "fork"
	reasonFalseHead  = "false-head" // a peer claimed to hold our envelope at a seq with the wrong ID
	reasonPendingCap = "pending-full"
	reasonUnreadable = "undecryptable"
	reasonPolicy     = "policy" // readable, but the workspace's policy refuses it (a file, or a manifest whose ciphertext outgrows its size)
)

// outcome is what steps 1–4 of the pipeline decided about an envelope.
type outcome int

const (
	outAccept    outcome = 1
	outDuplicate outcome = 2
	outPending   outcome = 3 // author not yet known
	outIgnore    outcome = 4 // valid but not wanted now (removed author)
	outReject    outcome = 5 // malformed, forged, foreign
)

// checked is an envelope that passed decoding and its signature check.
type checked struct {
	env *wire.Envelope
	hdr *wire.Header
	id  wire.ID
	raw []byte
	// plain is the decrypted body of content, when checkAll could decrypt
	// it; applyContent then skips the key lookup and the decrypt.
	plain   []byte
	content *wire.Content // plain decoded, when checkAll could decode it
}

func (c *checked) author() string { return string(c.hdr.Author) }

// memberState is the roster's view of one member, kept in memory for the
// gater and the validator, and rebuilt from the store at start.
type memberState struct {
	name      string
	recipient string
	role      wire.Role
	removed   bool
	cut       cut     // removed: where its feed ends
	admitted  wire.ID // the op that admitted it; zero for the founder
}

// refuses reports whether m's feed refuses the envelope (seq, id): a removed
// member's chain stays valid up to its cut, wherever and whenever it arrives.
func (m memberState) refuses(seq uint64, id wire.ID) bool {
	return m.removed && m.cut.after(seq, id)
}

// history is a workspace's state on one node and the only writer of its
// store: every envelope, local or remote, goes through ingest.
type history struct {
	st      *store.Store
	id      *crypto.Identity
	self    []byte
	ws      wire.ID
	genesis *wire.Genesis
	log     *slog.Logger

	// verifier checks signatures, faster for authors it has seen often.
	verifier *crypto.Verifier

	// forksHeld is non-zero once this node holds a fork: only then must a
	// stored envelope be looked for among the forks (a statement per envelope).
	forksHeld atomic.Int64
	// disclosedNew is set when a share disclosed room ops, for onDisclosed
	// after the commit.
	disclosedNew atomic.Bool
	// dateBack, in nanoseconds, dates this node's appends into the past:
	// tests write history for retention to find with it (authorTime).
	dateBack atomic.Int64

	// appendMu serialises local appends, so a seq is never used twice.
	appendMu sync.Mutex
	group    groupQueue // sends waiting for a group commit (node/groupcommit.go)
	// rotateMu keeps two sends from rotating one room at once.
	rotateMu sync.Mutex

	roster rosterCache // decoded roster ops, by envelope ID

	mu       sync.Mutex // guards the fields below
	members  map[string]memberState
	policy   Policy
	invites  map[wire.ID]*inviteState
	validOps map[wire.ID]bool      // roster ops that took effect
	roles    map[string][]roleStep // each member's roles in the roster's order (roleAt)
	lamport  uint64                // highest lamport seen
	// pending holds envelopes whose author is not yet known, by author,
	// bounded in count and bytes; pendingSince says when each author's
	// first came, so that a full set lets go of the oldest authors' after
	// pendingTTL (a sync brings them again once their author is admitted).
	pending      map[string][]*checked
	pendingSince map[string]time.Time
	npending     int
	pendingBytes int
	// tops is, per author, the highest seq stored: an envelope above it
	// is not held, so check skips the duplicate lookup. It can be low only
	// for an author whose seq 1 was missing at start; a duplicate it lets
	// through is verified for nothing and then found by apply.
	tops map[string]uint64
	// wanted holds the IDs of bodies asked of a peer (node/bodies.go): held
	// as tombstones, they must not be dropped as duplicates when they come.
	wanted   map[wire.ID]int
	targets  targetFilter // messages that stored actions may name (actions.go)
	rejected map[string]int64
	// Caches of what changes rarely and is read per message: room keys by
	// key ID, the send key of each room, and rooms. Cleared on reload.
	keys       map[wire.ID]store.RoomKey
	sendKeys   map[wire.ID]store.RoomKey
	rooms      map[wire.ID]store.Room
	roomList   []store.Room // every room, nil until read
	roomsDirty bool         // a transaction changed rooms since the last commit
	roomsGen   uint64       // bumped whenever the room caches are dropped

	// anchored holds the rooms whose members a name op just made known, for
	// the caller of applyContent to replay their ops (replayRoomOps). Only
	// apply, inside a write, touches it: the store's write lock guards it.
	anchored map[wire.ID]bool
	// replaying holds the rooms replayRoomOps is applying the ops of, in
	// order: their ops are not checked for order again meanwhile.
	replaying map[wire.ID]bool
	// trustedLate holds the messages that a key judged trusted inside the
	// current apply let this node read (rejudgeKeys); apply hands them on.
	// Guarded like anchored.
	trustedLate []store.Message

	// Hooks set by the node; called outside mu, after commit.
	onMessages  func([]store.Message)
	onGap       func(author []byte)
	onAdmit     func(peer []byte)
	onRemove    func(peer []byte)
	onRoster    func()          // after any roster computation was committed
	onPublish   func(*checked)  // an envelope history made on its own (a key rotation)
	onDisclosed func()          // a share disclosed room ops: some may be held only as tombstones
	onRevisit   func(forks int) // tests: revisitForks is about to run this many forks
}

// forkRevisitBatch is how many forks revisitForks reads and runs at once:
// their bytes in memory, at most this many envelopes'.
const forkRevisitBatch = 256

func newHistory(st *store.Store, id *crypto.Identity, g *wire.Genesis, log *slog.Logger) (*history, error) {
	h := &history{
		st:           st,
		id:           id,
		self:         []byte(id.PeerID()),
		ws:           g.ID(),
		genesis:      g,
		log:          log,
		verifier:     crypto.NewVerifier(),
		members:      map[string]memberState{},
		pending:      map[string][]*checked{},
		pendingSince: map[string]time.Time{},
		rejected:     map[string]int64{},
		anchored:     map[wire.ID]bool{},
		replaying:    map[wire.ID]bool{},
	}
	if err := h.reload(context.Background()); err != nil {
		return nil, err
	}
	return h, nil
}

// reload rebuilds the in-memory roster and clock from the store.
func (h *history) reload(ctx context.Context) error {
	envs, err := h.st.RosterEnvelopes(ctx)
	if err != nil {
		return fmt.Errorf("load roster: %w", err)
	}
	lamport, err := h.st.MaxLamport(ctx)
	if err != nil {
		return fmt.Errorf("load clock: %w", err)
	}
	forks, err := h.st.ForkCount(ctx)
	if err != nil {
		return fmt.Errorf("load forks: %w", err)
	}
	tops, err := h.st.FeedTops(ctx)
	if err != nil {
		return fmt.Errorf("load feeds: %w", err)
	}
	targets, err := h.loadTargets(ctx)
	if err != nil {
		return fmt.Errorf("load actions: %w", err)
	}
	h.forksHeld.Store(forks)
	r := computeRoster(h.genesis, h.decodeRoster(envs))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members, h.policy, h.invites, h.validOps, h.roles = r.members, r.policy, r.invites, r.valid, r.roles
	h.keys, h.sendKeys, h.rooms = map[wire.ID]store.RoomKey{}, map[wire.ID]store.RoomKey{}, map[wire.ID]store.Room{}
	h.roomList = nil
	// An ingest beside this reload may have noted a target and committed
	// its action after loadTargets read the table: keep what memory holds
	// (the filter only grows; a rolled-back note is a false positive).
	targets.merge(h.targets)
	h.tops, h.targets = tops, targets
	if lamport > h.lamport {
		h.lamport = lamport
	}
	return nil
}

func (h *history) decodeRoster(envs []store.Envelope) []*rosterOp {
	ops := make([]*rosterOp, len(envs))
	for i, e := range envs {
		ops[i] = h.roster.decode(e)
	}
	return ops
}

func (h *history) count(reason string) {
	h.mu.Lock()
	h.rejected[reason]++
	h.mu.Unlock()
}

func (h *history) rejectedCounts() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int64, len(h.rejected))
	for k, v := range h.rejected {
		out[k] = v
	}
	return out
}

// member returns the roster state of a peer.
func (h *history) member(p []byte) (memberState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.members[string(p)]
	return m, ok
}

// roomsChanged drops the room caches; called when a transaction changes a
// room, and again after it commits, so a read of the old rows that raced the
// commit is not kept.
func (h *history) roomsChanged() {
	h.mu.Lock()
	h.roomsGen++
	clear(h.sendKeys)
	clear(h.rooms)
	h.roomList = nil
	h.roomsDirty = true
	h.mu.Unlock()
}

// committed drops the room caches again after a commit that changed rooms.
func (h *history) committed() {
	h.mu.Lock()
	if h.roomsDirty {
		h.roomsGen++
		clear(h.sendKeys)
		clear(h.rooms)
		h.roomList = nil
		h.roomsDirty = false
	}
	h.mu.Unlock()
}

// allRooms returns every room this node can read, from the cache or the store.
func (h *history) allRooms(ctx context.Context) ([]store.Room, error) {
	h.mu.Lock()
	rs, gen := h.roomList, h.roomsGen
	h.mu.Unlock()
	if rs != nil {
		return rs, nil
	}
	rs, err := h.st.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		rs = []store.Room{}
	}
	h.mu.Lock()
	if h.roomsGen == gen { // a commit in between would leave a stale list cached
		h.roomList = rs
	}
	h.mu.Unlock()
	return rs, nil
}

// room returns a room from the cache or the store.
func (h *history) room(ctx context.Context, id wire.ID) (store.Room, error) {
	h.mu.Lock()
	r, ok := h.rooms[id]
	gen := h.roomsGen
	h.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := h.st.Room(ctx, id)
	if err != nil {
		return r, err
	}
	h.mu.Lock()
	if h.roomsGen == gen {
		h.rooms[id] = r
	}
	h.mu.Unlock()
	return r, nil
}

// memberCount is the number of current members.
func (h *history) memberCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := 0
	for _, m := range h.members {
		if !m.removed {
			c++
		}
	}
	return c
}

// currentMembers returns the peer IDs of the members not removed, in no
// particular order.
func (h *history) currentMembers() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([][]byte, 0, len(h.members))
	for p, m := range h.members {
		if !m.removed {
			out = append(out, []byte(p))
		}
	}
	return out
}

// dmPeer returns the other party of direct room r: from its members, or,
// once that party was removed from the workspace and so from the room's
// members, by matching r's ID against every member ever admitted.
func (h *history) dmPeer(r store.Room) ([]byte, bool) {
	for _, p := range r.Members {
		if !bytes.Equal(p, h.self) {
			return p, true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.members {
		if p != string(h.self) && dmRoomID(h.ws, h.self, []byte(p)) == r.ID {
			return []byte(p), true
		}
	}
	return nil, false
}

// isMember reports whether p may connect: admitted and not removed.
func (h *history) isMember(p peer.ID) bool {
	m, ok := h.member([]byte(p))
	return ok && !m.removed
}

// wasRemoved reports whether p was admitted and has been removed.
func (h *history) wasRemoved(p peer.ID) bool {
	m, ok := h.member([]byte(p))
	return ok && m.removed
}

// check runs steps 1–4 of the pipeline that need no write: decode strictly,
// verify the signature and workspace, judge the author, and spot duplicates.
func (h *history) check(ctx context.Context, raw []byte) (*checked, outcome, string) {
	if len(raw) > wire.MaxEnvelopeBytes {
		return nil, outReject, reasonOversized
	}
	env, hdr, err := wire.DecodeEnvelope(raw)
	if err != nil {
		return nil, outReject, reasonMalformed
	}
	if hdr.Workspace != h.ws {
		return nil, outReject, reasonForeign
	}
	c := &checked{env: env, hdr: hdr, id: env.ID(), raw: raw}
	// A duplicate is common in sync and cheaper to spot than a signature
	// to verify; its ID is the hash of the signed bytes, so nothing is trusted.
	// Above the author's top nothing is held: no lookup (apply would still
	// find a duplicate the top missed).
	if h.mayHold(hdr, c.id) {
		if held, err := h.st.HasVouchedEnvelope(ctx, c.id); err == nil && held {
			return c, outDuplicate, ""
		}
	}
	if err := h.verifier.VerifyEnvelope(env, hdr); err != nil {
		return nil, outReject, reasonForged
	}
	m, ok := h.member(hdr.Author)
	switch {
	case !ok:
		return c, outPending, reasonNonMember
	case m.refuses(hdr.Seq, c.id) && hdr.Class != wire.ClassRoster:
		// A removed member's roster ops beyond its cut are still held: a
		// concurrent op may yet void the removal, and every node must compute
		// the roster from the same set of ops.
		return c, outIgnore, reasonRemoved
	}
	return c, outAccept, ""
}

// pendingTTL is how long the envelopes of an author not yet known are sure
// to wait: past it, a full pending set drops them for newer ones.
const pendingTTL = 10 * time.Minute

// hold keeps an envelope whose author is not yet known, bounded: a member
// can sign envelopes as any number of made-up authors, each up to
// wire.MaxEnvelopeBytes.
func (h *history) hold(c *checked) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.pending[c.author()] {
		if p.id == c.id {
			return true
		}
	}
	full := func() bool {
		return h.npending >= wire.MaxPendingEnvelope || h.pendingBytes+len(c.raw) > wire.MaxPendingBytes
	}
	if full() {
		h.expirePendingLocked(time.Now())
	}
	if full() {
		h.rejected[reasonPendingCap]++
		return false
	}
	if _, ok := h.pendingSince[c.author()]; !ok {
		h.pendingSince[c.author()] = time.Now()
	}
	h.pending[c.author()] = append(h.pending[c.author()], c)
	h.npending++
	h.pendingBytes += len(c.raw)
	return true
}

// expirePendingLocked drops what authors not yet known sent before
// pendingTTL. h.mu is held.
func (h *history) expirePendingLocked(now time.Time) {
	for a, since := range h.pendingSince {
		if now.Sub(since) > pendingTTL {
			h.dropPendingLocked(a)
		}
	}
}

func (h *history) dropPendingLocked(author string) []*checked {
	ps := h.pending[author]
	delete(h.pending, author)
	delete(h.pendingSince, author)
	h.npending -= len(ps)
	for _, c := range ps {
		h.pendingBytes -= len(c.raw)
	}
	return ps
}

// takePending removes and returns what waited for author.
func (h *history) takePending(author []byte) []*checked {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropPendingLocked(string(author))
}

// ingestRaw runs the whole pipeline over envelopes from the network.
// It returns how many were newly stored.
func (h *history) ingestRaw(ctx context.Context, raws [][]byte) (int, error) {
	return h.ingestChecked(ctx, h.checkAll(ctx, raws))
}

// ingestChecked runs steps 4–6 over what checkAll decided. The results may
// have been checked while an earlier batch was written (sync checks the
// next batch meanwhile): an author then unknown may have been admitted by
// that write, so one is judged again here before its envelope waits.
func (h *history) ingestChecked(ctx context.Context, rs []checkResult) (int, error) {
	var cs []*checked
	for _, r := range rs {
		switch r.out {
		case outAccept:
			cs = append(cs, r.c)
		case outPending:
			if _, ok := h.member(r.c.hdr.Author); ok {
				cs = append(cs, r.c) // its signature is checked; apply judges the author
				continue
			}
			h.hold(r.c)
		case outReject:
			h.count(r.reason)
		case outIgnore:
			h.count(r.reason)
		}
	}
	return h.ingest(ctx, cs, false)
}

// ingest runs step 5 and 6 for envelopes that passed check: it stores each
// with its effect in one transaction and then tells subscribers.
func (h *history) ingest(ctx context.Context, cs []*checked, durable bool) (int, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	// Roster ops first, then key shares, then content, each in author order,
	// so one batch can carry a member's admission and its first words.
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i].hdr, cs[j].hdr
		if a.Class != b.Class {
			return classRank(a.Class) < classRank(b.Class)
		}
		if c := bytes.Compare(a.Author, b.Author); c != 0 {
			return c < 0
		}
		return a.Seq < b.Seq
	})
	var (
		msgs    []store.Message
		changes rosterChange
		gaps    [][]byte
		forked  [][]byte
		stored  int
	)
	err := h.st.Update(ctx, durable, func(tx *store.Tx) error {
		msgs, changes, gaps, forked, stored = nil, rosterChange{}, nil, nil, 0
		var rosterIDs []wire.ID // roster ops stored and not yet applied to the roster
		demoted := false        // a fork moved a branch aside: it may have held roster ops
		settle := func() error {
			if len(rosterIDs) == 0 && !demoted {
				return nil
			}
			demoted = false
			ch, err := h.recomputeRoster(ctx, tx, rosterIDs)
			if err != nil {
				return err
			}
			changes.add(ch)
			msgs = append(msgs, ch.msgs...)
			rosterIDs = nil
			return nil
		}
		for _, c := range cs {
			// Roster ops sort first: the roster is computed once they are all
			// in, before the key shares and content they let in.
			if c.hdr.Class != wire.ClassRoster {
				if err := settle(); err != nil {
					return err
				}
			}
			res, err := h.apply(ctx, tx, c)
			if err != nil {
				return err
			}
			if !res.stored {
				continue
			}
			stored++
			msgs = append(msgs, res.msgs...)
			if res.roster {
				rosterIDs = append(rosterIDs, c.id)
			}
			if res.gap {
				gaps = append(gaps, c.hdr.Author)
			}
			if res.reshuffled {
				forked = append(forked, c.hdr.Author)
				demoted = true
			}
			if res.cut != nil {
				forked = append(forked, res.cut)
				demoted = true
			}
		}
		return settle()
	})
	if err != nil {
		// The transaction rolled back: memory may hold roster changes that
		// never reached the store.
		if rerr := h.reload(ctx); rerr != nil {
			h.log.Error("reload roster after failed write", "err", rerr)
		}
		return 0, fmt.Errorf("store envelopes: %w", err)
	}
	admitted := changes.admitted
	h.announce(changes)
	h.committed()
	if h.disclosedNew.Swap(false) && h.onDisclosed != nil {
		h.onDisclosed()
	}
	if len(msgs) > 0 && h.onMessages != nil {
		h.onMessages(msgs)
	}
	for _, a := range gaps {
		if h.onGap != nil {
			h.onGap(a)
		}
	}
	if len(forked) > 0 {
		if err := h.revisitForks(ctx, forked); err != nil {
			return stored, err
		}
	}
	for _, p := range admitted {
		if ps := h.takePending(p); len(ps) > 0 {
			raws := make([][]byte, len(ps))
			for i, c := range ps {
				raws[i] = c.raw
			}
			if _, err := h.ingestRaw(ctx, raws); err != nil {
				return stored, err
			}
		}
	}
	return stored, nil
}

// revisitForks runs the forks of authors whose canonical branch changed
// through the pipeline again: those that continue the new branch join it,
// the rest stay forks. A member can sign any number of forks, so their bytes
// are read and run forkRevisitBatch at a time, in feed order: a fork that
// continues another comes in the same batch or a later one.
func (h *history) revisitForks(ctx context.Context, authors [][]byte) error {
	forks, err := h.st.ForkHeadersOf(ctx, authors)
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(forks, forkRevisitBatch) {
		ids := make([]wire.ID, len(batch))
		for i, f := range batch {
			ids[i] = f.ID
		}
		got := make(map[wire.ID][]byte, len(batch))
		if err := h.st.ForkRaws(ctx, ids, got); err != nil {
			return err
		}
		// A fork the batches before this one decided is no longer a fork:
		// ForkRaws leaves it out.
		raws := make([][]byte, 0, len(got))
		for _, id := range ids {
			if raw, ok := got[id]; ok {
				raws = append(raws, raw)
			}
		}
		if len(raws) == 0 {
			continue
		}
		if h.onRevisit != nil {
			h.onRevisit(len(raws))
		}
		if _, err := h.ingestRaw(ctx, raws); err != nil {
			return err
		}
	}
	return nil
}

// refusedOp says why the roster would not take the roster op body that
// this node was about to sign, and what to do.
func (h *history) refusedOp(body []byte) error {
	role := h.roleOf(h.self)
	op, err := wire.DecodeRosterOp(body)
	if err != nil {
		return fmt.Errorf("%w: the roster does not let this member make that change", ErrForbidden)
	}
	h.mu.Lock()
	policy := h.policy
	h.mu.Unlock()
	switch {
	case op.Kind == wire.RosterInvite && role < wire.RoleAdmin && policy.Invite != "members":
		return withHint(fmt.Errorf("%w: only admins invite in this workspace, and you are %s %s", ErrForbidden, article(role), role),
			"ask an admin for the invite, or ask one to let members invite: charla policy set invite members")
	case role < wire.RoleAdmin && (op.Kind == wire.RosterRemove || op.Kind == wire.RosterRole || op.Kind == wire.RosterPolicy):
		return withHint(fmt.Errorf("%w: only admins and the owner can make a %s change, and you are %s %s", ErrForbidden, op.Kind, article(role), role),
			"ask an admin; 'charla members' shows who is one")
	}
	return withHint(fmt.Errorf("%w: the roster does not let %s %s make that change (op: %s)", ErrForbidden, article(role), role, op.Kind),
		"'charla members' shows roles; 'charla policy' the workspace's settings")
}

// putFork keeps c apart as a fork of its author's feed.
func (h *history) putFork(tx *store.Tx, c *checked) error {
	h.forksHeld.Add(1)
	return tx.PutFork(c.hdr.Author, c.hdr.Seq, c.id, c.raw)
}

func classRank(c wire.Class) int {
	switch c {
	case wire.ClassRoster:
		return 0
	case wire.ClassKeyShare:
		return 1
	}
	return 2
}

// applied is what one envelope did to the store.
type applied struct {
	stored     bool
	reshuffled bool   // a fork was decided for this envelope: revisit its author's forks
	cut        []byte // another author's feed cut under a false tombstone: revisit its forks
	gap        bool
	roster     bool // a roster op was stored
	msgs       []store.Message
}

// apply stores one envelope and its effect inside tx (step 4's feed check and step 5).
func (h *history) apply(ctx context.Context, tx *store.Tx, c *checked) (applied, error) {
	hd := c.hdr
	var res applied
	// A member may have been admitted earlier in this batch, or an author
	// judged before removal; judge again against the roster as it is now.
	m, ok := h.member(hd.Author)
	if !ok {
		h.hold(c)
		return res, nil
	}
	if m.refuses(hd.Seq, c.id) && hd.Class != wire.ClassRoster {
		h.count(reasonRemoved)
		return res, nil
	}
	have, ok, err := tx.EnvelopeAt(hd.Author, hd.Seq)
	if err != nil {
		return res, err
	}
	if ok {
		if have == c.id {
			// Held, perhaps only as a tombstone: a wanted body puts it back
			// (node/bodies.go), then it is read as if it had just arrived.
			// Only a disclosed room op is wanted: anything else a
			// disclosure named (a purged message, say) stays a tombstone.
			// What was not asked for is a duplicate that overtook its twin
			// between check and here (gossip and a pull), unless what is
			// held is a tombstone a peer sent: its time, and so that it was
			// past retention, is only that peer's word, and the signed
			// envelope takes its place (node/retention.go).
			if !h.isWanted(c.id) {
				return h.replaceTombstone(ctx, tx, c, res)
			}
			if ok, err := h.restorable(tx, c); err != nil || !ok {
				return res, err
			}
			if restored, err := tx.RestoreBody(envelopeOf(c)); err != nil || !restored {
				return res, err
			}
			return h.interpret(ctx, tx, c, res)
		}
		h.count(reasonFork)
		// A tombstone a peer sent vouches for nothing: a signed envelope at
		// its place replaces it (node/retention.go).
		weak, err := tx.UnverifiedTombstone(have)
		if err != nil {
			return res, err
		}
		if bytes.Compare(c.id[:], have[:]) > 0 && !weak {
			return res, h.putFork(tx, c)
		}
		// Two envelopes compete only where their branches fork, both after
		// the one held below. One that continues another envelope there is
		// of a branch that lost further down (sync offers such forks): it
		// must not cut the winning branch, whatever its ID.
		if !weak && hd.Seq > 1 {
			prev, ok, err := tx.EnvelopeAt(hd.Author, hd.Seq-1)
			if err != nil {
				return res, err
			}
			if ok && prev != hd.Prev {
				weakPrev, err := tx.UnverifiedTombstone(prev)
				if err != nil {
					return res, err
				}
				if !weakPrev {
					return res, h.putFork(tx, c)
				}
			}
		}
		// At a fork the lower ID is canonical on every node (DESIGN.md): the
		// branch held from this seq on steps aside, and its forks get another
		// look once this one is stored.
		if err := tx.DemoteFrom(hd.Author, hd.Seq); err != nil {
			return res, err
		}
		h.forksHeld.Add(1)
		res.reshuffled = true
	}
	if hd.Seq > 1 {
		prev, ok, err := tx.EnvelopeAt(hd.Author, hd.Seq-1)
		if err != nil {
			return res, err
		}
		switch {
		case !ok:
			res.gap = true
		case prev != hd.Prev:
			weak, err := tx.UnverifiedTombstone(prev)
			if err != nil {
				return res, err
			}
			if weak {
				// This signed envelope shows that the tombstone a peer sent
				// for seq-1 was not its author's: drop it, and wait for seq-1.
				if err := tx.DemoteFrom(hd.Author, hd.Seq-1); err != nil {
					return res, err
				}
				h.forksHeld.Add(1)
				res.gap, res.reshuffled = true, true
				break
			}
			// The author signed another envelope at seq-1 than the one we hold:
			// this one continues a branch we did not take.
			h.count(reasonFork)
			return res, h.putFork(tx, c)
		}
	}
	inserted, err := tx.PutEnvelope(envelopeOf(c))
	if err == nil && !inserted {
		inserted, res.cut, err = h.takeBackID(tx, c)
	}
	if err != nil || !inserted {
		return res, err
	}
	if h.forksHeld.Load() > 0 { // it may have waited as a fork
		if err := tx.DropFork(c.id); err != nil {
			return res, err
		}
	}
	return h.interpret(ctx, tx, c, res)
}

// replaceTombstone puts c's body back into the tombstone a peer sent at its
// place with its ID, and reads it as if it had just arrived. Anything else
// held there (c itself, or a tombstone this node's own purge left) makes c
// a duplicate. Where the envelope held below is not c's prev, c continues
// another branch than the one held, and the tombstone stays.
func (h *history) replaceTombstone(ctx context.Context, tx *store.Tx, c *checked, res applied) (applied, error) {
	weak, err := tx.UnverifiedTombstone(c.id)
	if err != nil || !weak {
		return res, err
	}
	if hd := c.hdr; hd.Seq > 1 {
		prev, ok, err := tx.EnvelopeAt(hd.Author, hd.Seq-1)
		if err != nil || (ok && prev != hd.Prev) {
			return res, err
		}
	}
	if restored, err := tx.RestoreBody(envelopeOf(c)); err != nil || !restored {
		return res, err
	}
	return h.interpret(ctx, tx, c, res)
}

// takeBackID stores c, whose ID is held elsewhere than its (author, seq):
// only a tombstone a peer sent can be, its ID that peer's word, and c's
// signature shows it false. The tombstone's feed is cut from its seq, as for
// a tombstone a signed envelope contradicts; what it held above was chained
// to the lie, and nothing signed can be (it would name c's ID as prev).
// It returns the author whose feed was cut, whose forks get another look.
func (h *history) takeBackID(tx *store.Tx, c *checked) (bool, []byte, error) {
	weak, err := tx.UnverifiedTombstone(c.id)
	if err != nil || !weak {
		return false, nil, err
	}
	e, ok, err := tx.Envelope(c.id)
	if err != nil || !ok || (bytes.Equal(e.Author, c.hdr.Author) && e.Seq == c.hdr.Seq) {
		return false, nil, err
	}
	h.count(reasonTombstone)
	if err := tx.DemoteFrom(e.Author, e.Seq); err != nil {
		return false, nil, err
	}
	h.forksHeld.Add(1)
	inserted, err := tx.PutEnvelope(envelopeOf(c))
	return inserted, e.Author, err
}

// restorable reports whether c, held as a tombstone, may get its body back:
// a content envelope whose disclosed file key opens a room op of its room.
// A disclosure that named something else is forgotten, so the body is not
// asked for again.
func (h *history) restorable(tx *store.Tx, c *checked) (bool, error) {
	if c.hdr.Class != wire.ClassContent {
		return false, nil
	}
	fk, ok, err := tx.Disclosed(c.hdr.Room, c.id)
	if err != nil || !ok {
		return false, err
	}
	if isRoomOp(fk, c.hdr.Body) {
		return true, nil
	}
	h.count(reasonForbidden)
	return false, tx.DropDisclosed(c.id)
}

// envelopeOf is the store's row of a checked envelope, received now.
func envelopeOf(c *checked) store.Envelope {
	hd := c.hdr
	return store.Envelope{
		ID: c.id, Author: hd.Author, Seq: hd.Seq, Prev: hd.Prev, Lamport: hd.Lamport,
		Time: hd.Time, Class: hd.Class, Room: hd.Room, Key: hd.Key, Raw: c.raw,
		Received: time.Now().UnixMilli(),
	}
}

// interpret applies what an envelope just stored means (step 5): the
// roster, a key share, content.
func (h *history) interpret(ctx context.Context, tx *store.Tx, c *checked, res applied) (applied, error) {
	hd := c.hdr
	var err error
	res.stored = true
	h.seeStored(hd)
	if hd.Version != wire.Version {
		return res, nil // stored and relayed, not interpreted
	}
	switch hd.Class {
	case wire.ClassRoster:
		res.roster = true // the caller computes the roster again once the batch's ops are in
	case wire.ClassKeyShare:
		res.msgs, err = h.applyKeyShare(ctx, tx, c)
		if err == nil && channelRoomID(h.ws, hd.Author, hd.Seq) == hd.Room {
			// The room's creation: shares of it that waited are judged now,
			// whether or not this node could read the creation itself.
			var more []store.Message
			more, err = h.reapplyShares(ctx, tx, hd.Room, c.id)
			res.msgs = append(res.msgs, more...)
		}
	case wire.ClassContent:
		var msg *store.Message
		msg, err = h.applyContent(tx, c)
		if msg != nil {
			res.msgs = append(res.msgs, *msg)
		}
	}
	// Rooms whose members a name op made known, or whose ops arrived out of
	// order, have their ops applied again in order (replayRoomOps).
	for err == nil && len(h.anchored) > 0 {
		var more []store.Message
		for room := range h.anchored {
			more, err = h.replayRoomOps(tx, room)
			break
		}
		res.msgs = append(res.msgs, more...)
	}
	res.msgs = append(res.msgs, h.trustedLate...)
	h.trustedLate = h.trustedLate[:0]
	return res, err
}

// seeStored notes an envelope stored: its lamport for the clock, its seq
// for the author's top.
func (h *history) seeStored(hd *wire.Header) {
	h.mu.Lock()
	if hd.Lamport > h.lamport {
		h.lamport = hd.Lamport
	}
	if hd.Seq > h.tops[string(hd.Author)] {
		h.tops[string(hd.Author)] = hd.Seq
	}
	h.mu.Unlock()
}

// mayHold reports whether an envelope at hd's (author, seq) may be held:
// whether check must look for a duplicate. A wanted body is not one.
func (h *history) mayHold(hd *wire.Header, id wire.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hd.Seq <= h.tops[string(hd.Author)] && h.wanted[id] == 0
}

// isWanted reports whether id is a body asked of a peer (node/bodies.go).
func (h *history) isWanted(id wire.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wanted[id] > 0
}

// nextLamport is the lamport for a new local envelope.
func (h *history) nextLamport() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lamport++
	return h.lamport
}

// applyKeyShare takes a room key shared with this node, and decrypts the
// content that waited for it.
func (h *history) applyKeyShare(ctx context.Context, tx *store.Tx, c *checked) ([]store.Message, error) {
	ks, err := h.id.OpenKeyShare(c.hdr.Body)
	if err != nil {
		// Not for us, or not readable: stored and forwarded all the same.
		return nil, nil
	}
	if ks.Workspace != h.ws || ks.Room != c.hdr.Room || !containsPeer(ks.Recipients, c.hdr.Author) {
		h.count(reasonForbidden)
		return nil, nil
	}
	if ks.Epoch > wire.MaxEpoch {
		// Refused here, not by the store: its error would roll back the
		// whole batch the share came in, at every sync.
		h.count(reasonMalformed)
		return nil, nil
	}
	if ok, err := h.epochFits(tx, ks); err != nil || !ok {
		return nil, err
	}
	verdict, err := h.mayShare(tx, c, ks)
	if err != nil || verdict == shareRefused {
		return nil, err
	}
	if ks.RoomKind == wire.RoomDirect && (len(ks.Recipients) != 2 || len(ks.AllRecipients) > 0 ||
		dmRoomID(h.ws, ks.Recipients[0], ks.Recipients[1]) != ks.Room) {
		h.count(reasonForbidden)
		return nil, nil
	}
	trusted := verdict == shareTrusted
	key := crypto.RoomKey(ks.Key)
	if err := tx.PutRoomKey(store.RoomKey{
		Room: ks.Room, KeyID: key.ID(), Epoch: ks.Epoch, Parent: ks.Parent, Key: ks.Key,
		Added: time.Now().UnixMilli(), Untrusted: !trusted,
	}); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.keys[key.ID()] = store.RoomKey{Room: ks.Room, KeyID: key.ID(), Epoch: ks.Epoch, Parent: ks.Parent, Key: ks.Key, Untrusted: !trusted}
	h.mu.Unlock()
	// Everyone the key went to, in this share and the others of its
	// rotation: a key that reached a removed member is never a send key.
	if err := tx.AddKeyRecipients(key.ID(), ks.Holders()); err != nil {
		return nil, err
	}
	h.roomsChanged()
	r := store.Room{ID: ks.Room, Kind: ks.RoomKind}
	if trusted {
		// An untrusted share's recipients are only what its author says;
		// a trusted one's never bring back whom the room's ops took out.
		if r.Members, err = h.shareMembers(tx, ks.Room, ks.Holders()); err != nil {
			return nil, err
		}
		// A channel's creation share names its first members.
		r.MembersKnown = ks.Cause == wire.CauseCreate && ks.RoomKind == wire.RoomChannel && ks.Room != generalRoomID(h.ws)
	}
	if err := tx.PutRoom(r); err != nil {
		return nil, err
	}
	if trusted {
		// New members may vouch for keys held untrusted.
		if err := h.rejudgeKeys(tx, ks.Room); err != nil {
			return nil, err
		}
	}
	if len(ks.Disclosed) > 0 {
		msgs, err := h.takeDisclosed(tx, ks)
		if err != nil || h.anchored[ks.Room] {
			return msgs, err
		}
	}
	msgs, err := h.applyWaiting(tx, key.ID(), ks.Room)
	if err != nil {
		return nil, err
	}
	if h.anchored[ks.Room] {
		// The name op made the members known: every op of the room,
		// and what else still waits here, is applied again in order.
		more, err := h.replayRoomOps(tx, ks.Room)
		return append(msgs, more...), err
	}
	return msgs, nil
}

// keyUntrusted reports whether room key keyID is held untrusted
// (node/keyrules.go).
func (h *history) keyUntrusted(tx *store.Tx, keyID wire.ID) (bool, error) {
	h.mu.Lock()
	k, ok := h.keys[keyID]
	h.mu.Unlock()
	if ok {
		return k.Untrusted, nil
	}
	k, ok, err := tx.RoomKey(keyID)
	return ok && k.Untrusted, err
}

// applyContent decrypts content whose key this node holds and stores its
// effect. Content it cannot read stays stored as ciphertext.
func (h *history) applyContent(tx *store.Tx, c *checked) (*store.Message, error) {
	plain := c.plain // decrypted already by checkAll, with the key found below
	if plain == nil {
		h.mu.Lock()
		k, ok := h.keys[c.hdr.Key]
		h.mu.Unlock()
		if !ok {
			var err error
			if k, ok, err = tx.RoomKey(c.hdr.Key); err != nil {
				return nil, err
			}
			if !ok {
				return nil, h.applyDisclosed(tx, c)
			}
			h.mu.Lock()
			h.keys[c.hdr.Key] = k
			h.mu.Unlock()
		}
		if k.Room != c.hdr.Room {
			return nil, nil
		}
		var err error
		if plain, err = crypto.DecryptContent(crypto.RoomKey(k.Key), c.hdr.Body); err != nil {
			h.count(reasonUnreadable)
			return nil, nil
		}
	}
	content := c.content // decoded by checkAll as well, when it decrypted
	if content == nil {
		var err error
		if content, err = wire.DecodeContent(plain); err != nil {
			h.count(reasonMalformed)
			return nil, nil
		}
	}
	if content.Kind != wire.KindRoomOp && !bytes.Equal(c.hdr.Author, h.self) {
		// A key this node cannot vouch for yet opens the room's ops (who
		// is in it), not others' messages: those wait, undecrypted, until
		// a member is found to have shared the key (rejudgeKeys).
		if untrusted, err := h.keyUntrusted(tx, c.hdr.Key); err != nil || untrusted {
			return nil, err
		}
	}
	switch content.Kind {
	case wire.KindRoomOp:
		h.roomsChanged()
		return nil, h.applyRoomOp(tx, c, content)
	case wire.KindText:
		m := store.Message{
			ID: c.id, Room: c.hdr.Room, Author: c.hdr.Author, Seq: c.hdr.Seq,
			Lamport: c.hdr.Lamport, Time: c.hdr.Time, Kind: uint8(content.Kind), Text: content.Text,
		}
		if err := tx.PutMessage(m); err != nil {
			return nil, err
		}
		if !content.Target.IsZero() {
			if err := h.putReply(tx, c, content.Target); err != nil {
				return nil, err
			}
		}
		return h.settle(tx, m)
	case wire.KindEdit, wire.KindDelete, wire.KindReaction:
		return h.applyAction(tx, c, content)
	case wire.KindFile:
		if content.File == nil {
			h.count(reasonMalformed)
			return nil, nil
		}
		// The message shows the file's name; the manifest goes to files.
		m := store.Message{
			ID: c.id, Room: c.hdr.Room, Author: c.hdr.Author, Seq: c.hdr.Seq,
			Lamport: c.hdr.Lamport, Time: c.hdr.Time, Kind: uint8(content.Kind), Text: content.File.Name,
		}
		if err := h.currentPolicy().checkManifest(content.File); err != nil {
			// Policy is enforced by whoever can read the message: it shows,
			// but its file is neither fetched nor served here.
			h.count(reasonPolicy)
			m.Text = content.File.Name + " (refused: " + err.Error() + ")"
			if err := tx.PutMessage(m); err != nil {
				return nil, err
			}
			return h.settle(tx, m)
		}
		if err := tx.PutMessage(m); err != nil {
			return nil, err
		}
		if err := tx.PutFile(store.File{
			ID: c.id, Room: c.hdr.Room, Author: c.hdr.Author, Time: c.hdr.Time,
			Key: c.hdr.Key, Manifest: content.File.Marshal(),
		}); err != nil {
			return nil, err
		}
		return h.settle(tx, m)
	}
	return nil, nil
}

// appendLocal writes a new envelope of this node's feed, durably, through
// the same pipeline as everything else, and returns it for publishing.
func (h *history) appendLocal(ctx context.Context, class wire.Class, room, key wire.ID, body []byte) (*checked, []store.Message, error) {
	return h.appendBuilt(ctx, class, key, func(uint64) (wire.ID, []byte, error) { return room, body, nil })
}

// appendBuilt is appendLocal for an envelope whose room and body depend on
// the seq it gets (a channel's first key share: the room ID names it).
// Content goes through the group commit (node/groupcommit.go); roster ops
// and key shares, rare and with effects to check one by one, commit alone.
func (h *history) appendBuilt(ctx context.Context, class wire.Class, key wire.ID, build func(seq uint64) (wire.ID, []byte, error)) (*checked, []store.Message, error) {
	if class == wire.ClassContent {
		return h.appendGrouped(ctx, key, build)
	}
	return h.appendAlone(ctx, class, key, build)
}

// appendAlone appends one envelope in a transaction of its own.
func (h *history) appendAlone(ctx context.Context, class wire.Class, key wire.ID, build func(seq uint64) (wire.ID, []byte, error)) (*checked, []store.Message, error) {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	if h.removedSelf() {
		return nil, nil, ErrRemoved
	}
	var msgs []store.Message
	var c *checked
	var changes rosterChange
	err := h.st.Update(ctx, true, func(tx *store.Tx) error {
		changes = rosterChange{}
		var res applied
		var err error
		if c, res, err = h.appendIn(ctx, tx, class, key, build); err != nil {
			return err
		}
		msgs = res.msgs
		if res.roster {
			// An op the roster would not take is refused here, before anyone
			// sees it, rather than relayed and ignored everywhere.
			ch, err := h.recomputeRoster(ctx, tx, nil)
			if err != nil {
				return err
			}
			h.mu.Lock()
			valid := h.validOps[c.id]
			h.mu.Unlock()
			if !valid {
				return h.refusedOp(c.hdr.Body)
			}
			changes = ch
			msgs = append(msgs, ch.msgs...)
		}
		return nil
	})
	if err != nil {
		if class == wire.ClassRoster {
			if rerr := h.reload(ctx); rerr != nil {
				h.log.Error("reload roster after a refused op", "err", rerr)
			}
		}
		return nil, nil, err
	}
	h.announce(changes)
	h.committed()
	if len(msgs) > 0 && h.onMessages != nil {
		h.onMessages(msgs)
	}
	return c, msgs, nil
}

// authorTime is the time this node dates what it writes: now, or what a
// test set in dateBack to write history dated days ago.
func (h *history) authorTime() time.Time {
	if d := h.dateBack.Load(); d != 0 {
		return time.Now().Add(-time.Duration(d))
	}
	return time.Now()
}

// appendIn signs the next envelope of this node's feed inside tx and runs
// it through apply. The caller holds appendMu.
func (h *history) appendIn(ctx context.Context, tx *store.Tx, class wire.Class, key wire.ID, build func(seq uint64) (wire.ID, []byte, error)) (*checked, applied, error) {
	head, ok, err := tx.Head(h.self)
	if err != nil {
		return nil, applied{}, err
	}
	hd := &wire.Header{
		Version: wire.Version, Workspace: h.ws, Author: h.self,
		Seq: 1, Lamport: h.nextLamport(), Time: h.authorTime().UnixMilli(),
		Class: class, Key: key,
	}
	if ok {
		hd.Seq, hd.Prev = head.Seq+1, head.ID
	}
	if hd.Room, hd.Body, err = build(hd.Seq); err != nil {
		return nil, applied{}, err
	}
	env, err := h.id.SealEnvelope(hd)
	if err != nil {
		return nil, applied{}, err
	}
	raw := env.Marshal()
	if len(raw) > wire.MaxEnvelopeBytes {
		return nil, applied{}, fmt.Errorf("%w: message too large (%d bytes encoded, limit %d)", ErrInvalid, len(raw), wire.MaxEnvelopeBytes)
	}
	c := &checked{env: env, hdr: hd, id: env.ID(), raw: raw}
	res, err := h.apply(ctx, tx, c)
	if err != nil {
		return nil, applied{}, err
	}
	if !res.stored {
		if h.removedSelf() {
			return nil, applied{}, ErrRemoved
		}
		return nil, applied{}, fmt.Errorf("store own envelope %d: not taken (is this node still a member?)", hd.Seq)
	}
	return c, res, nil
}

// sendKey is the key new content in room is encrypted with: the newest
// trusted epoch, ties broken by key ID (sendCandidate).
func (h *history) sendKey(ctx context.Context, room wire.ID) (store.RoomKey, error) {
	if h.removedSelf() {
		return store.RoomKey{}, ErrRemoved
	}
	h.mu.Lock()
	k, ok := h.sendKeys[room]
	gen := h.roomsGen
	h.mu.Unlock()
	if ok {
		return k, nil
	}
	keys, err := h.st.RoomKeys(ctx, room)
	if err != nil {
		return store.RoomKey{}, err
	}
	if len(keys) == 0 {
		return store.RoomKey{}, ErrUnknownRoom
	}
	best := sendCandidate(keys)
	// A key that reached a removed member, or one who left, is never a send
	// key again: rotate first (DESIGN.md).
	r, err := h.room(ctx, room)
	if err != nil {
		return store.RoomKey{}, err
	}
	if r.Kind == wire.RoomChannel && room != generalRoomID(h.ws) && r.MembersKnown && !containsPeer(r.Members, h.self) {
		return store.RoomKey{}, fmt.Errorf("%w: this member is no longer in that room; a member can add it back", ErrForbidden)
	}
	rotate, err := h.needsRotation(ctx, r, best)
	if err != nil {
		return store.RoomKey{}, err
	}
	if rotate && r.Kind == wire.RoomDirect {
		// A direct room is never rotated: its key reached the other party,
		// who has since been removed from the workspace.
		return store.RoomKey{}, withHint(fmt.Errorf("%w: the other member of this direct conversation was removed from the workspace; its history can be read, not added to", ErrForbidden), "")
	}
	if rotate {
		h.rotateMu.Lock()
		defer h.rotateMu.Unlock()
		if keys, err = h.st.RoomKeys(ctx, room); err != nil {
			return store.RoomKey{}, err
		}
		if newest := sendCandidate(keys); newest.KeyID != best.KeyID {
			best = newest // another send rotated meanwhile
		} else {
			shares, err := h.rotate(ctx, r, best, nil)
			for _, c := range shares {
				if h.onPublish != nil {
					h.onPublish(c)
				}
			}
			if err != nil {
				return store.RoomKey{}, err
			}
			if keys, err = h.st.RoomKeys(ctx, room); err != nil {
				return store.RoomKey{}, err
			}
			best = sendCandidate(keys)
		}
	}
	h.mu.Lock()
	if h.roomsGen == gen {
		h.sendKeys[room] = best
	}
	h.mu.Unlock()
	return best, nil
}

// sendCandidate is the key to send with among keys: the newest trusted one
// (an untrusted key may have been planted by someone outside the room).
// Only a node that holds no trusted key of the room at all — a member added
// to a room created with --no-history, which cannot read who is in it —
// falls back to the newest untrusted one (SECURITY.md, known gaps).
func sendCandidate(keys []store.RoomKey) store.RoomKey {
	var trusted []store.RoomKey
	for _, k := range keys {
		if !k.Untrusted {
			trusted = append(trusted, k)
		}
	}
	if len(trusted) > 0 {
		return newestKey(trusted)
	}
	return newestKey(keys)
}

// newestKey is the newest epoch of keys, ties broken by key ID.
func newestKey(keys []store.RoomKey) store.RoomKey {
	best := keys[0]
	for _, k := range keys[1:] {
		if k.Epoch > best.Epoch || (k.Epoch == best.Epoch && bytes.Compare(k.KeyID[:], best.KeyID[:]) > 0) {
			best = k
		}
	}
	return best
}

// postContent encrypts content to the room's send key and appends it.
func (h *history) postContent(ctx context.Context, room wire.ID, content *wire.Content) (*checked, []store.Message, error) {
	k, err := h.sendKey(ctx, room)
	if err != nil {
		return nil, nil, err
	}
	body, err := crypto.EncryptContent(crypto.RoomKey(k.Key), content.Marshal())
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt message: %w", err)
	}
	return h.appendLocal(ctx, wire.ClassContent, room, k.KeyID, body)
}

// shareKey sends a room key to recipients (peer IDs, this node among them).
func (h *history) shareKey(ctx context.Context, ks *wire.KeyShare) (*checked, error) {
	body, err := h.sealShare(ks)
	if err != nil {
		return nil, err
	}
	c, _, err := h.appendLocal(ctx, wire.ClassKeyShare, ks.Room, wire.ID{}, body)
	return c, err
}

// sealShare encrypts ks to its recipients' age recipients.
func (h *history) sealShare(ks *wire.KeyShare) ([]byte, error) {
	sort.Slice(ks.Recipients, func(i, j int) bool { return bytes.Compare(ks.Recipients[i], ks.Recipients[j]) < 0 })
	sort.Slice(ks.AllRecipients, func(i, j int) bool { return bytes.Compare(ks.AllRecipients[i], ks.AllRecipients[j]) < 0 })
	var recips []string
	for _, p := range ks.Recipients {
		m, ok := h.member(p)
		if !ok || m.removed {
			return nil, fmt.Errorf("share room key: %s is not a member", peer.ID(p))
		}
		recips = append(recips, m.recipient)
	}
	body, err := crypto.SealKeyShare(ks, recips)
	if err != nil {
		return nil, fmt.Errorf("share room key: %w", err)
	}
	return body, nil
}

// createRoom makes a new room with a fresh key shared to members (this node
// included) and, for channels, names it.
func (h *history) createRoom(ctx context.Context, id wire.ID, kind wire.RoomKind, name string, members [][]byte, noHistory bool) ([]*checked, error) {
	if !containsPeer(members, h.self) {
		members = append(members, h.self)
	}
	key, err := crypto.NewRoomKey()
	if err != nil {
		return nil, err
	}
	ks := &wire.KeyShare{
		Workspace: h.ws, Room: id, RoomKind: kind, Epoch: 1, Cause: wire.CauseCreate,
		Recipients: members, Key: key,
	}
	var share *checked
	if kind == wire.RoomChannel && id.IsZero() {
		// A new channel's ID names its creator and this envelope's seq.
		share, _, err = h.appendBuilt(ctx, wire.ClassKeyShare, wire.ID{}, func(seq uint64) (wire.ID, []byte, error) {
			ks.Room = channelRoomID(h.ws, h.self, seq)
			body, err := h.sealShare(ks)
			return ks.Room, body, err
		})
		id = ks.Room
	} else {
		share, err = h.shareKey(ctx, ks)
	}
	if err != nil {
		return nil, err
	}
	out := []*checked{share}
	if kind == wire.RoomChannel {
		op := &wire.Content{Kind: wire.KindRoomOp, RoomName: name, RoomKind: kind, Private: noHistory}
		if id != generalRoomID(h.ws) {
			// Signed by the creator and readable by whoever gets the first
			// key: a member added later learns from it who is in the room.
			op.Members = ks.Recipients // sorted by sealShare
		}
		op2, _, err := h.postContent(ctx, id, op)
		if err != nil {
			return out, err
		}
		out = append(out, op2)
	}
	return out, nil
}

func containsPeer(ps [][]byte, p []byte) bool {
	for _, q := range ps {
		if bytes.Equal(q, p) {
			return true
		}
	}
	return false
}

// generalRoomID is the ID of a workspace's #general, the same on every node.
func generalRoomID(ws wire.ID) wire.ID {
	return sha256.Sum256(append([]byte("charla/general/v1\x00"), ws[:]...))
}

// dmRoomID is the ID of the direct room of two members (DESIGN.md).
func dmRoomID(ws wire.ID, a, b []byte) wire.ID {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	d := sha256.New()
	d.Write([]byte("charla/dm/v1\x00"))
	d.Write(ws[:])
	d.Write(a)
	d.Write(b)
	var id wire.ID
	copy(id[:], d.Sum(nil))
	return id
}
