package crypto

import (
	"bytes"
	"io"
	"testing"
)

// fuzzRoomKey is the key FuzzDecryptContent decrypts with; the seed corpus in
// testdata/fuzz/FuzzDecryptContent holds ciphertexts to it.
var fuzzRoomKey = RoomKey{0: 'c', 1: 'h', 2: 'a', 3: 'r', 4: 'l', 5: 'a', 31: 1}

// FuzzDecryptContent checks that no ciphertext makes DecryptContent panic or
// return more plaintext than it had ciphertext, and that it agrees with
// DecryptContentFrom, which decrypts through a different age reader.
func FuzzDecryptContent(f *testing.F) {
	ct, err := EncryptContent(fuzzRoomKey, []byte("hello, room"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
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
