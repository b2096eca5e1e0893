package crypto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/libp2p/go-libp2p/core/pnet"
)

const (
	tokenHashDomain = "charla/invite-token\x00"
	tokenPSKInfo    = "charla/join"
	mdnsTagDomain   = "charla/mdns"
	// mdnsTagBytes of the HMAC are kept: enough that two offices on one LAN
	// do not collide, short enough for a TXT record.
	mdnsTagBytes = 8
)

// NewToken returns a random invite token.
func NewToken() ([16]byte, error) {
	var t [16]byte
	if _, err := rand.Read(t[:]); err != nil {
		return t, fmt.Errorf("new invite token: %w", err)
	}
	return t, nil
}

// HashToken returns SHA-256("charla/invite-token\0" ‖ t), which an inviter
// stores and publishes instead of the token itself.
func HashToken(t [16]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(tokenHashDomain))
	h.Write(t[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// TokenPSK derives the 32-byte private-network key of the join network from
// an invite token: HKDF-SHA256 with no salt and info "charla/join".
func TokenPSK(t [16]byte) []byte {
	k, err := hkdf.Key(sha256.New, t[:], nil, tokenPSKInfo, 32)
	if err != nil {
		// hkdf.Key fails only for lengths over 255×32 bytes or a key
		// under 112 bits in FIPS mode; neither holds for 32 bytes
		// from 128 bits.
		return nil
	}
	return k
}

// NetworkPSK returns the workspace's network key as a libp2p private-network
// key. The result is a copy.
func NetworkPSK(networkKey [32]byte) pnet.PSK {
	return pnet.PSK(networkKey[:])
}

// MDNSTag names a workspace on the LAN for one hour without revealing it to
// outsiders: hex(HMAC-SHA256(networkKey, "charla/mdns" ‖ uint64be(hour))[:8]).
// hour is Unix time in hours.
func MDNSTag(networkKey [32]byte, hour int64) string {
	m := hmac.New(sha256.New, networkKey[:])
	m.Write([]byte(mdnsTagDomain))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(hour)))
	return hex.EncodeToString(m.Sum(nil)[:mdnsTagBytes])
}
