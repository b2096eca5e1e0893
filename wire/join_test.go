package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testInvite() *Invite {
	return &Invite{
		Workspace: ID{1, 2, 3},
		Issuer:    bytes.Repeat([]byte{7}, 38),
		Addrs:     [][]byte{{4, 10, 0, 0, 1, 6, 0x12, 0x8b}},
		Token:     bytes.Repeat([]byte{9}, TokenBytes),
		Expires:   1790000000000,
	}
}

func TestInviteCode(t *testing.T) {
	inv := testInvite()
	code := inv.Code()
	got, err := ParseInviteCode("  " + code + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), inv.Marshal()) {
		t.Fatal("invite does not round-trip")
	}
	flipped := []byte(code)
	i := len(invitePrefix) + 5
	if flipped[i] == 'a' {
		flipped[i] = 'b'
	} else {
		flipped[i] = 'a'
	}
	tests := []struct {
		name, code, want string
	}{
		{"changed", string(flipped), "checksum"},
		{"truncated", code[:len(code)-3], ""},
		{"no prefix", strings.TrimPrefix(code, invitePrefix), "does not start"},
		{"not base32", invitePrefix + "!!!!", "base32"},
		{"huge", invitePrefix + strings.Repeat("a", MaxInviteCodeText), "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInviteCode(tt.code)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestJoinFrames(t *testing.T) {
	m := Member{Peer: bytes.Repeat([]byte{5}, 38), Name: "Ben", Recipient: "age1pq1x", Sig: bytes.Repeat([]byte{1}, 64)}
	req := &JoinRequest{Token: bytes.Repeat([]byte{9}, TokenBytes), Member: m}
	r2, err := DecodeJoinRequest(req.Marshal())
	if err != nil || r2.Member.Name != "Ben" {
		t.Fatalf("join request round trip: %v", err)
	}
	if _, err := DecodeJoinRequest((&JoinRequest{Token: []byte{1}, Member: m}).Marshal()); err == nil {
		t.Fatal("short token accepted")
	}
	resp := &JoinResponse{Status: JoinOK, Genesis: []byte{1}, NetKey: bytes.Repeat([]byte{3}, 32), Envelopes: [][]byte{{1, 2}}, Addrs: [][]byte{{4}}}
	r3, err := DecodeJoinResponse(resp.Marshal())
	if err != nil || len(r3.Envelopes) != 1 {
		t.Fatalf("join response round trip: %v", err)
	}
	bad := &JoinResponse{Status: JoinOK}
	if _, err := DecodeJoinResponse(bad.Marshal()); err == nil {
		t.Fatal("ok response without a network key accepted")
	}
	used := &JoinResponse{Status: JoinUsed, Message: "already used"}
	if r, err := DecodeJoinResponse(used.Marshal()); err != nil || r.Status != JoinUsed {
		t.Fatalf("used response: %v", err)
	}
}

func FuzzParseInviteCode(f *testing.F) {
	f.Add(testInvite().Code())
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInviteCode(s)
		if err != nil {
			return
		}
		if again, err := ParseInviteCode(inv.Code()); err != nil || !bytes.Equal(again.Marshal(), inv.Marshal()) {
			t.Fatalf("code does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeJoinRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeJoinRequest(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, r.Marshal())
		}
	})
}

func FuzzDecodeJoinResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeJoinResponse(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, r.Marshal())
		}
	})
}

func TestPresenceRoundTrip(t *testing.T) {
	p := &Presence{
		Workspace: ID{1}, Peer: bytes.Repeat([]byte{2}, 38), Time: 1790000000000, Digest: ID{3},
		Envelopes: 42, Heads: []VectorEntry{{Author: []byte{4}, Seq: 7, ID: ID{5}}}, State: StateOnline, Sig: bytes.Repeat([]byte{6}, 64),
	}
	got, err := DecodePresence(p.Marshal())
	if err != nil || got.Envelopes != 42 || len(got.Heads) != 1 || got.Heads[0].Seq != 7 {
		t.Fatalf("presence round trip: %+v, %v", got, err)
	}
	if _, err := DecodePresence(p.SignedBytes()); err == nil {
		t.Fatal("presence without signature accepted")
	}
	o, err := DecodeSyncOffer((&SyncOffer{Total: 10000}).Marshal())
	if err != nil || o.Total != 10000 {
		t.Fatalf("sync offer: %v", err)
	}
}

func FuzzDecodePresence(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := DecodePresence(b); err == nil && !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, p.Marshal())
		}
	})
}

func FuzzDecodeSyncOffer(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := DecodeSyncOffer(b); err == nil && !bytes.Equal(o.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, o.Marshal())
		}
	})
}

func FuzzDecodePeerExchange(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if x, err := DecodePeerExchange(b); err == nil && !bytes.Equal(x.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, x.Marshal())
		}
	})
}

func TestHeldRoundTrip(t *testing.T) {
	h := &Held{Entries: []HeldEntry{{Author: []byte{1}, Seqs: []uint64{4, 5, 9}}, {Author: []byte{2}, Seqs: []uint64{2}}}}
	got, err := DecodeHeld(h.Marshal())
	if err != nil || len(got.Entries) != 2 || got.Entries[0].Seqs[2] != 9 {
		t.Fatalf("held round trip: %+v, %v", got, err)
	}
	bad := &Held{Entries: []HeldEntry{{Author: []byte{1}, Seqs: []uint64{5, 4}}}}
	if _, err := DecodeHeld(bad.Marshal()); err == nil {
		t.Fatal("decreasing seqs accepted")
	}
	if got, err := DecodeHeld(nil); err != nil || len(got.Entries) != 0 {
		t.Fatalf("empty held: %v", err)
	}
}

func FuzzDecodeHeld(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeHeld(b); err == nil && !bytes.Equal(h.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, h.Marshal())
		}
	})
}
