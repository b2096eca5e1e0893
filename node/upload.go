package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/charla-im/charla/wire"
)

// ErrTooLarge is returned (wrapped) for an upload over the largest file
// this node posts.
var ErrTooLarge = errors.New("file too large")

// FileStreamer is what the web UI asks of a node about files: a browser
// holds bytes, not paths on the node's machine.
type FileStreamer interface {
	// UploadFile posts the bytes of r, named name, to a room named as
	// Send accepts it. It fails with ErrTooLarge past the node's limit.
	UploadFile(ctx context.Context, room, name string, r io.Reader) (File, error)
	// OpenFile fetches file id if needed and returns its plaintext. The
	// caller closes the reader.
	OpenFile(ctx context.Context, id string) (File, io.ReadCloser, error)
}

var _ FileStreamer = (*Node)(nil)

// UploadFile writes r to a file called name in a directory of its own under
// the node's home, posts it as SendFile does, and removes it. The home is
// on the disk the blobs go to, and readable by this node alone.
func (n *Node) UploadFile(ctx context.Context, room, name string, r io.Reader) (File, error) {
	if err := n.hist.currentPolicy().checkFile(0); err != nil {
		return File{}, err
	}
	if err := checkUploadName(name); err != nil {
		return File{}, err
	}
	dir, err := os.MkdirTemp(n.cfg.Home, ".upload-*")
	if err != nil {
		return File{}, fmt.Errorf("upload %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, fmt.Errorf("upload %s: %w", name, err)
	}
	size, err := io.Copy(f, io.LimitReader(r, n.maxFileSize()+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("upload %s: %w", name, err)
	}
	if size > n.maxFileSize() {
		return File{}, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, name, n.maxFileSize())
	}
	return n.SendFile(ctx, room, path)
}

// checkUploadName accepts a plain file name: what a browser offers of a
// dropped file, never a path.
func checkUploadName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: no file name", ErrInvalid)
	case len(name) > wire.MaxNameBytes:
		return fmt.Errorf("%w: file name is over %d bytes", ErrInvalid, wire.MaxNameBytes)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "/\\\x00") || strings.ContainsFunc(name, isControl):
		return fmt.Errorf("%w: file name %q is not a plain name", ErrInvalid, name)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// OpenFile decrypts file id, fetching what is missing, into a directory of
// its own under the home, and returns it open; closing it removes it.
func (n *Node) OpenFile(ctx context.Context, id string) (File, io.ReadCloser, error) {
	dir, err := os.MkdirTemp(n.cfg.Home, ".download-*")
	if err != nil {
		return File{}, nil, fmt.Errorf("open file %s: %w", id, err)
	}
	path := filepath.Join(dir, "file")
	v, err := n.GetFile(ctx, id, path)
	if err != nil {
		os.RemoveAll(dir)
		return File{}, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		os.RemoveAll(dir)
		return File{}, nil, fmt.Errorf("open file %s: %w", id, err)
	}
	return v, &tempFile{File: f, dir: dir}, nil
}

// tempFile removes its directory when closed.
type tempFile struct {
	*os.File
	dir string
}

func (t *tempFile) Close() error {
	err := t.File.Close()
	if rerr := os.RemoveAll(t.dir); err == nil {
		err = rerr
	}
	return err
}
