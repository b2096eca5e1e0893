package wire

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

var headerFields = []string{
	1: "version", 2: "workspace", 3: "author", 4: "seq", 5: "prev", 6: "lamport",
	7: "time", 8: "class", 9: "room", 10: "key", 11: "body",
}

// Marshal returns the canonical encoding of h: the bytes an envelope signs and whose
// SHA-256 is the envelope ID. It does not check h; to check a header before signing
// it, decode the result.
func (h *Header) Marshal() []byte {
	return h.appendTo(make([]byte, 0, 3*len(ID{})+len(h.Author)+len(h.Body)+64))
}

func (h *Header) appendTo(b []byte) []byte {
	b = h.appendStable(b)
	b = appendInt(b, 7, h.Time)
	b = appendUint(b, 8, uint64(h.Class))
	b = appendBytes(b, 9, h.Room[:])
	b = appendBytes(b, 10, h.Key[:])
	return appendBytes(b, 11, h.Body)
}

// appendStable appends fields 1–6, which every version of the header keeps.
func (h *Header) appendStable(b []byte) []byte {
	b = appendUint(b, 1, h.Version)
	b = appendBytes(b, 2, h.Workspace[:])
	b = appendBytes(b, 3, h.Author)
	b = appendUint(b, 4, h.Seq)
	b = appendBytes(b, 5, h.Prev[:])
	return appendUint(b, 6, h.Lamport)
}

// DecodeHeader decodes the canonical encoding of a header and checks its bounds.
//
// A header of a version above Version has fields 1–6 decoded and checked as usual
// and whatever follows only checked to be well-formed protobuf: the Header returned
// has Version, Workspace, Author, Seq, Prev and Lamport set and every other field
// zero. Such an envelope is stored, counted and relayed, never interpreted.
func DecodeHeader(b []byte) (*Header, error) {
	if len(b) > MaxEnvelopeBytes {
		return nil, tooLarge("header", len(b), MaxEnvelopeBytes)
	}
	d := newDecoder("header", headerFields, b)
	h := new(Header)
	h.Version = d.uvarint(1)
	d.check(h.Version >= 1, "field 1 (version) is 0")
	h.Workspace = d.id(2)
	h.Author = d.bytes(3, 1, MaxAuthorBytes)
	h.Seq = d.uvarint(4)
	d.check(h.Seq >= 1, "field 4 (seq) is 0")
	h.Prev = d.id(5)
	d.check(h.Seq != 1 || h.Prev.IsZero(), "field 5 (prev) is not zero at seq 1")
	d.check(h.Seq == 1 || !h.Prev.IsZero(), "field 5 (prev) is zero at seq %d", h.Seq)
	h.Lamport = d.uvarint(6)
	d.check(h.Lamport <= MaxLamport, "field 6 (lamport) is %d, over the limit of 2^53-1", h.Lamport)
	if d.err == nil && h.Version > Version {
		return decodeFutureHeader(h, b, d.b)
	}

	h.Time = d.sint64(7)
	h.Class = Class(d.enum(8, uint64(ClassRoster), uint64(ClassContent)))
	h.Room = d.id(9)
	h.Key = d.id(10)
	h.Body = d.bytes(11, 0, MaxBodyBytes)
	switch h.Class {
	case ClassRoster:
		d.check(h.Room.IsZero(), "field 9 (room) is not zero in a roster envelope")
		d.check(h.Key.IsZero(), "field 10 (key) is not zero in a roster envelope")
	case ClassKeyShare:
		d.check(!h.Room.IsZero(), "field 9 (room) is zero in a keyshare envelope")
		d.check(h.Key.IsZero(), "field 10 (key) is not zero in a keyshare envelope")
	case ClassContent:
		d.check(!h.Room.IsZero(), "field 9 (room) is zero in a content envelope")
		d.check(!h.Key.IsZero(), "field 10 (key) is zero in a content envelope")
	}
	if err := d.endAppend(b, h.appendTo); err != nil {
		return nil, err
	}
	return h, nil
}

// decodeFutureHeader finishes a header of a later version, whose fields 1–6 are in h
// and whose remaining encoding is rest.
func decodeFutureHeader(h *Header, b, rest []byte) (*Header, error) {
	stable := b[:len(b)-len(rest)]
	for len(rest) > 0 {
		_, _, n := protowire.ConsumeField(rest)
		if n < 0 {
			return nil, &decodeError{msg: fmt.Sprintf(
				"decode header: version %d: field after 6 (lamport): %s", h.Version, parseProblem(n))}
		}
		rest = rest[n:]
	}
	if !bytes.Equal(h.appendStable(nil), stable) {
		return nil, &decodeError{msg: "decode header: fields 1-6 not in canonical form"}
	}
	return h, nil
}

var envelopeFields = []string{1: "signed", 2: "sig"}

// Marshal returns the canonical encoding of e.
func (e *Envelope) Marshal() []byte {
	return e.appendTo(make([]byte, 0, len(e.Signed)+len(e.Sig)+8))
}

func (e *Envelope) appendTo(b []byte) []byte {
	b = appendBytes(b, 1, e.Signed)
	return appendBytes(b, 2, e.Sig)
}

// DecodeEnvelope decodes the canonical encoding of an envelope of at most
// MaxEnvelopeBytes, and the header it signs (see DecodeHeader). It checks form and
// bounds only: verifying the signature is the caller's job.
func DecodeEnvelope(b []byte) (*Envelope, *Header, error) {
	if len(b) > MaxEnvelopeBytes {
		return nil, nil, tooLarge("envelope", len(b), MaxEnvelopeBytes)
	}
	d := newDecoder("envelope", envelopeFields, b)
	e := new(Envelope)
	e.Signed = d.bytes(1, 1, MaxEnvelopeBytes)
	e.Sig = d.bytes(2, 0, MaxSigBytes)
	if err := d.endAppend(b, e.appendTo); err != nil {
		return nil, nil, err
	}
	h, err := DecodeHeader(e.Signed)
	if d.nested(1, err); d.err != nil {
		return nil, nil, d.err
	}
	return e, h, nil
}

// ID returns the envelope's ID, the SHA-256 of its signed bytes.
func (e *Envelope) ID() ID { return sha256.Sum256(e.Signed) }
