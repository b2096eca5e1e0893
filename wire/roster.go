package wire

import (
	"crypto/sha256"

	"google.golang.org/protobuf/encoding/protowire"
)

var memberFields = []string{1: "peer", 2: "name", 3: "recipient", 4: "sig"}

// SignedBytes returns the canonical encoding of m without its signature: fields 1–3,
// the bytes m.Sig signs (after its domain prefix). Marshal's output starts with them.
func (m *Member) SignedBytes() []byte {
	b := make([]byte, 0, len(m.Peer)+len(m.Name)+len(m.Recipient)+len(m.Sig)+16)
	b = appendBytes(b, 1, m.Peer)
	b = appendString(b, 2, m.Name)
	return appendString(b, 3, m.Recipient)
}

// Marshal returns the canonical encoding of m, signature included.
func (m *Member) Marshal() []byte {
	return appendBytes(m.SignedBytes(), 4, m.Sig)
}

// DecodeMember decodes the canonical encoding of a member record and checks its
// bounds. It does not verify the signature.
func DecodeMember(b []byte) (*Member, error) {
	d := newDecoder("member", memberFields, b)
	m := new(Member)
	m.Peer = d.bytes(1, 1, MaxAuthorBytes)
	m.Name = d.text(2, MaxNameBytes)
	m.Recipient = d.text(3, MaxRecipientBytes)
	m.Sig = d.bytes(4, 0, MaxSigBytes)
	if err := d.end(b, m.Marshal); err != nil {
		return nil, err
	}
	return m, nil
}

// isZero reports whether m is the zero Member, which a roster op that admits nobody
// carries as an empty field.
func (m *Member) isZero() bool {
	return len(m.Peer) == 0 && m.Name == "" && m.Recipient == "" && len(m.Sig) == 0
}

// appendMember appends m as the nested message field n: empty when m is zero, so
// that the zero Member has one encoding (DecodeMember refuses an empty peer).
func appendMember(b []byte, n protowire.Number, m *Member) []byte {
	if m.isZero() {
		return appendBytes(b, n, nil)
	}
	return appendBytes(b, n, m.Marshal())
}

// member reads field n as a nested Member; empty is the zero Member, allowed only
// when optional.
func (d *decoder) member(n protowire.Number, optional bool) Member {
	v := d.raw(n)
	if d.err != nil {
		return Member{}
	}
	if len(v) == 0 {
		d.check(optional, "%s is empty", d.field(n))
		return Member{}
	}
	m, err := DecodeMember(v)
	if d.nested(n, err); d.err != nil {
		return Member{}
	}
	return *m
}

var genesisFields = []string{1: "name", 2: "founder", 3: "created", 4: "nonce"}

// Marshal returns the canonical encoding of g.
func (g *Genesis) Marshal() []byte {
	b := make([]byte, 0, len(g.Name)+len(g.Nonce)+256)
	b = appendString(b, 1, g.Name)
	b = appendMember(b, 2, &g.Founder)
	b = appendInt(b, 3, g.Created)
	return appendBytes(b, 4, g.Nonce)
}

// DecodeGenesis decodes the canonical encoding of a genesis record and checks its
// bounds. It does not verify the founder's signature.
func DecodeGenesis(b []byte) (*Genesis, error) {
	d := newDecoder("genesis", genesisFields, b)
	g := new(Genesis)
	g.Name = d.text(1, MaxNameBytes)
	g.Founder = d.member(2, false)
	g.Created = d.sint64(3)
	g.Nonce = d.bytes(4, GenesisNonceBytes, GenesisNonceBytes)
	if err := d.end(b, g.Marshal); err != nil {
		return nil, err
	}
	return g, nil
}

// ID returns the workspace ID that g founds: the SHA-256 of its encoding.
func (g *Genesis) ID() ID { return sha256.Sum256(g.Marshal()) }

var rosterOpFields = []string{1: "kind", 2: "member", 3: "role", 4: "target", 5: "target_seq", 6: "target_id",
	7: "key", 8: "value", 9: "room", 10: "invite", 11: "expires"}

// Marshal returns the canonical encoding of o, the body of a roster envelope.
func (o *RosterOp) Marshal() []byte {
	b := make([]byte, 0, len(o.Target)+len(o.Key)+len(o.Value)+3*len(ID{})+256)
	b = appendUint(b, 1, uint64(o.Kind))
	b = appendMember(b, 2, &o.Member)
	b = appendUint(b, 3, uint64(o.Role))
	b = appendBytes(b, 4, o.Target)
	b = appendUint(b, 5, o.TargetSeq)
	b = appendBytes(b, 6, o.TargetID[:])
	b = appendString(b, 7, o.Key)
	b = appendString(b, 8, o.Value)
	b = appendBytes(b, 9, o.Room[:])
	b = appendBytes(b, 10, o.Invite[:])
	return appendInt(b, 11, o.Expires)
}

// DecodeRosterOp decodes the canonical encoding of a roster op and checks its
// bounds. Whether the op's kind uses its fields, and whether its author may make
// it, is for the caller to judge.
func DecodeRosterOp(b []byte) (*RosterOp, error) {
	if len(b) > MaxBodyBytes {
		return nil, tooLarge("roster op", len(b), MaxBodyBytes)
	}
	d := newDecoder("roster op", rosterOpFields, b)
	o := new(RosterOp)
	o.Kind = RosterKind(d.enum(1, uint64(RosterAdmit), uint64(RosterProfile)))
	o.Member = d.member(2, true)
	o.Role = Role(d.enum(3, 0, uint64(RoleOwner)))
	o.Target = d.bytes(4, 0, MaxAuthorBytes)
	o.TargetSeq = d.uvarint(5)
	o.TargetID = d.id(6)
	o.Key = d.text(7, MaxPolicyKeyBytes)
	o.Value = d.text(8, MaxPolicyValBytes)
	o.Room = d.id(9)
	o.Invite = d.id(10)
	o.Expires = d.sint64(11)
	if err := d.end(b, o.Marshal); err != nil {
		return nil, err
	}
	return o, nil
}
