package crypto

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
)

func newTestRoomKey(t testing.TB) RoomKey {
	t.Helper()
	k, err := NewRoomKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoomKeyID(t *testing.T) {
	var k RoomKey
	for i := range k {
		k[i] = byte(i)
	}
	want := sha256.Sum256(append([]byte("charla/room-key\x00"), k[:]...))
	if got := k.ID(); got != want {
		t.Errorf("ID = %s, want %x", got, want)
	}
	if k.ID() == sha256.Sum256(k[:]) {
		t.Error("ID is the undomained hash of the key")
	}
	a, b := newTestRoomKey(t), newTestRoomKey(t)
	if a == b || a.ID() == b.ID() {
		t.Error("two new room keys collide")
	}
}

func TestContentRoundTrip(t *testing.T) {
	k := newTestRoomKey(t)
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"1 KiB", 1 << 10},
		{"one chunk", 64 << 10},
		{"chunk and a byte", 64<<10 + 1},
		{"three chunks", 3 * 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := bytes.Repeat([]byte("charla "), tt.size/7+1)[:tt.size]
			ct, err := EncryptContent(k, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptContent(k, ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatal("plaintext differs")
			}

			// The streaming forms read and write the same format.
			var buf bytes.Buffer
			w, err := EncryptContentTo(k, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pt); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := DecryptContent(k, buf.Bytes()); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("DecryptContent of streamed ciphertext: err = %v", err)
			}
			r, err := DecryptContentFrom(k, bytes.NewReader(ct))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("DecryptContentFrom: err = %v", err)
			}
		})
	}
}

func TestContentOneSmallStanza(t *testing.T) {
	k := newTestRoomKey(t)
	ct, err := EncryptContent(k, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	var seen []*age.Stanza
	if _, err := age.Decrypt(bytes.NewReader(ct), recordStanzas{&seen}); err == nil {
		t.Fatal("recording identity decrypted")
	}
	if len(seen) != 1 || seen[0].Type != roomStanzaType || len(seen[0].Args) != 1 || len(seen[0].Body) != roomStanzaBodyBytes {
		t.Fatalf("stanzas = %+v, want one charla-room stanza", seen)
	}
	if len(ct) > 256 {
		t.Errorf("2-byte message encrypts to %d bytes, want a small overhead", len(ct))
	}
}

// recordStanzas is an identity that matches nothing and remembers the header.
type recordStanzas struct{ seen *[]*age.Stanza }

func (r recordStanzas) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	*r.seen = stanzas
	return nil, age.ErrIncorrectIdentity
}

func TestDecryptContentWrongKey(t *testing.T) {
	k := newTestRoomKey(t)
	ct, err := EncryptContent(k, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecryptContent(newTestRoomKey(t), ct)
	if !errors.Is(err, ErrNotForUs) {
		t.Errorf("wrong key: err = %v, want ErrNotForUs", err)
	}
	_, err = DecryptContentFrom(newTestRoomKey(t), bytes.NewReader(ct))
	if !errors.Is(err, ErrNotForUs) {
		t.Errorf("wrong key, streaming: err = %v, want ErrNotForUs", err)
	}

	// A key whose ID shares the hinted prefix still fails on the AEAD and
	// still counts as not ours.
	id := newRoomIdentity(newTestRoomKey(t))
	id.hint = roomKeyHint(k)
	if _, err := age.Decrypt(bytes.NewReader(ct), singleStanza{id}); !errors.As(err, new(*age.NoIdentityMatchError)) {
		t.Errorf("hint collision: err = %v, want no identity match", err)
	}
}

func TestDecryptContentStanzaCount(t *testing.T) {
	k := newTestRoomKey(t)
	encrypt := func(t *testing.T, rs ...age.Recipient) []byte {
		t.Helper()
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, rs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("two ways in")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}

	t.Run("two room stanzas", func(t *testing.T) {
		ct := encrypt(t, newRoomRecipient(k), newRoomRecipient(k))
		_, err := DecryptContent(k, ct)
		if err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a malformed-content error", err)
		}
	})
	t.Run("room and another room", func(t *testing.T) {
		ct := encrypt(t, newRoomRecipient(newTestRoomKey(t)), newRoomRecipient(k))
		if _, err := DecryptContent(k, ct); err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a malformed-content error", err)
		}
	})
	t.Run("hybrid only", func(t *testing.T) {
		ct := encrypt(t, newTestIdentity(t).age.Recipient())
		if _, err := DecryptContent(k, ct); !errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want ErrNotForUs", err)
		}
	})
}

// The room recipient reports the postquantum label, so age mixes it with
// hybrid recipients and refuses to mix it with classic ones.
func TestRoomRecipientLabels(t *testing.T) {
	k := newTestRoomKey(t)
	member := newTestIdentity(t)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, newRoomRecipient(k), member.age.Recipient())
	if err != nil {
		t.Fatalf("room + hybrid: %v", err)
	}
	if _, err := w.Write([]byte("both")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ct := buf.Bytes()
	for name, id := range map[string]age.Identity{"room": newRoomIdentity(k), "hybrid": member.AgeIdentity()} {
		r, err := age.Decrypt(bytes.NewReader(ct), id)
		if err != nil {
			t.Fatalf("decrypt with %s identity: %v", name, err)
		}
		if got, err := io.ReadAll(r); err != nil || string(got) != "both" {
			t.Fatalf("decrypt with %s identity: %q, %v", name, got, err)
		}
	}
	// Content must be the room stanza alone.
	if _, err := DecryptContent(k, ct); err == nil {
		t.Error("DecryptContent accepted room + hybrid stanzas")
	}

	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Encrypt(io.Discard, newRoomRecipient(k), x25519.Recipient()); err == nil {
		t.Error("age mixed the room recipient with an X25519 recipient")
	}
}

func TestDecryptContentMalformed(t *testing.T) {
	k := newTestRoomKey(t)
	ct, err := EncryptContent(k, bytes.Repeat([]byte{'x'}, 100))
	if err != nil {
		t.Fatal(err)
	}
	stanza := func(args []string, body []byte) []byte {
		t.Helper()
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, fixedStanza{&age.Stanza{Type: roomStanzaType, Args: args, Body: body}})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name string
		ct   []byte
	}{
		{"empty", nil},
		{"not age", []byte("hello, world")},
		{"header only", ct[:bytes.Index(ct, []byte("\n---"))]},
		{"truncated payload", ct[:len(ct)-1]},
		{"flipped payload byte", flipByte(ct, len(ct)-5)},
		{"flipped header MAC", flipByte(ct, bytes.Index(ct, []byte("\n---"))+6)},
		{"trailing data", append(bytes.Clone(ct), 0)},
		{"stanza without args", stanza(nil, make([]byte, roomStanzaBodyBytes))},
		{"stanza with two args", stanza([]string{roomKeyHint(k), "x"}, make([]byte, roomStanzaBodyBytes))},
		{"short stanza body", stanza([]string{roomKeyHint(k)}, make([]byte, roomStanzaBodyBytes-1))},
		{"forged stanza body", stanza([]string{roomKeyHint(k)}, make([]byte, roomStanzaBodyBytes))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecryptContent(k, tt.ct); err == nil {
				t.Fatal("DecryptContent succeeded")
			}
		})
	}
}

// fixedStanza is a recipient that writes a given stanza, to build malformed
// headers that still carry a valid MAC.
type fixedStanza struct{ s *age.Stanza }

func (f fixedStanza) Wrap([]byte) ([]*age.Stanza, error) { return []*age.Stanza{f.s}, nil }

func flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x01
	return b
}

func BenchmarkEncryptContent1KiB(b *testing.B) {
	k := newTestRoomKey(b)
	pt := make([]byte, 1<<10)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncryptContent(k, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptContent1KiB(b *testing.B) {
	k := newTestRoomKey(b)
	ct, err := EncryptContent(k, make([]byte, 1<<10))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecryptContent(k, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecryptContentRefusesAlteredPayload: DecryptContent opens the payload
// itself, so it must refuse every change to it that age refuses: a flipped
// byte in any chunk, a chunk dropped or added, bytes cut or appended.
func TestDecryptContentRefusesAlteredPayload(t *testing.T) {
	k := newTestRoomKey(t)
	pt := bytes.Repeat([]byte("x"), 2*64<<10+100) // three chunks, the last short
	ct, err := EncryptContent(k, pt)
	if err != nil {
		t.Fatal(err)
	}
	payload := ageHeaderLen(ct) + payloadNonceSize // first byte of the first chunk
	sealed := payloadSealed
	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name string
		ct   []byte
	}{
		{"nonce byte flipped", flip(payload - 1)},
		{"first chunk byte flipped", flip(payload + 10)},
		{"middle chunk tag flipped", flip(payload + 2*sealed - 1)},
		{"last chunk byte flipped", flip(len(ct) - 1)},
		{"last chunk dropped", ct[:payload+2*sealed]},
		{"cut inside the last chunk", ct[:len(ct)-1]},
		{"byte appended", append(bytes.Clone(ct), 0)},
		{"empty chunk appended", append(bytes.Clone(ct), make([]byte, 16)...)},
		{"no payload", ct[:payload-payloadNonceSize]},
		{"nonce only", ct[:payload]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecryptContent(k, tt.ct)
			if err == nil || got != nil {
				t.Errorf("DecryptContent = %d bytes, %v; want an error", len(got), err)
			}
			if _, aerr := age.Decrypt(bytes.NewReader(tt.ct), singleStanza{newRoomIdentity(k)}); aerr == nil {
				r, _ := age.Decrypt(bytes.NewReader(tt.ct), singleStanza{newRoomIdentity(k)})
				if _, aerr = io.ReadAll(r); aerr == nil {
					t.Error("age itself accepts this ciphertext: the case tests nothing")
				}
			}
		})
	}
	if got, err := DecryptContent(k, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("the unaltered ciphertext: %v", err)
	}
}

// TestDisclosedFileKey: the file key of one envelope opens that envelope,
// the same text as the room key gives, and not another envelope of the
// same room key; a changed file key fails the header's MAC.
func TestDisclosedFileKey(t *testing.T) {
	k, err := NewRoomKey()
	if err != nil {
		t.Fatal(err)
	}
	one, err := EncryptContent(k, []byte("ana added ben"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := EncryptContent(k, []byte("the secret plan"))
	if err != nil {
		t.Fatal(err)
	}
	fk, err := ContentFileKey(k, one)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecryptContentWithFileKey(fk, one)
	if err != nil || string(got) != "ana added ben" {
		t.Fatalf("disclosed key opens %q, %v", got, err)
	}
	if got, err := DecryptContentWithFileKey(fk, two); err == nil {
		t.Fatalf("one envelope's file key opened another: %q", got)
	}
	bad := fk
	bad[0] ^= 1
	if _, err := DecryptContentWithFileKey(bad, one); err == nil {
		t.Fatal("a changed file key opened the envelope")
	}
	other, _ := NewRoomKey()
	if _, err := ContentFileKey(other, one); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("file key with the wrong room key: %v, want ErrNotForUs", err)
	}
}
