package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Export for compliance (issue 6): what this node can read, as JSON, HTML or
// Markdown, with a manifest that lists the ID and the SHA-256 of the raw
// bytes of every envelope the export shows (each message, and each edit,
// delete and reaction applied to it). Every member stores every envelope of
// the workspace, byte for byte the same, so any member's node can check an
// export's manifest against its own store (VerifyExport), whether or not it
// can read the rooms. The export is written as it is read, a page of
// messages at a time; the manifest waits in a temporary file until the
// messages are out.

// Exporter is what the local API asks of a node for `charla export`. It is
// apart from Backend so that backends without it serve the rest.
type Exporter interface {
	// Export writes what this node can read of the rooms opts names to w.
	// It fails before writing anything with ErrInvalid for bad options and
	// ErrUnknownRoom for a room it does not know or cannot read.
	Export(ctx context.Context, w io.Writer, opts ExportOptions) (ExportSummary, error)
	// VerifyExport checks manifest entries against this node's store.
	VerifyExport(ctx context.Context, req ExportCheck) (ExportVerdict, error)
}

var _ Exporter = (*Node)(nil)

// Export formats.
const (
	FormatJSON     = "json"
	FormatHTML     = "html"
	FormatMarkdown = "md"
)

// exportPage is how many messages an export reads at a time.
const exportPage = 500

// ExportOptions says what to export.
type ExportOptions struct {
	Room   string    // a room as Send names it; "" for every room this node can read
	Since  time.Time // messages from this author time on; zero for all
	Format string    // json, html or md
}

// ExportSummary is what an export wrote.
type ExportSummary struct {
	Rooms          int    `json:"rooms"`
	Messages       int    `json:"messages"`
	Envelopes      int    `json:"envelopes"`       // entries in the manifest
	ManifestSHA256 string `json:"manifest_sha256"` // see ManifestDigest
}

// ExportPerson is a member as an export names it.
type ExportPerson struct {
	PeerID string `json:"peer_id"`
	Name   string `json:"name"`
}

// ExportRoom is one room of an export.
type ExportRoom struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"` // #name, or @name for a direct conversation
	Kind    string         `json:"kind"`
	Members []ExportPerson `json:"members"`
	// Unreadable counts the room's content envelopes this node holds
	// without the key to read them (sent after it left, or before it
	// joined a room without history): the export cannot show them.
	Unreadable int64 `json:"unreadable"`
}

// ExportMessage is one message as the UI shows it: edits and deletes
// applied, reactions counted, with who reacted.
type ExportMessage struct {
	ID          string           `json:"id"`
	Time        time.Time        `json:"time"` // the author's clock
	Author      string           `json:"author"`
	AuthorName  string           `json:"author_name"`
	Kind        string           `json:"kind"` // text, file
	Text        string           `json:"text"` // "" once deleted; a file's name
	Edited      bool             `json:"edited,omitempty"`
	Deleted     bool             `json:"deleted,omitempty"`
	ReplyTo     string           `json:"reply_to,omitempty"`
	ReplyAuthor string           `json:"reply_author,omitempty"`
	ReplyText   string           `json:"reply_text,omitempty"`
	Reactions   []ExportReaction `json:"reactions,omitempty"`
	File        *ExportFile      `json:"file,omitempty"`
	Lamport     uint64           `json:"lamport"`
	Seq         uint64           `json:"seq"`
}

// ExportReaction is one emoji on a message and who put it there.
type ExportReaction struct {
	Emoji string   `json:"emoji"`
	By    []string `json:"by"` // names
}

// ExportFile is a posted file: its manifest's hash names its content.
type ExportFile struct {
	Name           string `json:"name"`
	Size           uint64 `json:"size"`
	Type           string `json:"type,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256"` // SHA-256 of the encoded file manifest, chunk hashes included
}

// ManifestEntry is one envelope an export shows.
type ManifestEntry struct {
	ID     string `json:"id"`     // envelope ID, hex
	SHA256 string `json:"sha256"` // SHA-256 of the envelope's raw bytes, hex
	Kind   string `json:"kind"`   // text, file, edit, delete, reaction
}

// exportHeader opens an export.
type exportHeader struct {
	Workspace      string    `json:"workspace"`
	WorkspaceName  string    `json:"workspace_name"`
	ExportedBy     string    `json:"exported_by"`
	ExportedByName string    `json:"exported_by_name"`
	ExportedAt     time.Time `json:"exported_at"`
	Room           string    `json:"room_filter,omitempty"`
	Since          time.Time `json:"since,omitzero"`
	Rooms          []string  `json:"-"` // labels, for a table of contents
}

// Export writes the export to w, a room and a page of messages at a time,
// then the manifest, which waits in a file under the home meanwhile.
func (n *Node) Export(ctx context.Context, w io.Writer, opts ExportOptions) (ExportSummary, error) {
	var sum ExportSummary
	fw, err := newExportWriter(opts.Format, w)
	if err != nil {
		return sum, err
	}
	rooms, err := n.exportRooms(ctx, opts.Room)
	if err != nil {
		return sum, err
	}
	spool, err := os.CreateTemp(n.cfg.Home, ".export-*")
	if err != nil {
		return sum, fmt.Errorf("export: manifest spool: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	sw := bufio.NewWriter(spool)

	me, _ := n.hist.member(n.hist.self)
	hdr := exportHeader{
		Workspace: n.hist.ws.String(), WorkspaceName: n.hist.genesis.Name,
		ExportedBy: n.PeerID().String(), ExportedByName: me.name,
		ExportedAt: time.Now().UTC().Truncate(time.Second), Room: opts.Room,
	}
	if !opts.Since.IsZero() {
		hdr.Since = opts.Since.UTC()
	}
	views := make([]ExportRoom, len(rooms))
	for i, r := range rooms {
		views[i] = n.exportRoomView(ctx, r)
		hdr.Rooms = append(hdr.Rooms, views[i].Name)
	}
	if err := fw.begin(hdr); err != nil {
		return sum, err
	}
	var since int64
	if !opts.Since.IsZero() {
		since = opts.Since.UnixMilli()
	}
	digest := sha256.New()
	addEntry := func(id wire.ID, raw []byte, kind string) error {
		h := sha256.Sum256(raw)
		sum.Envelopes++
		fmt.Fprintf(digest, "%s %x\n", id, h)
		_, err := fmt.Fprintf(sw, "%s %x %s\n", id, h, kind)
		return err
	}
	for i, r := range rooms {
		if err := fw.room(views[i]); err != nil {
			return sum, err
		}
		count, err := n.exportRoom(ctx, fw, r.ID, since, addEntry)
		if err != nil {
			return sum, fmt.Errorf("export %s: %w", views[i].Name, err)
		}
		if err := fw.endRoom(count); err != nil {
			return sum, err
		}
		sum.Rooms++
		sum.Messages += count
	}
	sum.ManifestSHA256 = hex.EncodeToString(digest.Sum(nil))

	if err := sw.Flush(); err != nil {
		return sum, fmt.Errorf("export: manifest spool: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return sum, fmt.Errorf("export: manifest spool: %w", err)
	}
	if err := fw.beginManifest(hdr.Workspace, sum); err != nil {
		return sum, err
	}
	sc := bufio.NewScanner(spool)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if err := fw.entry(ManifestEntry{ID: f[0], SHA256: f[1], Kind: f[2]}); err != nil {
			return sum, err
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("export: manifest spool: %w", err)
	}
	return sum, fw.end(sum)
}

// exportRoom writes the messages of room from since on, a page at a time,
// and adds their envelopes, and those of the edits, deletes and reactions
// on them, to the manifest. It returns how many messages it wrote.
func (n *Node) exportRoom(ctx context.Context, fw exportFormat, room wire.ID, since int64,
	addEntry func(id wire.ID, raw []byte, kind string) error) (int, error) {
	var after *store.Message
	count := 0
	for {
		page, err := n.st.MessagesAfter(ctx, room, after, since, exportPage)
		if err != nil {
			return count, err
		}
		for _, m := range page {
			if m.Raw == nil {
				continue // purged by retention
			}
			acts, err := n.st.ActionsWithRaw(ctx, m.ID)
			if err != nil {
				return count, err
			}
			v := n.exportMessage(ctx, m.Message, acts)
			if err := fw.message(v); err != nil {
				return count, err
			}
			count++
			if err := addEntry(m.ID, m.Raw, v.Kind); err != nil {
				return count, fmt.Errorf("manifest spool: %w", err)
			}
			for _, a := range acts {
				k := wire.ContentKind(a.Kind)
				if a.Room != m.Room || a.Raw == nil || (k != wire.KindEdit && k != wire.KindDelete && k != wire.KindReaction) {
					continue // replies are messages of their own; other rooms' actions have no effect here
				}
				if err := addEntry(a.ID, a.Raw, k.String()); err != nil {
					return count, fmt.Errorf("manifest spool: %w", err)
				}
			}
		}
		if len(page) < exportPage {
			return count, nil
		}
		after = &page[len(page)-1].Message
	}
}

// exportRooms resolves what to export, refusing a room this node cannot read.
func (n *Node) exportRooms(ctx context.Context, name string) ([]store.Room, error) {
	if name == "" {
		rs, err := n.hist.allRooms(ctx)
		if err != nil {
			return nil, err
		}
		out := append([]store.Room(nil), rs...)
		sort.SliceStable(out, func(i, j int) bool {
			a, b := n.roomView(out[i]), n.roomView(out[j])
			if (a.Kind == "direct") != (b.Kind == "direct") {
				return b.Kind == "direct"
			}
			return a.Name < b.Name
		})
		return out, nil
	}
	if id, err := wire.ParseID(name); err == nil {
		if _, err := n.hist.room(ctx, id); errors.Is(err, store.ErrNotFound) {
			held, _, err := n.st.RoomEnvelopes(ctx, id)
			if err != nil {
				return nil, err
			}
			if held > 0 {
				return nil, fmt.Errorf("%w: cannot export room %s: this node is not among its readers and holds its %d envelopes only as ciphertext; a member of the room can export it",
					ErrUnknownRoom, id, held)
			}
		}
	}
	id, _, err := n.resolveRoom(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := n.hist.room(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no conversation %s held here", ErrUnknownRoom, name)
	}
	if err != nil {
		return nil, err
	}
	return []store.Room{r}, nil
}

func (n *Node) exportRoomView(ctx context.Context, r store.Room) ExportRoom {
	v := n.roomView(r)
	out := ExportRoom{ID: v.ID, Name: roomLabel(v), Kind: v.Kind, Members: []ExportPerson{}}
	for _, p := range r.Members {
		m, _ := n.hist.member(p)
		out.Members = append(out.Members, ExportPerson{PeerID: peer.ID(p).String(), Name: m.name})
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].Name < out.Members[j].Name })
	if _, unreadable, err := n.st.RoomEnvelopes(ctx, r.ID); err == nil {
		out.Unreadable = unreadable
	}
	return out
}

// exportMessage is m as the UI shows it, from the actions on it.
func (n *Node) exportMessage(ctx context.Context, m store.Message, acts []store.ExportedAction) ExportMessage {
	author, _ := n.hist.member(m.Author)
	v := ExportMessage{
		ID: m.ID.String(), Time: time.UnixMilli(m.Time).UTC(), Author: peer.ID(m.Author).String(),
		AuthorName: author.name, Kind: wire.ContentKind(m.Kind).String(), Text: m.Text,
		Lamport: m.Lamport, Seq: m.Seq,
	}
	plain := make([]store.Action, len(acts))
	for i, a := range acts {
		plain[i] = a.Action
	}
	r := resolve(m, plain, n.hist.roleAt, n.hist.self)
	v.Edited, v.Deleted = r.edited, r.deleted
	if r.deleted {
		v.Text = ""
	} else {
		v.Reactions = reactors(m, plain, n.exportName)
	}
	if a, ok, err := n.st.Action(ctx, m.ID); err == nil && ok && wire.ContentKind(a.Kind) == wire.KindText {
		t, err := n.st.Message(ctx, a.Target)
		if err != nil || t.Room == m.Room { // a reply to another room's message is a plain message
			v.ReplyTo = a.Target.String()
			if err == nil {
				v.ReplyText = quote(t.Text, 100)
				v.ReplyAuthor = n.exportName(t.Author)
			}
		}
	}
	if wire.ContentKind(m.Kind) == wire.KindFile && !v.Deleted {
		if f, err := n.st.File(ctx, m.ID); err == nil {
			if fm, err := wire.DecodeFileManifest(f.Manifest); err == nil {
				h := sha256.Sum256(f.Manifest)
				v.File = &ExportFile{Name: fm.Name, Size: fm.Size, Type: fm.Type, ManifestSHA256: hex.EncodeToString(h[:])}
			}
		}
	}
	return v
}

// exportName is a member's name, or its peer ID.
func (n *Node) exportName(p []byte) string {
	if m, ok := n.hist.member(p); ok && m.name != "" {
		return m.name
	}
	return peer.ID(p).String()
}

// reactors lists who has each emoji on target, by the rule of resolve:
// per (member, emoji) the last reaction in (lamport, author, seq) order
// decides, "-" taking it back. acts are in that order.
func reactors(target store.Message, acts []store.Action, name func([]byte) string) []ExportReaction {
	type key struct{ author, emoji string }
	on := map[key]bool{}
	var order []string
	seen := map[string]bool{}
	for _, a := range acts {
		if a.Room != target.Room || a.Target != target.ID || wire.ContentKind(a.Kind) != wire.KindReaction {
			continue
		}
		emoji, off := strings.CutPrefix(a.Text, "-")
		on[key{string(a.Author), emoji}] = !off
		if !off && !seen[emoji] {
			seen[emoji] = true
			order = append(order, emoji)
		}
	}
	var out []ExportReaction
	for _, e := range order {
		r := ExportReaction{Emoji: e}
		for k, v := range on {
			if v && k.emoji == e {
				r.By = append(r.By, name([]byte(k.author)))
			}
		}
		if len(r.By) > 0 {
			sort.Strings(r.By)
			out = append(out, r)
		}
	}
	return out
}

// ExportCheck is a batch of manifest entries to check.
type ExportCheck struct {
	Workspace string          `json:"workspace"` // the export's; "" skips that check
	Entries   []ManifestEntry `json:"entries"`
}

// MaxExportCheck bounds the entries of one ExportCheck.
const MaxExportCheck = 4096

// ExportProblem is an entry that did not check out.
type ExportProblem struct {
	ID     string `json:"id"`
	Kind   string `json:"kind,omitempty"`
	Want   string `json:"want,omitempty"` // the export's hash
	Got    string `json:"got,omitempty"`  // the hash of the bytes held here
	Detail string `json:"detail"`
}

// ExportVerdict is what VerifyExport found.
type ExportVerdict struct {
	Checked    int             `json:"checked"`
	Matched    int             `json:"matched"`    // held, same bytes, valid signature
	Mismatched []ExportProblem `json:"mismatched"` // held with other bytes, or failing their signature
	Missing    []ExportProblem `json:"missing"`    // not held here
	Purged     []ExportProblem `json:"purged"`     // held as a tombstone: retention purged the bytes, the hash cannot be checked
}

// VerifyExport checks each entry: the envelope is held here, the SHA-256 of
// the bytes held is the one listed, and they carry a valid signature.
func (n *Node) VerifyExport(ctx context.Context, req ExportCheck) (ExportVerdict, error) {
	v := ExportVerdict{Mismatched: []ExportProblem{}, Missing: []ExportProblem{}, Purged: []ExportProblem{}}
	if len(req.Entries) > MaxExportCheck {
		return v, fmt.Errorf("%w: %d entries in one check; send at most %d at a time", ErrInvalid, len(req.Entries), MaxExportCheck)
	}
	if req.Workspace != "" && req.Workspace != n.hist.ws.String() {
		return v, fmt.Errorf("%w: the export is of workspace %s; this node is in %s, so its store cannot vouch for it",
			ErrInvalid, req.Workspace, n.hist.ws)
	}
	for _, e := range req.Entries {
		id, err := wire.ParseID(e.ID)
		want, herr := hex.DecodeString(e.SHA256)
		if err != nil || herr != nil || len(want) != sha256.Size {
			return v, fmt.Errorf("%w: manifest entry %q %q: want two 64-hex-digit values", ErrInvalid, e.ID, e.SHA256)
		}
		v.Checked++
		p := ExportProblem{ID: e.ID, Kind: e.Kind, Want: e.SHA256}
		raw, held, err := n.st.EnvelopeRaw(ctx, id)
		switch {
		case err != nil:
			return v, err
		case !held:
			p.Detail = "no envelope with this ID is held here"
			v.Missing = append(v.Missing, p)
			continue
		case raw == nil:
			p.Detail = "held only as a tombstone: retention purged its bytes here"
			v.Purged = append(v.Purged, p)
			continue
		}
		got := sha256.Sum256(raw)
		p.Got = hex.EncodeToString(got[:])
		if !bytes.Equal(got[:], want) {
			p.Detail = "the bytes held here have another SHA-256"
			v.Mismatched = append(v.Mismatched, p)
			continue
		}
		if _, err := verifyRaw(id, raw); err != nil {
			p.Detail = "the bytes held here fail their check: " + err.Error()
			v.Mismatched = append(v.Mismatched, p)
			continue
		}
		v.Matched++
	}
	return v, nil
}
