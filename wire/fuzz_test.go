package wire

import (
	"bytes"
	"testing"
)

// Each target checks that decoding never panics and that whatever decodes
// re-encodes to exactly its input. Seeds live in testdata/fuzz/TARGET.

func FuzzDecodeEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, h, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatalf("envelope re-encodes differently:\n in %x\nout %x", b, e.Marshal())
		}
		if h.Version == Version && !bytes.Equal(h.Marshal(), e.Signed) {
			t.Fatalf("header re-encodes differently:\n in %x\nout %x", e.Signed, h.Marshal())
		}
		_ = e.ID()
	})
}

func FuzzDecodeKeyShare(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := DecodeKeyShare(b); err == nil && !bytes.Equal(k.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, k.Marshal())
		}
	})
}

func FuzzDecodeContent(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeContent(b); err == nil && !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, c.Marshal())
		}
	})
}

func FuzzDecodeRosterOp(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := DecodeRosterOp(b); err == nil && !bytes.Equal(o.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, o.Marshal())
		}
	})
}

func FuzzDecodeVector(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeVector(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, v.Marshal())
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if bt, err := DecodeBatch(b); err == nil && !bytes.Equal(bt.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, bt.Marshal())
		}
	})
}

func FuzzDecodeFileManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeFileManifest(b); err == nil && !bytes.Equal(m.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, m.Marshal())
		}
	})
}

func FuzzDecodeBlobRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeBlobRequest(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, r.Marshal())
		}
	})
}
