package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/charla-im/charla/wire"
)

// Signature domains. Each signature charla makes covers one of these
// prefixes followed by the message (DESIGN.md "Identity and keys").
const (
	DomainEnvelope  = "charla/envelope/v1\x00"  // an envelope's encoded header
	DomainEphemeral = "charla/ephemeral/v1\x00" // presence, typing and read markers
	DomainJoin      = "charla/join/v1\x00"      // a join request
	DomainMember    = "charla/member/v1\x00"    // a self-signed member record
)

// ErrBadSignature is wrapped by the errors of Verify, VerifyEnvelope and
// VerifyMember when the signature does not match the author and message.
var ErrBadSignature = errors.New("bad signature")

// validDomain accepts only charla's own NUL-terminated prefixes, so that no
// caller can make an undomained signature, which could be replayed as a
// libp2p handshake or as another protocol's statement.
func validDomain(domain string) bool {
	return len(domain) > len("charla/\x00") && strings.HasPrefix(domain, "charla/") &&
		strings.IndexByte(domain, 0) == len(domain)-1
}

// Sign signs domain ‖ msg with the Ed25519 key. domain must be one of the
// Domain constants (or another "charla/…\x00" prefix).
func (id *Identity) Sign(domain string, msg []byte) ([]byte, error) {
	if !validDomain(domain) {
		return nil, fmt.Errorf("sign: invalid domain %q", domain)
	}
	sig, err := id.sign.Sign(domainMessage(domain, msg))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// Verify checks that sig is author's signature of domain ‖ msg. author must
// be an Ed25519 peer ID, whose identity multihash holds the public key. A
// signature that does not verify gives an error wrapping [ErrBadSignature];
// an author without an Ed25519 key gives another error.
func Verify(domain string, author peer.ID, msg, sig []byte) error {
	if !validDomain(domain) {
		return fmt.Errorf("verify: invalid domain %q", domain)
	}
	pk, err := ed25519Key(author)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	ok, err := pk.Verify(domainMessage(domain, msg), sig)
	if err != nil || !ok {
		return fmt.Errorf("verify signature by %s: %w", author, ErrBadSignature)
	}
	return nil
}

func domainMessage(domain string, msg []byte) []byte {
	b := make([]byte, 0, len(domain)+len(msg))
	b = append(b, domain...)
	return append(b, msg...)
}

func ed25519Key(author peer.ID) (p2pcrypto.PubKey, error) {
	pk, err := author.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("author %s: no embedded public key: %w", author, err)
	}
	if pk.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("author %s: %s key, want ed25519", author, pk.Type())
	}
	return pk, nil
}

// SealEnvelope signs h as its author and returns the envelope. h.Author must
// be this identity's peer ID; nothing in h is changed.
func (id *Identity) SealEnvelope(h *wire.Header) (*wire.Envelope, error) {
	if !bytes.Equal(h.Author, []byte(id.peer)) {
		return nil, errors.New("seal envelope: header author is not this identity")
	}
	signed := h.Marshal()
	sig, err := id.Sign(DomainEnvelope, signed)
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	return &wire.Envelope{Signed: signed, Sig: sig}, nil
}

// VerifyEnvelope checks e's signature by the author named in h, which must be
// the header decoded from e.Signed (as wire.DecodeEnvelope returns them). The
// signature covers e.Signed, so it holds for headers of later versions too,
// whose fields this code does not decode. A bad signature gives an error
// wrapping [ErrBadSignature].
func VerifyEnvelope(e *wire.Envelope, h *wire.Header) error {
	author, err := peer.IDFromBytes(h.Author)
	if err != nil {
		return fmt.Errorf("verify envelope: malformed author: %w", err)
	}
	if err := Verify(DomainEnvelope, author, e.Signed, e.Sig); err != nil {
		return fmt.Errorf("verify envelope: %w", err)
	}
	return nil
}

// MemberRecord returns this node's self-signed member record under name.
func (id *Identity) MemberRecord(name string) (wire.Member, error) {
	if len(name) > wire.MaxNameBytes {
		return wire.Member{}, fmt.Errorf("member record: name longer than %d bytes", wire.MaxNameBytes)
	}
	m := wire.Member{
		Peer:      []byte(id.peer),
		Name:      name,
		Recipient: id.Recipient(),
	}
	sig, err := id.Sign(DomainMember, m.SignedBytes())
	if err != nil {
		return wire.Member{}, fmt.Errorf("member record: %w", err)
	}
	m.Sig = sig
	return m, nil
}

// VerifyMember checks that m is signed by the peer it names and that its
// recipient is a hybrid post-quantum recipient. A bad signature gives an
// error wrapping [ErrBadSignature].
func VerifyMember(m *wire.Member) error {
	pid, err := peer.IDFromBytes(m.Peer)
	if err != nil {
		return fmt.Errorf("verify member: malformed peer id: %w", err)
	}
	if err := Verify(DomainMember, pid, m.SignedBytes(), m.Sig); err != nil {
		return fmt.Errorf("verify member: %w", err)
	}
	if _, err := ParseRecipient(m.Recipient); err != nil {
		return fmt.Errorf("verify member %s: %w", pid, err)
	}
	return nil
}

// hybridRecipientPrefix starts every Bech32 hybrid recipient.
const hybridRecipientPrefix = "age1pq1"

// ParseRecipient parses a hybrid post-quantum recipient ("age1pq1…"). Any
// other kind of age recipient, X25519 included, is refused: a key share sent
// to it would not stay confidential against a quantum adversary.
func ParseRecipient(s string) (age.Recipient, error) {
	if len(s) > wire.MaxRecipientBytes {
		return nil, fmt.Errorf("parse recipient: longer than %d bytes", wire.MaxRecipientBytes)
	}
	if !strings.HasPrefix(s, hybridRecipientPrefix) {
		// Quote only the start: enough to tell the kind, never a secret key
		// pasted by mistake.
		return nil, fmt.Errorf("parse recipient starting %.10q: not a hybrid post-quantum recipient (want %s…)", s, hybridRecipientPrefix)
	}
	r, err := age.ParseHybridRecipient(s)
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %w", err)
	}
	return r, nil
}
