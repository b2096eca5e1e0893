package crypto

import (
	"bytes"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/charla-im/charla/wire"
)

// SealKeyShare encrypts the encoding of ks to 1 to wire.MaxRecipients hybrid
// recipients ("age1pq1…"), giving a key-share envelope body. Every
// recipient must parse with ParseRecipient and appear once.
func SealKeyShare(ks *wire.KeyShare, recipients []string) ([]byte, error) {
	if len(recipients) == 0 || len(recipients) > wire.MaxRecipients {
		return nil, fmt.Errorf("seal key share: %d recipients, want 1 to %d", len(recipients), wire.MaxRecipients)
	}
	rs := make([]age.Recipient, 0, len(recipients))
	seen := make(map[string]bool, len(recipients))
	for i, s := range recipients {
		if seen[s] {
			return nil, fmt.Errorf("seal key share: recipient #%d is a duplicate", i)
		}
		seen[s] = true
		r, err := ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("seal key share: recipient #%d: %w", i, err)
		}
		rs = append(rs, r)
	}

	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return nil, fmt.Errorf("seal key share: %w", err)
	}
	if _, err := w.Write(ks.Marshal()); err != nil {
		return nil, fmt.Errorf("seal key share: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal key share: %w", err)
	}
	return buf.Bytes(), nil
}

// OpenKeyShare decrypts and decodes a key-share body with this node's hybrid
// identity. It fails with an error wrapping [ErrNotForUs] when the share was
// not encrypted to this node, and with another error when it is malformed,
// has more than wire.MaxRecipients stanzas, or does not list this node's peer
// ID among its recipients.
func (id *Identity) OpenKeyShare(body []byte) (*wire.KeyShare, error) {
	r, err := age.Decrypt(bytes.NewReader(body), maxStanzas{id.age, wire.MaxRecipients})
	if err != nil {
		return nil, fmt.Errorf("open key share: %w", notForUs(err))
	}
	plaintext, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("open key share: %w", err)
	}
	ks, err := wire.DecodeKeyShare(plaintext)
	if err != nil {
		return nil, fmt.Errorf("open key share: %w", err)
	}
	for _, p := range ks.Recipients {
		if bytes.Equal(p, []byte(id.peer)) {
			return ks, nil
		}
	}
	return nil, fmt.Errorf("open key share: encrypted to this node but %s is not among its listed recipients", id.peer)
}
