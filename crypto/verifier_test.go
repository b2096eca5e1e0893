package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"testing"

	"filippo.io/edwards25519"

	"github.com/charla-im/charla/wire"
)

// verifyOutcome is what a verify said, in the terms callers branch on.
func verifyOutcome(err error) string {
	switch {
	case err == nil:
		return "valid"
	case errors.Is(err, ErrBadSignature):
		return "bad signature: " + err.Error()
	default:
		return "error: " + err.Error()
	}
}

// TestVerifierAgrees checks Verifier.VerifyEnvelope against VerifyEnvelope on
// valid envelopes and on every kind of damage, with and without its tables.
func TestVerifierAgrees(t *testing.T) {
	ids := []*Identity{newTestIdentity(t), newTestIdentity(t)}
	ws := wire.ID{1}
	type tc struct {
		name string
		env  *wire.Envelope
		hdr  *wire.Header
	}
	var cases []tc
	for n, id := range ids {
		for seq := uint64(1); seq <= 3; seq++ {
			h := &wire.Header{Version: wire.Version, Workspace: ws, Author: []byte(id.PeerID()), Seq: seq,
				Lamport: seq, Time: 1, Class: wire.ClassContent, Room: wire.ID{2}, Key: wire.ID{3},
				Body: fmt.Appendf(nil, "body %d of %d", seq, n)}
			if seq > 1 {
				h.Prev = wire.ID{byte(seq)}
			}
			env, err := id.SealEnvelope(h)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("author %d seq %d", n, seq)
			cases = append(cases, tc{name + " valid", env, h})
			mod := func(what string, f func(e *wire.Envelope)) {
				e := &wire.Envelope{Signed: append([]byte(nil), env.Signed...), Sig: append([]byte(nil), env.Sig...)}
				f(e)
				cases = append(cases, tc{name + " " + what, e, h})
			}
			for _, i := range []int{0, 17, 31, 32, 47, 62, 63} {
				mod(fmt.Sprintf("sig byte %d flipped", i), func(e *wire.Envelope) { e.Sig[i] ^= 0x01 })
			}
			mod("top bits of S set", func(e *wire.Envelope) { e.Sig[63] |= 0xe0 })
			mod("S plus the group order", func(e *wire.Envelope) { addOrder(e.Sig[32:]) })
			mod("short sig", func(e *wire.Envelope) { e.Sig = e.Sig[:63] })
			mod("long sig", func(e *wire.Envelope) { e.Sig = append(e.Sig, 0) })
			mod("no sig", func(e *wire.Envelope) { e.Sig = nil })
			mod("signed bytes changed", func(e *wire.Envelope) { e.Signed[len(e.Signed)-1] ^= 0x80 })
			other := *h
			other.Author = []byte(ids[1-n].PeerID())
			cases = append(cases, tc{name + " under the other author", env, &other})
		}
	}
	bad := &wire.Header{Author: []byte("not a peer id")}
	cases = append(cases, tc{"malformed author", &wire.Envelope{Signed: []byte("x"), Sig: make([]byte, 64)}, bad})

	for _, tableAfter := range []int{1, 1 << 30} { // tables at once, and never
		v := NewVerifier()
		v.tableAfter = tableAfter
		for round := range 3 { // the first verify of an author learns its key
			for _, c := range cases {
				want := verifyOutcome(VerifyEnvelope(c.env, c.hdr))
				if got := verifyOutcome(v.VerifyEnvelope(c.env, c.hdr)); got != want {
					t.Errorf("tables after %d, round %d, %s: Verifier says %q, VerifyEnvelope %q", tableAfter, round, c.name, got, want)
				}
			}
		}
		if tableAfter == 1 && v.tables != len(ids) {
			t.Errorf("%d tables after verifying %d authors' envelopes, want %d", v.tables, len(ids), len(ids))
		}
	}
}

// addOrder adds the order of the base point to the little-endian 32-byte s:
// the same scalar, non-canonically encoded.
func addOrder(s []byte) {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		31: 0x10}
	c := 0
	for i := range s {
		v := int(s[i]) + int(l[i]) + c
		s[i], c = byte(v), v>>8
	}
}

// TestVerifierTableBounds checks that a Verifier keeps at most
// verifierMaxTables tables, dropping the least recently used.
func TestVerifierTableBounds(t *testing.T) {
	v := NewVerifier()
	v.tableAfter = 1
	n := verifierMaxTables + 3
	type signed struct {
		env *wire.Envelope
		hdr *wire.Header
	}
	var es []signed
	for range n {
		id := newTestIdentity(t)
		h := &wire.Header{Version: wire.Version, Workspace: wire.ID{1}, Author: []byte(id.PeerID()), Seq: 1,
			Lamport: 1, Class: wire.ClassRoster, Body: []byte("op")}
		env, err := id.SealEnvelope(h)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, signed{env, h})
	}
	for _, e := range es {
		if err := v.VerifyEnvelope(e.env, e.hdr); err != nil {
			t.Fatal(err)
		}
	}
	if v.tables != verifierMaxTables {
		t.Fatalf("%d tables, want %d", v.tables, verifierMaxTables)
	}
	for i, e := range es {
		held := v.keys[string(e.hdr.Author)].table != nil
		if want := i >= n-verifierMaxTables; held != want {
			t.Errorf("author %d (of %d, verified in order) holds a table: %v, want %v", i, n, held, want)
		}
	}
}

// TestVerifyWithTableTorsion signs with keys and nonces that have a
// small-order component, which honest signers never make: the equation then
// holds only for some messages, and the table verify must take exactly the
// signatures crypto/ed25519 takes.
func TestVerifyWithTableTorsion(t *testing.T) {
	torsion := orderEightPoint(t)
	accepted := 0
	for i := range 400 {
		a := randomScalar(t)
		pubPoint := new(edwards25519.Point).ScalarBaseMult(a)
		if i%2 == 0 {
			pubPoint.Add(pubPoint, torsion) // A = aB + T
		}
		pub := pubPoint.Bytes()
		r := randomScalar(t)
		rPoint := new(edwards25519.Point).ScalarBaseMult(r)
		if i%4 < 2 {
			rPoint.Add(rPoint, torsion) // R = rB + T
		}
		msg := fmt.Appendf(nil, "message %d", i)
		h := sha512.New()
		h.Write(rPoint.Bytes())
		h.Write(pub)
		h.Write([]byte(DomainEnvelope))
		h.Write(msg)
		k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		s := edwards25519.NewScalar().MultiplyAdd(k, a, r) // S = k·a + r
		sig := append(rPoint.Bytes(), s.Bytes()...)

		table, err := newPointTable(pub)
		if err != nil {
			t.Fatal(err)
		}
		want := ed25519.Verify(pub, domainMessage(DomainEnvelope, msg), sig)
		if got := verifyWithTable(table, pub, DomainEnvelope, msg, sig); got != want {
			t.Fatalf("case %d: table verify %v, crypto/ed25519 %v", i, got, want)
		}
		if want {
			accepted++
		}
	}
	// Honest keys and nonces (a quarter of the cases) always verify; with a
	// torsion component, about one in eight does.
	if accepted <= 100 || accepted >= 400 {
		t.Errorf("%d of 400 verified; the cases do not exercise both outcomes", accepted)
	}
}

// orderEightPoint returns a point of order 8: the small-order part of a
// random point, P − [1/8]([8]P).
func orderEightPoint(t *testing.T) *edwards25519.Point {
	var eight [32]byte
	eight[0] = 8
	s8, err := edwards25519.NewScalar().SetCanonicalBytes(eight[:])
	if err != nil {
		t.Fatal(err)
	}
	inv8 := edwards25519.NewScalar().Invert(s8)
	id := edwards25519.NewIdentityPoint()
	for range 1000 {
		var b [32]byte
		rand.Read(b[:])
		p, err := new(edwards25519.Point).SetBytes(b[:])
		if err != nil {
			continue
		}
		prime := new(edwards25519.Point).ScalarMult(inv8, new(edwards25519.Point).MultByCofactor(p))
		tp := new(edwards25519.Point).Subtract(p, prime)
		four := new(edwards25519.Point).Add(tp, tp)
		four.Add(four, four)
		if four.Equal(id) == 0 && new(edwards25519.Point).MultByCofactor(tp).Equal(id) == 1 {
			return tp
		}
	}
	t.Fatal("no point of order 8 found")
	return nil
}

func randomScalar(t *testing.T) *edwards25519.Scalar {
	var b [64]byte
	rand.Read(b[:])
	s, err := edwards25519.NewScalar().SetUniformBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzVerifyWithTable checks that the table verify takes exactly the
// signatures crypto/ed25519 takes, for any key, message and signature. The
// seed corpus in testdata/fuzz/FuzzVerifyWithTable holds valid signatures,
// one by a key with a small-order component, and damaged ones.
func FuzzVerifyWithTable(f *testing.F) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	msg := []byte("seed message")
	f.Add([]byte(pub), msg, ed25519.Sign(priv, domainMessage(DomainEnvelope, msg)))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519 panics; keys come from peer IDs, always 32 bytes
		}
		want := ed25519.Verify(pub, domainMessage(DomainEnvelope, msg), sig)
		table, err := newPointTable(pub)
		if err != nil {
			if want {
				t.Fatalf("crypto/ed25519 verified a signature by a key that is not a point")
			}
			return
		}
		if got := verifyWithTable(table, pub, DomainEnvelope, msg, sig); got != want {
			t.Fatalf("table verify %v, crypto/ed25519 %v", got, want)
		}
	})
}

// TestSignedDigits checks the base-64 digits on scalars with known digits.
func TestSignedDigits(t *testing.T) {
	for _, x := range []uint64{0, 1, 31, 32, 33, 63, 64, 2047, 1 << 40, 1<<63 + 12345} {
		var b [32]byte
		for i := range 8 {
			b[i] = byte(x >> (8 * i))
		}
		d := signedDigits(b[:])
		var sum, pow int64 = 0, 1 // wraps like uint64 arithmetic: enough to compare
		for _, v := range d[:12] {
			if v < -tableCols || v >= tableCols {
				t.Fatalf("%d: digit %d out of range", x, v)
			}
			sum += int64(v) * pow
			pow *= 64
		}
		if uint64(sum) != x {
			t.Errorf("digits of %d sum to %d", x, uint64(sum))
		}
	}
}

// BenchmarkVerifyEnvelope compares VerifyEnvelope with a Verifier that holds
// the author's table, on an envelope of ~1.3 KiB like a catch-up's.
func BenchmarkVerifyEnvelope(b *testing.B) {
	id := newTestIdentity(b)
	h := &wire.Header{Version: wire.Version, Workspace: wire.ID{1}, Author: []byte(id.PeerID()), Seq: 1,
		Lamport: 1, Class: wire.ClassContent, Room: wire.ID{2}, Key: wire.ID{3}, Body: make([]byte, 1300)}
	env, err := id.SealEnvelope(h)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if err := VerifyEnvelope(env, h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verifier-table", func(b *testing.B) {
		v := NewVerifier()
		v.tableAfter = 1
		for b.Loop() {
			if err := v.VerifyEnvelope(env, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
