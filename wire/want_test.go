package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func wantIDs(n int) []ID {
	ids := make([]ID, n)
	for i := range ids {
		ids[i][0], ids[i][1], ids[i][31] = byte(i>>8), byte(i), 7
	}
	return ids
}

func TestWantRoundTrip(t *testing.T) {
	for _, n := range []int{1, 3, MaxWantIDs} {
		w := &Want{IDs: wantIDs(n)}
		got, err := DecodeWant(w.Marshal())
		if err != nil {
			t.Fatalf("%d IDs: %v", n, err)
		}
		if len(got.IDs) != n || got.IDs[n-1] != w.IDs[n-1] {
			t.Fatalf("%d IDs: got %d, last %x", n, len(got.IDs), got.IDs[len(got.IDs)-1])
		}
	}
}

func TestWantReject(t *testing.T) {
	two := wantIDs(2)
	tests := []struct {
		name     string
		in       []byte
		want     string
		tooLarge bool
	}{
		{"empty", nil, "field 1 (ids) missing", false},
		{"short ID", bytesField(1, two[0][:31]), "field 1 (ids) is 31 bytes, want 32", false},
		{"descending", join(bytesField(1, two[1][:]), bytesField(1, two[0][:])), "element 1 is not above the one before", false},
		{"repeated", join(bytesField(1, two[0][:]), bytesField(1, two[0][:])), "element 1 is not above the one before", false},
		{"unknown field", join(bytesField(1, two[0][:]), varintField(2, 1)), "unknown field 2", false},
		{"too many", (&Want{IDs: wantIDs(MaxWantIDs + 1)}).Marshal(), "over the limit of 34816", true},
		{"over the byte bound", bytes.Repeat([]byte{0}, MaxWantIDs*34+1), "want", true},
	}
	for _, tt := range tests {
		_, err := DecodeWant(tt.in)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not say %q", tt.name, err, tt.want)
		}
		if got := errors.Is(err, ErrTooLarge); got != tt.tooLarge {
			t.Errorf("%s: too large = %v, want %v (%v)", tt.name, got, tt.tooLarge, err)
		}
	}
}

func FuzzDecodeWant(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, err := DecodeWant(b); err == nil && !bytes.Equal(w.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, w.Marshal())
		}
	})
}
