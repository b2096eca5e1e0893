package wire

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

var keyShareFields = []string{
	1: "workspace", 2: "room", 3: "room_kind", 4: "epoch", 5: "parent", 6: "cause",
	7: "recipients", 8: "key", 9: "disclosed", 10: "all_recipients",
}

// Marshal returns the canonical encoding of k, the plaintext a key-share envelope
// encrypts. Recipients and AllRecipients must already be sorted.
func (k *KeyShare) Marshal() []byte {
	b := make([]byte, 0, 4*len(ID{})+(len(k.Recipients)+len(k.AllRecipients))*(MaxAuthorBytes+2)+len(k.Disclosed)*(len(ID{})+18)+32)
	b = appendBytes(b, 1, k.Workspace[:])
	b = appendBytes(b, 2, k.Room[:])
	b = appendUint(b, 3, uint64(k.RoomKind))
	b = appendUint(b, 4, k.Epoch)
	b = appendBytes(b, 5, k.Parent[:])
	b = appendUint(b, 6, uint64(k.Cause))
	for _, r := range k.Recipients {
		b = appendBytes(b, 7, r)
	}
	b = appendBytes(b, 8, k.Key[:])
	var d [len(ID{}) + 16]byte
	for _, x := range k.Disclosed {
		copy(d[:], x.Envelope[:])
		copy(d[len(ID{}):], x.FileKey[:])
		b = appendBytes(b, 9, d[:])
	}
	for _, r := range k.AllRecipients {
		b = appendBytes(b, 10, r)
	}
	return b
}

// DecodeKeyShare decodes the canonical encoding of a key share and checks its
// bounds: one to MaxRecipients recipients in strictly increasing byte order, epoch
// 1 exactly when there is no parent key, a key that is not all zeros, at
// most MaxDisclosed disclosures in strictly increasing envelope order, and
// either no AllRecipients or up to MaxKeyRecipients of them in strictly
// increasing byte order, more than Recipients and holding every one of them.
func DecodeKeyShare(b []byte) (*KeyShare, error) {
	if len(b) > MaxBodyBytes {
		return nil, tooLarge("key share", len(b), MaxBodyBytes)
	}
	d := newDecoder("key share", keyShareFields, b)
	k := new(KeyShare)
	k.Workspace = d.id(1)
	k.Room = d.id(2)
	d.check(!k.Room.IsZero(), "field 2 (room) is zero")
	k.RoomKind = RoomKind(d.enum(3, uint64(RoomChannel), uint64(RoomDirect)))
	k.Epoch = d.uvarint(4)
	d.check(k.Epoch >= 1, "field 4 (epoch) is 0")
	k.Parent = d.id(5)
	d.check(k.Epoch != 1 || k.Parent.IsZero(), "field 5 (parent) is not zero at epoch 1")
	d.check(k.Epoch == 1 || !k.Parent.IsZero(), "field 5 (parent) is zero at epoch %d", k.Epoch)
	k.Cause = KeyCause(d.enum(6, uint64(CauseCreate), uint64(CauseReshare)))
	k.Recipients = d.peers(7, MaxRecipients)
	if len(k.Recipients) == 0 {
		d.tag(7, protowire.BytesType) // fails, and says why field 7 is not next
	}
	key := d.id(8)
	d.check(!key.IsZero(), "field 8 (key) is zero")
	k.Key = key
	for d.next(9) {
		if len(k.Disclosed) == MaxDisclosed {
			d.tooLargef("field 9 (disclosed) has more than %d elements", MaxDisclosed)
			break
		}
		x := d.bytes(9, len(ID{})+16, len(ID{})+16)
		if d.err != nil {
			break
		}
		var dc Disclosure
		copy(dc.Envelope[:], x)
		copy(dc.FileKey[:], x[len(ID{}):])
		if n := len(k.Disclosed); n > 0 {
			d.check(bytes.Compare(k.Disclosed[n-1].Envelope[:], dc.Envelope[:]) < 0,
				"field 9 (disclosed) element %d is not above the one before", n)
		}
		k.Disclosed = append(k.Disclosed, dc)
	}
	k.AllRecipients = d.peers(10, MaxKeyRecipients)
	d.trailing() // a misplaced field is reported as such, not as a short list
	if len(k.AllRecipients) > 0 && d.err == nil {
		// Absent means "Recipients is everyone", so a list that adds nobody
		// would be a second encoding of the same share.
		d.check(len(k.AllRecipients) > len(k.Recipients),
			"field 10 (all_recipients) has %d elements, not more than field 7 (recipients)", len(k.AllRecipients))
		if i, ok := subsetSorted(k.Recipients, k.AllRecipients); !ok {
			d.failf("field 10 (all_recipients) lacks field 7 (recipients) element %d", i)
		}
	}
	if err := d.end(b, k.Marshal); err != nil {
		return nil, err
	}
	return k, nil
}

// subsetSorted reports whether every element of sub is in set, both in
// strictly increasing byte order, and if not the index of the first in sub
// that is missing.
func subsetSorted(sub, set [][]byte) (int, bool) {
	j := 0
	for i, x := range sub {
		for j < len(set) && bytes.Compare(set[j], x) < 0 {
			j++
		}
		if j == len(set) || !bytes.Equal(set[j], x) {
			return i, false
		}
		j++
	}
	return 0, true
}
