package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := [][]byte{nil, {0}, bytes.Repeat([]byte{7}, 127), bytes.Repeat([]byte{8}, 128), testEnvelope().Marshal()}
	var stream bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&stream, f); err != nil {
			t.Fatal(err)
		}
	}
	readers := []struct {
		name string
		r    func([]byte) io.Reader
	}{
		{"byte reader", func(b []byte) io.Reader { return bufio.NewReader(bytes.NewReader(b)) }},
		{"one byte at a time", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"data with EOF", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			r := rd.r(stream.Bytes())
			for i, want := range frames {
				got, err := ReadFrame(r, MaxEnvelopeBytes)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("frame %d = %x, want %x", i, got, want)
				}
			}
			if _, err := ReadFrame(r, MaxEnvelopeBytes); err != io.EOF {
				t.Errorf("after the last frame: err = %v, want io.EOF", err)
			}
		})
	}
}

// hugeReader yields a length prefix and then fails the test if anything reads on.
type hugeReader struct {
	t      *testing.T
	prefix []byte
}

func (r *hugeReader) Read(p []byte) (int, error) {
	if len(r.prefix) == 0 {
		r.t.Error("ReadFrame read past a length prefix it should have refused")
		return 0, io.EOF
	}
	n := copy(p, r.prefix)
	r.prefix = r.prefix[n:]
	return n, nil
}

func TestReadFrameReject(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		max      int
		want     error
		tooLarge bool
		msg      string
	}{
		{"empty stream", nil, 10, io.EOF, false, "EOF"},
		{"ends inside the prefix", []byte{0x80}, 10, io.ErrUnexpectedEOF, false, "read frame: unexpected EOF"},
		{"ends inside the payload", []byte{0x03, 1, 2}, 10, io.ErrUnexpectedEOF, false, "read frame: unexpected EOF"},
		{"over max", []byte{0x0b}, 10, ErrTooLarge, true, "read frame: length 11, over the limit of 10"},
		{"negative max", []byte{0x01, 0}, -1, ErrTooLarge, true, "over the limit"},
		{"2^63 length", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, MaxBatchBytes, ErrTooLarge, true, "over the limit"},
		{"non-minimal prefix", []byte{0x81, 0x00, 0}, 10, ErrMalformed, false, "read frame: non-minimal length prefix"},
		{"prefix overflows", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, ErrMalformed, false, "read frame: length prefix: variable length integer overflow"},
		{"prefix over 10 bytes", bytes.Repeat([]byte{0x80}, 11), 10, ErrMalformed, false, "read frame: length prefix longer than 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.in)
			if tt.tooLarge {
				r = &hugeReader{t: t, prefix: tt.in}
			}
			_, err := ReadFrame(r, tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if errors.Is(err, ErrTooLarge) != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v", err, !tt.tooLarge)
			}
			if tt.want != io.EOF && tt.want != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("stream reset") }

func TestWriteFrameError(t *testing.T) {
	err := WriteFrame(failWriter{}, []byte{1})
	if err == nil || err.Error() != "write frame: stream reset" {
		t.Errorf("err = %v", err)
	}
}
