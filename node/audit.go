package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The audit (issue 6) lists what changed who may do and read what: every
// roster op, the room ops of the rooms this node can read, and the key
// rotations it can open. Each is a signed envelope in its author's hash
// chain, so the list is tamper-evident: the audit verifies each listed
// envelope's signature, and that the prev links of its author's feed, as
// this node stores it, lead back to seq 1 with every hash matching. A valid
// signature on an envelope covers its prev, which is the hash of the one
// before, and so on: one signature and intact links vouch for the whole
// prefix of the feed.

// Auditor is what the local API asks of a node for `charla audit`. It is
// apart from Backend so that backends without it serve the rest.
type Auditor interface {
	// Audit lists the ops in the roster's total order, each verified. full
	// also verifies every author's whole feed as held here, each signature
	// and each link, not only the feeds' prefixes below the listed ops.
	Audit(ctx context.Context, full bool) (AuditReport, error)
}

var _ Auditor = (*Node)(nil)

// Audit classes and chain states, as the JSON carries them.
const (
	AuditRoster = "roster"
	AuditRoom   = "room"
	AuditKey    = "key"

	ChainOK         = "ok"
	ChainIncomplete = "incomplete" // an envelope below is not held here (yet); nothing contradicts the chain
	ChainBroken     = "broken"     // a hash or a link does not match: the store was altered
)

// AuditEntry is one op in the audit.
type AuditEntry struct {
	Time       time.Time `json:"time"` // the author's clock
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name"`
	Class      string    `json:"class"` // roster, room, key
	// Op is admit, remove, role, policy, invite, revoke, profile or
	// malformed (roster); create, rename, add, remove or leave (room);
	// rotate (key).
	Op        string `json:"op"`
	Room      string `json:"room,omitempty"`
	RoomName  string `json:"room_name,omitempty"`
	Text      string `json:"text"` // what it did, in a sentence
	ID        string `json:"id"`   // the envelope's ID
	Prev      string `json:"prev"` // the ID of the author's envelope before it: the chain link
	Seq       uint64 `json:"seq"`
	Lamport   uint64 `json:"lamport"`
	Effective bool   `json:"effective"` // it took effect
	Signature string `json:"signature"` // ok, or bad
	Chain     string `json:"chain"`     // ok, incomplete or broken: the author's feed from seq 1 to this op
}

// AuditChain is the check of one author's feed.
type AuditChain struct {
	Author     string `json:"author"`
	AuthorName string `json:"author_name"`
	UpTo       uint64 `json:"up_to_seq"` // checked from seq 1 to here
	Checked    int    `json:"checked"`   // envelopes whose hash and link were checked
	Signatures int    `json:"signatures"`
	// Tombstones are envelopes whose bytes retention purged: their links
	// are checked from their stored headers only.
	Tombstones int    `json:"tombstones"`
	Status     string `json:"status"` // ok, incomplete, broken
	At         uint64 `json:"at,omitempty"`
	Problem    string `json:"problem,omitempty"`
}

// AuditReport is the whole audit.
type AuditReport struct {
	Workspace     string       `json:"workspace"`
	WorkspaceName string       `json:"workspace_name"`
	Founder       string       `json:"founder"`
	FounderName   string       `json:"founder_name"`
	Created       time.Time    `json:"created"`
	Entries       []AuditEntry `json:"entries"`
	Chains        []AuditChain `json:"chains"`
	Full          bool         `json:"full"`     // every feed was checked whole
	Verified      bool         `json:"verified"` // no bad signature, no broken chain
}

// auditItem is an op found in the store, before it is described.
type auditItem struct {
	env    store.Envelope
	roster *rosterOp
	room   *wire.Content
	share  *wire.KeyShare
}

func (a *auditItem) less(b *auditItem) bool {
	x, y := a.env, b.env
	if x.Lamport != y.Lamport {
		return x.Lamport < y.Lamport
	}
	if c := bytes.Compare(x.Author, y.Author); c != 0 {
		return c < 0
	}
	return x.Seq < y.Seq
}

// Audit gathers, describes and verifies the ops.
func (n *Node) Audit(ctx context.Context, full bool) (AuditReport, error) {
	h := n.hist
	g := h.genesis
	rep := AuditReport{
		Workspace: h.ws.String(), WorkspaceName: g.Name,
		Founder: peer.ID(g.Founder.Peer).String(), Created: time.UnixMilli(g.Created).UTC(),
		Entries: []AuditEntry{}, Chains: []AuditChain{}, Full: full,
	}
	items, facts, err := n.auditItems(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	rooms, err := n.roomNames(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	h.mu.Lock()
	valid := h.validOps // replaced whole by each computation, never changed in place
	names := make(map[string]string, len(h.members))
	for p, m := range h.members {
		names[p] = m.name
	}
	h.mu.Unlock()
	d := auditDescriber{names: names, rooms: rooms, state: newReplay(g), roomNamed: map[wire.ID]string{}, facts: facts}
	rep.FounderName = d.name(g.Founder.Peer)
	for i := range items {
		it := &items[i]
		e := d.describe(it)
		switch {
		case it.roster != nil:
			e.Effective = valid[it.env.ID]
			if e.Effective {
				d.state.apply(it.roster)
			}
		case it.share != nil:
			held, err := n.st.HasRoomKey(ctx, crypto.RoomKey(it.share.Key).ID())
			if err != nil {
				return rep, fmt.Errorf("audit: %w", err)
			}
			e.Effective = held
		}
		rep.Entries = append(rep.Entries, e)
	}
	if err := n.verifyAudit(ctx, items, &rep); err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	return rep, nil
}

// auditItems reads every op the audit lists, in (lamport, author, seq)
// order, and what the key shares say of the rooms' creators and first
// members.
func (n *Node) auditItems(ctx context.Context) ([]auditItem, roomFacts, error) {
	h := n.hist
	facts := roomFacts{creator: map[wire.ID][]byte{}, members: map[wire.ID]map[string]bool{}}
	envs, err := n.st.RosterEnvelopes(ctx)
	if err != nil {
		return nil, facts, err
	}
	items := make([]auditItem, 0, len(envs))
	for _, e := range envs {
		items = append(items, auditItem{env: e, roster: h.roster.decode(e)})
	}
	keys, err := n.readableKeys(ctx)
	if err != nil {
		return nil, facts, err
	}
	disclosed, err := n.st.DisclosedKeys(ctx)
	if err != nil {
		return nil, facts, err
	}
	err = n.st.EachRoomOpCandidate(ctx, func(e store.Envelope) error {
		k, ok := keys[e.Key]
		fk, given := disclosed[e.ID]
		if (!ok || k.Room != e.Room) && !given {
			return nil
		}
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			return nil
		}
		var plain []byte
		if ok && k.Room == e.Room {
			plain, err = crypto.DecryptContent(crypto.RoomKey(k.Key), hdr.Body)
		} else {
			plain, err = crypto.DecryptContentWithFileKey(fk, hdr.Body) // a --no-history room's op
		}
		if err != nil {
			return nil
		}
		c, err := wire.DecodeContent(plain)
		if err != nil || c.Kind != wire.KindRoomOp {
			return nil
		}
		items = append(items, auditItem{env: e, room: c})
		return nil
	})
	if err != nil {
		return nil, facts, err
	}
	err = n.st.EachKeyShare(ctx, func(e store.Envelope) error {
		_, hdr, err := wire.DecodeEnvelope(e.Raw)
		if err != nil {
			return nil
		}
		creation := h.createsRoom(e, e.Room)
		if creation {
			facts.creator[e.Room] = e.Author
		}
		ks, err := h.id.OpenKeyShare(hdr.Body)
		if err != nil || ks.Room != e.Room {
			return nil // not for this node
		}
		if creation && ks.Cause == wire.CauseCreate {
			facts.setMembers(e.Room, ks.Holders())
		}
		if ks.Cause != wire.CauseRotate {
			return nil
		}
		items = append(items, auditItem{env: e, share: ks})
		return nil
	})
	if err != nil {
		return nil, facts, err
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].less(&items[j]) })
	return items, facts, nil
}

// readableKeys is every room key held, by key ID.
func (n *Node) readableKeys(ctx context.Context) (map[wire.ID]store.RoomKey, error) {
	rs, err := n.hist.allRooms(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[wire.ID]store.RoomKey{}
	for _, r := range rs {
		ks, err := n.st.RoomKeys(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			keys[k.KeyID] = k
		}
	}
	return keys, nil
}

// roomNames is how each readable room is shown: #name, or @name for a
// direct conversation.
func (n *Node) roomNames(ctx context.Context) (map[wire.ID]string, error) {
	rs, err := n.hist.allRooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[wire.ID]string, len(rs))
	for _, r := range rs {
		out[r.ID] = roomLabel(n.roomView(r))
	}
	return out, nil
}

// roomLabel is a room's name as people write it.
func roomLabel(r Room) string {
	switch {
	case strings.HasPrefix(r.Name, "@"):
		return r.Name
	case r.Name != "":
		return "#" + r.Name
	}
	return "room " + r.ID[:12]
}

// replay follows the effective roster ops in order, so that a room op can be
// judged against the roster at its place in the total order.
type replay struct {
	role    map[string]wire.Role
	removed map[string]bool
	name    map[string]string
}

func newReplay(g *wire.Genesis) *replay {
	r := &replay{role: map[string]wire.Role{}, removed: map[string]bool{}, name: map[string]string{}}
	f := string(g.Founder.Peer)
	r.role[f], r.name[f] = wire.RoleOwner, g.Founder.Name
	return r
}

func (r *replay) apply(o *rosterOp) {
	op := o.op
	switch op.Kind {
	case wire.RosterAdmit:
		role := op.Role
		if role == 0 {
			role = wire.RoleMember
		}
		p := string(op.Member.Peer)
		r.role[p], r.name[p] = role, op.Member.Name
	case wire.RosterRemove:
		r.removed[string(op.Target)] = true
	case wire.RosterRole:
		r.role[string(op.Target)] = op.Role
	case wire.RosterProfile:
		r.name[string(o.author)] = op.Member.Name
	}
}

// member reports whether p is a member, not removed, at this point.
func (r *replay) member(p []byte) bool {
	_, ok := r.role[string(p)]
	return ok && !r.removed[string(p)]
}

// auditDescriber turns ops into entries, in order.
type auditDescriber struct {
	names     map[string]string  // current names of every peer the roster knows
	rooms     map[wire.ID]string // labels of the readable rooms
	state     *replay
	roomNamed map[wire.ID]string // the last name op of each room so far
	facts     roomFacts          // rooms' creators, and members as the ops so far make them
}

// roomFacts is what the audit knows of rooms as it follows their ops in
// order, judging them as nodes do (node/rotate.go applyRoomOp): a channel's
// creator from its ID, its first members from the creation share (when this
// node could open it) or the creator's name op, then adds by members, leaves
// and removals. A room whose members are unknown (absent) has its adds
// judged by the workspace roster alone.
type roomFacts struct {
	creator map[wire.ID][]byte
	members map[wire.ID]map[string]bool
}

func (f roomFacts) setMembers(room wire.ID, ps [][]byte) {
	m := map[string]bool{}
	for _, p := range ps {
		m[string(p)] = true
	}
	f.members[room] = m
}

// name is a peer's current name, or its short peer ID.
func (d *auditDescriber) name(p []byte) string {
	if s := d.names[string(p)]; s != "" {
		return s
	}
	id := peer.ID(p).String()
	if len(id) > 16 {
		id = id[:16] + "…"
	}
	return id
}

func (d *auditDescriber) room(id wire.ID) string {
	if s, ok := d.rooms[id]; ok {
		return s
	}
	return "room " + id.String()[:12]
}

func (d *auditDescriber) describe(it *auditItem) AuditEntry {
	e := it.env
	who := d.name(e.Author)
	out := AuditEntry{
		Time: time.UnixMilli(e.Time).UTC(), Author: peer.ID(e.Author).String(), AuthorName: who,
		ID: e.ID.String(), Prev: e.Prev.String(), Seq: e.Seq, Lamport: e.Lamport,
	}
	switch {
	case it.roster != nil:
		out.Class = AuditRoster
		d.describeRoster(it.roster, &out)
	case it.room != nil:
		out.Class, out.Room, out.RoomName = AuditRoom, e.Room.String(), d.room(e.Room)
		d.describeRoom(e, it.room, &out)
	case it.share != nil:
		ks := it.share
		out.Class, out.Op, out.Room, out.RoomName = AuditKey, "rotate", e.Room.String(), d.room(e.Room)
		n := len(ks.Holders()) // all of the rotation's shares, not only this one
		out.Text = fmt.Sprintf("%s rotated the key of %s to epoch %d, shared with %d %s", who, out.RoomName,
			ks.Epoch, n, plural(n, "member", "members"))
	}
	return out
}

func (d *auditDescriber) describeRoster(o *rosterOp, out *AuditEntry) {
	who := out.AuthorName
	op := o.op
	if op == nil {
		out.Op, out.Text = "malformed", who+" signed a roster op that does not decode"
		return
	}
	out.Op = op.Kind.String()
	switch op.Kind {
	case wire.RosterAdmit:
		role := op.Role
		if role == 0 {
			role = wire.RoleMember
		}
		out.Text = fmt.Sprintf("%s admitted %s as %s", who, op.Member.Name, role)
		if !op.Invite.IsZero() {
			out.Text += " with invite " + op.Invite.String()[:8]
		}
	case wire.RosterRemove:
		t := d.name(op.Target)
		if op.TargetSeq == 0 {
			out.Text = fmt.Sprintf("%s removed %s (no envelope of theirs stays valid)", who, t)
		} else {
			out.Text = fmt.Sprintf("%s removed %s (feed valid up to seq %d)", who, t, op.TargetSeq)
		}
	case wire.RosterRole:
		out.Text = fmt.Sprintf("%s made %s %s", who, d.name(op.Target), op.Role)
	case wire.RosterPolicy:
		where := "for the workspace"
		if !op.Room.IsZero() {
			out.Room, out.RoomName = op.Room.String(), d.room(op.Room)
			where = "in " + out.RoomName
		}
		if op.Value == "" {
			out.Text = fmt.Sprintf("%s reset %s to its default %s", who, op.Key, where)
		} else {
			out.Text = fmt.Sprintf("%s set %s to %s %s", who, op.Key, op.Value, where)
		}
	case wire.RosterInvite:
		role := op.Role
		if role == 0 {
			role = wire.RoleMember
		}
		out.Text = fmt.Sprintf("%s issued invite %s for a new %s, expiring %s", who, op.Invite.String()[:8], role,
			time.UnixMilli(op.Expires).UTC().Format("2006-01-02 15:04 MST"))
	case wire.RosterRevoke:
		out.Text = fmt.Sprintf("%s revoked invite %s", who, op.Invite.String()[:8])
	case wire.RosterProfile:
		was := d.state.name[string(o.author)]
		if was == "" {
			was = who
		}
		out.Text = fmt.Sprintf("%s changed their name to %s", was, op.Member.Name)
	default:
		out.Text = fmt.Sprintf("%s signed a roster op of kind %s", who, op.Kind)
	}
}

func (d *auditDescriber) describeRoom(e store.Envelope, c *wire.Content, out *AuditEntry) {
	who := out.AuthorName
	switch c.RoomOp {
	case wire.RoomOpName:
		creator, known := d.facts.creator[e.Room]
		if known && !bytes.Equal(creator, e.Author) {
			out.Op = "rename"
			out.Text = fmt.Sprintf("%s named %s #%s, but only its creator names a room", who, out.RoomName, c.RoomName)
			return // not effective
		}
		if _, ok := d.facts.members[e.Room]; !ok && known && len(c.Members) > 0 {
			d.facts.setMembers(e.Room, append([][]byte{creator}, c.Members...))
		}
		prev, named := d.roomNamed[e.Room]
		d.roomNamed[e.Room] = c.RoomName
		if named {
			out.Op = "rename"
			out.Text = fmt.Sprintf("%s renamed #%s to #%s", who, prev, c.RoomName)
		} else {
			out.Op = "create"
			out.Text = fmt.Sprintf("%s created #%s", who, c.RoomName)
			if c.Private {
				out.Text += " (members added later read no earlier history)"
			}
		}
		out.Effective = true
	case wire.RoomOpAdd:
		out.Op = "add"
		out.Text = fmt.Sprintf("%s added %s to %s", who, d.name(c.Peer), out.RoomName)
		out.Effective = d.state.member(c.Peer)
		if ms, known := d.facts.members[e.Room]; known {
			out.Effective = out.Effective && ms[string(e.Author)] // only a member of the room adds
			if out.Effective {
				ms[string(c.Peer)] = true
			}
		}
	case wire.RoomOpRemove:
		out.Op = "remove"
		out.Text = fmt.Sprintf("%s removed %s from %s", who, d.name(c.Peer), out.RoomName)
		out.Effective = d.state.role[string(e.Author)] >= wire.RoleAdmin
		if ms, known := d.facts.members[e.Room]; known {
			out.Effective = out.Effective && ms[string(e.Author)] // an admin in the room
			if out.Effective {
				delete(ms, string(c.Peer))
			}
		}
	case wire.RoomOpLeave:
		out.Op = "leave"
		out.Text = fmt.Sprintf("%s left %s", who, out.RoomName)
		out.Effective = true
		if ms, known := d.facts.members[e.Room]; known {
			delete(ms, string(e.Author))
		}
	default:
		out.Op = c.RoomOp.String()
		out.Text = fmt.Sprintf("%s signed a room op of kind %s in %s", who, c.RoomOp, out.RoomName)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// verifyAudit checks each listed envelope's signature and its author's
// chain, and fills in the entries' and the report's verdicts.
func (n *Node) verifyAudit(ctx context.Context, items []auditItem, rep *AuditReport) error {
	upTo := map[string]uint64{}
	var authors [][]byte
	for _, it := range items {
		a := string(it.env.Author)
		if _, ok := upTo[a]; !ok {
			authors = append(authors, it.env.Author)
		}
		upTo[a] = max(upTo[a], it.env.Seq)
	}
	heads, err := n.st.Heads(ctx)
	if err != nil {
		return err
	}
	if rep.Full {
		for _, hd := range heads {
			if _, ok := upTo[string(hd.Author)]; !ok {
				authors = append(authors, hd.Author)
			}
			upTo[string(hd.Author)] = 0 // the whole feed
		}
	}
	sort.Slice(authors, func(i, j int) bool { return bytes.Compare(authors[i], authors[j]) < 0 })
	chains := map[string]AuditChain{}
	rep.Verified = true
	for _, a := range authors {
		c, err := n.checkFeed(ctx, a, upTo[string(a)], rep.Full, heads)
		if err != nil {
			return err
		}
		if c.Status == ChainBroken {
			rep.Verified = false
		}
		chains[string(a)] = c
		rep.Chains = append(rep.Chains, c)
	}
	for i, it := range items {
		e := &rep.Entries[i]
		e.Signature = "ok"
		if err := verifyStored(it.env); err != nil {
			e.Signature = "bad"
			rep.Verified = false
		}
		c := chains[string(it.env.Author)]
		e.Chain = ChainOK
		if c.Status != ChainOK && it.env.Seq >= c.At {
			e.Chain = c.Status
		}
	}
	return nil
}

// verifyStored checks that a stored envelope's bytes are the ID it is
// stored under and carry a valid signature by its author.
func verifyStored(e store.Envelope) error {
	hdr, err := verifyRaw(e.ID, e.Raw)
	if err != nil {
		return err
	}
	if !bytes.Equal(hdr.Author, e.Author) || hdr.Seq != e.Seq {
		return errors.New("the stored header columns differ from the signed bytes")
	}
	return nil
}

// verifyRaw checks that raw is an envelope whose ID is id and whose
// signature is its author's.
func verifyRaw(id wire.ID, raw []byte) (*wire.Header, error) {
	env, hdr, err := wire.DecodeEnvelope(raw)
	if err != nil {
		return nil, err
	}
	if env.ID() != id {
		return nil, fmt.Errorf("its bytes hash to %s, not to its ID", env.ID())
	}
	return hdr, crypto.VerifyEnvelope(env, hdr)
}

// errStopFeed ends a feed walk at its first problem.
var errStopFeed = errors.New("stop")

// checkFeed walks author's feed from seq 1 to upTo (the whole feed for 0):
// every envelope is held, hashes to the ID it is stored under, and names
// the one before as its prev. all also verifies every signature; otherwise
// the signatures of the listed ops, checked by the caller, vouch for the
// prefix. heads are the feeds' heads as the store records them (the
// highest seq held with none missing below): a seq missing at or below its
// feed's head was taken out of the store, not yet to be synced.
func (n *Node) checkFeed(ctx context.Context, author []byte, upTo uint64, all bool, heads []store.Head) (AuditChain, error) {
	m, _ := n.hist.member(author)
	c := AuditChain{Author: peer.ID(author).String(), AuthorName: m.name, Status: ChainOK}
	var prev wire.ID
	next := uint64(1)
	fail := func(status string, at uint64, format string, args ...any) error {
		c.Status, c.At, c.Problem = status, at, fmt.Sprintf(format, args...)
		return errStopFeed
	}
	missing := func(seq uint64) error {
		if head := headSeq(heads, author); seq <= head && n.headStill(ctx, author, seq) {
			return fail(ChainBroken, seq, "seq %d is not held here, though the store records this feed as held whole up to seq %d: the store was altered",
				seq, head)
		}
		return fail(ChainIncomplete, seq, "seq %d is not held here%s", seq, cutNote(m, seq))
	}
	err := n.st.EachFeedLink(ctx, author, upTo, func(l store.FeedLink) error {
		if l.Seq != next {
			return missing(next)
		}
		switch {
		case l.Raw == nil && l.Class != wire.ClassContent:
			// Retention purges content only (judgeTombstone refuses the
			// rest too): a roster op or key share without its bytes was
			// taken out by hand, and the audit would no longer list it.
			return fail(ChainBroken, l.Seq, "seq %d: a %s held without its bytes; retention never purges those, so the store was altered",
				l.Seq, l.Class)
		case l.Raw == nil:
			c.Tombstones++
		default:
			env, hdr, err := wire.DecodeEnvelope(l.Raw)
			switch {
			case err != nil:
				return fail(ChainBroken, l.Seq, "seq %d: the stored bytes do not decode: %v", l.Seq, err)
			case env.ID() != l.ID:
				return fail(ChainBroken, l.Seq, "seq %d: the stored bytes hash to %s, not to the ID %s they are stored under",
					l.Seq, env.ID(), l.ID)
			case hdr.Prev != l.Prev || hdr.Seq != l.Seq || !bytes.Equal(hdr.Author, author):
				return fail(ChainBroken, l.Seq, "seq %d: the stored header columns differ from the signed bytes", l.Seq)
			}
			if all {
				if err := n.hist.verifier.VerifyEnvelope(env, hdr); err != nil {
					return fail(ChainBroken, l.Seq, "seq %d: %v", l.Seq, err)
				}
				c.Signatures++
			}
		}
		if l.Prev != prev {
			if l.Seq == 1 {
				return fail(ChainBroken, 1, "seq 1 names a prev %s; a feed starts from none", l.Prev)
			}
			return fail(ChainBroken, l.Seq, "seq %d names prev %s, but the envelope held at seq %d is %s",
				l.Seq, l.Prev, l.Seq-1, prev)
		}
		prev = l.ID
		next++
		c.Checked++
		c.UpTo = l.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStopFeed) {
		return c, err
	}
	if c.Status == ChainOK && ((upTo > 0 && c.UpTo < upTo) || (upTo == 0 && c.UpTo < headSeq(heads, author))) {
		missing(next)
	}
	if c.Status == ChainOK && c.Tombstones > 0 {
		c.Problem = fmt.Sprintf("%d envelopes were purged by retention; their links were checked from their stored headers only", c.Tombstones)
	}
	return c, nil
}

// headSeq is author's head in heads, 0 if it has none.
func headSeq(heads []store.Head, author []byte) uint64 {
	for _, h := range heads {
		if bytes.Equal(h.Author, author) {
			return h.Seq
		}
	}
	return 0
}

// headStill reports whether author's head is still at seq or above: a fork
// decided since the audit read the heads lowers it and takes the envelopes
// above away, which is no alteration.
func (n *Node) headStill(ctx context.Context, author []byte, seq uint64) bool {
	heads, err := n.st.Heads(ctx)
	return err == nil && headSeq(heads, author) >= seq
}

// cutNote explains a gap beyond a removed member's cut, where the store
// keeps only the roster ops.
func cutNote(m memberState, seq uint64) string {
	if m.removed && seq > m.cut.seq {
		return fmt.Sprintf(" (beyond the member's removal at seq %d, after which only roster ops are kept, and none take effect)", m.cut.seq)
	}
	return " (not yet synced, or never received)"
}
