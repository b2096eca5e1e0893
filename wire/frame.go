package wire

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxLengthPrefix is the longest uvarint, in bytes.
const maxLengthPrefix = 10

// WriteFrame writes b to w as one frame: its length as a uvarint, then b, in a
// single Write.
func WriteFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 0, maxLengthPrefix+len(b))
	buf = protowire.AppendVarint(buf, uint64(len(b)))
	buf = append(buf, b...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame written by WriteFrame and returns its payload. It
// returns io.EOF, unwrapped, if r ends before the frame starts and
// io.ErrUnexpectedEOF if r ends inside it. A length over max is refused with an
// error wrapping ErrTooLarge before anything is allocated; a length prefix that is
// not a minimal uvarint with an error wrapping ErrMalformed.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	if max < 0 || n > uint64(max) {
		return nil, &decodeError{
			msg:      fmt.Sprintf("read frame: length %d, over the limit of %d", n, max),
			tooLarge: true,
		}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read frame: %w", err)
	}
	return b, nil
}

// readLength reads a frame's uvarint length prefix a byte at a time, so that it
// never consumes input past the prefix.
func readLength(r io.Reader) (uint64, error) {
	var buf [maxLengthPrefix]byte
	for i := range buf {
		if err := readByte(r, &buf[i]); err != nil {
			if i == 0 && err == io.EOF {
				return 0, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read frame: %w", err)
		}
		if buf[i] < 0x80 {
			v, n := protowire.ConsumeVarint(buf[:i+1])
			switch {
			case n < 0:
				return 0, &decodeError{msg: "read frame: length prefix: " + parseProblem(n)}
			case n != protowire.SizeVarint(v):
				return 0, &decodeError{msg: "read frame: non-minimal length prefix"}
			}
			return v, nil
		}
	}
	return 0, &decodeError{msg: fmt.Sprintf("read frame: length prefix longer than %d bytes", maxLengthPrefix)}
}

func readByte(r io.Reader, b *byte) error {
	if br, ok := r.(io.ByteReader); ok {
		c, err := br.ReadByte()
		*b = c
		return err
	}
	var one [1]byte
	_, err := io.ReadFull(r, one[:])
	*b = one[0]
	return err
}
