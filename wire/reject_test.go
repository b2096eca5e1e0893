package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func decodeHeaderAny(b []byte) error   { _, err := DecodeHeader(b); return err }
func decodeEnvelopeAny(b []byte) error { _, _, err := DecodeEnvelope(b); return err }
func decodeContentAny(b []byte) error  { _, err := DecodeContent(b); return err }
func decodeMemberAny(b []byte) error   { _, err := DecodeMember(b); return err }
func decodeGenesisAny(b []byte) error  { _, err := DecodeGenesis(b); return err }
func decodeRosterOpAny(b []byte) error { _, err := DecodeRosterOp(b); return err }
func decodeKeyShareAny(b []byte) error { _, err := DecodeKeyShare(b); return err }
func decodeVectorAny(b []byte) error   { _, err := DecodeVector(b); return err }
func decodeBatchAny(b []byte) error    { _, err := DecodeBatch(b); return err }

// with returns the encoding of a copy of a fixture changed by edit.
func headerWith(edit func(*Header)) []byte {
	h := contentHeader()
	edit(h)
	return h.Marshal()
}

func TestReject(t *testing.T) {
	hf := fields(contentHeader().Marshal()) // hf[i] is field i+1
	future := contentHeader()
	future.Version = 2
	futureStable := future.appendStable(nil)

	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		want     string // the error message contains this
		tooLarge bool
	}{
		// Structure, on the header.
		{"empty header", decodeHeaderAny, nil, "field 1 (version) missing", false},
		{"unknown field at the end", decodeHeaderAny, join(pick(hf, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), varintField(12, 0)), "unknown field 12", false},
		{"unknown field in the middle", decodeHeaderAny, join(pick(hf, 0, 1, 2), bytesField(99, nil), pick(hf, 3, 4, 5, 6, 7, 8, 9, 10)), "unknown field 99", false},
		{"duplicate field", decodeHeaderAny, pick(hf, 0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10), "field 4 (seq) duplicated", false},
		{"duplicate last field", decodeHeaderAny, pick(hf, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10), "field 11 (body) duplicated", false},
		{"out of order", decodeHeaderAny, pick(hf, 0, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10), "field 4 (seq) out of order", false},
		{"earlier field after a later one", decodeHeaderAny, pick(hf, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1), "field 2 (workspace) out of order", false},
		{"missing field", decodeHeaderAny, pick(hf, 0, 1, 2, 4, 5, 6, 7, 8, 9, 10), "field 4 (seq) missing", false},
		{"missing last field", decodeHeaderAny, pick(hf, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), "field 11 (body) missing", false},
		{"wrong wire type", decodeHeaderAny, join(pick(hf, 0, 1, 2), bytesField(4, []byte{2}), pick(hf, 4, 5, 6, 7, 8, 9, 10)), "field 4 (seq) has wire type 2, want 0", false},
		{"non-minimal varint", decodeHeaderAny, join(pick(hf, 0, 1, 2), []byte{0x20, 0x82, 0x00}, pick(hf, 4, 5, 6, 7, 8, 9, 10)), "field 4 (seq): non-minimal varint", false},
		{"non-minimal zero varint", decodeHeaderAny, join(pick(hf, 0, 1, 2, 3, 4, 5), []byte{0x38, 0x80, 0x00}, pick(hf, 7, 8, 9, 10)), "field 7 (time): non-minimal varint", false},
		{"non-minimal tag", decodeHeaderAny, join([]byte{0x88, 0x00, 0x01}, pick(hf, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)), "non-minimal tag", false},
		{"non-minimal length", decodeHeaderAny, join(pick(hf, 0), []byte{0x12, 0xa0, 0x00}, hf[1][2:], pick(hf, 2, 3, 4, 5, 6, 7, 8, 9, 10)), "field 2 (workspace): non-minimal varint", false},
		{"varint overflow", decodeHeaderAny, join([]byte{0x08}, bytes.Repeat([]byte{0xff}, 10), []byte{0x01}), "field 1 (version): variable length integer overflow", false},
		{"field number 0", decodeHeaderAny, []byte{0x00, 0x01}, "invalid field number 0", false},
		{"trailing zero byte", decodeHeaderAny, append(contentHeader().Marshal(), 0), "trailing bytes: invalid field number 0", false},
		{"trailing partial tag", decodeHeaderAny, append(contentHeader().Marshal(), 0x80), "trailing bytes: bad tag: truncated", false},
		{"truncated", decodeHeaderAny, func() []byte { b := contentHeader().Marshal(); return b[:len(b)-1] }(), "field 11 (body): length 32 past the end", false},
		{"header over MaxEnvelopeBytes", decodeHeaderAny, make([]byte, MaxEnvelopeBytes+1), "over the limit", true},

		// Values, on the header.
		{"version 0", decodeHeaderAny, headerWith(func(h *Header) { h.Version = 0 }), "field 1 (version) is 0", false},
		{"workspace 31 bytes", decodeHeaderAny, join(pick(hf, 0), bytesField(2, make([]byte, 31)), pick(hf, 2, 3, 4, 5, 6, 7, 8, 9, 10)), "field 2 (workspace) is 31 bytes, want 32", false},
		{"room 33 bytes", decodeHeaderAny, join(pick(hf, 0, 1, 2, 3, 4, 5, 6, 7), bytesField(9, make([]byte, 33)), pick(hf, 9, 10)), "field 9 (room) is 33 bytes, want 32", false},
		{"empty author", decodeHeaderAny, headerWith(func(h *Header) { h.Author = nil }), "field 3 (author) is empty", false},
		{"author too long", decodeHeaderAny, headerWith(func(h *Header) { h.Author = make([]byte, MaxAuthorBytes+1) }), "field 3 (author) is 65 bytes, over the limit of 64", true},
		{"seq 0", decodeHeaderAny, headerWith(func(h *Header) { h.Seq = 0 }), "field 4 (seq) is 0", false},
		{"seq 0 and zero prev", decodeHeaderAny, headerWith(func(h *Header) { h.Seq, h.Prev = 0, ID{} }), "field 4 (seq) is 0", false},
		{"prev at seq 1", decodeHeaderAny, headerWith(func(h *Header) { h.Seq = 1 }), "field 5 (prev) is not zero at seq 1", false},
		{"no prev at seq 2", decodeHeaderAny, headerWith(func(h *Header) { h.Prev = ID{} }), "field 5 (prev) is zero at seq 2", false},
		{"lamport 2^53", decodeHeaderAny, headerWith(func(h *Header) { h.Lamport = MaxLamport + 1 }), "field 6 (lamport) is 9007199254740992", false},
		{"class 0", decodeHeaderAny, headerWith(func(h *Header) { h.Class = 0 }), "field 8 (class) is 0, want 1 to 3", false},
		{"class 4", decodeHeaderAny, headerWith(func(h *Header) { h.Class = 4 }), "field 8 (class) is 4, want 1 to 3", false},
		{"class past uint8", decodeHeaderAny, join(pick(hf, 0, 1, 2, 3, 4, 5, 6), varintField(8, 259), pick(hf, 8, 9, 10)), "field 8 (class) is 259", false},
		{"roster with room", decodeHeaderAny, headerWith(func(h *Header) { h.Class, h.Key = ClassRoster, ID{} }), "field 9 (room) is not zero in a roster envelope", false},
		{"roster with key", decodeHeaderAny, headerWith(func(h *Header) { h.Class, h.Room = ClassRoster, ID{} }), "field 10 (key) is not zero in a roster envelope", false},
		{"keyshare with key", decodeHeaderAny, headerWith(func(h *Header) { h.Class = ClassKeyShare }), "field 10 (key) is not zero in a keyshare envelope", false},
		{"keyshare without room", decodeHeaderAny, headerWith(func(h *Header) { h.Class, h.Room, h.Key = ClassKeyShare, ID{}, ID{} }), "field 9 (room) is zero in a keyshare envelope", false},
		{"content without room", decodeHeaderAny, headerWith(func(h *Header) { h.Room = ID{} }), "field 9 (room) is zero in a content envelope", false},
		{"content without key", decodeHeaderAny, headerWith(func(h *Header) { h.Key = ID{} }), "field 10 (key) is zero in a content envelope", false},
		{"body too long", decodeHeaderAny, headerWith(func(h *Header) { h.Body = make([]byte, MaxBodyBytes+1) }), "field 11 (body) is 491521 bytes, over the limit", true},

		// Future versions: fields 1-6 strict, the rest well-formed.
		{"future version, bad tail", decodeHeaderAny, join(futureStable, []byte{0x3a, 0x05, 0x01}), "version 2: field after 6 (lamport): truncated", false},
		{"future version, stray end group", decodeHeaderAny, join(futureStable, []byte{0x3c}), "mismatching end group", false},
		{"future version, seq 0", decodeHeaderAny, func() []byte { h := *future; h.Seq = 0; return h.appendStable(nil) }(), "field 4 (seq) is 0", false},
		{"future version, non-minimal lamport", decodeHeaderAny, join(pick(fields(futureStable), 0, 1, 2, 3, 4), []byte{0x30, 0x87, 0x00}), "field 6 (lamport): non-minimal varint", false},
		{"future version, missing lamport", decodeHeaderAny, pick(fields(futureStable), 0, 1, 2, 3, 4), "field 6 (lamport) missing", false},

		// Envelope.
		{"envelope of MaxEnvelopeBytes+1", decodeEnvelopeAny, make([]byte, MaxEnvelopeBytes+1), "decode envelope: 524289 bytes, over the limit of 524288", true},
		{"envelope sig too long", decodeEnvelopeAny, (&Envelope{Signed: contentHeader().Marshal(), Sig: make([]byte, 65)}).Marshal(), "field 2 (sig) is 65 bytes, over the limit of 64", true},
		{"envelope empty signed", decodeEnvelopeAny, (&Envelope{Sig: make([]byte, 64)}).Marshal(), "field 1 (signed) is empty", false},
		{"envelope bad header", decodeEnvelopeAny, (&Envelope{Signed: headerWith(func(h *Header) { h.Seq = 0 })}).Marshal(), "decode envelope: field 1 (signed): decode header: field 4 (seq) is 0", false},
		{"envelope oversized body", decodeEnvelopeAny, (&Envelope{Signed: headerWith(func(h *Header) { h.Body = make([]byte, MaxBodyBytes+1) })}).Marshal(), "field 1 (signed): decode header: field 11 (body)", true},
		{"envelope missing sig", decodeEnvelopeAny, bytesField(1, contentHeader().Marshal()), "field 2 (sig) missing", false},
		{"envelope unknown field", decodeEnvelopeAny, join(testEnvelope().Marshal(), varintField(3, 1)), "unknown field 3", false},
		{"envelope sig before signed", decodeEnvelopeAny, join(bytesField(2, nil), bytesField(1, contentHeader().Marshal())), "field 1 (signed) out of order", false},

		// Content.
		{"content kind 0", decodeContentAny, (&Content{}).Marshal(), "field 1 (kind) is 0, want 1 to 6", false},
		{"content kind 7", decodeContentAny, (&Content{Kind: 7}).Marshal(), "field 1 (kind) is 7", false},
		{"content text too long", decodeContentAny, (&Content{Kind: KindText, Text: strings.Repeat("x", MaxTextBytes+1)}).Marshal(), "field 2 (text) is 65537 bytes, over the limit of 65536", true},
		{"content text not UTF-8", decodeContentAny, (&Content{Kind: KindText, Text: "caf\xe9"}).Marshal(), "field 2 (text) is not valid UTF-8", false},
		{"content target 33 bytes", decodeContentAny, join(varintField(1, 3), bytesField(2, nil), bytesField(3, make([]byte, 33)), bytesField(4, nil), varintField(5, 0)), "field 3 (target) is 33 bytes, want 32", false},
		{"content room name too long", decodeContentAny, (&Content{Kind: KindRoomOp, RoomName: strings.Repeat("n", MaxNameBytes+1)}).Marshal(), "field 4 (room_name) is 257 bytes", true},
		{"content room kind 3", decodeContentAny, (&Content{Kind: KindRoomOp, RoomName: "x", RoomKind: 3}).Marshal(), "field 5 (room_kind) is 3, want 0 to 2", false},
		{"content over MaxBodyBytes", decodeContentAny, make([]byte, MaxBodyBytes+1), "decode content: 491521 bytes", true},

		// Member.
		{"member empty peer", decodeMemberAny, (&Member{Name: "x"}).Marshal(), "decode member: field 1 (peer) is empty", false},
		{"member name too long", decodeMemberAny, (&Member{Peer: peer(1), Name: strings.Repeat("n", MaxNameBytes+1)}).Marshal(), "field 2 (name) is 257 bytes", true},
		{"member recipient too long", decodeMemberAny, (&Member{Peer: peer(1), Recipient: strings.Repeat("r", MaxRecipientBytes+1)}).Marshal(), "field 3 (recipient) is 2049 bytes", true},
		{"member recipient not UTF-8", decodeMemberAny, (&Member{Peer: peer(1), Recipient: "\xff"}).Marshal(), "field 3 (recipient) is not valid UTF-8", false},
		{"member sig too long", decodeMemberAny, (&Member{Peer: peer(1), Sig: make([]byte, 65)}).Marshal(), "field 4 (sig) is 65 bytes", true},
		{"member without sig field", decodeMemberAny, testMember().SignedBytes(), "field 4 (sig) missing", false},

		// Genesis.
		{"genesis without founder", decodeGenesisAny, (&Genesis{Name: "x", Nonce: make([]byte, 16)}).Marshal(), "decode genesis: field 2 (founder) is empty", false},
		{"genesis bad founder", decodeGenesisAny, join(bytesField(1, nil), bytesField(2, (&Member{}).Marshal()), varintField(3, 0), bytesField(4, make([]byte, 16))), "decode genesis: field 2 (founder): decode member: field 1 (peer) is empty", false},
		{"genesis founder too long name", decodeGenesisAny, (&Genesis{Founder: Member{Peer: []byte{1}, Name: strings.Repeat("n", 300)}, Nonce: make([]byte, 16)}).Marshal(), "field 2 (founder): decode member: field 2 (name) is 300 bytes", true},
		{"genesis nonce 15 bytes", decodeGenesisAny, (&Genesis{Founder: *testMember(), Nonce: make([]byte, 15)}).Marshal(), "field 4 (nonce) is 15 bytes, want at least 16", false},
		{"genesis nonce 17 bytes", decodeGenesisAny, (&Genesis{Founder: *testMember(), Nonce: make([]byte, 17)}).Marshal(), "field 4 (nonce) is 17 bytes, over the limit of 16", true},
		{"genesis name not UTF-8", decodeGenesisAny, (&Genesis{Name: "\xc3", Founder: *testMember(), Nonce: make([]byte, 16)}).Marshal(), "field 1 (name) is not valid UTF-8", false},

		// Roster op.
		{"roster kind 0", decodeRosterOpAny, (&RosterOp{}).Marshal(), "field 1 (kind) is 0, want 1 to 7", false},
		{"roster kind 8", decodeRosterOpAny, (&RosterOp{Kind: 8}).Marshal(), "field 1 (kind) is 8", false},
		{"roster policy key too long", decodeRosterOpAny, (&RosterOp{Kind: RosterPolicy, Key: strings.Repeat("k", 65)}).Marshal(), "field 7 (key) is 65 bytes", true},
		{"room op 4", decodeContentAny, (&Content{Kind: KindRoomOp, RoomOp: 4}).Marshal(), "field 7 (room_op) is 4", false},
		{"name op members unsorted", decodeContentAny, join(pick(fields(testNameOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(10, peer(0xb1)), bytesField(10, peer(0xa1))), "field 10 (members) element 1 is not above the one before", false},
		{"name op member twice", decodeContentAny, join(pick(fields(testNameOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(10, peer(0xa1)), bytesField(10, peer(0xa1))), "field 10 (members) element 1 is not above the one before", false},
		{"name op member empty", decodeContentAny, join(pick(fields(testNameOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(10, nil)), "field 10 (members) is empty", false},
		{"name op member too long", decodeContentAny, join(pick(fields(testNameOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(10, make([]byte, MaxAuthorBytes+1))), "field 10 (members) is 65 bytes", true},
		{"name op 33 members", decodeContentAny, func() []byte {
			c := &Content{Kind: KindRoomOp}
			for i := range MaxRecipients + 1 {
				c.Members = append(c.Members, []byte{byte(i + 1)})
			}
			return c.Marshal()
		}(), "field 10 (members) has more than 32 elements", true},
		{"roster role 4", decodeRosterOpAny, (&RosterOp{Kind: RosterRole, Role: 4}).Marshal(), "field 3 (role) is 4, want 0 to 3", false},
		{"roster target too long", decodeRosterOpAny, (&RosterOp{Kind: RosterRemove, Target: make([]byte, 65)}).Marshal(), "field 4 (target) is 65 bytes", true},
		{"roster zero member spelled out", decodeRosterOpAny, join(varintField(1, 2), bytesField(2, (&Member{}).Marshal()), pick(fields(testRemoveOp().Marshal()), 2, 3, 4, 5, 6, 7, 8, 9, 10)), "field 2 (member): decode member: field 1 (peer) is empty", false},
		{"roster member out of order", decodeRosterOpAny, pick(fields(testRosterOp().Marshal()), 0, 2, 1, 3, 4, 5), "field 2 (member) out of order", false},
		{"roster target id 0 bytes", decodeRosterOpAny, join(pick(fields(testRemoveOp().Marshal()), 0, 1, 2, 3, 4), bytesField(6, nil)), "field 6 (target_id) is 0 bytes, want 32", false},

		// Key share.
		{"keyshare no recipients", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Recipients = nil; return k.Marshal() }(), "field 7 (recipients) missing", false},
		{"keyshare too many recipients", decodeKeyShareAny, func() []byte {
			k := testKeyShare()
			k.Recipients = nil
			for i := range MaxRecipients + 1 {
				k.Recipients = append(k.Recipients, []byte{byte(i)})
			}
			return k.Marshal()
		}(), "field 7 (recipients) has more than 32 elements", true},
		{"keyshare unsorted recipients", decodeKeyShareAny, func() []byte {
			k := testKeyShare()
			k.Recipients[0], k.Recipients[1] = k.Recipients[1], k.Recipients[0]
			return k.Marshal()
		}(), "field 7 (recipients) element 1 is not above the one before", false},
		{"keyshare duplicate recipient", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Recipients[2] = k.Recipients[1]; return k.Marshal() }(), "element 2 is not above the one before", false},
		{"keyshare unsorted disclosures", decodeKeyShareAny, func() []byte {
			k := testDisclosingShare()
			k.Disclosed[0], k.Disclosed[1] = k.Disclosed[1], k.Disclosed[0]
			return k.Marshal()
		}(), "field 9 (disclosed) element 1 is not above the one before", false},
		{"keyshare duplicate disclosure", decodeKeyShareAny, func() []byte {
			k := testDisclosingShare()
			k.Disclosed[1] = k.Disclosed[0]
			return k.Marshal()
		}(), "field 9 (disclosed) element 1 is not above the one before", false},
		{"keyshare short disclosure", decodeKeyShareAny, append(testKeyShare().Marshal(), 0x4a, 0x02, 0x01, 0x02), "field 9 (disclosed) is 2 bytes, want at least 48", false},
		{"keyshare too many disclosures", decodeKeyShareAny, func() []byte {
			k := testKeyShare()
			for i := range MaxDisclosed + 1 {
				var d Disclosure
				d.Envelope[0], d.Envelope[1] = byte(i>>8), byte(i)
				k.Disclosed = append(k.Disclosed, d)
			}
			return k.Marshal()
		}(), "field 9 (disclosed) has more than 4096 elements", true},
		{"keyshare unsorted all recipients", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients[2], k.AllRecipients[3] = k.AllRecipients[3], k.AllRecipients[2]
			return k.Marshal()
		}(), "field 10 (all_recipients) element 3 is not above the one before", false},
		{"keyshare duplicate all recipient", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients[3] = k.AllRecipients[2]
			return k.Marshal()
		}(), "field 10 (all_recipients) element 3 is not above the one before", false},
		{"keyshare all recipients lack one", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients = append(k.AllRecipients[:3:3], peer(0xb0), peer(0xb2)) // 0xb1 is a recipient
			return k.Marshal()
		}(), "field 10 (all_recipients) lacks field 7 (recipients) element 2", false},
		{"keyshare all recipients lack the first", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients[0] = peer(0xa0)
			return k.Marshal()
		}(), "field 10 (all_recipients) lacks field 7 (recipients) element 0", false},
		{"keyshare all recipients add nobody", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients = append([][]byte(nil), k.Recipients...)
			return k.Marshal()
		}(), "field 10 (all_recipients) has 3 elements, not more than field 7 (recipients)", false},
		{"keyshare all recipients fewer", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients = [][]byte{peer(0xa1)}
			return k.Marshal()
		}(), "field 10 (all_recipients) has 1 elements, not more than field 7 (recipients)", false},
		{"keyshare too many all recipients", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients = nil
			for i := range MaxKeyRecipients + 1 {
				k.AllRecipients = append(k.AllRecipients, []byte{byte(i >> 8), byte(i)})
			}
			return k.Marshal()
		}(), "field 10 (all_recipients) has more than 4096 elements", true},
		{"keyshare empty all recipient", decodeKeyShareAny, func() []byte { k := testChunkedShare(); k.AllRecipients[0] = nil; return k.Marshal() }(), "field 10 (all_recipients) is empty", false},
		{"keyshare all recipient too long", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.AllRecipients[4] = make([]byte, 65)
			k.AllRecipients[4][0] = 0xff
			return k.Marshal()
		}(), "field 10 (all_recipients) is 65 bytes", true},
		{"keyshare all recipients before disclosures", decodeKeyShareAny, func() []byte {
			k := testChunkedShare()
			k.Disclosed = testDisclosingShare().Disclosed
			f := fields(k.Marshal()) // 8 fields, 3 recipients, 2 disclosures, 5 all recipients
			return join(pick(f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), pick(f, 12, 13, 14, 15, 16), pick(f, 10, 11))
		}(), "field 9 (disclosed) out of order", false},
		{"keyshare all recipients split", decodeKeyShareAny, func() []byte {
			f := fields(testChunkedShare().Marshal())
			return join(pick(f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), bytesField(8, make([]byte, 32)), pick(f, 12, 13, 14))
		}(), "field 8 (key) out of order", false},
		{"keyshare empty recipient", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Recipients[0] = nil; return k.Marshal() }(), "field 7 (recipients) is empty", false},
		{"keyshare recipient too long", decodeKeyShareAny, func() []byte {
			k := testKeyShare()
			k.Recipients[2] = make([]byte, 65)
			k.Recipients[2][0] = 0xff
			return k.Marshal()
		}(), "field 7 (recipients) is 65 bytes", true},
		{"keyshare recipients split", decodeKeyShareAny, func() []byte { f := fields(testKeyShare().Marshal()); return pick(f, 0, 1, 2, 3, 4, 5, 6, 7, 9, 8) }(), "field 7 (recipients) out of order", false},
		{"keyshare recipients before cause", decodeKeyShareAny, func() []byte { f := fields(testKeyShare().Marshal()); return pick(f, 0, 1, 2, 3, 4, 6, 5, 7, 8, 9) }(), "field 6 (cause) out of order", false},
		{"keyshare epoch 0", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Epoch = 0; return k.Marshal() }(), "field 4 (epoch) is 0", false},
		{"keyshare parent at epoch 1", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Epoch = 1; return k.Marshal() }(), "field 5 (parent) is not zero at epoch 1", false},
		{"keyshare no parent at epoch 2", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Parent = ID{}; return k.Marshal() }(), "field 5 (parent) is zero at epoch 2", false},
		{"keyshare zero key", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Key = [32]byte{}; return k.Marshal() }(), "field 8 (key) is zero", false},
		{"keyshare short key", decodeKeyShareAny, join(pick(fields(testKeyShare().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(8, make([]byte, 16))), "field 8 (key) is 16 bytes, want 32", false},
		{"keyshare zero room", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Room = ID{}; return k.Marshal() }(), "field 2 (room) is zero", false},
		{"keyshare room kind 0", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.RoomKind = 0; return k.Marshal() }(), "field 3 (room_kind) is 0, want 1 to 2", false},
		{"keyshare cause 4", decodeKeyShareAny, func() []byte { k := testKeyShare(); k.Cause = 4; return k.Marshal() }(), "field 6 (cause) is 4, want 1 to 3", false},

		// Vector.
		{"vector unsorted", decodeVectorAny, func() []byte {
			v := testVector()
			v.Entries[0], v.Entries[1] = v.Entries[1], v.Entries[0]
			return v.Marshal()
		}(), "field 1 (entries) element 1 is not above the one before", false},
		{"vector duplicate author", decodeVectorAny, func() []byte { v := testVector(); v.Entries[1].Author = v.Entries[0].Author; return v.Marshal() }(), "element 1 is not above", false},
		{"vector seq 0", decodeVectorAny, func() []byte { v := testVector(); v.Entries[2].Seq = 0; return v.Marshal() }(), "decode vector: field 1 (entries): decode vector entry: field 2 (seq) is 0", false},
		{"vector empty author", decodeVectorAny, func() []byte { v := testVector(); v.Entries[0].Author = nil; return v.Marshal() }(), "decode vector entry: field 1 (author) is empty", false},
		{"vector empty entry", decodeVectorAny, bytesField(1, nil), "decode vector entry: field 1 (author) missing", false},
		{"vector entry trailing bytes", decodeVectorAny, bytesField(1, append((&VectorEntry{Author: []byte{1}, Seq: 1}).appendTo(nil), 0x20, 0x01)), "decode vector entry: unknown field 4", false},
		{"vector too many entries", decodeVectorAny, func() []byte {
			var v Vector
			for i := range MaxVectorAuthors + 1 {
				v.Entries = append(v.Entries, VectorEntry{Author: []byte{byte(i >> 8), byte(i)}, Seq: 1})
			}
			return v.Marshal()
		}(), "field 1 (entries) has more than 4096 elements", true},
		{"vector over MaxVectorBytes", decodeVectorAny, make([]byte, MaxVectorBytes+1), "decode vector: 524289 bytes", true},
		{"vector wrong wire type", decodeVectorAny, varintField(1, 1), "field 1 (entries) has wire type 0, want 2", false},
		{"vector unknown field", decodeVectorAny, join(testVector().Marshal(), varintField(2, 1)), "unknown field 2", false},

		// Batch.
		{"batch empty envelope", decodeBatchAny, join(bytesField(1, []byte{1}), bytesField(1, nil)), "field 1 (envelopes) is empty", false},
		{"batch envelope too long", decodeBatchAny, bytesField(1, make([]byte, MaxEnvelopeBytes+1)), "field 1 (envelopes) is 524289 bytes, over the limit of 524288", true},
		{"batch too many envelopes", decodeBatchAny, bytes.Repeat(bytesField(1, []byte{1}), MaxBatchEnvelopes+1), "field 1 (envelopes) has more than 256 elements", true},
		{"batch over MaxBatchBytes", decodeBatchAny, make([]byte, MaxBatchBytes+1), "decode batch: 4194305 bytes", true},
		{"batch unknown field", decodeBatchAny, join(bytesField(1, []byte{1}), bytesField(3, []byte{1})), "unknown field 3", false},
		{"batch tombstone before envelope", decodeBatchAny, join(bytesField(2, testTombstone().appendTo(nil)), bytesField(1, []byte{1})), "field 1 (envelopes) out of order", false},
		{"batch too many tombstones", decodeBatchAny, bytes.Repeat(bytesField(2, testTombstone().appendTo(nil)), MaxBatchTombstones+1), "field 2 (tombstones) has more than 4096 elements", true},
		{"tombstone seq 0", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Class: ClassContent}}}).Marshal(), "decode tombstone: field 2 (seq) is 0", false},
		{"tombstone prev at seq 1", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 1, Prev: fill(1), Class: ClassContent}}}).Marshal(), "field 4 (prev) is not zero at seq 1", false},
		{"tombstone zero prev", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 2, Class: ClassContent}}}).Marshal(), "field 4 (prev) is zero at seq 2", false},
		{"tombstone class 0", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 2, Prev: fill(1)}}}).Marshal(), "field 7 (class) is 0, want 1 to 3", false},
		{"tombstone lamport", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 2, Prev: fill(1), Lamport: MaxLamport + 1, Class: ClassContent}}}).Marshal(), "field 5 (lamport) is 9007199254740992", false},
		{"tombstone no author", decodeBatchAny, (&Batch{Tombstones: []Tombstone{{Seq: 2, Prev: fill(1), Class: ClassContent}}}).Marshal(), "field 1 (author) is empty", false},
		{"tombstone trailing field", decodeBatchAny, bytesField(2, append(testTombstone().appendTo(nil), 0x48, 0x01)), "decode tombstone: unknown field 9", false},
		{"batch non-minimal length", decodeBatchAny, []byte{0x0a, 0x81, 0x00, 0x01}, "field 1 (envelopes): non-minimal varint", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if err == nil {
				t.Fatal("decoded; want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if errors.Is(err, ErrTooLarge) != tt.tooLarge {
				t.Errorf("error %q: errors.Is(err, ErrTooLarge) = %v, want %v", err, !tt.tooLarge, tt.tooLarge)
			}
		})
	}
}

// TestRejectNonMinimalEverywhere rewrites every tag, length and varint of valid
// encodings one at a time into a longer form, and requires every result refused.
func TestRejectNonMinimalEverywhere(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"header", decodeHeaderAny, contentHeader().Marshal()},
		{"envelope", decodeEnvelopeAny, testEnvelope().Marshal()},
		{"content", decodeContentAny, testContent().Marshal()},
		{"genesis", decodeGenesisAny, testGenesis().Marshal()},
		{"roster op", decodeRosterOpAny, testRosterOp().Marshal()},
		{"keyshare", decodeKeyShareAny, testKeyShare().Marshal()},
		{"vector", decodeVectorAny, testVector().Marshal()},
		{"batch", decodeBatchAny, testBatch().Marshal()},
		{"batch with tombstones", decodeBatchAny, testBatchTombstones().Marshal()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(tt.in); err != nil {
				t.Fatalf("valid input: %v", err)
			}
			for _, at := range varintOffsets(tt.in) {
				v, n := protowire.ConsumeVarint(tt.in[at:])
				long := protowire.AppendVarint(nil, v)
				long[len(long)-1] |= 0x80
				long = append(long, 0x00)
				in := join(tt.in[:at], long, tt.in[at+n:])
				if err := tt.decode(in); !errors.Is(err, ErrMalformed) {
					t.Errorf("varint at offset %d spelled in %d bytes: err = %v", at, len(long), err)
				}
			}
		})
	}
}

// varintOffsets returns the offsets of every tag, length and varint value in a
// top-level encoding.
func varintOffsets(b []byte) []int {
	var out []int
	for at := 0; at < len(b); {
		out = append(out, at)
		_, typ, n := protowire.ConsumeTag(b[at:])
		at += n
		switch typ {
		case protowire.VarintType:
			out = append(out, at)
			_, n = protowire.ConsumeVarint(b[at:])
		case protowire.BytesType:
			out = append(out, at)
			_, n = protowire.ConsumeBytes(b[at:])
		default:
			panic("unexpected wire type")
		}
		at += n
	}
	return out
}
