// Package crypto owns a node's keys and every cryptographic operation charla
// performs: its Ed25519 libp2p identity and age hybrid post-quantum identity,
// domain-separated signatures over envelopes and member records, room keys and
// the age recipient that encrypts room content to them, key shares sealed to
// members' hybrid recipients, and the secrets derived from invite tokens and
// the network key.
//
// # Signatures
//
// Every signature covers a domain prefix followed by the message, so a
// signature of one kind can never pass as another, nor as a libp2p handshake
// signature. The prefixes are the Domain constants; each ends in a NUL byte.
//
// # Room content
//
// Content is an age file (binary format, no armor) with exactly one recipient
// stanza:
//
//	-> charla-room <key ID prefix>
//	<nonce (24 bytes) ‖ XChaCha20-Poly1305(room key, nonce, file key)>
//
// The key ID prefix is the first 8 bytes of the room key's ID, unpadded
// standard base64, so a node can tell a key it does not hold without trying
// it. The stanza reports age's "postquantum" label: a 256-bit symmetric key is
// not weakened by a quantum computer, and the label lets the room recipient be
// combined with hybrid recipients but never with classic X25519 ones.
//
// # Errors
//
// Nothing in this package logs or panics, and no error carries key material.
// Callers branch on [ErrNotForUs] (content or a key share this node cannot
// read, which is not malformed) and [ErrBadSignature].
package crypto
