package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"filippo.io/age"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// identityHeader is the first line of an identity file. A future format gets
// a new version line rather than a guess at what the old one meant.
const identityHeader = "# charla identity v1"

// maxIdentityFileBytes bounds what LoadIdentity reads: a v1 file is about
// 3 KiB (the hybrid secret key is the long line).
const maxIdentityFileBytes = 16 << 10

// Identity is a node's secret keys: the Ed25519 key that is its libp2p
// identity and signs everything it authors, and the age hybrid post-quantum
// identity that opens the key shares sent to it.
type Identity struct {
	sign      p2pcrypto.PrivKey
	peer      peer.ID
	age       *age.HybridIdentity
	recipient string // age.Recipient().String(), a 1.9 KB Bech32 encoding
}

// GenerateIdentity returns a new identity with fresh random keys.
func GenerateIdentity() (*Identity, error) {
	sk, _, err := p2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	ak, err := age.GenerateHybridIdentity()
	if err != nil {
		return nil, fmt.Errorf("generate age hybrid identity: %w", err)
	}
	return newIdentity(sk, ak)
}

func newIdentity(sk p2pcrypto.PrivKey, ak *age.HybridIdentity) (*Identity, error) {
	pid, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("derive peer id: %w", err)
	}
	return &Identity{sign: sk, peer: pid, age: ak, recipient: ak.Recipient().String()}, nil
}

// PeerID returns the libp2p peer ID, which embeds the Ed25519 public key.
func (id *Identity) PeerID() peer.ID { return id.peer }

// PrivKey returns the Ed25519 private key, for the libp2p host.
func (id *Identity) PrivKey() p2pcrypto.PrivKey { return id.sign }

// Recipient returns the hybrid post-quantum recipient ("age1pq1…") that key
// shares for this node are encrypted to.
func (id *Identity) Recipient() string { return id.recipient }

// AgeIdentity returns the hybrid identity that decrypts what is sent to
// Recipient.
func (id *Identity) AgeIdentity() age.Identity { return id.age }

// SaveIdentity writes id to a new file at path, readable only by its owner
// (mode 0600). It refuses to overwrite an existing file: losing an identity
// loses the node's membership and every room key shared with it.
//
// The file is text: a version line, the libp2p-marshalled Ed25519 key in
// standard base64, and the age hybrid identity ("AGE-SECRET-KEY-PQ-1…").
func SaveIdentity(path string, id *Identity) error {
	raw, err := p2pcrypto.MarshalPrivateKey(id.sign)
	if err != nil {
		return fmt.Errorf("save identity %s: marshal ed25519 key: %w", path, err)
	}
	var b bytes.Buffer
	b.WriteString(identityHeader + "\n")
	b.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	b.WriteString(id.age.String() + "\n")

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("save identity %s: file already exists, refusing to overwrite it: %w", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A partial file would block the next attempt and fail to load.
		os.Remove(path)
		return fmt.Errorf("save identity %s: %w", path, err)
	}
	return nil
}

// LoadIdentity reads an identity written by SaveIdentity.
func LoadIdentity(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	defer f.Close()

	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load identity %s: %w", path, err)
	}
	if len(data) > maxIdentityFileBytes {
		return nil, fmt.Errorf("load identity %s: file larger than %d bytes", path, maxIdentityFileBytes)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}

	// Parse errors from the key decoders are not wrapped: they may quote the
	// malformed secret.
	if len(lines) == 0 || lines[0] != identityHeader {
		return nil, fmt.Errorf("load identity %s: not a charla identity file (want first line %q)", path, identityHeader)
	}
	if len(lines) != 3 {
		return nil, fmt.Errorf("load identity %s: malformed: want 3 lines, have %d", path, len(lines))
	}
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil {
		return nil, fmt.Errorf("load identity %s: malformed ed25519 key line: not base64", path)
	}
	sk, err := p2pcrypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("load identity %s: malformed ed25519 key line", path)
	}
	if _, ok := sk.(*p2pcrypto.Ed25519PrivateKey); !ok {
		return nil, fmt.Errorf("load identity %s: key line holds a %s key, want ed25519", path, sk.Type())
	}
	ak, err := age.ParseHybridIdentity(lines[2])
	if err != nil {
		return nil, fmt.Errorf("load identity %s: malformed age hybrid identity line", path)
	}
	id, err := newIdentity(sk, ak)
	if err != nil {
		return nil, fmt.Errorf("load identity %s: %w", path, err)
	}
	return id, nil
}
