package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Bounds of files and of the blob protocol.
const (
	MaxFileChunks    = 8192    // chunks of one file: 8 GiB at 1 MiB a chunk
	MaxChunkBytes    = 4 << 20 // one ciphertext chunk
	MaxMIMETypeBytes = 128     // FileManifest.Type

	// MaxBlobRequestBytes bounds one encoded BlobRequest: an op and up to
	// MaxFileChunks hashes.
	MaxBlobRequestBytes = 16 + MaxFileChunks*len(ID{})
)

// FileManifest describes a posted file. The file is age-encrypted to the
// room key and the ciphertext cut into chunks of ChunkSize bytes (the last
// one shorter), each named by its SHA-256 (DESIGN.md "Files").
type FileManifest struct {
	Name       string // base name, no directory
	Size       uint64 // plaintext bytes
	Type       string // MIME type, "" when unknown
	CipherSize uint64 // ciphertext bytes, the sum of the chunks
	ChunkSize  uint32
	Chunks     []ID // SHA-256 of each ciphertext chunk, in order
}

var fileManifestFields = []string{1: "name", 2: "size", 3: "type", 4: "cipher_size", 5: "chunk_size", 6: "chunks"}

// Marshal returns the canonical encoding of m.
func (m *FileManifest) Marshal() []byte {
	b := make([]byte, 0, len(m.Name)+len(m.Type)+len(m.Chunks)*len(ID{})+40)
	b = appendString(b, 1, m.Name)
	b = appendUint(b, 2, m.Size)
	b = appendString(b, 3, m.Type)
	b = appendUint(b, 4, m.CipherSize)
	b = appendUint(b, 5, uint64(m.ChunkSize))
	return appendBytes(b, 6, joinIDs(m.Chunks))
}

// DecodeFileManifest decodes the canonical encoding of a manifest and checks
// that it is whole: a name, a chunk size of 1 to MaxChunkBytes, 1 to
// MaxFileChunks chunks, exactly as many as CipherSize needs, and a plaintext
// no larger than its ciphertext.
func DecodeFileManifest(b []byte) (*FileManifest, error) {
	if len(b) > MaxBodyBytes {
		return nil, tooLarge("file manifest", len(b), MaxBodyBytes)
	}
	d := newDecoder("file manifest", fileManifestFields, b)
	m := new(FileManifest)
	m.Name = d.text(1, MaxNameBytes)
	d.check(m.Name != "", "field 1 (name) is empty")
	m.Size = d.uvarint(2)
	m.Type = d.text(3, MaxMIMETypeBytes)
	m.CipherSize = d.uvarint(4)
	cs := d.uvarint(5)
	d.check(cs >= 1 && cs <= MaxChunkBytes, "field 5 (chunk_size) is %d, want 1 to %d", cs, MaxChunkBytes)
	m.ChunkSize = uint32(cs)
	m.Chunks = d.ids(6, 1, MaxFileChunks)
	if d.err == nil {
		want := (m.CipherSize + cs - 1) / cs
		d.check(uint64(len(m.Chunks)) == want, "%d chunks for %d bytes of ciphertext in chunks of %d, want %d",
			len(m.Chunks), m.CipherSize, cs, want)
		d.check(m.Size <= m.CipherSize, "field 2 (size) %d is above field 4 (cipher_size) %d", m.Size, m.CipherSize)
	}
	if err := d.end(b, m.Marshal); err != nil {
		return nil, err
	}
	return m, nil
}

// ChunkLen is the length of chunk i of the ciphertext.
func (m *FileManifest) ChunkLen(i int) int {
	if i < len(m.Chunks)-1 {
		return int(m.ChunkSize)
	}
	return int(m.CipherSize - uint64(len(m.Chunks)-1)*uint64(m.ChunkSize))
}

// BlobOp says what a BlobRequest asks. The numbers go on the wire.
type BlobOp uint8

const (
	BlobHave BlobOp = 1 // which of these chunks do you hold? answered by a bitmap
	BlobGet  BlobOp = 2 // send this one chunk; answered by its bytes, or nothing
)

func (o BlobOp) String() string {
	switch o {
	case BlobHave:
		return "have"
	case BlobGet:
		return "get"
	}
	return fmt.Sprintf("blobop(%d)", uint8(o))
}

// BlobRequest is one request on a /charla/blob/1 stream.
type BlobRequest struct {
	Op     BlobOp
	Chunks []ID // have: 1 to MaxFileChunks; get: exactly 1
}

var blobRequestFields = []string{1: "op", 2: "chunks"}

// Marshal returns the canonical encoding of r.
func (r *BlobRequest) Marshal() []byte {
	b := make([]byte, 0, len(r.Chunks)*len(ID{})+16)
	b = appendUint(b, 1, uint64(r.Op))
	return appendBytes(b, 2, joinIDs(r.Chunks))
}

// DecodeBlobRequest decodes the canonical encoding of a blob request of at
// most MaxBlobRequestBytes and checks its bounds.
func DecodeBlobRequest(b []byte) (*BlobRequest, error) {
	if len(b) > MaxBlobRequestBytes {
		return nil, tooLarge("blob request", len(b), MaxBlobRequestBytes)
	}
	d := newDecoder("blob request", blobRequestFields, b)
	r := new(BlobRequest)
	r.Op = BlobOp(d.enum(1, uint64(BlobHave), uint64(BlobGet)))
	max := MaxFileChunks
	if r.Op == BlobGet {
		max = 1
	}
	r.Chunks = d.ids(2, 1, max)
	if err := d.end(b, r.Marshal); err != nil {
		return nil, err
	}
	return r, nil
}

// BlobHaveLen is the length of the bitmap that answers a have request for n
// chunks: bit i%8 of byte i/8 is set when chunk i is held.
func BlobHaveLen(n int) int { return (n + 7) / 8 }

// ids reads field n as concatenated 32-byte IDs, min to max of them.
func (d *decoder) ids(n protowire.Number, min, max int) []ID {
	v := d.raw(n)
	if d.err != nil {
		return nil
	}
	switch {
	case len(v)%len(ID{}) != 0:
		d.failf("%s is %d bytes, not a whole number of %d-byte hashes", d.field(n), len(v), len(ID{}))
		return nil
	case len(v)/len(ID{}) > max:
		d.tooLargef("%s holds %d hashes, over the limit of %d", d.field(n), len(v)/len(ID{}), max)
		return nil
	case len(v)/len(ID{}) < min:
		d.failf("%s holds %d hashes, want at least %d", d.field(n), len(v)/len(ID{}), min)
		return nil
	}
	out := make([]ID, len(v)/len(ID{}))
	for i := range out {
		copy(out[i][:], v[i*len(ID{}):])
	}
	return out
}

func joinIDs(ids []ID) []byte {
	b := make([]byte, 0, len(ids)*len(ID{}))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}
