package node

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"
)

// fuzzChunkMax is the limit FuzzReadChunkFrame reads chunk frames with.
const fuzzChunkMax = 1 << 10

// FuzzReadChunkFrame checks the reader of blob answers, the one frame reader
// of network input outside wire: no panic, nothing over the limit, and what
// it reads is exactly the bytes after the length prefix.
func FuzzReadChunkFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		buf, err := readChunkFrame(bufio.NewReader(bytes.NewReader(b)), fuzzChunkMax)
		if err != nil {
			return
		}
		defer chunkBufs.Put(buf)
		n, k := binary.Uvarint(b)
		if k <= 0 || n > fuzzChunkMax || uint64(len(*buf)) != n {
			t.Fatalf("read %d bytes; the prefix says %d (%d bytes)", len(*buf), n, k)
		}
		if !bytes.Equal(*buf, b[k:k+int(n)]) {
			t.Fatal("the frame read is not the bytes that follow its prefix")
		}
	})
}
