package crypto

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"filippo.io/age"

	"github.com/charla-im/charla/wire"
)

// testMembers returns n identities, their recipients, and a key share to all
// of them with peer IDs sorted as wire requires.
func testMembers(t *testing.T, n int) ([]*Identity, []string, *wire.KeyShare) {
	t.Helper()
	ids := make([]*Identity, n)
	recipients := make([]string, n)
	peers := make([][]byte, n)
	for i := range ids {
		ids[i] = newTestIdentity(t)
		recipients[i] = ids[i].Recipient()
		peers[i] = []byte(ids[i].PeerID())
	}
	slices.SortFunc(peers, bytes.Compare)
	ks := &wire.KeyShare{
		Workspace:  wire.ID{1},
		Room:       wire.ID{2},
		RoomKind:   wire.RoomChannel,
		Epoch:      2,
		Parent:     wire.ID{3},
		Cause:      wire.CauseRotate,
		Recipients: peers,
		Key:        newTestRoomKey(t),
	}
	return ids, recipients, ks
}

func TestKeyShareSealOpen(t *testing.T) {
	for _, n := range []int{1, wire.MaxRecipients} {
		ids, recipients, ks := testMembers(t, n)
		body, err := SealKeyShare(ks, recipients)
		if err != nil {
			t.Fatalf("%d recipients: %v", n, err)
		}
		// Every member can open it; under -short only the first and last
		// stanza positions, which bound the cost of trying each one.
		open := ids
		if testing.Short() && n > 2 {
			open = []*Identity{ids[0], ids[n-1]}
		}
		for _, id := range open {
			got, err := id.OpenKeyShare(body)
			if err != nil {
				t.Fatalf("%d recipients: open: %v", n, err)
			}
			if !bytes.Equal(got.Marshal(), ks.Marshal()) {
				t.Fatalf("%d recipients: opened share differs", n)
			}
		}

		if _, err := newTestIdentity(t).OpenKeyShare(body); !errors.Is(err, ErrNotForUs) {
			t.Errorf("%d recipients: outsider: err = %v, want ErrNotForUs", n, err)
		}
	}
}

func TestSealKeyShareRefuses(t *testing.T) {
	_, recipients, ks := testMembers(t, 2)
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tooMany := make([]string, 0, wire.MaxRecipients+1)
	for range wire.MaxRecipients + 1 {
		tooMany = append(tooMany, newTestIdentity(t).Recipient())
	}
	tests := []struct {
		name       string
		recipients []string
	}{
		{"none", nil},
		{"33", tooMany},
		{"duplicate", []string{recipients[0], recipients[1], recipients[0]}},
		{"x25519", []string{recipients[0], x25519.Recipient().String()}},
		{"garbage", []string{"age1pq1nonsense"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SealKeyShare(ks, tt.recipients); err == nil {
				t.Error("SealKeyShare succeeded")
			}
		})
	}
}

func TestOpenKeyShareRefuses(t *testing.T) {
	me := newTestIdentity(t)
	_, recipients, ks := testMembers(t, 1)

	encrypt := func(t *testing.T, plaintext []byte, recipients ...string) []byte {
		t.Helper()
		var rs []age.Recipient
		for _, s := range recipients {
			r, err := ParseRecipient(s)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, rs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plaintext); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}

	t.Run("not listed", func(t *testing.T) {
		// Encrypted to me, but the share names only someone else.
		body := encrypt(t, ks.Marshal(), me.Recipient(), recipients[0])
		_, err := me.OpenKeyShare(body)
		if err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a not-listed error", err)
		}
	})
	t.Run("too many stanzas", func(t *testing.T) {
		rs := []string{me.Recipient()}
		for range wire.MaxRecipients {
			rs = append(rs, newTestIdentity(t).Recipient())
		}
		body := encrypt(t, ks.Marshal(), rs...)
		_, err := me.OpenKeyShare(body)
		if err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a too-many-stanzas error", err)
		}
	})
	t.Run("not a key share", func(t *testing.T) {
		body := encrypt(t, []byte("not a key share"), me.Recipient())
		if _, err := me.OpenKeyShare(body); err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a decode error", err)
		}
	})
	t.Run("not age", func(t *testing.T) {
		if _, err := me.OpenKeyShare([]byte("age-encryption.org/v1\n")); err == nil || errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want a parse error", err)
		}
	})
	t.Run("room content", func(t *testing.T) {
		ct, err := EncryptContent(newTestRoomKey(t), ks.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := me.OpenKeyShare(ct); !errors.Is(err, ErrNotForUs) {
			t.Errorf("err = %v, want ErrNotForUs", err)
		}
	})
}
