package crypto

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
)

func newTestIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIdentitySaveLoad(t *testing.T) {
	id := newTestIdentity(t)
	path := filepath.Join(t.TempDir(), "identity")
	if err := SaveIdentity(path, id); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("identity file mode = %v, want 0600", mode)
	}

	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.PeerID() != id.PeerID() {
		t.Errorf("loaded peer ID %s, want %s", got.PeerID(), id.PeerID())
	}
	if !got.PrivKey().Equals(id.PrivKey()) {
		t.Error("loaded private key differs")
	}
	if got.Recipient() != id.Recipient() {
		t.Errorf("loaded recipient %s, want %s", got.Recipient(), id.Recipient())
	}
	if !strings.HasPrefix(got.Recipient(), "age1pq1") {
		t.Errorf("recipient %.20s… is not a hybrid recipient", got.Recipient())
	}
	if got.age.String() != id.age.String() {
		t.Error("loaded age identity differs")
	}
	if _, ok := got.AgeIdentity().(*age.HybridIdentity); !ok {
		t.Errorf("AgeIdentity is %T, want *age.HybridIdentity", got.AgeIdentity())
	}

	// The loaded identity opens what was sealed to the saved one.
	sig, err := id.Sign(DomainJoin, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(DomainJoin, got.PeerID(), []byte("hello"), sig); err != nil {
		t.Error(err)
	}
}

func TestSaveIdentityRefusesExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity")
	if err := SaveIdentity(path, newTestIdentity(t)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = SaveIdentity(path, newTestIdentity(t))
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second save: err = %v, want one saying the file already exists", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("second save changed the existing file")
	}
}

func TestLoadIdentityMalformed(t *testing.T) {
	id := newTestIdentity(t)
	raw, err := p2pcrypto.MarshalPrivateKey(id.PrivKey())
	if err != nil {
		t.Fatal(err)
	}
	keyLine := base64.StdEncoding.EncodeToString(raw)
	ageLine := id.age.String()
	secp, _, err := p2pcrypto.GenerateSecp256k1Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	secpRaw, err := p2pcrypto.MarshalPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"no header", keyLine + "\n" + ageLine + "\n"},
		{"future version", "# charla identity v2\n" + keyLine + "\n" + ageLine + "\n"},
		{"missing age line", identityHeader + "\n" + keyLine + "\n"},
		{"extra line", identityHeader + "\n" + keyLine + "\n" + ageLine + "\n" + ageLine + "\n"},
		{"key not base64", identityHeader + "\n" + keyLine[:20] + "!" + keyLine[21:] + "\n" + ageLine + "\n"},
		{"key truncated", identityHeader + "\n" + base64.StdEncoding.EncodeToString(raw[:40]) + "\n" + ageLine + "\n"},
		{"secp256k1 key", identityHeader + "\n" + base64.StdEncoding.EncodeToString(secpRaw) + "\n" + ageLine + "\n"},
		{"age line corrupted", identityHeader + "\n" + keyLine + "\n" + corruptLast(ageLine) + "\n"},
		{"x25519 age identity", identityHeader + "\n" + keyLine + "\n" + x25519.String() + "\n"},
		{"too large", identityHeader + "\n" + strings.Repeat("A", maxIdentityFileBytes) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIdentity(path)
			if err == nil {
				t.Fatal("LoadIdentity succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the path", msg)
			}
			for _, secret := range []string{keyLine[8:40], ageLine[20:50], x25519.String()[20:50]} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains key material", msg)
				}
			}
		})
	}
}

func TestLoadIdentityMissing(t *testing.T) {
	_, err := LoadIdentity(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

// corruptLast changes the last character of s to another valid bech32
// character, so the checksum fails (replacing it with a fixed letter did
// nothing when s already ended in that letter: 1 time in 32).
func corruptLast(s string) string {
	last := s[len(s)-1]
	repl := byte('Q')
	if last == repl {
		repl = 'P'
	}
	return s[:len(s)-1] + string(repl)
}
