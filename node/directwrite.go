package node

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
)

// directBuf is the size of the pieces a seqWriter writes.
const directBuf = 1 << 20

// seqWriter writes a new file from start to end in pieces of directBuf,
// with O_DIRECT where the filesystem allows it, on a goroutine of its own so
// that the disk's time overlaps the caller's: GetFile decrypts the next
// piece while the last one is written. The tail that is not a multiple of
// directAlign goes through the page cache.
type seqWriter struct {
	f, direct *os.File
	off       int64
	cur       []byte
	free      chan []byte
	full      chan piece
	done      chan error
	failed    atomic.Pointer[error] // the writer goroutine's first error, seen by Write
}

type piece struct {
	b   []byte
	off int64
}

func newSeqWriter(f *os.File) *seqWriter {
	w := &seqWriter{
		f: f, direct: openDirect(f.Name()),
		free: make(chan []byte, 2), full: make(chan piece, 2), done: make(chan error, 1),
	}
	w.free <- make([]byte, 0, directBuf)
	w.free <- make([]byte, 0, directBuf)
	go w.loop()
	return w
}

func (w *seqWriter) loop() {
	var err error
	for p := range w.full {
		if err == nil {
			if err = w.writeAt(p.b, p.off); err != nil {
				w.failed.Store(&err)
			}
		}
		w.free <- p.b[:0]
	}
	w.done <- err
}

func (w *seqWriter) writeAt(b []byte, off int64) error {
	if w.direct != nil && len(b)%directAlign == 0 {
		_, err := w.direct.WriteAt(b, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		w.direct.Close()
		w.direct = nil // memory or offset not as the disk needs: use the cache from now on
	}
	_, err := w.f.WriteAt(b, off)
	return err
}

func (w *seqWriter) Write(b []byte) (int, error) {
	if err := w.failed.Load(); err != nil {
		return 0, fmt.Errorf("write file: %w", *err)
	}
	n := len(b)
	for len(b) > 0 {
		if w.cur == nil {
			w.cur = <-w.free
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], b)
		w.cur = w.cur[:len(w.cur)+k]
		b = b[k:]
		if len(w.cur) == cap(w.cur) {
			w.full <- piece{w.cur, w.off}
			w.off += int64(len(w.cur))
			w.cur = nil
		}
	}
	return n, nil
}

// close writes what is left, waits for every write and returns the first
// error; it does not sync or close f.
func (w *seqWriter) close() error {
	var tail []byte
	if w.cur != nil {
		whole := len(w.cur) - len(w.cur)%directAlign
		if whole > 0 {
			w.full <- piece{w.cur[:whole], w.off}
			w.off += int64(whole)
		}
		tail = w.cur[whole:]
	}
	close(w.full)
	err := <-w.done
	if w.direct != nil {
		w.direct.Close()
	}
	if err == nil && len(tail) > 0 {
		// The loop gave back the buffer tail lies in only after writing
		// the whole part before it, and nothing reuses it now.
		_, err = w.f.WriteAt(tail, w.off)
	}
	if err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return nil
}
