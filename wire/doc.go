// Package wire owns charla's wire format: the envelope, the plaintexts and roster
// records inside it, the sync frames, and their one canonical encoding.
//
// It does no I/O beyond framing on a reader or writer it is handed, never logs, and
// imports nothing of charla. Every bound on untrusted input is a constant in
// types.go.
//
// # Encoding
//
// Every message is protobuf wire format, written and read by hand with protowire,
// under rules that give each value exactly one encoding:
//
//   - every field is written, in field-number order, exactly once, zero values
//     included; a repeated field is written once per element, consecutively, and
//     not at all when it has no elements;
//   - unsigned integers and enums are varints, signed integers zigzag varints
//     (sint64), byte strings and nested messages length-delimited;
//   - an ID or key is exactly 32 bytes, zero bytes included;
//   - strings are valid UTF-8.
//
// Decoders are strict. They reject unknown field numbers, wrong wire types, missing,
// duplicate and out-of-order fields, trailing bytes, non-minimal varints, values
// outside their bounds, and finally re-encode what they decoded and require the
// input back byte for byte. A relay therefore cannot change an envelope's bytes, and
// so its ID, without changing its meaning. Every decode error wraps ErrMalformed;
// those for exceeding a size bound also wrap ErrTooLarge.
//
// To check a value before signing or sending it, decode its encoding.
//
// # Envelope
//
// The replicated unit (DESIGN.md "Envelope"). At most MaxEnvelopeBytes encoded.
//
//	Envelope
//	  1 signed   bytes   the encoded Header, 1 byte or more
//	  2 sig      bytes   Ed25519("charla/envelope/v1\0" ‖ signed), at most MaxSigBytes
//
//	Header
//	  1 version    varint   ≥ 1; this code writes and interprets Version = 1
//	  2 workspace  bytes    32: SHA-256 of the encoded Genesis
//	  3 author     bytes    binary peer ID, 1 to MaxAuthorBytes
//	  4 seq        varint   ≥ 1, per author per workspace
//	  5 prev       bytes    32: ID of the author's envelope seq-1; zero iff seq = 1
//	  6 lamport    varint   ≤ MaxLamport (2^53-1)
//	  7 time       sint64   author's wall clock, unix milliseconds; display only
//	  8 class      varint   1 roster, 2 keyshare, 3 content
//	  9 room       bytes    32: zero for roster, not zero for keyshare and content
//	 10 key        bytes    32: room key ID for content, zero otherwise
//	 11 body       bytes    at most MaxBodyBytes: an encoded RosterOp in clear, or
//	                        age ciphertext of a KeyShare or a Content
//
// An envelope's ID is the SHA-256 of signed.
//
// A header whose version is above Version comes from newer software. Its fields 1–6
// keep their meaning and are decoded and checked as above; what follows them must be
// well-formed protobuf fields and is otherwise ignored. DecodeHeader returns such a
// header with Version, Workspace, Author, Seq, Prev and Lamport set and the rest
// zero; the envelope is stored raw, counted in the vector and relayed, but never
// interpreted. Later versions must therefore keep fields 1–6 as they are.
//
// # Plaintexts and roster records
//
//	Content (inside a content envelope's ciphertext)
//	  1 kind       varint   1 text, 2 file, 3 edit, 4 delete, 5 reaction, 6 room op
//	  2 text       string   at most MaxTextBytes
//	  3 target     bytes    32: the message acted on, or zero
//	  4 room_name  string   at most MaxNameBytes
//	  5 room_kind  varint   0, 1 channel, 2 direct
//	  6 file       bytes    an encoded FileManifest for kind file; empty otherwise
//	  7 room_op    varint   room op: 0 name, 1 add, 2 remove, 3 leave
//	  8 peer       bytes    room op add, remove: binary peer ID, at most MaxAuthorBytes
//	  9 private    varint   0 or 1: room op name of a room that keeps history from
//	                        later members
//	 10 members    bytes    repeated, room op name: 0 to MaxRecipients binary peer IDs
//	                        of 1 to MaxAuthorBytes, in strictly increasing byte order:
//	                        the room's first members (absent for every other content,
//	                        so content written before the field keeps its encoding)
//
//	FileManifest (DESIGN.md "Files")
//	  1 name        string  1 to MaxNameBytes
//	  2 size        varint  plaintext bytes, ≤ cipher_size
//	  3 type        string  MIME type, at most MaxMIMETypeBytes
//	  4 cipher_size varint  bytes of the age ciphertext
//	  5 chunk_size  varint  1 to MaxChunkBytes
//	  6 chunks      bytes   SHA-256 of each ciphertext chunk, concatenated: exactly
//	                        ceil(cipher_size / chunk_size) of them, 1 to MaxFileChunks
//
//	KeyShare (inside a keyshare envelope's ciphertext)
//	  1 workspace  bytes    32
//	  2 room       bytes    32, not zero
//	  3 room_kind  varint   1 channel, 2 direct
//	  4 epoch      varint   ≥ 1
//	  5 parent     bytes    32: key ID of epoch-1; zero iff epoch = 1
//	  6 cause      varint   1 create, 2 rotate, 3 reshare
//	  7 recipients bytes    repeated, 1 to MaxRecipients binary peer IDs of 1 to
//	                        MaxAuthorBytes, in strictly increasing byte order
//	  8 key        bytes    32, not all zero
//	  9 disclosed  bytes    repeated, 0 to MaxDisclosed: 48 bytes each, a content
//	                        envelope's ID then its 16-byte age file key, in
//	                        strictly increasing order of ID
//	 10 all_recipients bytes repeated, absent or up to MaxKeyRecipients binary
//	                        peer IDs of 1 to MaxAuthorBytes, in strictly increasing
//	                        byte order: everyone the key went to when it went out
//	                        in several shares at once (a rotation of a room of more
//	                        than MaxRecipients members); more elements than field 7
//	                        and every one of them. Absent: field 7 is everyone.
//
//	Member (a member's self-signed record)
//	  1 peer       bytes    binary peer ID, 1 to MaxAuthorBytes
//	  2 name       string   at most MaxNameBytes
//	  3 recipient  string   age hybrid recipient, at most MaxRecipientBytes
//	  4 sig        bytes    Ed25519("charla/member/v1\0" ‖ fields 1–3), at most MaxSigBytes
//
//	Genesis (the workspace ID is the SHA-256 of its encoding)
//	  1 name       string   at most MaxNameBytes
//	  2 founder    bytes    an encoded Member, not empty
//	  3 created    sint64   unix milliseconds
//	  4 nonce      bytes    exactly GenesisNonceBytes
//
//	RosterOp (the body of a roster envelope, in clear)
//	  1 kind       varint   1 admit, 2 remove, 3 role, 4 policy, 5 invite, 6 revoke,
//	                        7 profile
//	  2 member     bytes    an encoded Member; empty for the zero Member
//	  3 role       varint   0, 1 member, 2 admin, 3 owner
//	  4 target     bytes    binary peer ID, at most MaxAuthorBytes
//	  5 target_seq varint
//	  6 target_id  bytes    32
//	  7 key        string   policy: the setting, at most MaxPolicyKeyBytes
//	  8 value      string   policy: its value, at most MaxPolicyValBytes
//	  9 room       bytes    32: policy: the room, zero for workspace-wide
//	 10 invite     bytes    32: invite, revoke: the invite's ID
//	 11 expires    sint64   invite: unix milliseconds
//
// The zero Member is encoded as an empty field and any other Member as its full
// encoding, which DecodeMember accepts only with a non-empty peer: one encoding each.
// The decoders check form and bounds; which fields a kind uses, signatures, and
// whether an author may do what it does are for the caller.
//
// # Sync frames
//
// On a stream (/charla/sync/1) each message travels as one frame: its length as a
// uvarint, then its encoding (WriteFrame, ReadFrame). ReadFrame refuses a length over
// the caller's maximum before allocating; MaxVectorBytes and MaxBatchBytes are the
// maxima for the two sync messages.
//
//	Vector (at most MaxVectorBytes)
//	  1 entries    bytes    repeated, at most MaxVectorAuthors encoded VectorEntry,
//	                        authors in strictly increasing byte order
//
//	VectorEntry
//	  1 author     bytes    binary peer ID, 1 to MaxAuthorBytes
//	  2 seq        varint   ≥ 1: highest seq held with no gap below it
//	  3 id         bytes    32: ID of the envelope at seq
//
//	Batch (at most MaxBatchBytes)
//	  1 envelopes  bytes    repeated, at most MaxBatchEnvelopes encoded envelopes,
//	                        each 1 to MaxEnvelopeBytes (decoded by the receiver)
//	  2 tombstones bytes    repeated, at most MaxBatchTombstones encoded Tombstone
//
//	Tombstone (the header of an envelope whose body retention purged; not signed)
//	  1 author     bytes    binary peer ID, 1 to MaxAuthorBytes
//	  2 seq        varint   ≥ 1
//	  3 id         bytes    32: the envelope's ID
//	  4 prev       bytes    32: zero iff seq = 1
//	  5 lamport    varint   ≤ MaxLamport
//	  6 time       sint64   the author's clock, unix milliseconds
//	  7 class      varint   1 roster, 2 keyshare, 3 content
//	  8 room       bytes    32
//
// A batch with neither envelopes nor tombstones ends a sync exchange. Only
// content is ever purged, so a receiver refuses a tombstone of another class;
// it takes one only where it continues a chain it holds and where its own
// policy would have purged that envelope too (node/retention.go).
//
// On /charla/bodies/1 a node asks for envelopes by ID (the room ops disclosed
// to it that it holds only as tombstones) with one Want; the answer is
// batches of envelopes only, ended by an empty one (node/bodies.go).
//
//	Want (at most MaxWantIDs × 34 bytes)
//	  1 ids        bytes    repeated, 1 to MaxWantIDs, 32 each, strictly increasing
//
// On /charla/removal/1 a member tells a removed member of its removal. The
// member opens the stream; the removed node sends a Vector and a Held, as a
// sync puller does; the member answers with batches of roster envelopes
// only, no tombstones, ended by an empty one (node/removal.go).
//
// # Ephemeral frames
//
// Each message of a workspace's ephemeral GossipSub topic is one Ephemeral (at
// most MaxEphemeralBytes). Ephemerals are signed with Ed25519("charla/ephemeral/v1\0"
// ‖ the frame's fields before sig) by the peer they name, and never stored.
//
//	Ephemeral
//	  1 kind       varint   1 presence, 2 signal
//	  2 body       bytes    the encoded Presence or Signal
//
//	Presence (a heartbeat, at most MaxPresenceBytes)
//	  1 workspace  bytes    32
//	  2 peer       bytes    binary peer ID of the sender, 1 to MaxAuthorBytes
//	  3 time       sint64   sender's unix ms, strictly increasing per sender
//	  4 digest     bytes    32: SHA-256 of the sender's encoded Vector
//	  5 envelopes  varint   how many envelopes the sender holds
//	  6 heads      bytes    repeated, at most MaxPresenceHeads encoded VectorEntry
//	  7 state      varint   1 online, 2 away (its user is idle)
//	  8 sig        bytes    1 to MaxSigBytes
//
//	Signal (a typing indicator or read marker, at most MaxSignalBytes)
//	  1 workspace  bytes    32
//	  2 peer       bytes    binary peer ID of the sender, 1 to MaxAuthorBytes
//	  3 time       sint64   sender's unix ms, strictly increasing per sender
//	  4 room       bytes    32, not zero
//	  5 key        bytes    32, not zero: ID of the room key that seals field 6
//	  6 sealed     bytes    1 to MaxSignalSealedBytes: age ciphertext, to the room
//	                        key, of an encoded SignalBody
//	  7 sig        bytes    1 to MaxSigBytes
//
//	SignalBody (the plaintext sealed in a Signal)
//	  1 kind       varint   1 typing, 2 read
//	  2 room       bytes    32: the Signal's room
//	  3 time       sint64   the Signal's time
//	  4 message    bytes    32: read, the newest message read (not zero);
//	                        typing, zero
//
// # Blob frames
//
// On a /charla/blob/1 stream the requester sends BlobRequest frames (at most
// MaxBlobRequestBytes) and reads one answer frame for each, in the order it
// asked; it may send several before reading the first answer:
//
//	BlobRequest
//	  1 op         varint   1 have, 2 get
//	  2 chunks     bytes    concatenated 32-byte chunk hashes: 1 to MaxFileChunks
//	                        for have, exactly 1 for get
//
// A have is answered by a bitmap of BlobHaveLen(n) bytes, bit i%8 of byte i/8
// set when chunk i is held; a get by the chunk's bytes (at most MaxChunkBytes),
// or an empty frame when it is not held, or no longer matches its hash on
// the server's disk. The requester checks every chunk against its hash: the
// answers are not messages and are not decoded.
package wire
