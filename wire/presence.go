package wire

import (
	"bytes"
	"fmt"
)

// Presence is the ephemeral heartbeat every node publishes a few times a
// minute: who is online or away, and a digest of what it holds, so a loss at
// the tail of a burst (no later seq reveals it) is found within seconds. It is
// signed with its own domain ("charla/ephemeral/v1\0") and never stored as
// history. On the ephemeral topic it travels inside an Ephemeral.
type Presence struct {
	Workspace ID
	Peer      []byte        // binary peer ID of the sender
	Time      int64         // sender's unix ms; only ever increases per sender (replays are dropped)
	Digest    ID            // SHA-256 of the sender's Vector encoding
	Envelopes uint64        // how many envelopes the sender holds
	Heads     []VectorEntry // heads that moved since the sender's last heartbeats, at most MaxPresenceHeads
	State     PresenceState // online, or away when its user is idle
	Sig       []byte
}

// PresenceState is what a heartbeat says of its sender's user. The numbers
// go on the wire. Offline is no heartbeat at all.
type PresenceState uint8

const (
	StateOnline PresenceState = 1
	StateAway   PresenceState = 2
)

func (s PresenceState) String() string {
	switch s {
	case StateOnline:
		return "online"
	case StateAway:
		return "away"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MaxPresenceHeads bounds the heads one heartbeat carries.
const MaxPresenceHeads = 64

var presenceFields = []string{1: "workspace", 2: "peer", 3: "time", 4: "digest", 5: "envelopes", 6: "heads", 7: "state", 8: "sig"}

// SignedBytes is the canonical encoding of p without its signature.
func (p *Presence) SignedBytes() []byte {
	var b []byte
	b = appendBytes(b, 1, p.Workspace[:])
	b = appendBytes(b, 2, p.Peer)
	b = appendInt(b, 3, p.Time)
	b = appendBytes(b, 4, p.Digest[:])
	b = appendUint(b, 5, p.Envelopes)
	var e []byte
	for i := range p.Heads {
		e = p.Heads[i].appendTo(e[:0])
		b = appendBytes(b, 6, e)
	}
	return appendUint(b, 7, uint64(p.State))
}

// Marshal returns the canonical encoding of p with its signature.
func (p *Presence) Marshal() []byte { return appendBytes(p.SignedBytes(), 8, p.Sig) }

// MaxPresenceBytes bounds an encoded heartbeat.
const MaxPresenceBytes = 16 << 10

// DecodePresence decodes the canonical encoding of a heartbeat.
func DecodePresence(b []byte) (*Presence, error) {
	if len(b) > MaxPresenceBytes {
		return nil, tooLarge("presence", len(b), MaxPresenceBytes)
	}
	d := newDecoder("presence", presenceFields, b)
	p := new(Presence)
	p.Workspace = d.id(1)
	p.Peer = d.bytes(2, 1, MaxAuthorBytes)
	p.Time = d.sint64(3)
	p.Digest = d.id(4)
	p.Envelopes = d.uvarint(5)
	for d.next(6) {
		if len(p.Heads) == MaxPresenceHeads {
			d.tooLargef("field 6 (heads) has more than %d elements", MaxPresenceHeads)
			break
		}
		raw := d.raw(6)
		if d.err != nil {
			break
		}
		e, err := decodeVectorEntry(raw)
		if d.nested(6, err); d.err != nil {
			break
		}
		p.Heads = append(p.Heads, e)
	}
	p.State = PresenceState(d.enum(7, uint64(StateOnline), uint64(StateAway)))
	p.Sig = d.bytes(8, 1, MaxSigBytes)
	if err := d.end(b, p.Marshal); err != nil {
		return nil, err
	}
	return p, nil
}

// SyncOffer opens a sync answer: how many envelopes the server is about to
// send, so the puller can show progress.
type SyncOffer struct {
	Total uint64
}

var syncOfferFields = []string{1: "total"}

// Marshal returns the canonical encoding of o.
func (o *SyncOffer) Marshal() []byte { return appendUint(nil, 1, o.Total) }

// DecodeSyncOffer decodes the canonical encoding of a sync offer.
func DecodeSyncOffer(b []byte) (*SyncOffer, error) {
	d := newDecoder("sync offer", syncOfferFields, b)
	o := &SyncOffer{Total: d.uvarint(1)}
	if err := d.end(b, o.Marshal); err != nil {
		return nil, err
	}
	return o, nil
}

// PeerExchange carries signed libp2p peer records of roster members, so a
// node that meets one member learns how to reach the others.
type PeerExchange struct {
	Records [][]byte // libp2p signed envelopes of peer records, at most MaxExchangeRecords
}

// Bounds of a peer exchange.
const (
	MaxExchangeRecords     = 256
	MaxExchangeRecordBytes = 4 << 10
	MaxExchangeBytes       = MaxExchangeRecords * (MaxExchangeRecordBytes + 8)
)

var peerExchangeFields = []string{1: "records"}

// Marshal returns the canonical encoding of x.
func (x *PeerExchange) Marshal() []byte {
	var b []byte
	for _, r := range x.Records {
		b = appendBytes(b, 1, r)
	}
	return b
}

// DecodePeerExchange decodes the canonical encoding of a peer exchange. It
// does not open the records.
func DecodePeerExchange(b []byte) (*PeerExchange, error) {
	if len(b) > MaxExchangeBytes {
		return nil, tooLarge("peer exchange", len(b), MaxExchangeBytes)
	}
	d := newDecoder("peer exchange", peerExchangeFields, b)
	x := new(PeerExchange)
	for d.next(1) {
		if len(x.Records) == MaxExchangeRecords {
			d.tooLargef("field 1 (records) has more than %d elements", MaxExchangeRecords)
			break
		}
		x.Records = append(x.Records, d.bytes(1, 1, MaxExchangeRecordBytes))
	}
	if err := d.end(b, x.Marshal); err != nil {
		return nil, err
	}
	return x, nil
}

// Held follows the vector in a sync request: per author, the seqs the puller
// already holds above its head (above a gap), so the server skips them.
type Held struct {
	Entries []HeldEntry // sorted by Author, each author once
}

// HeldEntry is what a puller holds above one author's head.
type HeldEntry struct {
	Author []byte
	Seqs   []uint64 // strictly increasing
}

// MaxHeldSeqs bounds the seqs of one Held frame, all authors together.
const MaxHeldSeqs = 8192

var (
	heldFields      = []string{1: "entries"}
	heldEntryFields = []string{1: "author", 2: "seqs"}
)

// Marshal returns the canonical encoding of h.
func (h *Held) Marshal() []byte {
	var b, e []byte
	for i := range h.Entries {
		e = appendBytes(e[:0], 1, h.Entries[i].Author)
		for _, s := range h.Entries[i].Seqs {
			e = appendUint(e, 2, s)
		}
		b = appendBytes(b, 1, e)
	}
	return b
}

// DecodeHeld decodes the canonical encoding of a Held frame.
func DecodeHeld(b []byte) (*Held, error) {
	if len(b) > MaxVectorBytes+MaxHeldSeqs*10 {
		return nil, tooLarge("held", len(b), MaxVectorBytes+MaxHeldSeqs*10)
	}
	d := newDecoder("held", heldFields, b)
	h := new(Held)
	total := 0
	for d.next(1) {
		raw := d.raw(1)
		if d.err != nil {
			break
		}
		ed := newDecoder("held entry", heldEntryFields, raw)
		var e HeldEntry
		e.Author = ed.bytes(1, 1, MaxAuthorBytes)
		for ed.next(2) {
			s := ed.uvarint(2)
			if n := len(e.Seqs); n > 0 {
				ed.check(s > e.Seqs[n-1], "field 2 (seqs) not increasing")
			}
			e.Seqs = append(e.Seqs, s)
			if total++; total > MaxHeldSeqs {
				ed.tooLargef("more than %d seqs", MaxHeldSeqs)
				break
			}
		}
		err := ed.end(raw, func() []byte {
			out := appendBytes(nil, 1, e.Author)
			for _, s := range e.Seqs {
				out = appendUint(out, 2, s)
			}
			return out
		})
		if d.nested(1, err); d.err != nil {
			break
		}
		if n := len(h.Entries); n > 0 {
			d.check(bytes.Compare(h.Entries[n-1].Author, e.Author) < 0, "field 1 (entries) not in author order")
		}
		h.Entries = append(h.Entries, e)
	}
	if err := d.end(b, h.Marshal); err != nil {
		return nil, err
	}
	return h, nil
}
