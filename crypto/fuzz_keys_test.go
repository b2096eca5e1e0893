package crypto

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/charla-im/charla/wire"
)

// FuzzParseRecipient checks that a member record's recipient string, which
// comes from the network, never makes ParseRecipient panic, and that only
// hybrid post-quantum recipients are taken.
func FuzzParseRecipient(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecipient(s)
		if err != nil {
			if r != nil {
				t.Fatal("recipient returned with an error")
			}
			return
		}
		if !strings.HasPrefix(s, hybridRecipientPrefix) || len(s) > wire.MaxRecipientBytes {
			t.Fatalf("took %.20q…, which is not a hybrid recipient within bounds", s)
		}
		if _, ok := r.(*age.HybridRecipient); !ok {
			t.Fatalf("took a %T", r)
		}
	})
}

// fuzzIdentityFile holds the identity FuzzOpenKeyShare opens shares with;
// the seed corpus in testdata/fuzz/FuzzOpenKeyShare holds shares to it. It
// is a test key, public, and nothing else uses it.
var fuzzIdentityFile = filepath.Join("testdata", "fuzz-identity")

// FuzzOpenKeyShare checks that no key-share body, which comes from the
// network, makes OpenKeyShare panic, and that what it opens names this
// identity among its recipients and re-encodes to a share that opens alike.
func FuzzOpenKeyShare(f *testing.F) {
	id, err := LoadIdentity(fuzzIdentityFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, err := id.OpenKeyShare(body)
		if err != nil {
			if ks != nil {
				t.Fatal("share returned with an error")
			}
			return
		}
		found := false
		for _, p := range ks.Recipients {
			found = found || bytes.Equal(p, []byte(id.PeerID()))
		}
		if !found {
			t.Fatal("opened a share that does not name this identity")
		}
		again, err := SealKeyShare(ks, []string{id.Recipient()})
		if err != nil {
			t.Fatalf("an opened share does not seal again: %v", err)
		}
		back, err := id.OpenKeyShare(again)
		if err != nil || !bytes.Equal(back.Marshal(), ks.Marshal()) {
			t.Fatalf("resealed share opens as %v, %v", back, err)
		}
	})
}
