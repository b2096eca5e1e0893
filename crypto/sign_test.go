package crypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/charla-im/charla/wire"
)

var domains = []string{DomainEnvelope, DomainEphemeral, DomainJoin, DomainMember}

func TestSignVerifyDomains(t *testing.T) {
	id := newTestIdentity(t)
	msg := []byte("the same bytes under every domain")
	for _, signDomain := range domains {
		sig, err := id.Sign(signDomain, msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, verifyDomain := range domains {
			err := Verify(verifyDomain, id.PeerID(), msg, sig)
			if signDomain == verifyDomain && err != nil {
				t.Errorf("signed under %q, verify under the same: %v", signDomain, err)
			}
			if signDomain != verifyDomain && !errors.Is(err, ErrBadSignature) {
				t.Errorf("signed under %q, verify under %q: err = %v, want ErrBadSignature", signDomain, verifyDomain, err)
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	id := newTestIdentity(t)
	other := newTestIdentity(t)
	msg := []byte("message")
	sig, err := id.Sign(DomainJoin, msg)
	if err != nil {
		t.Fatal(err)
	}
	// A raw signature of the message with no domain, as a careless protocol
	// would make: it must not pass under any domain.
	undomained, err := id.PrivKey().Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sig)
	flipped[10] ^= 1

	tests := []struct {
		name   string
		author peer.ID
		msg    []byte
		sig    []byte
	}{
		{"other author", other.PeerID(), msg, sig},
		{"other message", id.PeerID(), []byte("massage"), sig},
		{"flipped signature bit", id.PeerID(), msg, flipped},
		{"truncated signature", id.PeerID(), msg, sig[:63]},
		{"empty signature", id.PeerID(), msg, nil},
		{"undomained signature", id.PeerID(), msg, undomained},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(DomainJoin, tt.author, tt.msg, tt.sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestVerifyNonEd25519Author(t *testing.T) {
	secp, _, err := p2pcrypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := secp.Sign(append([]byte(DomainJoin), "m"...))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(DomainJoin, secpID, []byte("m"), sig); err == nil || !strings.Contains(err.Error(), "want ed25519") {
		t.Errorf("secp256k1 author: err = %v, want a key type error", err)
	}
	// A hashed peer ID (as for RSA keys) carries no key at all.
	hashed, err := peer.Decode("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(DomainJoin, hashed, []byte("m"), sig); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("hashed author: err = %v, want a no-public-key error", err)
	}
}

func TestSignInvalidDomain(t *testing.T) {
	id := newTestIdentity(t)
	for _, d := range []string{"", "charla/", "charla/\x00", "charla/join/v1", "other/join/v1\x00", "charla/a\x00b\x00"} {
		if _, err := id.Sign(d, []byte("m")); err == nil {
			t.Errorf("Sign under domain %q succeeded", d)
		}
		if err := Verify(d, id.PeerID(), []byte("m"), make([]byte, 64)); err == nil || errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify under domain %q: err = %v, want an invalid domain error", d, err)
		}
	}
}

func testHeader(id *Identity) *wire.Header {
	return &wire.Header{
		Version:   wire.Version,
		Workspace: wire.ID{1, 2, 3},
		Author:    []byte(id.PeerID()),
		Seq:       7,
		Prev:      wire.ID{4, 5, 6},
		Lamport:   42,
		Time:      1767225600000,
		Class:     wire.ClassContent,
		Room:      wire.ID{7, 8, 9},
		Key:       wire.ID{10, 11, 12},
		Body:      []byte("an encrypted body would go here"),
	}
}

func TestSealVerifyEnvelope(t *testing.T) {
	id := newTestIdentity(t)
	h := testHeader(id)
	before := *h
	e, err := id.SealEnvelope(h)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != before.Seq || !bytes.Equal(h.Body, before.Body) || h.Lamport != before.Lamport {
		t.Error("SealEnvelope changed the header")
	}
	dec, err := wire.DecodeHeader(e.Signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEnvelope(e, dec); err != nil {
		t.Fatal(err)
	}

	t.Run("flipped signature byte", func(t *testing.T) {
		for i := range e.Sig {
			bad := &wire.Envelope{Signed: e.Signed, Sig: bytes.Clone(e.Sig)}
			bad.Sig[i] ^= 0x80
			if err := VerifyEnvelope(bad, dec); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("sig byte %d flipped: err = %v, want ErrBadSignature", i, err)
			}
		}
	})
	t.Run("flipped signed byte", func(t *testing.T) {
		for i := range e.Signed {
			bad := &wire.Envelope{Signed: bytes.Clone(e.Signed), Sig: e.Sig}
			bad.Signed[i] ^= 0x01
			bh, err := wire.DecodeHeader(bad.Signed)
			if err != nil {
				continue // the decoder caught it first
			}
			if err := VerifyEnvelope(bad, bh); err == nil {
				t.Fatalf("signed byte %d flipped: envelope verified", i)
			}
		}
	})
	t.Run("later version", func(t *testing.T) {
		// Envelopes of a later version are relayed uninterpreted, but their
		// authorship is still checked.
		later := testHeader(id)
		later.Version = wire.Version + 1
		e, err := id.SealEnvelope(later)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := wire.DecodeHeader(e.Signed)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyEnvelope(e, dec); err != nil {
			t.Fatal(err)
		}
		e.Signed[len(e.Signed)-1] ^= 1
		if err := VerifyEnvelope(e, dec); !errors.Is(err, ErrBadSignature) {
			t.Errorf("flipped body byte: err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("seal as another author", func(t *testing.T) {
		if _, err := newTestIdentity(t).SealEnvelope(h); err == nil {
			t.Error("sealed a header naming another author")
		}
	})
	t.Run("forged author", func(t *testing.T) {
		// Another node signs a header that names id as its author.
		mallory := newTestIdentity(t)
		sig, err := mallory.Sign(DomainEnvelope, e.Signed)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyEnvelope(&wire.Envelope{Signed: e.Signed, Sig: sig}, dec); !errors.Is(err, ErrBadSignature) {
			t.Errorf("err = %v, want ErrBadSignature", err)
		}
	})
}

func TestMemberRecord(t *testing.T) {
	id := newTestIdentity(t)
	m, err := id.MemberRecord("Ana")
	if err != nil {
		t.Fatal(err)
	}
	if peer.ID(m.Peer) != id.PeerID() || m.Name != "Ana" || m.Recipient != id.Recipient() {
		t.Fatalf("record = {%s %q %.20s…}, want this identity as Ana", peer.ID(m.Peer), m.Name, m.Recipient)
	}
	if err := VerifyMember(&m); err != nil {
		t.Fatal(err)
	}

	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other := newTestIdentity(t)
	tests := []struct {
		name    string
		edit    func(m *wire.Member)
		wantSig bool // the error must wrap ErrBadSignature
	}{
		{"renamed", func(m *wire.Member) { m.Name = "Mallory" }, true},
		{"other recipient", func(m *wire.Member) { m.Recipient = other.Recipient() }, true},
		{"other peer", func(m *wire.Member) { m.Peer = []byte(other.PeerID()) }, true},
		{"no signature", func(m *wire.Member) { m.Sig = nil }, true},
		{"signed under another domain", func(m *wire.Member) {
			m.Sig, _ = id.Sign(DomainEnvelope, m.SignedBytes())
		}, true},
		{"x25519 recipient, validly signed", func(m *wire.Member) {
			m.Recipient = x25519.Recipient().String()
			m.Sig, _ = id.Sign(DomainMember, m.SignedBytes())
		}, false},
		{"garbage peer", func(m *wire.Member) { m.Peer = []byte{0xff, 0xff} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := m
			bad.Peer = bytes.Clone(m.Peer)
			bad.Sig = bytes.Clone(m.Sig)
			tt.edit(&bad)
			err := VerifyMember(&bad)
			if err == nil {
				t.Fatal("VerifyMember succeeded")
			}
			if errors.Is(err, ErrBadSignature) != tt.wantSig {
				t.Errorf("err = %v, ErrBadSignature wanted: %v", err, tt.wantSig)
			}
		})
	}

	if _, err := id.MemberRecord(strings.Repeat("a", wire.MaxNameBytes+1)); err == nil {
		t.Error("MemberRecord accepted an over-long name")
	}
}

// flipLastChar changes the last character of a Bech32 string to another
// valid one, which breaks the checksum.
func flipLastChar(s string) string {
	if s[len(s)-1] == 'q' {
		return s[:len(s)-1] + "p"
	}
	return s[:len(s)-1] + "q"
}

func TestParseRecipient(t *testing.T) {
	id := newTestIdentity(t)
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	good := id.Recipient()
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hybrid", good, true},
		{"x25519", x25519.Recipient().String(), false},
		{"x25519 secret key", x25519.String(), false},
		{"hybrid secret key", id.age.String(), false},
		{"empty", "", false},
		{"bad checksum", flipLastChar(good), false},
		{"truncated", good[:len(good)-10], false},
		{"too long", good + strings.Repeat("q", wire.MaxRecipientBytes), false},
		{"ssh key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecipient(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if _, isHybrid := r.(*age.HybridRecipient); !isHybrid {
					t.Errorf("parsed as %T", r)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseRecipient succeeded")
			}
			if len(tt.in) > 30 && strings.Contains(err.Error(), tt.in[12:30]) && strings.HasPrefix(tt.in, "AGE-SECRET") {
				t.Errorf("error %q quotes the secret key", err)
			}
		})
	}
}
