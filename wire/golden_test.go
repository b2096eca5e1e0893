package wire

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden and the named fuzz seeds in testdata/fuzz")

// TestGolden pins the encoding: each fixture must encode to the bytes committed in
// testdata/golden/NAME.hex, and those bytes must decode. A failure here means the
// wire format changed, which breaks every signature and ID already made; if that is
// intended, bump Version and rewrite the files with -update.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		enc  []byte
		dec  func([]byte) error
	}{
		{"header", contentHeader().Marshal(), decodeHeaderAny},
		{"header_roster", rosterHeader().Marshal(), decodeHeaderAny},
		{"header_keyshare", keyShareHeader().Marshal(), decodeHeaderAny},
		{"envelope", testEnvelope().Marshal(), decodeEnvelopeAny},
		{"keyshare", testKeyShare().Marshal(), decodeKeyShareAny},
		{"keyshare_disclosed", testDisclosingShare().Marshal(), decodeKeyShareAny},
		{"keyshare_chunked", testChunkedShare().Marshal(), decodeKeyShareAny},
		{"content", testContent().Marshal(), decodeContentAny},
		{"member", testMember().Marshal(), decodeMemberAny},
		{"genesis", testGenesis().Marshal(), decodeGenesisAny},
		{"rosterop_admit", testRosterOp().Marshal(), decodeRosterOpAny},
		{"rosterop_remove", testRemoveOp().Marshal(), decodeRosterOpAny},
		{"rosterop_policy", testPolicyOp().Marshal(), decodeRosterOpAny},
		{"rosterop_invite", testInviteOp().Marshal(), decodeRosterOpAny},
		{"content_roomop", testRoomOp().Marshal(), decodeContentAny},
		{"content_nameop", testNameOp().Marshal(), decodeContentAny},
		{"vector", testVector().Marshal(), decodeVectorAny},
		{"batch", testBatch().Marshal(), decodeBatchAny},
		{"batch_tombstones", testBatchTombstones().Marshal(), decodeBatchAny},
		{"tombstone", testTombstone().appendTo(nil), func(b []byte) error { _, err := decodeTombstone(b); return err }},
		{"content_file", testFileContent().Marshal(), decodeContentAny},
		{"file_manifest", testManifest().Marshal(), func(b []byte) error { _, err := DecodeFileManifest(b); return err }},
		{"blob_request", testBlobRequest().Marshal(), func(b []byte) error { _, err := DecodeBlobRequest(b); return err }},
		{"presence", testPresence().Marshal(), func(b []byte) error { _, err := DecodePresence(b); return err }},
		{"signal", testSignal().Marshal(), func(b []byte) error { _, err := DecodeSignal(b); return err }},
		{"signal_body", testSignalBody().Marshal(), func(b []byte) error { _, err := DecodeSignalBody(b); return err }},
		{"ephemeral_signal", (&Ephemeral{Kind: EphemeralSignal, Signal: testSignal()}).Marshal(), func(b []byte) error { _, err := DecodeEphemeral(b); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", tt.name+".hex")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(hex.EncodeToString(tt.enc)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to write it)", err)
			}
			want, err := hex.DecodeString(strings.TrimSpace(string(text)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if string(tt.enc) != string(want) {
				t.Errorf("encoding changed:\n got %x\nwant %x", tt.enc, want)
			}
			if err := tt.dec(want); err != nil {
				t.Errorf("golden bytes do not decode: %v", err)
			}
		})
	}
	// Pin one derived value too: the workspace ID of the golden genesis.
	const wantGenesisID = "testdata/golden/genesis_id.txt"
	if *update {
		if err := os.WriteFile(wantGenesisID, []byte(testGenesis().ID().String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(wantGenesisID)
	if err != nil {
		t.Fatal(err)
	}
	if got := testGenesis().ID().String(); got != strings.TrimSpace(string(text)) {
		t.Errorf("genesis ID = %s, want %s", got, text)
	}
}

// fuzzSeeds are the named seed inputs of each fuzz target, written to
// testdata/fuzz/TARGET/NAME by -update. Inputs the fuzzer finds are added beside
// them under hash names by go test itself.
func fuzzSeeds() map[string]map[string][]byte {
	env := testEnvelope().Marshal()
	future := contentHeader()
	future.Version = 2
	return map[string]map[string][]byte{
		"FuzzDecodeEnvelope": {
			"valid-content":     env,
			"valid-roster":      (&Envelope{Signed: rosterHeader().Marshal(), Sig: make([]byte, 64)}).Marshal(),
			"valid-keyshare":    (&Envelope{Signed: keyShareHeader().Marshal(), Sig: make([]byte, 64)}).Marshal(),
			"valid-future":      (&Envelope{Signed: join(future.appendStable(nil), bytesField(12, []byte("new"))), Sig: make([]byte, 64)}).Marshal(),
			"invalid-seq0":      (&Envelope{Signed: headerWith(func(h *Header) { h.Seq = 0 })}).Marshal(),
			"invalid-trailing":  append(env[:len(env):len(env)], 0x18, 0x01),
			"invalid-truncated": env[:len(env)-3],
		},
		"FuzzDecodeKeyShare": {
			"valid":           testKeyShare().Marshal(),
			"valid-epoch1":    (&KeyShare{Workspace: fill(1), Room: fill(2), RoomKind: RoomDirect, Epoch: 1, Cause: CauseCreate, Recipients: [][]byte{{1}, {2}}, Key: fill(3)}).Marshal(),
			"invalid-unsort":  (&KeyShare{Workspace: fill(1), Room: fill(2), RoomKind: RoomDirect, Epoch: 1, Cause: CauseCreate, Recipients: [][]byte{{2}, {1}}, Key: fill(3)}).Marshal(),
			"invalid-empty":   {},
			"valid-disclosed": testDisclosingShare().Marshal(),
			"invalid-disclosed-unsorted": func() []byte {
				k := testDisclosingShare()
				k.Disclosed[0], k.Disclosed[1] = k.Disclosed[1], k.Disclosed[0]
				return k.Marshal()
			}(),
			"valid-chunked": testChunkedShare().Marshal(),
			"valid-chunked-disclosed": func() []byte {
				k := testChunkedShare()
				k.Disclosed = testDisclosingShare().Disclosed
				return k.Marshal()
			}(),
			"invalid-chunked-unsorted": func() []byte {
				k := testChunkedShare()
				k.AllRecipients[3], k.AllRecipients[4] = k.AllRecipients[4], k.AllRecipients[3]
				return k.Marshal()
			}(),
			"invalid-chunked-lacks": func() []byte {
				k := testChunkedShare()
				k.AllRecipients = append(k.AllRecipients[:3:3], peer(0xb2), peer(0xb3))
				return k.Marshal()
			}(),
			"invalid-chunked-same": func() []byte {
				k := testChunkedShare()
				k.AllRecipients = k.Recipients
				return k.Marshal()
			}(),
		},
		"FuzzDecodeContent": {
			"valid-text":       testContent().Marshal(),
			"valid-room":       (&Content{Kind: KindRoomOp, RoomName: "general", RoomKind: RoomChannel}).Marshal(),
			"valid-reaction":   (&Content{Kind: KindReaction, Text: "👍", Target: fill(9)}).Marshal(),
			"valid-file":       testFileContent().Marshal(),
			"invalid-utf8":     (&Content{Kind: KindText, Text: "\xff"}).Marshal(),
			"invalid-nonminvl": {0x08, 0x81, 0x00},
			"valid-roomop":     testRoomOp().Marshal(),
			"invalid-private2": join(pick(fields(testRoomOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7), varintField(9, 2)),
			"valid-nameop":     testNameOp().Marshal(),
			"invalid-members":  join(pick(fields(testNameOp().Marshal()), 0, 1, 2, 3, 4, 5, 6, 7, 8), bytesField(10, peer(0xb1)), bytesField(10, peer(0xa1))),
		},
		"FuzzDecodeFileManifest": {
			"valid":           testManifest().Marshal(),
			"valid-one":       (&FileManifest{Name: "a", Size: 1, CipherSize: 200, ChunkSize: 1 << 20, Chunks: []ID{fill(1)}}).Marshal(),
			"invalid-count":   (&FileManifest{Name: "a", Size: 1, CipherSize: 3 << 20, ChunkSize: 1 << 20, Chunks: []ID{fill(1)}}).Marshal(),
			"invalid-noname":  (&FileManifest{CipherSize: 1, ChunkSize: 1, Chunks: []ID{fill(1)}}).Marshal(),
			"invalid-partial": append(testManifest().Marshal()[:len(testManifest().Marshal())-1:len(testManifest().Marshal())-1], 0),
		},
		"FuzzDecodeBlobRequest": {
			"valid-have":   testBlobRequest().Marshal(),
			"valid-get":    (&BlobRequest{Op: BlobGet, Chunks: []ID{fill(5)}}).Marshal(),
			"invalid-get2": (&BlobRequest{Op: BlobGet, Chunks: []ID{fill(5), fill(6)}}).Marshal(),
			"invalid-op":   (&BlobRequest{Op: 9, Chunks: []ID{fill(5)}}).Marshal(),
			"invalid-none": (&BlobRequest{Op: BlobHave}).Marshal(),
		},
		"FuzzDecodeRosterOp": {
			"valid-admit":      testRosterOp().Marshal(),
			"valid-remove":     testRemoveOp().Marshal(),
			"invalid-zeromemb": join(varintField(1, 2), bytesField(2, (&Member{}).Marshal()), pick(fields(testRemoveOp().Marshal()), 2, 3, 4, 5, 6, 7, 8, 9, 10)),
			"invalid-kind":     (&RosterOp{Kind: 9}).Marshal(),
			"valid-policy":     testPolicyOp().Marshal(),
			"valid-invite":     testInviteOp().Marshal(),
			"invalid-longkey":  (&RosterOp{Kind: RosterPolicy, Key: strings.Repeat("k", MaxPolicyKeyBytes+1)}).Marshal(),
		},
		"FuzzDecodeVector": {
			"valid":          testVector().Marshal(),
			"valid-empty":    {},
			"invalid-seq0":   (&Vector{Entries: []VectorEntry{{Author: []byte{1}}}}).Marshal(),
			"invalid-unsort": (&Vector{Entries: []VectorEntry{{Author: []byte{2}, Seq: 1}, {Author: []byte{1}, Seq: 1}}}).Marshal(),
		},
		"FuzzDecodePresence": {
			"valid":         testPresence().Marshal(),
			"valid-online":  (&Presence{Workspace: fill(1), Peer: []byte{2}, Time: 3, Digest: fill(4), State: StateOnline, Sig: []byte{5}}).Marshal(),
			"invalid-state": (&Presence{Workspace: fill(1), Peer: []byte{2}, Time: 3, Digest: fill(4), State: 3, Sig: []byte{5}}).Marshal(),
			// The heartbeat before it carried a state: a signature where the state belongs.
			"invalid-nostate": join(pick(fields(testPresence().Marshal()), 0, 1, 2, 3, 4, 5), bytesField(7, make([]byte, 64))),
		},
		"FuzzDecodeSignal": {
			"valid":          testSignal().Marshal(),
			"invalid-noroom": (&Signal{Workspace: fill(1), Peer: []byte{2}, Time: 3, Key: fill(4), Sealed: []byte{5}, Sig: []byte{6}}).Marshal(),
			"invalid-empty":  (&Signal{Workspace: fill(1), Peer: []byte{2}, Time: 3, Room: fill(4), Key: fill(4), Sig: []byte{6}}).Marshal(),
		},
		"FuzzDecodeSignalBody": {
			"valid-read":      testSignalBody().Marshal(),
			"valid-typing":    (&SignalBody{Kind: SignalTyping, Room: fill(0x33), Time: -5}).Marshal(),
			"invalid-typing":  (&SignalBody{Kind: SignalTyping, Room: fill(0x33), Message: fill(1)}).Marshal(),
			"invalid-read":    (&SignalBody{Kind: SignalRead, Room: fill(0x33)}).Marshal(),
			"invalid-kind":    (&SignalBody{Kind: 7, Room: fill(0x33)}).Marshal(),
			"invalid-trailer": append(testSignalBody().Marshal(), 0x28, 0x00),
		},
		"FuzzDecodeEphemeral": {
			"valid-presence":  (&Ephemeral{Kind: EphemeralPresence, Presence: testPresence()}).Marshal(),
			"valid-signal":    (&Ephemeral{Kind: EphemeralSignal, Signal: testSignal()}).Marshal(),
			"invalid-mixed":   join(varintField(1, uint64(EphemeralPresence)), bytesField(2, testSignal().Marshal())),
			"invalid-kind":    join(varintField(1, 3), bytesField(2, testSignal().Marshal())),
			"invalid-nobody":  varintField(1, uint64(EphemeralSignal)),
			"invalid-oversig": join(varintField(1, uint64(EphemeralSignal)), bytesField(2, append(testSignal().Marshal()[:len(testSignal().Marshal())-66:len(testSignal().Marshal())-66], bytesField(7, make([]byte, 65))...))),
		},
		"FuzzDecodeBatch": {
			"valid":                  testBatch().Marshal(),
			"valid-empty":            {},
			"invalid-empty":          join(bytesField(1, env), bytesField(1, nil)),
			"invalid-type":           varintField(1, 5),
			"valid-tombstones":       testBatchTombstones().Marshal(),
			"valid-only-tombstones":  (&Batch{Tombstones: []Tombstone{*testTombstone()}}).Marshal(),
			"invalid-tomb-first":     join(bytesField(2, testTombstone().appendTo(nil)), bytesField(1, env)),
			"invalid-tomb-prev-seq1": (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 1, Prev: fill(1), Class: ClassContent}}}).Marshal(),
			"invalid-tomb-class0":    (&Batch{Tombstones: []Tombstone{{Author: []byte{1}, Seq: 2, Prev: fill(1)}}}).Marshal(),
		},
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("writes seeds only with -update")
	}
	for target, seeds := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
