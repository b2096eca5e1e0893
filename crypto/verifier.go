package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"sync"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/charla-im/charla/wire"
)

// Bounds of a Verifier's memory: a table is 44 × 32 points of 160 bytes,
// ~225 KiB.
const (
	verifierTableAfter = 32   // signatures of one author before it gets a table
	verifierMaxTables  = 16   // authors with a table at once (~3.6 MiB)
	verifierMaxKeys    = 4096 // authors remembered at all; past it they are all forgotten
)

// Verifier checks envelope signatures exactly as VerifyEnvelope does — the
// same answer for every input, the same errors — and about twice as fast for
// an author it has seen often, as in a catch-up, where thousands of envelopes
// come from a few authors.
//
// Ed25519 verification checks R = [S]B − [k]A for the signature (R, S) and
// k = SHA-512(R ‖ A ‖ message). crypto/ed25519 computes [S]B − [k]A with
// one double-scalar multiplication, whose ~256 point doublings are most of
// a verify's ~90 µs. A Verifier keeps, for each author it has seen
// verifierTableAfter times, a table of multiples of the author's key A
// (j·64^i·A), and one such table of the base point B, so that both products
// are sums of ~43 table entries with no doubling. The comparison is the
// same as crypto/ed25519's: the encoding of the result, byte for byte,
// against R; S must be canonical and the key decodes with the same rules.
// So a signature one accepts the other accepts (tested against
// crypto/ed25519, torsion components and malformed inputs included), which
// batch verification could not promise: its cofactor handling accepts
// signatures that crypto/ed25519 refuses, or refuses them only at random,
// and nodes would disagree on what a malicious member's envelope is.
//
// Its methods are safe for concurrent use.
type Verifier struct {
	tableAfter int // signatures of an author before its table is built

	mu     sync.Mutex            // guards keys, tables and clock
	keys   map[string]*authorKey // by author (binary peer ID)
	tables int                   // keys holding a table
	clock  uint64                // counts verifies, for least recently used
}

// authorKey is what a Verifier remembers of one author.
type authorKey struct {
	author   string      // binary peer ID
	pub      []byte      // the Ed25519 public key, 32 bytes
	seen     int         // verifies since the last table was dropped
	used     uint64      // Verifier.clock at the last verify
	table    *pointTable // nil until seen reaches tableAfter
	building bool        // a table is being built outside the lock
	noTable  bool        // pub is not a point: no table, and no signature verifies
}

// NewVerifier returns a Verifier that remembers nothing yet.
func NewVerifier() *Verifier {
	return &Verifier{tableAfter: verifierTableAfter, keys: map[string]*authorKey{}}
}

// VerifyEnvelope is VerifyEnvelope(e, h), with the speed-up above.
func (v *Verifier) VerifyEnvelope(e *wire.Envelope, h *wire.Header) error {
	k, table, build := v.key(h.Author)
	if k == nil {
		// An author with no Ed25519 key, or a malformed one: the plain
		// function says what is wrong with it.
		return VerifyEnvelope(e, h)
	}
	if build {
		table = v.build(k)
	}
	var ok bool
	if table != nil {
		ok = verifyWithTable(table, k.pub, DomainEnvelope, e.Signed, e.Sig)
	} else {
		ok = ed25519.Verify(k.pub, domainMessage(DomainEnvelope, e.Signed), e.Sig)
	}
	if !ok {
		return fmt.Errorf("verify envelope: verify signature by %s: %w", peer.ID(h.Author), ErrBadSignature)
	}
	return nil
}

// key returns what v knows of author, learning its key if need be, and
// whether the caller is to build its table. It returns nil for an author
// whose key cannot be had, and remembers nothing of it.
func (v *Verifier) key(author []byte) (k *authorKey, table *pointTable, build bool) {
	v.mu.Lock()
	k, ok := v.keys[string(author)]
	v.mu.Unlock()
	if !ok {
		pub, err := authorPublicKey(author)
		if err != nil {
			return nil, nil, false
		}
		k = &authorKey{author: string(author), pub: pub}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !ok {
		if have, ok := v.keys[string(author)]; ok {
			k = have // learnt meanwhile by another goroutine
		} else {
			if len(v.keys) >= verifierMaxKeys {
				clear(v.keys)
				v.tables = 0
			}
			v.keys[string(author)] = k
		}
	}
	v.clock++
	k.used = v.clock
	k.seen++
	if k.table == nil && !k.building && !k.noTable && k.seen >= v.tableAfter {
		k.building = true
		return k, nil, true
	}
	return k, k.table, false
}

// build makes k's table, keeps it, and drops the least recently used other
// table when there are too many.
func (v *Verifier) build(k *authorKey) *pointTable {
	t, err := newPointTable(k.pub)
	v.mu.Lock()
	defer v.mu.Unlock()
	k.building = false
	if err != nil {
		k.noTable = true
		return nil // not a point: ed25519.Verify refuses it, as it must
	}
	if v.keys[k.author] != k {
		return t // forgotten meanwhile (too many authors): use it once
	}
	k.table = t
	v.tables++
	for v.tables > verifierMaxTables {
		var oldest *authorKey
		for _, o := range v.keys {
			if o.table != nil && o != k && (oldest == nil || o.used < oldest.used) {
				oldest = o
			}
		}
		if oldest == nil {
			break
		}
		oldest.table, oldest.seen = nil, 0
		v.tables--
	}
	return t
}

// authorPublicKey returns the Ed25519 public key of an author's peer ID.
func authorPublicKey(author []byte) ([]byte, error) {
	id, err := peer.IDFromBytes(author)
	if err != nil {
		return nil, err
	}
	pk, err := ed25519Key(id)
	if err != nil {
		return nil, err
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("author %s: not a %d-byte Ed25519 key", id, ed25519.PublicKeySize)
	}
	return raw, nil
}

// verifyWithTable is crypto/ed25519's Verify(pub, domain ‖ msg, sig), pure
// Ed25519, with [k]A taken from t, A's table, and [S]B from the base
// point's table. Every check is crypto/ed25519's, in its order.
func verifyWithTable(t *pointTable, pub []byte, domain string, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write([]byte(domain))
	h.Write(msg)
	var digest [sha512.Size]byte
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	r := baseTable().mul(s)
	r.Subtract(r, t.mul(k))
	return bytes.Equal(sig[:32], r.Bytes())
}

// A pointTable holds the multiples j·64^i·P of one point P, for
// i = 0 … tableRows−1 and j = 1 … 32, so that [x]P for a scalar x is the
// sum of one entry (or its negation) per signed base-64 digit of x. Only
// public values go through it: it is not constant-time.
type pointTable [tableRows][tableCols]edwards25519.Point

const (
	tableWindow = 6
	tableCols   = 1 << (tableWindow - 1)              // digits are in [−32, 32)
	tableRows   = (256+tableWindow-1)/tableWindow + 1 // the last row takes the final carry
)

// newPointTable returns the table of the point encoded as p.
func newPointTable(p []byte) (*pointTable, error) {
	base, err := new(edwards25519.Point).SetBytes(p)
	if err != nil {
		return nil, err
	}
	t := new(pointTable)
	for i := range tableRows {
		t[i][0].Set(base)
		for j := 1; j < tableCols; j++ {
			t[i][j].Add(&t[i][j-1], base)
		}
		for range tableWindow {
			base.Add(base, base)
		}
	}
	return t, nil
}

// baseTable is the table of the base point B, built once.
var baseTable = sync.OnceValue(func() *pointTable {
	t, err := newPointTable(edwards25519.NewGeneratorPoint().Bytes())
	if err != nil {
		panic("crypto: the base point does not decode: " + err.Error())
	}
	return t
})

// mul returns [x]P for t's point P.
func (t *pointTable) mul(x *edwards25519.Scalar) *edwards25519.Point {
	d := signedDigits(x.Bytes())
	acc := edwards25519.NewIdentityPoint()
	for i, v := range d {
		switch {
		case v > 0:
			acc.Add(acc, &t[i][v-1])
		case v < 0:
			acc.Subtract(acc, &t[i][-v-1])
		}
	}
	return acc
}

// signedDigits returns the digits d_i in [−32, 32) of the little-endian
// 256-bit number b, with b = Σ d_i·64^i.
func signedDigits(b []byte) [tableRows]int {
	var d [tableRows]int
	carry := 0
	for i := range tableRows {
		v := 0
		for k := range tableWindow {
			bit := i*tableWindow + k
			if bit < 256 && b[bit/8]>>(bit%8)&1 == 1 {
				v |= 1 << k
			}
		}
		v += carry
		carry = 0
		if v >= tableCols {
			v -= 1 << tableWindow
			carry = 1
		}
		d[i] = v
	}
	return d
}
