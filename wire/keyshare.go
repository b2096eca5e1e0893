package wire

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

var keyShareFields = []string{
	1: "workspace", 2: "room", 3: "room_kind", 4: "epoch", 5: "parent", 6: "cause",
	7: "recipients", 8: "key",
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
	return appendBytes(b, 8, k.Key[:])
}

// DecodeKeyShare decodes the canonical encoding of a key share and checks its
// bounds: one to MaxRecipients recipients in strictly increasing byte order, epoch
// 1 exactly when there is no parent key, and a key that is not all zeros.
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
	if err := d.end(b, k.Marshal); err != nil {
		return nil, err
	}
	return k, nil
}
