package wire

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

var keyShareFields = []string{
	1: "workspace", 2: "room", 3: "room_kind", 4: "epoch", 5: "parent", 6: "cause",
	7: "recipients", 8: "key", 9: "disclosed",
}

// Marshal returns the canonical encoding of k, the plaintext a key-share envelope
// encrypts. Recipients must already be sorted.
func (k *KeyShare) Marshal() []byte {
	b := make([]byte, 0, 4*len(ID{})+len(k.Recipients)*(MaxAuthorBytes+2)+32)
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
	return b
}

// DecodeKeyShare decodes the canonical encoding of a key share and checks its
// bounds: one to MaxRecipients recipients in strictly increasing byte order, epoch
// 1 exactly when there is no parent key, a key that is not all zeros, and at
// most MaxDisclosed disclosures in strictly increasing envelope order.
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
	for d.next(7) {
		if len(k.Recipients) == MaxRecipients {
			d.tooLargef("field 7 (recipients) has more than %d elements", MaxRecipients)
			break
		}
		r := d.bytes(7, 1, MaxAuthorBytes)
		if n := len(k.Recipients); n > 0 && d.err == nil {
			d.check(bytes.Compare(k.Recipients[n-1], r) < 0,
				"field 7 (recipients) element %d is not above the one before", n)
		}
		k.Recipients = append(k.Recipients, r)
	}
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
	if err := d.end(b, k.Marshal); err != nil {
		return nil, err
	}
	return k, nil
}
