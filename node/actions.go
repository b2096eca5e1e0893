package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
)

// Edits, deletes, reactions and replies (DESIGN.md, "Rules that make sync
// correct"). Each is a content envelope naming a target message. It is kept
// in the store's actions table by target whether or not the target is held,
// and the target's view is computed from the set of actions on it, so the
// order in which they arrive never matters:
//
//   - an edit counts only if its author wrote the target (a text message) in
//     the same room; of those, the highest (lamport, author, seq) wins;
//   - a delete counts if its author wrote the target, or was an admin or the
//     owner at the delete's place in the roster's order (roleAt; one who
//     posts in the room holds its key, so can read it); a counted delete is
//     final: the text leaves messages and the search index;
//   - a reaction is one emoji; "-" before it takes the author's reaction with
//     that emoji back. Per (member, emoji) the highest (lamport, author, seq)
//     decides whether it is on;
//   - a reply is a text message whose Target is the message replied to.
//
// Actions that break these rules are stored (they are envelopes) and have no
// effect. An admin's delete is judged by its author's role at its place, not
// today's, so a later demotion does not bring the message back on the nodes
// that get the delete after it. The role at a place changes only when a
// roster op that sorts before it arrives late (a promotion the delete
// depended on, say): recomputeRoster then settles the deleter's targets
// again, from their envelopes, so the stored text follows.
//
// The view is computed when a message is read (addActions); the stored text
// is brought in line when a message or an action on it is applied (settle).
// Replies are kept in the same table, kind text, so a reply's target needs no
// column in messages.

// ErrUnknownMessage means no message with that ID is held in that room.
var ErrUnknownMessage = errors.New("no such message")

// MaxEmojiBytes bounds a reaction's emoji.
const MaxEmojiBytes = 32

// Actor is what the local API asks of a node to act on messages. It is apart
// from Backend so that backends without it serve the rest.
type Actor interface {
	// Edit replaces the text of one of this node's own messages.
	Edit(ctx context.Context, room, id, text string) (Message, error)
	// Delete deletes a message this node wrote, or any as an admin.
	Delete(ctx context.Context, room, id string) (Message, error)
	// React toggles this node's reaction emoji on a message.
	React(ctx context.Context, room, id, emoji string) (Message, error)
	// Reply posts text as a reply to a message.
	Reply(ctx context.Context, room, id, text string) (Message, error)
}

var _ Actor = (*Node)(nil)

// Reaction is one emoji on a message and how many members put it there.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Mine  bool   `json:"mine"` // this node's member is among them
}

// resolved is what the actions on a message add up to.
type resolved struct {
	edited    bool
	text      string // the winning edit's text, if edited
	deleted   bool
	reactions []Reaction
}

// resolve applies acts, sorted by (lamport, author, seq), to target. roleAt
// gives a member's role at a place in the roster's order (history.roleAt);
// self is this node's peer ID.
func resolve(target store.Message, acts []store.Action, roleAt func(author []byte, lamport, seq uint64) wire.Role, self []byte) resolved {
	var r resolved
	type key struct{ author, emoji string }
	on := map[key]bool{}
	var order []string // emojis in the order first put on
	seen := map[string]bool{}
	for _, a := range acts {
		if a.Room != target.Room || a.Target != target.ID {
			continue
		}
		own := bytes.Equal(a.Author, target.Author)
		switch wire.ContentKind(a.Kind) {
		case wire.KindEdit:
			if own && wire.ContentKind(target.Kind) == wire.KindText {
				r.edited, r.text = true, a.Text
			}
		case wire.KindDelete:
			if own || roleAt(a.Author, a.Lamport, a.Seq) >= wire.RoleAdmin {
				r.deleted = true
			}
		case wire.KindReaction:
			emoji, off := strings.CutPrefix(a.Text, "-")
			on[key{string(a.Author), emoji}] = !off
			if !off && !seen[emoji] {
				seen[emoji] = true
				order = append(order, emoji)
			}
		}
	}
	if r.deleted {
		r.edited, r.text = false, ""
		return r
	}
	for _, e := range order {
		var rc Reaction
		for k, v := range on {
			if v && k.emoji == e {
				rc.Count++
				rc.Mine = rc.Mine || k.author == string(self)
			}
		}
		if rc.Count > 0 {
			rc.Emoji = e
			r.reactions = append(r.reactions, rc)
		}
	}
	return r
}

// roleOf is a member's current role, none for an unknown member. A removed
// member keeps its role here: what it sent before its removal stays valid
// (DESIGN.md), and nothing after it is ever stored.
func (h *history) roleOf(p []byte) wire.Role {
	m, ok := h.member(p)
	if !ok {
		return 0
	}
	return m.role
}

// validEmoji reports whether s (without a leading "-") can be a reaction.
func validEmoji(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && len(s) <= MaxEmojiBytes && utf8.ValidString(s) &&
		!strings.ContainsAny(s, " \t\r\n-")
}

// applyAction stores an edit, delete or reaction and, if its target is held,
// brings the target's stored text in line and returns it for an event.
func (h *history) applyAction(tx *store.Tx, c *checked, content *wire.Content) (*store.Message, error) {
	if content.Target.IsZero() ||
		(content.Kind == wire.KindEdit && strings.TrimSpace(content.Text) == "") ||
		(content.Kind == wire.KindReaction && !validEmoji(content.Text)) {
		h.count(reasonMalformed)
		return nil, nil
	}
	text := content.Text
	if content.Kind == wire.KindDelete {
		text = ""
	}
	h.targeted(content.Target)
	if err := tx.PutAction(store.Action{
		ID: c.id, Room: c.hdr.Room, Target: content.Target, Author: c.hdr.Author,
		Seq: c.hdr.Seq, Lamport: c.hdr.Lamport, Kind: uint8(content.Kind), Text: text,
	}); err != nil {
		return nil, err
	}
	target, ok, err := tx.Message(content.Target)
	if err != nil || !ok {
		return nil, err
	}
	return h.settle(tx, target)
}

// settle makes the stored text of m what the actions on it say: the winning
// edit's, or none once deleted (so search no longer finds it). It returns m
// as stored.
func (h *history) settle(tx *store.Tx, m store.Message) (*store.Message, error) {
	if !h.mayBeTargeted(m.ID) {
		return &m, nil // no action names it: no lookup
	}
	acts, err := tx.Actions(m.ID)
	if err != nil {
		return nil, err
	}
	if len(acts) == 0 {
		return &m, nil
	}
	r := resolve(m, acts, h.roleAt, h.self)
	text := m.Text
	switch {
	case r.deleted:
		text = ""
	case r.edited:
		text = r.text
	}
	if text != m.Text {
		m.Text = text
		if err := tx.PutMessage(m); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// putReply records that message c replies to target.
func (h *history) putReply(tx *store.Tx, c *checked, target wire.ID) error {
	h.targeted(target)
	h.targeted(c.id) // its view reads the action (addActions)
	return tx.PutAction(store.Action{
		ID: c.id, Room: c.hdr.Room, Target: target, Author: c.hdr.Author,
		Seq: c.hdr.Seq, Lamport: c.hdr.Lamport, Kind: uint8(wire.KindText),
	})
}

// addActions fills in v what the actions on m add up to.
func (n *Node) addActions(ctx context.Context, m store.Message, v *Message) {
	v.Reactions = []Reaction{}
	if !n.hist.mayBeTargeted(m.ID) {
		return // no action names it, and it is no reply: no reads
	}
	acts, err := n.st.Actions(ctx, m.ID)
	if err == nil && len(acts) > 0 {
		r := resolve(m, acts, n.hist.roleAt, n.hist.self)
		v.Edited, v.Deleted, v.Reactions = r.edited, r.deleted, r.reactions
		if r.deleted {
			v.Text = ""
		}
	}
	if a, ok, err := n.st.Action(ctx, m.ID); err == nil && ok && wire.ContentKind(a.Kind) == wire.KindText {
		t, err := n.st.Message(ctx, a.Target)
		if err == nil && t.Room != m.Room {
			return // a reply to another room's message is a plain message
		}
		v.ReplyTo = a.Target.String() // the target may not be held yet
		if err == nil {
			v.ReplyText = quote(t.Text, 100)
			if who, ok := n.hist.member(t.Author); ok {
				v.ReplyAuthor = who.name
			} else {
				v.ReplyAuthor = peer.ID(t.Author).String()
			}
		}
	}
}

// quote is the first max runes of s on one line.
func quote(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// target finds message id in room for an action by this node.
func (n *Node) target(ctx context.Context, room, id string) (wire.ID, store.Message, error) {
	rid, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		return wire.ID{}, store.Message{}, err
	}
	mid, err := wire.ParseID(id)
	if err != nil {
		return wire.ID{}, store.Message{}, fmt.Errorf("%w: message ID %q: %v", ErrInvalid, id, err)
	}
	m, err := n.st.Message(ctx, mid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.Room != rid) {
		return wire.ID{}, store.Message{}, fmt.Errorf("%w: %s in %s", ErrUnknownMessage, id, room)
	}
	if err != nil {
		return wire.ID{}, store.Message{}, err
	}
	return rid, m, nil
}

// act posts content acting on a message and returns the message's view.
func (n *Node) act(ctx context.Context, room wire.ID, content *wire.Content) (Message, error) {
	n.awaitOwnHead(ctx)
	c, msgs, err := n.hist.postContent(ctx, room, content)
	if err != nil {
		return Message{}, err
	}
	n.publish(c)
	if len(msgs) == 0 {
		return Message{}, fmt.Errorf("message %s stored but not readable", c.id)
	}
	return n.messageView(ctx, msgs[len(msgs)-1]), nil
}

// deletedOrErr refuses to act on a deleted message.
func (n *Node) notDeleted(ctx context.Context, m store.Message) error {
	var v Message
	n.addActions(ctx, m, &v)
	if v.Deleted {
		return fmt.Errorf("%w: message %s is deleted", ErrInvalid, m.ID)
	}
	return nil
}

func checkText(text string) error {
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w: empty message", ErrInvalid)
	}
	if len(text) > wire.MaxTextBytes {
		return fmt.Errorf("%w: message is %d bytes; the limit is %d", ErrInvalid, len(text), wire.MaxTextBytes)
	}
	return nil
}

// Edit replaces the text of one of this node's own text messages.
func (n *Node) Edit(ctx context.Context, room, id, text string) (Message, error) {
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	rid, m, err := n.target(ctx, room, id)
	if err != nil {
		return Message{}, err
	}
	if !bytes.Equal(m.Author, n.hist.self) || wire.ContentKind(m.Kind) != wire.KindText {
		return Message{}, fmt.Errorf("%w: only its author edits a text message", ErrInvalid)
	}
	if err := n.notDeleted(ctx, m); err != nil {
		return Message{}, err
	}
	return n.act(ctx, rid, &wire.Content{Kind: wire.KindEdit, Target: m.ID, Text: text})
}

// Delete deletes a message this node wrote, or any message as an admin.
func (n *Node) Delete(ctx context.Context, room, id string) (Message, error) {
	rid, m, err := n.target(ctx, room, id)
	if err != nil {
		return Message{}, err
	}
	if !bytes.Equal(m.Author, n.hist.self) && n.hist.roleOf(n.hist.self) < wire.RoleAdmin {
		return Message{}, fmt.Errorf("%w: only its author or an admin deletes a message", ErrInvalid)
	}
	return n.act(ctx, rid, &wire.Content{Kind: wire.KindDelete, Target: m.ID})
}

// React puts this node's reaction emoji on a message, or takes it back if it
// is there already.
func (n *Node) React(ctx context.Context, room, id, emoji string) (Message, error) {
	emoji = strings.TrimSpace(emoji)
	if !validEmoji(emoji) || strings.HasPrefix(emoji, "-") {
		return Message{}, fmt.Errorf("%w: %q is not a reaction (one emoji, at most %d bytes)", ErrInvalid, emoji, MaxEmojiBytes)
	}
	rid, m, err := n.target(ctx, room, id)
	if err != nil {
		return Message{}, err
	}
	if err := n.notDeleted(ctx, m); err != nil {
		return Message{}, err
	}
	var v Message
	n.addActions(ctx, m, &v)
	for _, r := range v.Reactions {
		if r.Emoji == emoji && r.Mine {
			emoji = "-" + emoji
		}
	}
	return n.act(ctx, rid, &wire.Content{Kind: wire.KindReaction, Target: m.ID, Text: emoji})
}

// Reply posts text to room as a reply to message id.
func (n *Node) Reply(ctx context.Context, room, id, text string) (Message, error) {
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	rid, m, err := n.target(ctx, room, id)
	if err != nil {
		return Message{}, err
	}
	return n.act(ctx, rid, &wire.Content{Kind: wire.KindText, Target: m.ID, Text: text})
}

// targetFilter is a Bloom filter of the messages that stored actions name
// (edits, deletes, reactions, replies), and of the replies themselves, so
// that settle, and the view of a message for an event, look its actions up
// only when it may have some: a statement less per message of a catch-up,
// two per message event. Every action stored goes in before its row does;
// nothing is taken out, so a message it names stays a "maybe" after its
// actions are gone.
type targetFilter []uint64

// targetFilterBits: 128 KiB, ~3% false positives at 100,000 targets (k = 2).
const targetFilterBits = 1 << 20

func newTargetFilter() targetFilter { return make(targetFilter, targetFilterBits/64) }

// bits are two positions from the ID, a SHA-256 digest.
func (targetFilter) bits(id wire.ID) (uint32, uint32) {
	return binary.LittleEndian.Uint32(id[0:4]) % targetFilterBits, binary.LittleEndian.Uint32(id[4:8]) % targetFilterBits
}

func (f targetFilter) add(id wire.ID) {
	a, b := f.bits(id)
	f[a/64] |= 1 << (a % 64)
	f[b/64] |= 1 << (b % 64)
}

// merge adds every ID of g (nil or of the same size) to f.
func (f targetFilter) merge(g targetFilter) {
	for i := range g {
		f[i] |= g[i]
	}
}

func (f targetFilter) has(id wire.ID) bool {
	a, b := f.bits(id)
	return f[a/64]&(1<<(a%64)) != 0 && f[b/64]&(1<<(b%64)) != 0
}

// targeted notes that an action naming id is about to be stored.
func (h *history) targeted(id wire.ID) {
	h.mu.Lock()
	h.targets.add(id)
	h.mu.Unlock()
}

// mayBeTargeted reports whether a stored action may name id.
func (h *history) mayBeTargeted(id wire.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.targets == nil || h.targets.has(id)
}

// loadTargets builds the filter from the actions stored.
func (h *history) loadTargets(ctx context.Context) (targetFilter, error) {
	f := newTargetFilter()
	err := h.st.ActionTargets(ctx, func(id, target wire.ID, kind uint8) {
		f.add(target)
		if wire.ContentKind(kind) == wire.KindText {
			f.add(id) // a reply: its own view reads the action too
		}
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}
