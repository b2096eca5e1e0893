package wire

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// VectorEntry is what a node holds of one author's feed: the highest seq with no gap
// below it, and the ID of the envelope at that seq (so peers see forks).
type VectorEntry struct {
	Author []byte // binary peer ID
	Seq    uint64
	ID     ID
}

// Vector is a node's summary of its history, exchanged at the start of sync.
type Vector struct {
	Entries []VectorEntry // sorted by Author bytes, at most MaxVectorAuthors
}

var (
	vectorFields      = []string{1: "entries"}
	vectorEntryFields = []string{1: "author", 2: "seq", 3: "id"}
)

// Marshal returns the canonical encoding of v. Entries must already be sorted.
func (v *Vector) Marshal() []byte {
	b := make([]byte, 0, len(v.Entries)*(MaxAuthorBytes/2+48))
	var e []byte
	for i := range v.Entries {
		e = v.Entries[i].appendTo(e[:0])
		b = appendBytes(b, 1, e)
	}
	return b
}

func (e *VectorEntry) appendTo(b []byte) []byte {
	b = appendBytes(b, 1, e.Author)
	b = appendUint(b, 2, e.Seq)
	return appendBytes(b, 3, e.ID[:])
}

// DecodeVector decodes the canonical encoding of a vector of at most MaxVectorBytes
// and checks its bounds: at most MaxVectorAuthors entries, authors in strictly
// increasing byte order, every seq at least 1.
func DecodeVector(b []byte) (*Vector, error) {
	if len(b) > MaxVectorBytes {
		return nil, tooLarge("vector", len(b), MaxVectorBytes)
	}
	d := newDecoder("vector", vectorFields, b)
	v := new(Vector)
	for d.next(1) {
		if len(v.Entries) == MaxVectorAuthors {
			d.tooLargef("field 1 (entries) has more than %d elements", MaxVectorAuthors)
			break
		}
		raw := d.raw(1)
		if d.err != nil {
			break
		}
		e, err := decodeVectorEntry(raw)
		if d.nested(1, err); d.err != nil {
			break
		}
		if n := len(v.Entries); n > 0 {
			d.check(bytes.Compare(v.Entries[n-1].Author, e.Author) < 0,
				"field 1 (entries) element %d is not above the one before", n)
		}
		v.Entries = append(v.Entries, e)
	}
	if err := d.end(b, v.Marshal); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeVectorEntry(b []byte) (VectorEntry, error) {
	d := newDecoder("vector entry", vectorEntryFields, b)
	var e VectorEntry
	e.Author = d.bytes(1, 1, MaxAuthorBytes)
	e.Seq = d.uvarint(2)
	d.check(e.Seq >= 1, "field 2 (seq) is 0")
	e.ID = d.id(3)
	return e, d.end(b, func() []byte { return e.appendTo(nil) })
}

// Batch is a run of encoded envelopes sent in one sync frame, and the
// tombstones of envelopes whose bodies the sender purged (retention).
type Batch struct {
	Envelopes  [][]byte    // at most MaxBatchEnvelopes, each at most MaxEnvelopeBytes
	Tombstones []Tombstone // at most MaxBatchTombstones
}

// Tombstone is what a node keeps of a content envelope after retention purged
// its body: the header fields a peer needs to continue the author's chain past
// it (envelope seq+1 names ID in its prev). It is not signed, and cannot be:
// the ID is the hash of signed bytes that no longer exist.
type Tombstone struct {
	Author  []byte // binary peer ID
	Seq     uint64
	ID      ID
	Prev    ID // zero iff Seq = 1
	Lamport uint64
	Time    int64 // author's clock, unix ms
	Class   Class
	Room    ID
}

var (
	batchFields     = []string{1: "envelopes", 2: "tombstones"}
	tombstoneFields = []string{1: "author", 2: "seq", 3: "id", 4: "prev", 5: "lamport", 6: "time", 7: "class", 8: "room"}
)

// Marshal returns the canonical encoding of b.
func (b *Batch) Marshal() []byte {
	return b.appendTo(make([]byte, 0, b.size()))
}

func (b *Batch) appendTo(out []byte) []byte {
	for _, env := range b.Envelopes {
		out = appendBytes(out, 1, env)
	}
	var t []byte
	for i := range b.Tombstones {
		t = b.Tombstones[i].appendTo(t[:0])
		out = appendBytes(out, 2, t)
	}
	return out
}

func (t *Tombstone) appendTo(b []byte) []byte {
	b = appendBytes(b, 1, t.Author)
	b = appendUint(b, 2, t.Seq)
	b = appendBytes(b, 3, t.ID[:])
	b = appendBytes(b, 4, t.Prev[:])
	b = appendUint(b, 5, t.Lamport)
	b = appendInt(b, 6, t.Time)
	b = appendUint(b, 7, uint64(t.Class))
	return appendBytes(b, 8, t.Room[:])
}

// size returns the length of b's encoding.
func (b *Batch) size() int {
	n := 0
	for _, env := range b.Envelopes {
		n += batchElemSize(len(env))
	}
	for i := range b.Tombstones {
		n += b.Tombstones[i].elemSize()
	}
	return n
}

func batchElemSize(n int) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(n)
}

func (t *Tombstone) elemSize() int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(t.Author)) +
		protowire.SizeTag(2) + protowire.SizeVarint(t.Seq) +
		2*(protowire.SizeTag(3)+protowire.SizeBytes(len(ID{}))) +
		protowire.SizeTag(5) + protowire.SizeVarint(t.Lamport) +
		protowire.SizeTag(6) + protowire.SizeVarint(protowire.EncodeZigZag(t.Time)) +
		protowire.SizeTag(7) + protowire.SizeVarint(uint64(t.Class)) +
		protowire.SizeTag(8) + protowire.SizeBytes(len(ID{}))
	return protowire.SizeTag(2) + protowire.SizeBytes(n)
}

// Len is the number of envelopes and tombstones in b; a batch of length 0
// ends a sync exchange.
func (b *Batch) Len() int { return len(b.Envelopes) + len(b.Tombstones) }

// Add appends env to b if b then stays within MaxBatchEnvelopes and MaxBatchBytes,
// and reports whether it did. An empty envelope or one over MaxEnvelopeBytes never
// fits; any other fits an empty batch.
func (b *Batch) Add(env []byte) bool {
	if len(env) == 0 || len(env) > MaxEnvelopeBytes || len(b.Envelopes) >= MaxBatchEnvelopes ||
		b.size()+batchElemSize(len(env)) > MaxBatchBytes {
		return false
	}
	b.Envelopes = append(b.Envelopes, env)
	return true
}

// AddTombstone appends t to b if b then stays within MaxBatchTombstones and
// MaxBatchBytes, and reports whether it did. A tombstone with no author or
// one over MaxAuthorBytes never fits.
func (b *Batch) AddTombstone(t Tombstone) bool {
	if len(t.Author) == 0 || len(t.Author) > MaxAuthorBytes || len(b.Tombstones) >= MaxBatchTombstones ||
		b.size()+t.elemSize() > MaxBatchBytes {
		return false
	}
	b.Tombstones = append(b.Tombstones, t)
	return true
}

// DecodeBatch decodes the canonical encoding of a batch of at most MaxBatchBytes:
// at most MaxBatchEnvelopes envelopes, none empty or over MaxEnvelopeBytes, then
// at most MaxBatchTombstones tombstones. It does not decode the envelopes.
func DecodeBatch(b []byte) (*Batch, error) {
	if len(b) > MaxBatchBytes {
		return nil, tooLarge("batch", len(b), MaxBatchBytes)
	}
	d := newDecoder("batch", batchFields, b)
	bt := new(Batch)
	for d.next(1) {
		if len(bt.Envelopes) == MaxBatchEnvelopes {
			d.tooLargef("field 1 (envelopes) has more than %d elements", MaxBatchEnvelopes)
			break
		}
		env := d.bytes(1, 1, MaxEnvelopeBytes)
		if d.err != nil {
			break
		}
		bt.Envelopes = append(bt.Envelopes, env)
	}
	for d.next(2) {
		if len(bt.Tombstones) == MaxBatchTombstones {
			d.tooLargef("field 2 (tombstones) has more than %d elements", MaxBatchTombstones)
			break
		}
		raw := d.raw(2)
		if d.err != nil {
			break
		}
		t, err := decodeTombstone(raw)
		if d.nested(2, err); d.err != nil {
			break
		}
		bt.Tombstones = append(bt.Tombstones, *t)
	}
	if err := d.endAppend(b, bt.appendTo); err != nil {
		return nil, err
	}
	return bt, nil
}

// decodeTombstone decodes the canonical encoding of one tombstone and checks
// its bounds: an author of 1 to MaxAuthorBytes, seq at least 1, prev zero
// exactly at seq 1, lamport at most MaxLamport, a known class. Whether the
// receiver takes it is the receiver's judgement.
func decodeTombstone(b []byte) (*Tombstone, error) {
	d := newDecoder("tombstone", tombstoneFields, b)
	t := new(Tombstone)
	t.Author = d.bytes(1, 1, MaxAuthorBytes)
	t.Seq = d.uvarint(2)
	d.check(t.Seq >= 1, "field 2 (seq) is 0")
	t.ID = d.id(3)
	t.Prev = d.id(4)
	d.check(t.Seq != 1 || t.Prev.IsZero(), "field 4 (prev) is not zero at seq 1")
	d.check(t.Seq == 1 || !t.Prev.IsZero(), "field 4 (prev) is zero at seq %d", t.Seq)
	t.Lamport = d.uvarint(5)
	d.check(t.Lamport <= MaxLamport, "field 5 (lamport) is %d, over the limit of 2^53-1", t.Lamport)
	t.Time = d.sint64(6)
	t.Class = Class(d.enum(7, uint64(ClassRoster), uint64(ClassContent)))
	t.Room = d.id(8)
	if err := d.end(b, func() []byte { return t.appendTo(nil) }); err != nil {
		return nil, err
	}
	return t, nil
}

// Want asks a peer for the bytes of envelopes by ID: the bodies of room ops
// this node holds only as tombstones (a peer's retention purged them before
// this node could read them) and a member has since disclosed. The answer is
// batches, as in sync, ended by an empty one.
type Want struct {
	IDs []ID // strictly increasing, 1 to MaxWantIDs
}

// MaxWantIDs bounds the IDs of one Want: one answer of up to MaxWantIDs
// envelopes.
const MaxWantIDs = 1024

var wantFields = []string{1: "ids"}

// Marshal returns the canonical encoding of w.
func (w *Want) Marshal() []byte {
	b := make([]byte, 0, len(w.IDs)*(len(ID{})+2))
	for _, id := range w.IDs {
		b = appendBytes(b, 1, id[:])
	}
	return b
}

// DecodeWant decodes the canonical encoding of a Want and checks its bounds:
// one to MaxWantIDs IDs of 32 bytes in strictly increasing order.
func DecodeWant(b []byte) (*Want, error) {
	if max := MaxWantIDs * (len(ID{}) + 2); len(b) > max {
		return nil, tooLarge("want", len(b), max)
	}
	d := newDecoder("want", wantFields, b)
	w := new(Want)
	for d.next(1) {
		if len(w.IDs) == MaxWantIDs {
			d.tooLargef("field 1 (ids) has more than %d elements", MaxWantIDs)
			break
		}
		id := d.id(1)
		if d.err != nil {
			break
		}
		if n := len(w.IDs); n > 0 {
			d.check(bytes.Compare(w.IDs[n-1][:], id[:]) < 0, "field 1 (ids) element %d is not above the one before", n)
		}
		w.IDs = append(w.IDs, id)
	}
	if len(w.IDs) == 0 {
		d.tag(1, protowire.BytesType) // fails, and says why field 1 is not next
	}
	if err := d.end(b, w.Marshal); err != nil {
		return nil, err
	}
	return w, nil
}
