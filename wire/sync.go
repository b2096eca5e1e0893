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

// Batch is a run of encoded envelopes sent in one sync frame.
type Batch struct {
	Envelopes [][]byte // at most MaxBatchEnvelopes, each at most MaxEnvelopeBytes
}

var batchFields = []string{1: "envelopes"}

// Marshal returns the canonical encoding of b.
func (b *Batch) Marshal() []byte {
	out := make([]byte, 0, b.size())
	for _, env := range b.Envelopes {
		out = appendBytes(out, 1, env)
	}
	return out
}

// size returns the length of b's encoding.
func (b *Batch) size() int {
	n := 0
	for _, env := range b.Envelopes {
		n += batchElemSize(len(env))
	}
	return n
}

func batchElemSize(n int) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(n)
}

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

// DecodeBatch decodes the canonical encoding of a batch of at most MaxBatchBytes:
// at most MaxBatchEnvelopes envelopes, none empty or over MaxEnvelopeBytes. It does
// not decode the envelopes.
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
	if err := d.end(b, bt.Marshal); err != nil {
		return nil, err
	}
	return bt, nil
}
