package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// More decoders of network input: the genesis and member records a joiner
// is handed, and the length-prefixed frame every stream protocol reads.

func FuzzDecodeGenesis(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := DecodeGenesis(b); err == nil && !bytes.Equal(g.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, g.Marshal())
		}
	})
}

func FuzzDecodeMember(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeMember(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, m.Marshal())
		}
	})
}

// fuzzFrameMax is the limit FuzzReadFrame reads frames with.
const fuzzFrameMax = 1 << 10

// FuzzReadFrame reads frames from arbitrary bytes until they run out: no
// frame is longer than the limit, what is read re-frames to the bytes it
// came from, and a failure is one of the errors ReadFrame documents.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			start := len(b) - r.Len()
			p, err := ReadFrame(r, fuzzFrameMax)
			if err == io.EOF {
				if start != len(b) {
					t.Fatalf("io.EOF with %d bytes left", len(b)-start)
				}
				return
			}
			if err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("undocumented error %v", err)
				}
				return
			}
			if len(p) > fuzzFrameMax {
				t.Fatalf("frame of %d bytes, over the limit of %d", len(p), fuzzFrameMax)
			}
			var w bytes.Buffer
			if err := WriteFrame(&w, p); err != nil {
				t.Fatal(err)
			}
			if end := len(b) - r.Len(); !bytes.Equal(w.Bytes(), b[start:end]) {
				t.Fatalf("frame re-encodes differently:\n in %x\nout %x", b[start:end], w.Bytes())
			}
		}
	})
}
