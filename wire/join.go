package wire

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// Join bounds.
const (
	TokenBytes        = 16   // an invite's one-time token
	MaxInviteAddrs    = 16   // addresses of the issuer's join door in one code
	MaxAddrBytes      = 256  // one binary multiaddr
	MaxInviteCodeText = 1024 // the text form of a code
	MaxJoinEnvelopes  = 4096 // roster ops and key shares handed to a joiner
	MaxJoinBytes      = 8 << 20
)

// Invite is what an invite code carries: never the network key.
type Invite struct {
	Workspace ID
	Issuer    []byte   // binary peer ID of the issuer
	Addrs     [][]byte // binary multiaddrs of the issuer's join door
	Token     []byte   // TokenBytes random bytes
	Expires   int64    // unix milliseconds
}

var inviteFields = []string{1: "workspace", 2: "issuer", 3: "addrs", 4: "token", 5: "expires"}

// Marshal returns the canonical encoding of inv.
func (inv *Invite) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, inv.Workspace[:])
	b = appendBytes(b, 2, inv.Issuer)
	for _, a := range inv.Addrs {
		b = appendBytes(b, 3, a)
	}
	b = appendBytes(b, 4, inv.Token)
	return appendInt(b, 5, inv.Expires)
}

// DecodeInvite decodes the canonical encoding of an invite.
func DecodeInvite(b []byte) (*Invite, error) {
	d := newDecoder("invite", inviteFields, b)
	inv := new(Invite)
	inv.Workspace = d.id(1)
	inv.Issuer = d.bytes(2, 1, MaxAuthorBytes)
	for d.next(3) {
		if len(inv.Addrs) == MaxInviteAddrs {
			d.tooLargef("field 3 (addrs) has more than %d elements", MaxInviteAddrs)
			break
		}
		inv.Addrs = append(inv.Addrs, d.bytes(3, 1, MaxAddrBytes))
	}
	inv.Token = d.bytes(4, TokenBytes, TokenBytes)
	inv.Expires = d.sint64(5)
	if err := d.end(b, inv.Marshal); err != nil {
		return nil, err
	}
	return inv, nil
}

// invitePrefix starts every invite code, so a code is recognisable in a chat
// or an e-mail and a truncated copy is told apart from a forged one.
const invitePrefix = "charla-invite-"

var inviteEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Code returns the one-line text form of inv: the prefix, then base32 of the
// encoding followed by a 4-byte checksum.
func (inv *Invite) Code() string {
	b := inv.Marshal()
	sum := sha256.Sum256(b)
	return invitePrefix + strings.ToLower(inviteEncoding.EncodeToString(append(b, sum[:4]...)))
}

// ParseInviteCode parses the text form of an invite. A code that was changed
// or mistyped fails its checksum.
func ParseInviteCode(s string) (*Invite, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxInviteCodeText {
		return nil, tooLarge("invite code", len(s), MaxInviteCodeText)
	}
	if !strings.HasPrefix(s, invitePrefix) {
		return nil, &decodeError{msg: fmt.Sprintf("decode invite code: it does not start with %q", invitePrefix)}
	}
	b, err := inviteEncoding.DecodeString(strings.ToUpper(strings.TrimPrefix(s, invitePrefix)))
	if err != nil || len(b) < 4 {
		return nil, &decodeError{msg: "decode invite code: not valid base32; was it copied whole?"}
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	want := sha256.Sum256(body)
	if string(want[:4]) != string(sum) {
		return nil, &decodeError{msg: "decode invite code: checksum mismatch; the code was changed or mistyped"}
	}
	return DecodeInvite(body)
}

// JoinRequest is the joiner's first frame on the join door.
type JoinRequest struct {
	Token  []byte // the invite's token, proven once more inside the secured channel
	Member Member // the joiner's self-signed record
}

var joinRequestFields = []string{1: "token", 2: "member"}

// Marshal returns the canonical encoding of r.
func (r *JoinRequest) Marshal() []byte {
	b := appendBytes(nil, 1, r.Token)
	return appendMember(b, 2, &r.Member)
}

// DecodeJoinRequest decodes the canonical encoding of a join request.
func DecodeJoinRequest(b []byte) (*JoinRequest, error) {
	if len(b) > MaxJoinBytes {
		return nil, tooLarge("join request", len(b), MaxJoinBytes)
	}
	d := newDecoder("join request", joinRequestFields, b)
	r := new(JoinRequest)
	r.Token = d.bytes(1, TokenBytes, TokenBytes)
	r.Member = d.member(2, false)
	if err := d.end(b, r.Marshal); err != nil {
		return nil, err
	}
	return r, nil
}

// JoinStatus is the issuer's answer to a join request. The numbers go on the wire.
type JoinStatus uint8

const (
	JoinOK        JoinStatus = 1
	JoinExpired   JoinStatus = 2
	JoinUsed      JoinStatus = 3
	JoinRevoked   JoinStatus = 4
	JoinUnknown   JoinStatus = 5 // no such invite: forged
	JoinRateLimit JoinStatus = 6
	JoinRefused   JoinStatus = 7 // e.g. a removed peer ID, an invalid record
)

func (s JoinStatus) String() string {
	switch s {
	case JoinOK:
		return "ok"
	case JoinExpired:
		return "expired"
	case JoinUsed:
		return "already used"
	case JoinRevoked:
		return "revoked"
	case JoinUnknown:
		return "unknown invite"
	case JoinRateLimit:
		return "too many attempts"
	case JoinRefused:
		return "refused"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// JoinResponse hands a new member what it needs to start: the genesis, the
// network key, the roster ops and key shares so far, and where the issuer
// listens for members.
type JoinResponse struct {
	Status    JoinStatus
	Message   string
	Genesis   []byte
	NetKey    []byte   // 32 bytes when Status is JoinOK
	Envelopes [][]byte // encoded envelopes, roster ops first
	Addrs     [][]byte // binary multiaddrs of the issuer's node
}

var joinResponseFields = []string{1: "status", 2: "message", 3: "genesis", 4: "net_key", 5: "envelopes", 6: "addrs"}

// Marshal returns the canonical encoding of r.
func (r *JoinResponse) Marshal() []byte {
	b := appendUint(nil, 1, uint64(r.Status))
	b = appendString(b, 2, r.Message)
	b = appendBytes(b, 3, r.Genesis)
	b = appendBytes(b, 4, r.NetKey)
	for _, e := range r.Envelopes {
		b = appendBytes(b, 5, e)
	}
	for _, a := range r.Addrs {
		b = appendBytes(b, 6, a)
	}
	return b
}

// DecodeJoinResponse decodes the canonical encoding of a join response.
func DecodeJoinResponse(b []byte) (*JoinResponse, error) {
	if len(b) > MaxJoinBytes {
		return nil, tooLarge("join response", len(b), MaxJoinBytes)
	}
	d := newDecoder("join response", joinResponseFields, b)
	r := new(JoinResponse)
	r.Status = JoinStatus(d.enum(1, uint64(JoinOK), uint64(JoinRefused)))
	r.Message = d.text(2, MaxNameBytes)
	r.Genesis = d.bytes(3, 0, MaxBodyBytes)
	r.NetKey = d.bytes(4, 0, 32)
	for d.next(5) {
		if len(r.Envelopes) == MaxJoinEnvelopes {
			d.tooLargef("field 5 (envelopes) has more than %d elements", MaxJoinEnvelopes)
			break
		}
		r.Envelopes = append(r.Envelopes, d.bytes(5, 1, MaxEnvelopeBytes))
	}
	for d.next(6) {
		if len(r.Addrs) == MaxInviteAddrs {
			d.tooLargef("field 6 (addrs) has more than %d elements", MaxInviteAddrs)
			break
		}
		r.Addrs = append(r.Addrs, d.bytes(6, 1, MaxAddrBytes))
	}
	d.check(r.Status != JoinOK || (len(r.NetKey) == 32 && len(r.Genesis) > 0), "an ok response needs the genesis and a 32-byte network key")
	if err := d.end(b, r.Marshal); err != nil {
		return nil, err
	}
	return r, nil
}
