package crypto

import (
	"encoding/hex"
	"testing"
)

// Golden values, computed independently with Python's hmac and hashlib, so a
// change of format cannot pass unnoticed.
func TestTokenDerivations(t *testing.T) {
	var tok [16]byte
	for i := range tok {
		tok[i] = byte(i)
	}
	var nk [32]byte
	for i := range nk {
		nk[i] = byte(i)
	}

	h := HashToken(tok)
	if got, want := hex.EncodeToString(h[:]), "6c4fb0f398bd7c9f55ec85b93c9205ff457a016a3e264d172146caf057727cf9"; got != want {
		t.Errorf("HashToken = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(TokenPSK(tok)), "5b234b5671451914adce8893b7760f8ded993cc605484de0d03725ed8fe76ce4"; got != want {
		t.Errorf("TokenPSK = %s, want %s", got, want)
	}
	tests := []struct {
		hour int64
		want string
	}{
		{491000, "153e687037927eda"},
		{-1, "d895893b82f2f0b4"},
	}
	for _, tt := range tests {
		if got := MDNSTag(nk, tt.hour); got != tt.want {
			t.Errorf("MDNSTag(hour %d) = %s, want %s", tt.hour, got, tt.want)
		}
	}
	if MDNSTag(nk, 491000) == MDNSTag(nk, 491001) {
		t.Error("MDNSTag is the same in two hours")
	}
	var nk2 [32]byte
	if MDNSTag(nk, 491000) == MDNSTag(nk2, 491000) {
		t.Error("MDNSTag is the same for two network keys")
	}
}

func TestRoomKeyIDGolden(t *testing.T) {
	var k RoomKey
	for i := range k {
		k[i] = byte(i)
	}
	if got, want := k.ID().String(), "a8d9d2284dad5ffcdfc8a7b674b7352f51e87b42c95c2dc0a058144e85cf8d73"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}
}

func TestNetworkPSK(t *testing.T) {
	var nk [32]byte
	nk[0], nk[31] = 1, 2
	psk := NetworkPSK(nk)
	if len(psk) != 32 || psk[0] != 1 || psk[31] != 2 {
		t.Fatalf("NetworkPSK = %x", []byte(psk))
	}
	psk[0] = 9
	if NetworkPSK(nk)[0] != 1 {
		t.Error("NetworkPSK shares memory between calls")
	}
}

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a == [16]byte{} {
		t.Error("NewToken is not random")
	}
	if HashToken(a) == HashToken(b) {
		t.Error("two tokens hash alike")
	}
}
