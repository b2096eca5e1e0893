package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/charla-im/charla/node"
)

// The web UI sends and receives files as bytes: a browser has no path on
// the node's machine to offer, and cannot be handed one.

func (s *Server) fileStreamer() (node.FileStreamer, error) {
	fs, ok := s.backend.(node.FileStreamer)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Message: "this node does not serve files"}
	}
	return fs, nil
}

// upload answers POST /api/rooms/{room}/upload?name=NAME, whose body is the
// file's bytes. The node bounds the size; a Content-Length over its limit
// is refused by the node as soon as the body passes it.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.fileStreamer()
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		return &Error{Status: http.StatusBadRequest, Message: "no file name", Hint: "name the file with ?name="}
	}
	room := r.PathValue("room")
	f, err := fs.UploadFile(r.Context(), room, name, r.Body)
	if errors.Is(err, node.ErrTooLarge) {
		// Say so before the client has sent the rest of a huge body.
		w.Header().Set("Connection", "close")
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: err.Error()}
	}
	if err != nil {
		return s.failed("upload", roomError(room, err))
	}
	return writeJSON(w, http.StatusCreated, f)
}

// content answers GET /api/files/{id}/content with the file's plaintext,
// fetching it from the room's members first if this node lacks chunks of it.
// It is always an attachment, served as bytes of no particular type, so
// that no file a colleague posts is ever run as a page of this origin.
func (s *Server) content(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.fileStreamer()
	if err != nil {
		return err
	}
	f, rc, err := fs.OpenFile(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.failed("file content", err)
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatUint(f.Size, 10))
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": f.Name})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.logger.Debug("file content cut short", "file", f.ID, "err", err)
	}
	return nil
}
