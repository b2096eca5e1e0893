package crypto

import (
	"bytes"
	"io"
	"testing"

	"filippo.io/age"
)

// fuzzRoomKey is the key FuzzDecryptContent decrypts with; the seed corpus in
// testdata/fuzz/FuzzDecryptContent holds ciphertexts to it.
var fuzzRoomKey = RoomKey{0: 'c', 1: 'h', 2: 'a', 3: 'r', 4: 'l', 5: 'a', 31: 1}

// FuzzDecryptContent checks that no ciphertext makes DecryptContent panic or
// return more plaintext than it had ciphertext, and that it and
// DecryptContentFrom, which each open the payload themselves, agree with
// age's own streaming reader.
func FuzzDecryptContent(f *testing.F) {
	ct, err := EncryptContent(fuzzRoomKey, []byte("hello, room"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	// Payloads of several chunks: a full last chunk, a short one, an empty
	// plaintext, and each cut short or followed by a stray byte.
	for _, size := range []int{0, 64 << 10, 64<<10 + 1, 200 << 10} {
		ct, err := EncryptContent(fuzzRoomKey, bytes.Repeat([]byte{'x'}, size))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
		f.Add(ct[:len(ct)-1])
		f.Add(append(ct[:len(ct):len(ct)], 0))
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := DecryptContent(fuzzRoomKey, ct)
		if err != nil && pt != nil {
			t.Error("plaintext returned with an error")
		}
		if len(pt) > len(ct) {
			t.Errorf("%d bytes of plaintext from %d of ciphertext", len(pt), len(ct))
		}

		var streamed []byte
		r, serr := DecryptContentFrom(fuzzRoomKey, bytes.NewReader(ct))
		if serr == nil {
			streamed, serr = io.ReadAll(r)
		}
		if (err == nil) != (serr == nil) {
			t.Fatalf("DecryptContent: %v; DecryptContentFrom: %v", err, serr)
		}
		if err == nil && !bytes.Equal(pt, streamed) {
			t.Fatal("DecryptContent and DecryptContentFrom give different plaintexts")
		}

		var ref []byte
		ar, aerr := age.Decrypt(bytes.NewReader(ct), singleStanza{newRoomIdentity(fuzzRoomKey)})
		if aerr == nil {
			ref, aerr = io.ReadAll(ar)
		}
		if (err == nil) != (aerr == nil) {
			t.Fatalf("DecryptContent: %v; age: %v", err, aerr)
		}
		if err == nil && !bytes.Equal(pt, ref) {
			t.Fatal("DecryptContent and age give different plaintexts")
		}

		// A disclosed file key opens what the room key opens, the same.
		fk, ferr := ContentFileKey(fuzzRoomKey, ct)
		if ferr != nil {
			return
		}
		dpt, derr := DecryptContentWithFileKey(fk, ct)
		if (err == nil) != (derr == nil) {
			t.Fatalf("DecryptContent: %v; with the file key: %v", err, derr)
		}
		if err == nil && !bytes.Equal(pt, dpt) {
			t.Fatal("the file key gives another plaintext than the room key")
		}
	})
}
