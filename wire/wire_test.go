package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// codec pairs an encoded value with the decoder for its type.
type codec struct {
	enc    []byte
	decode func([]byte) (any, error)
	want   any
}

func headerCodec(h *Header) codec {
	return codec{h.Marshal(), func(b []byte) (any, error) { return DecodeHeader(b) }, h}
}
func envelopeCodec(e *Envelope) codec {
	return codec{e.Marshal(), func(b []byte) (any, error) { e, _, err := DecodeEnvelope(b); return e, err }, e}
}
func contentCodec(c *Content) codec {
	return codec{c.Marshal(), func(b []byte) (any, error) { return DecodeContent(b) }, c}
}
func memberCodec(m *Member) codec {
	return codec{m.Marshal(), func(b []byte) (any, error) { return DecodeMember(b) }, m}
}
func genesisCodec(g *Genesis) codec {
	return codec{g.Marshal(), func(b []byte) (any, error) { return DecodeGenesis(b) }, g}
}
func rosterOpCodec(o *RosterOp) codec {
	return codec{o.Marshal(), func(b []byte) (any, error) { return DecodeRosterOp(b) }, o}
}
func keyShareCodec(k *KeyShare) codec {
	return codec{k.Marshal(), func(b []byte) (any, error) { return DecodeKeyShare(b) }, k}
}
func vectorCodec(v *Vector) codec {
	return codec{v.Marshal(), func(b []byte) (any, error) { return DecodeVector(b) }, v}
}
func batchCodec(b *Batch) codec {
	return codec{b.Marshal(), func(b []byte) (any, error) { return DecodeBatch(b) }, b}
}

func TestRoundTrip(t *testing.T) {
	maxHeader := contentHeader()
	maxHeader.Author = bytes.Repeat([]byte{0xff}, MaxAuthorBytes)
	maxHeader.Seq = 1<<64 - 1
	maxHeader.Lamport = MaxLamport
	maxHeader.Time = -1 << 63
	maxHeader.Body = bytes.Repeat([]byte{0xee}, MaxBodyBytes)

	fullKeyShare := testKeyShare()
	fullKeyShare.Epoch, fullKeyShare.Parent, fullKeyShare.Cause = 1, ID{}, CauseCreate
	fullKeyShare.RoomKind = RoomDirect
	fullKeyShare.Recipients = nil
	for i := range MaxRecipients {
		fullKeyShare.Recipients = append(fullKeyShare.Recipients, peer(byte(i)))
	}

	// A share of a rotation in the largest workspace: the most recipients of
	// one key at the longest peer IDs, with the most disclosures, is within
	// MaxBodyBytes.
	fullChunked := testKeyShare()
	for i := range MaxDisclosed {
		var d Disclosure
		d.Envelope[0], d.Envelope[1] = byte(i>>8), byte(i)
		fullChunked.Disclosed = append(fullChunked.Disclosed, d)
	}
	fullChunked.Recipients = nil
	for i := range MaxKeyRecipients {
		p := bytes.Repeat([]byte{0xff}, MaxAuthorBytes)
		p[0], p[1] = byte(i>>8), byte(i)
		if i < MaxRecipients {
			fullChunked.Recipients = append(fullChunked.Recipients, p)
		}
		fullChunked.AllRecipients = append(fullChunked.AllRecipients, p)
	}

	tests := []struct {
		name string
		codec
	}{
		{"header content", headerCodec(contentHeader())},
		{"header roster seq 1", headerCodec(rosterHeader())},
		{"header keyshare", headerCodec(keyShareHeader())},
		{"header at every bound", headerCodec(maxHeader)},
		{"header empty body", headerCodec(&Header{Version: 1, Workspace: fill(1), Author: []byte{1}, Seq: 1, Class: ClassRoster})},
		{"envelope", envelopeCodec(testEnvelope())},
		{"envelope without sig", envelopeCodec(&Envelope{Signed: rosterHeader().Marshal()})},
		{"content text", contentCodec(testContent())},
		{"content file", contentCodec(&Content{Kind: KindFile, Text: `{"name":"contrato.pdf"}`})},
		{"content edit", contentCodec(&Content{Kind: KindEdit, Text: "fixed", Target: fill(9)})},
		{"content delete", contentCodec(&Content{Kind: KindDelete, Target: fill(9)})},
		{"content reaction", contentCodec(&Content{Kind: KindReaction, Text: "👍", Target: fill(9)})},
		{"content room op", contentCodec(&Content{Kind: KindRoomOp, RoomName: "general", RoomKind: RoomChannel})},
		{"content longest text", contentCodec(&Content{Kind: KindText, Text: strings.Repeat("a", MaxTextBytes)})},
		{"member", memberCodec(testMember())},
		{"member unsigned, no name", memberCodec(&Member{Peer: peer(1), Recipient: "age1pq1x"})},
		{"genesis", genesisCodec(testGenesis())},
		{"genesis negative time", genesisCodec(&Genesis{Founder: Member{Peer: []byte{1}}, Created: -5, Nonce: make([]byte, 16)})},
		{"roster admit", rosterOpCodec(testRosterOp())},
		{"roster remove", rosterOpCodec(testRemoveOp())},
		{"roster role", rosterOpCodec(&RosterOp{Kind: RosterRole, Role: RoleOwner, Target: peer(3)})},
		{"keyshare", keyShareCodec(testKeyShare())},
		{"keyshare max recipients", keyShareCodec(fullKeyShare)},
		{"keyshare chunked", keyShareCodec(testChunkedShare())},
		{"keyshare chunked at every bound", keyShareCodec(fullChunked)},
		{"vector", vectorCodec(testVector())},
		{"vector empty", vectorCodec(&Vector{})},
		{"batch", batchCodec(testBatch())},
		{"batch empty", batchCodec(&Batch{})},
		{"batch with tombstones", batchCodec(testBatchTombstones())},
		{"batch of tombstones only", batchCodec(&Batch{Tombstones: []Tombstone{*testTombstone()}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decode(tt.enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %+v\nwant %+v", got, tt.want)
			}
			again := reflect.ValueOf(got).MethodByName("Marshal").Call(nil)[0].Bytes()
			if !bytes.Equal(again, tt.enc) {
				t.Errorf("re-encoding differs:\n got %x\nwant %x", again, tt.enc)
			}
		})
	}
}

func TestDecodeEnvelopeHeader(t *testing.T) {
	e := testEnvelope()
	_, h, err := DecodeEnvelope(e.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, contentHeader()) {
		t.Errorf("header = %+v, want %+v", h, contentHeader())
	}
	if got, want := e.ID(), ID(sha256.Sum256(e.Signed)); got != want {
		t.Errorf("ID = %v, want %v", got, want)
	}
}

func TestDecodeCopies(t *testing.T) {
	enc := testEnvelope().Marshal()
	e, h, err := DecodeEnvelope(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := contentHeader()
	for i := range enc {
		enc[i] = 0
	}
	if !reflect.DeepEqual(h, want) || !bytes.Equal(e.Signed, want.Marshal()) {
		t.Error("decoded envelope changed with its input")
	}
}

func TestMemberSignedBytes(t *testing.T) {
	m := testMember()
	signed := m.SignedBytes()
	if !bytes.HasPrefix(m.Marshal(), signed) {
		t.Error("Marshal does not start with SignedBytes")
	}
	other := *m
	other.Sig = nil
	if !bytes.Equal(other.SignedBytes(), signed) {
		t.Error("SignedBytes depends on Sig")
	}
	other.Name = "Eve"
	if bytes.Equal(other.SignedBytes(), signed) {
		t.Error("SignedBytes does not cover Name")
	}
}

func TestGenesisID(t *testing.T) {
	g := testGenesis()
	if got, want := g.ID(), ID(sha256.Sum256(g.Marshal())); got != want {
		t.Errorf("ID = %v, want %v", got, want)
	}
	other := *g
	other.Nonce = []byte("fedcba9876543210")
	if other.ID() == g.ID() {
		t.Error("two nonces, one workspace ID")
	}
}

func TestFutureVersion(t *testing.T) {
	future := contentHeader()
	future.Version = 2
	stable := future.Marshal()[:len(future.appendStable(nil))]
	want := &Header{
		Version: 2, Workspace: future.Workspace, Author: future.Author,
		Seq: future.Seq, Prev: future.Prev, Lamport: future.Lamport,
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"version 2 with version 1 fields", future.Marshal()},
		{"only fields 1-6", stable},
		{"new fields of every wire type", join(stable,
			varintField(7, 1<<40),
			[]byte{0x45, 1, 2, 3, 4},             // field 8, fixed32
			[]byte{0x49, 1, 2, 3, 4, 5, 6, 7, 8}, // field 9, fixed64
			bytesField(12, []byte("a new thing")),
			[]byte{0xa3, 0x01, 0x08, 0x01, 0xa4, 0x01}, // field 20, a group
			varintField(1, 99),                         // numbers need not increase
		)},
		{"huge version", join(varintField(1, 1<<64-1), pick(fields(stable), 1, 2, 3, 4, 5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := DecodeHeader(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			w := *want
			w.Version = h.Version
			if !reflect.DeepEqual(h, &w) {
				t.Errorf("got %+v\nwant %+v", h, &w)
			}
			e := &Envelope{Signed: tt.in, Sig: make([]byte, 64)}
			got, eh, err := DecodeEnvelope(e.Marshal())
			if err != nil {
				t.Fatalf("envelope: %v", err)
			}
			if !reflect.DeepEqual(got, e) || !reflect.DeepEqual(eh, h) {
				t.Error("envelope of a future version does not round-trip")
			}
		})
	}
}

func TestBatchAdd(t *testing.T) {
	small := bytes.Repeat([]byte{1}, 100)
	big := bytes.Repeat([]byte{2}, MaxEnvelopeBytes)
	tests := []struct {
		name  string
		env   []byte
		count int // how many fit in an empty batch
	}{
		{"small envelopes stop at MaxBatchEnvelopes", small, MaxBatchEnvelopes},
		{"largest envelopes stop at MaxBatchBytes", big, MaxBatchBytes / (MaxEnvelopeBytes + 4)},
		{"empty never fits", nil, 0},
		{"oversized never fits", make([]byte, MaxEnvelopeBytes+1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			for b.Add(tt.env) {
				if len(b.Envelopes) > MaxBatchEnvelopes {
					t.Fatal("Add never refuses")
				}
			}
			if len(b.Envelopes) != tt.count {
				t.Errorf("%d envelopes fit, want %d", len(b.Envelopes), tt.count)
			}
			enc := b.Marshal()
			if _, err := DecodeBatch(enc); err != nil {
				t.Errorf("a batch Add built does not decode: %v", err)
			}
			if tt.count > 0 && len(enc) > MaxBatchBytes {
				t.Errorf("batch is %d bytes", len(enc))
			}
		})
	}
}

func TestBatchAddTombstone(t *testing.T) {
	largest := Tombstone{Author: bytes.Repeat([]byte{0xff}, MaxAuthorBytes), Seq: 1<<64 - 1, ID: fill(0xff),
		Prev: fill(0xfe), Lamport: MaxLamport, Time: -1 << 63, Class: ClassContent, Room: fill(0xfd)}
	var b Batch
	for b.AddTombstone(largest) {
		if len(b.Tombstones) > MaxBatchTombstones {
			t.Fatal("AddTombstone never refuses")
		}
	}
	if len(b.Tombstones) != MaxBatchTombstones {
		t.Errorf("%d of the largest tombstones fit, want MaxBatchTombstones (%d)", len(b.Tombstones), MaxBatchTombstones)
	}
	enc := b.Marshal()
	if len(enc) != b.size() || len(enc) > MaxBatchBytes {
		t.Errorf("encoding is %d bytes, size() says %d, limit %d", len(enc), b.size(), MaxBatchBytes)
	}
	if _, err := DecodeBatch(enc); err != nil {
		t.Errorf("a batch AddTombstone built does not decode: %v", err)
	}
	if (&Batch{}).AddTombstone(Tombstone{Seq: 1}) {
		t.Error("a tombstone with no author fits")
	}
	// Envelopes and tombstones share MaxBatchBytes.
	var full Batch
	for full.Add(bytes.Repeat([]byte{2}, MaxEnvelopeBytes)) {
	}
	for full.AddTombstone(largest) {
	}
	if enc := full.Marshal(); len(enc) > MaxBatchBytes || len(full.Tombstones) == MaxBatchTombstones {
		t.Errorf("a full batch is %d bytes with %d tombstones", len(enc), len(full.Tombstones))
	}
}

// TestLargestVector checks that MaxVectorBytes holds MaxVectorAuthors entries of the
// largest size.
func TestLargestVector(t *testing.T) {
	var v Vector
	for i := range MaxVectorAuthors {
		a := bytes.Repeat([]byte{0xff}, MaxAuthorBytes)
		a[0], a[1] = byte(i>>8), byte(i)
		v.Entries = append(v.Entries, VectorEntry{Author: a, Seq: 1<<64 - 1, ID: fill(0xff)})
	}
	enc := v.Marshal()
	if len(enc) > MaxVectorBytes {
		t.Fatalf("largest vector is %d bytes, over MaxVectorBytes %d", len(enc), MaxVectorBytes)
	}
	if _, err := DecodeVector(enc); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsWrap(t *testing.T) {
	_, err := DecodeHeader([]byte{0x08})
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
		t.Errorf("truncated header: %v", err)
	}
	_, _, err = DecodeEnvelope(make([]byte, MaxEnvelopeBytes+1))
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized envelope: %v", err)
	}
	if !utf8.ValidString(err.Error()) || strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("message %q", err)
	}
}

// TestKeyShareHolders: a share written before all_recipients existed (the
// golden bytes) decodes with its recipients as everyone the key went to; a
// share of a rotation in several shares names them all.
func TestKeyShareHolders(t *testing.T) {
	for _, name := range []string{"keyshare", "keyshare_disclosed"} {
		text, err := os.ReadFile(filepath.Join("testdata", "golden", name+".hex"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := hex.DecodeString(strings.TrimSpace(string(text)))
		if err != nil {
			t.Fatal(err)
		}
		k, err := DecodeKeyShare(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.AllRecipients != nil || !reflect.DeepEqual(k.Holders(), k.Recipients) {
			t.Errorf("%s: holders %x, want its recipients %x", name, k.Holders(), k.Recipients)
		}
	}
	k, err := DecodeKeyShare(testChunkedShare().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if want := testChunkedShare().AllRecipients; !reflect.DeepEqual(k.Holders(), want) {
		t.Errorf("holders %x, want %x", k.Holders(), want)
	}
}

// TestKeyShareSeedsAsNamed: the key share's fuzz seeds named valid decode,
// and those named invalid do not, so the corpus covers both sides of each
// check of all_recipients.
func TestKeyShareSeedsAsNamed(t *testing.T) {
	for name, b := range fuzzSeeds()["FuzzDecodeKeyShare"] {
		_, err := DecodeKeyShare(b)
		if strings.HasPrefix(name, "valid") != (err == nil) {
			t.Errorf("seed %s: decode error %v", name, err)
		}
	}
}
