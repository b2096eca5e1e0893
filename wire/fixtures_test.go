package wire

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Fixed values for tests and golden vectors. Every byte is chosen, never random, so
// the golden files only change when the encoding does.

func fill(b byte) ID {
	var id ID
	for i := range id {
		id[i] = b
	}
	return id
}

// peer returns a 38-byte binary peer ID shaped like an Ed25519 one (identity
// multihash of a protobuf public key), ending in 32 bytes of b.
func peer(b byte) []byte {
	p := []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}
	return append(p, bytes.Repeat([]byte{b}, 32)...)
}

func contentHeader() *Header {
	return &Header{
		Version:   1,
		Workspace: fill(0x11),
		Author:    peer(0xa1),
		Seq:       2,
		Prev:      fill(0x22),
		Lamport:   7,
		Time:      1767225600123,
		Class:     ClassContent,
		Room:      fill(0x33),
		Key:       fill(0x44),
		Body:      []byte("age-encryption.org/v1 ciphertext"),
	}
}

func rosterHeader() *Header {
	return &Header{
		Version:   1,
		Workspace: fill(0x11),
		Author:    peer(0xa1),
		Seq:       1,
		Lamport:   1,
		Time:      -1,
		Class:     ClassRoster,
		Body:      testRosterOp().Marshal(),
	}
}

func keyShareHeader() *Header {
	return &Header{
		Version:   1,
		Workspace: fill(0x11),
		Author:    peer(0xa2),
		Seq:       9,
		Prev:      fill(0x23),
		Lamport:   1<<53 - 1,
		Class:     ClassKeyShare,
		Room:      fill(0x34),
		Body:      []byte{0xde, 0xad, 0xbe, 0xef},
	}
}

func testEnvelope() *Envelope {
	return &Envelope{Signed: contentHeader().Marshal(), Sig: bytes.Repeat([]byte{0x5a}, 64)}
}

func testMember() *Member {
	return &Member{
		Peer:      peer(0xb1),
		Name:      "Ana Pérez",
		Recipient: "age1pq1" + string(bytes.Repeat([]byte{'q'}, 60)),
		Sig:       bytes.Repeat([]byte{0x6b}, 64),
	}
}

func testGenesis() *Genesis {
	return &Genesis{
		Name:    "Oficina Centro",
		Founder: *testMember(),
		Created: 1767225600000,
		Nonce:   []byte("0123456789abcdef"),
	}
}

func testRosterOp() *RosterOp {
	return &RosterOp{Kind: RosterAdmit, Member: *testMember(), Role: RoleAdmin}
}

func testRemoveOp() *RosterOp {
	return &RosterOp{Kind: RosterRemove, Target: peer(0xb2), TargetSeq: 41, TargetID: fill(0x55)}
}

func testPolicyOp() *RosterOp {
	return &RosterOp{Kind: RosterPolicy, Key: "retention-days", Value: "90", Room: fill(0x33)}
}

func testInviteOp() *RosterOp {
	return &RosterOp{Kind: RosterInvite, Role: RoleMember, Invite: fill(0x77), Expires: 1767312000000}
}

func testRoomOp() *Content {
	return &Content{Kind: KindRoomOp, RoomOp: RoomOpRemove, Peer: peer(0xb2)}
}

func testNameOp() *Content {
	return &Content{Kind: KindRoomOp, RoomOp: RoomOpName, RoomName: "obras", RoomKind: RoomChannel,
		Members: [][]byte{peer(0xa1), peer(0xa2), peer(0xb1)}}
}

// testDisclosingShare is testKeyShare disclosing two envelopes' file keys.
func testDisclosingShare() *KeyShare {
	k := testKeyShare()
	k.Cause = CauseRotate
	k.Disclosed = []Disclosure{
		{Envelope: fill(0x41), FileKey: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{Envelope: fill(0x42), FileKey: [16]byte{0xf0, 0xf1}},
	}
	return k
}

// testChunkedShare is testKeyShare as one of several shares of a rotation:
// the key also went to 0xa3 and 0xb2 in another share.
func testChunkedShare() *KeyShare {
	k := testKeyShare()
	k.AllRecipients = [][]byte{peer(0xa1), peer(0xa2), peer(0xa3), peer(0xb1), peer(0xb2)}
	return k
}

func testKeyShare() *KeyShare {
	var key [32]byte
	for i := range key {
		key[i] = byte(i)
	}
	return &KeyShare{
		Workspace:  fill(0x11),
		Room:       fill(0x33),
		RoomKind:   RoomChannel,
		Epoch:      2,
		Parent:     fill(0x66),
		Cause:      CauseRotate,
		Recipients: [][]byte{peer(0xa1), peer(0xa2), peer(0xb1)},
		Key:        key,
	}
}

func testContent() *Content {
	return &Content{Kind: KindText, Text: "¡Buenos días! ☕"}
}

func testManifest() *FileManifest {
	return &FileManifest{
		Name: "contrato año 2026.pdf", Size: 2500000, Type: "application/pdf",
		CipherSize: 2500000 + 210, ChunkSize: 1 << 20, Chunks: []ID{fill(0x61), fill(0x62), fill(0x63)},
	}
}

func testFileContent() *Content {
	return &Content{Kind: KindFile, File: testManifest()}
}

func testBlobRequest() *BlobRequest {
	return &BlobRequest{Op: BlobHave, Chunks: []ID{fill(0x61), fill(0x62), fill(0x63)}}
}

func testVector() *Vector {
	return &Vector{Entries: []VectorEntry{
		{Author: peer(0xa1), Seq: 2, ID: fill(0x77)},
		{Author: peer(0xa2), Seq: 9, ID: fill(0x78)},
		{Author: peer(0xb1), Seq: 300, ID: fill(0x79)},
	}}
}

func testBatch() *Batch {
	return &Batch{Envelopes: [][]byte{testEnvelope().Marshal(), {0x0a, 0x01, 0x00}}}
}

func testTombstone() *Tombstone {
	return &Tombstone{Author: peer(0xa1), Seq: 7, ID: fill(0x71), Prev: fill(0x70), Lamport: 41,
		Time: 1_700_000_000_123, Class: ClassContent, Room: fill(0x22)}
}

// testBatchTombstones is a batch that carries an envelope and two tombstones,
// the second at seq 1.
func testBatchTombstones() *Batch {
	first := Tombstone{Author: peer(0xa2), Seq: 1, ID: fill(0x72), Lamport: 3, Time: -5, Class: ClassContent, Room: fill(0x22)}
	return &Batch{Envelopes: [][]byte{testEnvelope().Marshal()}, Tombstones: []Tombstone{*testTombstone(), first}}
}

// fields splits a valid encoding into its raw fields, tag included.
func fields(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		if n < 0 {
			panic(fmt.Sprintf("fields: %v", protowire.ParseError(n)))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// join concatenates raw fields, or pick them by index from fs.
func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func pick(fs [][]byte, idx ...int) []byte {
	var out []byte
	for _, i := range idx {
		out = append(out, fs[i]...)
	}
	return out
}

func varintField(n protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
}

func bytesField(n protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), v)
}

func testPresence() *Presence {
	return &Presence{
		Workspace: fill(0x11), Peer: peer(0xa1), Time: 1767225600123, Digest: fill(0x81),
		Envelopes: 1234, Heads: []VectorEntry{{Author: peer(0xa2), Seq: 9, ID: fill(0x78)}},
		State: StateAway, Sig: bytes.Repeat([]byte{0x5a}, 64),
	}
}

func testSignal() *Signal {
	return &Signal{
		Workspace: fill(0x11), Peer: peer(0xa1), Time: 1767225600456, Room: fill(0x33), Key: fill(0x44),
		Sealed: []byte("age-encryption.org/v1 sealed signal body"), Sig: bytes.Repeat([]byte{0x5b}, 64),
	}
}

func testSignalBody() *SignalBody {
	return &SignalBody{Kind: SignalRead, Room: fill(0x33), Time: 1767225600456, Message: fill(0x91)}
}
