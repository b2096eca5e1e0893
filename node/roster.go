package node

import (
	"bytes"
	"context"
	"sync"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// The roster is a function of the set of roster envelopes held: they are
// applied in one total order, (lamport, author, seq), and an op is valid iff
// its author holds the needed role in the state just before it (DESIGN.md
// "Rules that make sync correct"). It is computed again from all of them
// whenever one arrives, so a late op that sorts earlier changes the result
// exactly as if it had come first.

// cut is where a removal ends a member's feed: seq and the ID there stay
// valid, everything later and any other branch at seq does not.
type cut struct {
	seq uint64
	id  wire.ID
}

// after reports whether the envelope (seq, id) falls beyond the cut.
func (c cut) after(seq uint64, id wire.ID) bool {
	return seq > c.seq || (seq == c.seq && id != c.id)
}

// inviteState is one invite as the roster knows it.
type inviteState struct {
	ID      wire.ID
	Issuer  []byte
	Role    wire.Role
	Expires int64 // unix ms
	Issued  int64 // the op's author time, unix ms
	Op      wire.ID
	Revoked bool
	Used    bool
}

// rosterState is the result of applying the roster ops in order.
type rosterState struct {
	members map[string]memberState
	policy  Policy
	invites map[wire.ID]*inviteState
	cuts    map[string]cut
	valid   map[wire.ID]bool // the ops that took effect
	roles   map[string][]roleStep
}

// roleStep is a member's role from one op on, in the roster's total order:
// the role history that judges what a member did by its role at the time
// (roleAt).
type roleStep struct {
	genesis bool // the founder's, before every envelope
	lamport uint64
	author  []byte
	seq     uint64
	role    wire.Role
}

// before reports whether the step's op sorts before (lamport, author, seq).
func (s roleStep) before(lamport uint64, author []byte, seq uint64) bool {
	switch {
	case s.genesis:
		return true
	case s.lamport != lamport:
		return s.lamport < lamport
	}
	if c := bytes.Compare(s.author, author); c != 0 {
		return c < 0
	}
	return s.seq < seq
}

func sameSteps(a, b []roleStep) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.genesis != y.genesis || x.lamport != y.lamport || !bytes.Equal(x.author, y.author) ||
			x.seq != y.seq || x.role != y.role {
			return false
		}
	}
	return true
}

// rosterOp is a roster envelope decoded once; decoding and the member
// record's signature are remembered by envelope ID.
type rosterOp struct {
	id      wire.ID
	author  []byte
	seq     uint64
	time    int64
	op      *wire.RosterOp // nil when malformed
	member  bool           // op.Member carries a valid self-signature
	lamport uint64
}

// rosterCache keeps decoded roster ops across computations.
type rosterCache struct {
	mu  sync.Mutex
	ops map[wire.ID]*rosterOp
}

func (rc *rosterCache) decode(e store.Envelope) *rosterOp {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if o, ok := rc.ops[e.ID]; ok {
		return o
	}
	if rc.ops == nil {
		rc.ops = map[wire.ID]*rosterOp{}
	}
	o := &rosterOp{id: e.ID, author: e.Author, seq: e.Seq, time: e.Time, lamport: e.Lamport}
	if _, hdr, err := wire.DecodeEnvelope(e.Raw); err == nil {
		if op, err := wire.DecodeRosterOp(hdr.Body); err == nil {
			o.op = op
			if len(op.Member.Peer) > 0 {
				o.member = crypto.VerifyMember(&op.Member) == nil
			}
		}
	}
	rc.ops[e.ID] = o
	return o
}

// computeRoster applies ops (in total order) from the genesis. A removal's
// cut also voids its target's ops that sort before the removal, so the
// computation repeats with the cuts it found until they settle.
func computeRoster(g *wire.Genesis, ops []*rosterOp) *rosterState {
	var cuts map[string]cut
	var r *rosterState
	for range 8 { // cuts settle in one or two rounds; the bound keeps a malicious tangle finite
		r = runRoster(g, ops, cuts)
		if sameCuts(r.cuts, cuts) {
			break
		}
		cuts = r.cuts
	}
	return r
}

func sameCuts(a, b map[string]cut) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// runRoster is one pass over ops; cuts found by an earlier pass void the
// ops beyond them from the start.
func runRoster(g *wire.Genesis, ops []*rosterOp, cuts map[string]cut) *rosterState {
	r := &rosterState{
		members: map[string]memberState{},
		policy:  defaultPolicy(),
		invites: map[wire.ID]*inviteState{},
		cuts:    map[string]cut{},
		valid:   map[wire.ID]bool{},
		roles:   map[string][]roleStep{},
	}
	f := g.Founder
	r.members[string(f.Peer)] = memberState{name: f.Name, recipient: f.Recipient, role: wire.RoleOwner}
	r.roles[string(f.Peer)] = []roleStep{{genesis: true, role: wire.RoleOwner}}
	for _, o := range ops {
		if o.op == nil {
			continue
		}
		if c, ok := cuts[string(o.author)]; ok && c.after(o.seq, o.id) {
			continue
		}
		a, ok := r.members[string(o.author)]
		if !ok || (a.removed && a.cut.after(o.seq, o.id)) {
			continue
		}
		if r.apply(o, a) {
			r.valid[o.id] = true
		}
	}
	return r
}

// mayInvite reports whether a member may admit others and issue invites.
func (r *rosterState) mayInvite(a memberState) bool {
	return a.role >= wire.RoleAdmin || (r.policy.Invite == "members" && a.role >= wire.RoleMember)
}

// mayAdmit reports whether the roster as it stands lets this node admit a
// member with role: the admit op would be valid.
func (h *history) mayAdmit(role wire.Role) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.members[string(h.self)]
	if !ok || m.removed {
		return false
	}
	r := rosterState{policy: h.policy}
	return r.mayInvite(m) && role <= m.role
}

// apply applies one op by author a and reports whether it was valid.
func (r *rosterState) apply(o *rosterOp, a memberState) bool {
	op := o.op
	switch op.Kind {
	case wire.RosterAdmit:
		role := op.Role
		if role == 0 {
			role = wire.RoleMember
		}
		if !r.mayInvite(a) || role > a.role || !o.member {
			return false
		}
		if _, known := r.members[string(op.Member.Peer)]; known {
			return false // a member is admitted once; a removed one never again
		}
		if !op.Invite.IsZero() {
			inv, ok := r.invites[op.Invite]
			if !ok || inv.Revoked || inv.Used || !bytes.Equal(inv.Issuer, o.author) {
				return false
			}
			inv.Used = true
		}
		r.members[string(op.Member.Peer)] = memberState{
			name: op.Member.Name, recipient: op.Member.Recipient, role: role, admitted: o.id,
		}
		r.stepRole(op.Member.Peer, o, role)
		return true
	case wire.RosterRemove:
		t, ok := r.members[string(op.Target)]
		if !ok || t.removed || a.role < wire.RoleAdmin || a.role < t.role {
			return false
		}
		t.removed = true
		t.cut = cut{seq: op.TargetSeq, id: op.TargetID}
		r.members[string(op.Target)] = t
		r.cuts[string(op.Target)] = t.cut
		return true
	case wire.RosterRole:
		t, ok := r.members[string(op.Target)]
		if !ok || t.removed || op.Role < wire.RoleMember || a.role < wire.RoleAdmin ||
			a.role < t.role || a.role < op.Role {
			return false
		}
		t.role = op.Role
		r.members[string(op.Target)] = t
		r.stepRole(op.Target, o, op.Role)
		return true
	case wire.RosterPolicy:
		if a.role < wire.RoleAdmin {
			return false
		}
		v, err := normalPolicyValue(op.Key, op.Value, op.Room)
		if err != nil || v != op.Value {
			return false
		}
		r.policy.set(op.Key, v, op.Room)
		return true
	case wire.RosterInvite:
		role := op.Role
		if role == 0 {
			role = wire.RoleMember
		}
		if !r.mayInvite(a) || role > a.role || op.Invite.IsZero() {
			return false
		}
		if _, dup := r.invites[op.Invite]; dup {
			return false
		}
		r.invites[op.Invite] = &inviteState{
			ID: op.Invite, Issuer: o.author, Role: role, Expires: op.Expires, Issued: o.time, Op: o.id,
		}
		return true
	case wire.RosterRevoke:
		inv, ok := r.invites[op.Invite]
		if !ok || inv.Revoked || inv.Used || (!bytes.Equal(inv.Issuer, o.author) && a.role < wire.RoleAdmin) {
			return false
		}
		inv.Revoked = true
		return true
	case wire.RosterProfile:
		// Only the member's own signed op changes its record; the age
		// recipient stays, since content was already encrypted to it.
		if !o.member || !bytes.Equal(op.Member.Peer, o.author) || op.Member.Recipient != a.recipient {
			return false
		}
		a.name = op.Member.Name
		r.members[string(o.author)] = a
		return true
	}
	return false
}

// stepRole notes that op o gave member p role.
func (r *rosterState) stepRole(p []byte, o *rosterOp, role wire.Role) {
	r.roles[string(p)] = append(r.roles[string(p)], roleStep{lamport: o.lamport, author: o.author, seq: o.seq, role: role})
}

// rosterChange is what a roster computation changed, for after the commit.
type rosterChange struct {
	computed bool
	admitted [][]byte // new members: their pending envelopes go through again
	removed  [][]byte // members removed (or whose admission fell away)
	msgs     []store.Message
}

func (c *rosterChange) add(o rosterChange) {
	c.computed = c.computed || o.computed
	c.admitted = append(c.admitted, o.admitted...)
	c.removed = append(c.removed, o.removed...)
	c.msgs = append(c.msgs, o.msgs...)
}

// recomputeRoster computes the roster again from every roster envelope held
// (stored names those just stored) and applies the difference inside tx:
// a removal drops its target's envelopes beyond the cut and their effects,
// and takes it out of every room.
func (h *history) recomputeRoster(ctx context.Context, tx *store.Tx, stored []wire.ID) (rosterChange, error) {
	ch := rosterChange{computed: true}
	envs, err := tx.RosterEnvelopes()
	if err != nil {
		return ch, err
	}
	r := computeRoster(h.genesis, h.decodeRoster(envs))
	for _, id := range stored {
		if !r.valid[id] {
			h.count(reasonForbidden) // held and relayed, but it changes nothing
		}
	}
	h.mu.Lock()
	old, oldRoles := h.members, h.roles
	h.mu.Unlock()
	var resettle []wire.ID
	// A delete of another's message counts by its author's role at its
	// place: when a member's role steps change (a late promotion, or a
	// demotion that sorts before the delete), judge its deletes again.
	for p, steps := range r.roles {
		if sameSteps(steps, oldRoles[p]) {
			continue
		}
		targets, err := tx.DeletedBy([]byte(p))
		if err != nil {
			return ch, err
		}
		resettle = append(resettle, targets...)
	}
	for p, m := range r.members {
		was, known := old[p]
		switch {
		case m.removed && (!was.removed || was.cut != m.cut || !known):
			targets, err := h.cutMember(tx, []byte(p), m.cut)
			if err != nil {
				return ch, err
			}
			resettle = append(resettle, targets...)
			ch.removed = append(ch.removed, []byte(p))
		case !m.removed && (!known || was.removed):
			ch.admitted = append(ch.admitted, []byte(p))
		}
	}
	for p, was := range old {
		if _, still := r.members[p]; !still && !was.removed {
			// Its admission is void: nothing of its feed is valid.
			targets, err := h.cutMember(tx, []byte(p), cut{})
			if err != nil {
				return ch, err
			}
			resettle = append(resettle, targets...)
			ch.removed = append(ch.removed, []byte(p))
		}
	}
	rows := make([]store.Member, 0, len(r.members))
	for p, m := range r.members {
		rows = append(rows, store.Member{
			Peer: []byte(p), Name: m.name, Recipient: m.recipient, Role: m.role,
			Admitted: m.admitted, Removed: m.removed, CutSeq: m.cut.seq, CutID: m.cut.id,
		})
	}
	if err := tx.ReplaceMembers(rows); err != nil {
		return ch, err
	}
	h.mu.Lock()
	h.members, h.policy, h.invites, h.validOps, h.roles = r.members, r.policy, r.invites, r.valid, r.roles
	h.sendKeys = map[wire.ID]store.RoomKey{} // a removal may call for a new key
	h.roomsGen++
	h.mu.Unlock()
	if len(ch.removed) > 0 {
		h.roomsChanged()
	}
	// Edits and deletes from dropped envelopes no longer count, and deletes
	// judged again may count or not: compute their targets' view again from
	// the original envelope and what remains.
	seen := map[wire.ID]bool{}
	for _, id := range resettle {
		if seen[id] {
			continue
		}
		seen[id] = true
		e, ok, err := tx.Envelope(id)
		if err != nil {
			return ch, err
		}
		if !ok || e.Raw == nil || e.Class != wire.ClassContent {
			continue
		}
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			continue
		}
		msg, err := h.applyContent(tx, &checked{hdr: hdr, id: e.ID, raw: e.Raw})
		if err != nil {
			return ch, err
		}
		if msg != nil {
			ch.msgs = append(ch.msgs, *msg)
		}
	}
	return ch, nil
}

// cutMember drops what a member's removal voids and takes it out of rooms.
func (h *history) cutMember(tx *store.Tx, p []byte, c cut) ([]wire.ID, error) {
	targets, err := tx.CutFeed(p, c.seq, c.id)
	if err != nil {
		return nil, err
	}
	if err := tx.TaintRoomsOf(p, generalRoomID(h.ws)); err != nil {
		return nil, err
	}
	if err := tx.LeaveRooms(p); err != nil {
		return nil, err
	}
	h.mu.Lock()
	var keep []*checked
	for _, pc := range h.pending[string(p)] {
		if !c.after(pc.hdr.Seq, pc.id) {
			keep = append(keep, pc)
		}
	}
	h.npending -= len(h.pending[string(p)]) - len(keep)
	h.pending[string(p)] = keep
	h.mu.Unlock()
	return targets, nil
}

// announce tells the node what a committed roster change did.
func (h *history) announce(ch rosterChange) {
	for _, p := range ch.admitted {
		if h.onAdmit != nil {
			h.onAdmit(p)
		}
	}
	for _, p := range ch.removed {
		if h.onRemove != nil {
			h.onRemove(p)
		}
	}
	if ch.computed && h.onRoster != nil {
		h.onRoster()
	}
}

// removedSelf reports whether this node has been removed from the workspace.
func (h *history) removedSelf() bool {
	m, ok := h.member(h.self)
	return ok && m.removed
}

// currentPolicy returns the workspace's policy now.
func (h *history) currentPolicy() Policy {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.policy.clone()
}

// rosterKindOf names the kind of an encoded roster op, for messages.
func rosterKindOf(body []byte) string {
	op, err := wire.DecodeRosterOp(body)
	if err != nil {
		return "malformed"
	}
	return op.Kind.String()
}

// roleAt is the role author held in the roster just before the place
// (lamport, author, seq) in the roster's total order; none if it was not a
// member there. What needs a role outside the roster (a room op taking
// someone out, a delete of another's message) is judged by it rather than
// by the role of today: a demotion that came later must not void it on the
// nodes that get them after it, or nodes would disagree. It reads the role
// steps of the last roster computation, the same state as a run of the ops
// before that place (the computation is one pass in that order, with the
// cuts of the whole roster).
func (h *history) roleAt(author []byte, lamport, seq uint64) wire.Role {
	h.mu.Lock()
	steps := h.roles[string(author)]
	h.mu.Unlock()
	var role wire.Role
	for _, s := range steps { // few: an admit and the rare role change
		if !s.before(lamport, author, seq) {
			break
		}
		role = s.role
	}
	return role
}
