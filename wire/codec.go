package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Encoding helpers. Every message writes all of its fields, in field-number order,
// zero values included, so a value has exactly one encoding.

func appendUint(b []byte, n protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendInt(b []byte, n protowire.Number, v int64) []byte {
	return appendUint(b, n, protowire.EncodeZigZag(v))
}

func appendBytes(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, n protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// decoder reads one message whose fields must each appear exactly once, in
// field-number order (a repeated field: once per element, consecutively). It keeps
// the first error and turns every later call into a no-op, so a Decode function reads
// as a list of its fields and checks, and looks at the error once at the end.
type decoder struct {
	msg    string           // the message's name in errors: "header"
	fields []string         // fields[n] names field n; fields[0] is unused
	b      []byte           // unread input
	last   protowire.Number // the field read last; 0 before the first
	err    error
}

func newDecoder(msg string, fields []string, b []byte) *decoder {
	return &decoder{msg: msg, fields: fields, b: b}
}

func (d *decoder) field(n protowire.Number) string {
	if n > 0 && int(n) < len(d.fields) {
		return fmt.Sprintf("field %d (%s)", n, d.fields[n])
	}
	return fmt.Sprintf("field %d", n)
}

func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = &decodeError{msg: "decode " + d.msg + ": " + fmt.Sprintf(format, args...)}
	}
}

func (d *decoder) tooLargef(format string, args ...any) {
	if d.err == nil {
		d.err = &decodeError{msg: "decode " + d.msg + ": " + fmt.Sprintf(format, args...), tooLarge: true}
	}
}

// check records a malformed-input error unless ok. Like every method it does
// nothing once an error is recorded, so checks may follow reads that failed.
func (d *decoder) check(ok bool, format string, args ...any) {
	if !ok {
		d.failf(format, args...)
	}
}

// nested records err, returned by decoding the message held in field n.
func (d *decoder) nested(n protowire.Number, err error) {
	if d.err == nil && err != nil {
		d.err = &decodeError{
			msg:      fmt.Sprintf("decode %s: %s: %v", d.msg, d.field(n), err),
			tooLarge: errors.Is(err, ErrTooLarge),
		}
	}
}

// parseTag parses the tag at the start of b. A tag must be a minimal varint with a
// valid field number; bad says what is wrong when it is not.
func parseTag(b []byte) (num protowire.Number, typ protowire.Type, n int, bad string) {
	v, n := protowire.ConsumeVarint(b)
	switch {
	case n < 0:
		return 0, 0, n, "bad tag: " + parseProblem(n)
	case n != protowire.SizeVarint(v):
		return 0, 0, -1, "non-minimal tag"
	case v>>3 < uint64(protowire.MinValidNumber) || v>>3 > uint64(protowire.MaxValidNumber):
		return 0, 0, -1, fmt.Sprintf("invalid field number %d", v>>3)
	}
	return protowire.Number(v >> 3), protowire.Type(v & 7), n, ""
}

// tag consumes the tag of field n with wire type typ, and reports whether it did.
func (d *decoder) tag(n protowire.Number, typ protowire.Type) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.failf("%s missing", d.field(n))
		return false
	}
	num, t, l, bad := parseTag(d.b)
	switch {
	case bad != "":
		d.failf("%s", bad)
	case num != n:
		d.misplaced(n, num)
	case t != typ:
		d.failf("%s has wire type %d, want %d", d.field(n), t, typ)
	default:
		d.b = d.b[l:]
		d.last = n
		return true
	}
	return false
}

// misplaced records why field got was found where field want belongs.
func (d *decoder) misplaced(want, got protowire.Number) {
	switch {
	case int(got) >= len(d.fields):
		d.failf("unknown field %d", got)
	case got == d.last:
		d.failf("%s duplicated", d.field(got))
	case got < want:
		d.failf("%s out of order", d.field(got))
	case d.later(want):
		d.failf("%s out of order", d.field(want))
	default:
		d.failf("%s missing", d.field(want))
	}
}

// later reports whether field n occurs somewhere in the unread input.
func (d *decoder) later(n protowire.Number) bool {
	for b := d.b; len(b) > 0; {
		num, _, l := protowire.ConsumeField(b)
		if l < 0 {
			return false
		}
		if num == n {
			return true
		}
		b = b[l:]
	}
	return false
}

// next reports whether the unread input starts with field n, for repeated fields.
func (d *decoder) next(n protowire.Number) bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	num, _, _, bad := parseTag(d.b)
	return bad == "" && num == n
}

func (d *decoder) varintValue(n protowire.Number) uint64 {
	v, l := protowire.ConsumeVarint(d.b)
	switch {
	case l < 0:
		d.failf("%s: %s", d.field(n), parseProblem(l))
		return 0
	case l != protowire.SizeVarint(v):
		d.failf("%s: non-minimal varint", d.field(n))
		return 0
	}
	d.b = d.b[l:]
	return v
}

// uvarint reads field n as a varint.
func (d *decoder) uvarint(n protowire.Number) uint64 {
	if !d.tag(n, protowire.VarintType) {
		return 0
	}
	return d.varintValue(n)
}

// sint64 reads field n as a zigzag varint (protobuf sint64).
func (d *decoder) sint64(n protowire.Number) int64 {
	return protowire.DecodeZigZag(d.uvarint(n))
}

// enum reads field n as a varint in [lo, hi]; zero-valued fields that some values
// of a message leave unset pass lo = 0.
func (d *decoder) enum(n protowire.Number, lo, hi uint64) uint8 {
	v := d.uvarint(n)
	d.check(lo <= v && v <= hi, "%s is %d, want %d to %d", d.field(n), v, lo, hi)
	if d.err != nil {
		return 0
	}
	return uint8(v)
}

// raw reads field n as length-delimited and returns its value, aliasing the input.
func (d *decoder) raw(n protowire.Number) []byte {
	if !d.tag(n, protowire.BytesType) {
		return nil
	}
	size := d.varintValue(n)
	if d.err != nil {
		return nil
	}
	if size > uint64(len(d.b)) {
		d.failf("%s: length %d past the end of the input", d.field(n), size)
		return nil
	}
	v := d.b[:size]
	d.b = d.b[size:]
	return v
}

// bytes reads field n as a copy of between min and max bytes; nil when empty.
func (d *decoder) bytes(n protowire.Number, min, max int) []byte {
	v := d.raw(n)
	switch {
	case d.err != nil:
		return nil
	case len(v) > max:
		d.tooLargef("%s is %d bytes, over the limit of %d", d.field(n), len(v), max)
		return nil
	case len(v) < min && min == 1:
		d.failf("%s is empty", d.field(n))
		return nil
	case len(v) < min:
		d.failf("%s is %d bytes, want at least %d", d.field(n), len(v), min)
		return nil
	case len(v) == 0:
		return nil
	}
	return bytes.Clone(v)
}

// peers reads repeated field n as at most max peer IDs, each of 1 to
// MaxAuthorBytes bytes and above the one before: sorted, none twice.
func (d *decoder) peers(n protowire.Number, max int) [][]byte {
	var out [][]byte
	for d.next(n) {
		if len(out) == max {
			d.tooLargef("%s has more than %d elements", d.field(n), max)
			break
		}
		p := d.bytes(n, 1, MaxAuthorBytes)
		if k := len(out); k > 0 && d.err == nil {
			d.check(bytes.Compare(out[k-1], p) < 0, "%s element %d is not above the one before", d.field(n), k)
		}
		out = append(out, p)
	}
	return out
}

// text reads field n as valid UTF-8 of at most max bytes.
func (d *decoder) text(n protowire.Number, max int) string {
	v := d.raw(n)
	switch {
	case d.err != nil:
		return ""
	case len(v) > max:
		d.tooLargef("%s is %d bytes, over the limit of %d", d.field(n), len(v), max)
		return ""
	case !utf8.Valid(v):
		d.failf("%s is not valid UTF-8", d.field(n))
		return ""
	}
	return string(v)
}

// id reads field n as exactly 32 bytes.
func (d *decoder) id(n protowire.Number) ID {
	var id ID
	v := d.raw(n)
	if d.err == nil && len(v) != len(id) {
		d.failf("%s is %d bytes, want %d", d.field(n), len(v), len(id))
	}
	if d.err == nil {
		copy(id[:], v)
	}
	return id
}

// end requires that the input is used up and that marshal, applied to the decoded
// value, gives back the input. The field checks above already refuse every
// alternative encoding they know of; the re-encoding catches any they miss, so that
// no relay can change the bytes of a value without changing its meaning.
func (d *decoder) end(in []byte, marshal func() []byte) error {
	d.trailing()
	if d.err == nil && !bytes.Equal(marshal(), in) {
		d.failf("not in canonical form")
	}
	return d.err
}

// endAppend is end for the values every message of a catch-up goes through
// (a batch, an envelope, its header): the re-encoding goes into a pooled
// buffer, not a new one, which was ~4 KB of garbage per message.
func (d *decoder) endAppend(in []byte, appendTo func([]byte) []byte) error {
	d.trailing()
	if d.err != nil {
		return d.err
	}
	bp := canonBufs.Get().(*[]byte)
	if cap(*bp) < len(in) {
		*bp = make([]byte, 0, len(in)) // a canonical input re-encodes to its own length
	}
	out := appendTo((*bp)[:0])
	if !bytes.Equal(out, in) {
		d.failf("not in canonical form")
	}
	if cap(out) <= canonBufMax {
		*bp = out[:0]
		canonBufs.Put(bp)
	}
	return d.err
}

// canonBufs holds buffers for endAppend's re-encodings; those larger than
// canonBufMax are left to the collector rather than kept.
var canonBufs = sync.Pool{New: func() any { return new([]byte) }}

const canonBufMax = 1 << 20

// trailing fails d if bytes are left after its last field.
func (d *decoder) trailing() {
	if d.err == nil && len(d.b) > 0 {
		num, _, _, bad := parseTag(d.b)
		if bad != "" {
			d.failf("trailing bytes: %s", bad)
		} else {
			d.misplaced(protowire.Number(len(d.fields)), num)
		}
	}
}

// parseProblem describes a negative result n of a protowire Consume function.
func parseProblem(n int) string {
	err := protowire.ParseError(n)
	if err == io.ErrUnexpectedEOF {
		return "truncated"
	}
	// protowire prefixes its messages with "proto:" and a no-break space.
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\u00a0", " "), "proto: ")
}

// tooLarge is the error for a whole input over its bound, found before decoding.
func tooLarge(msg string, size, max int) error {
	return &decodeError{
		msg:      fmt.Sprintf("decode %s: %d bytes, over the limit of %d", msg, size, max),
		tooLarge: true,
	}
}
