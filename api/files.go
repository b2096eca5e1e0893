package api

import (
	"net/http"
	"path/filepath"

	"github.com/charla-im/charla/node"
)

// FileRequest is the body of POST /api/rooms/{room}/files and of POST
// /api/files/{id}/get: an absolute path on the node's machine. The API is
// served on loopback to clients of the same machine, so a path names the
// file to post, or where to write the one fetched, without carrying its bytes.
type FileRequest struct {
	Path string `json:"path"`
}

func (s *Server) fileBackend() (node.FileBackend, error) {
	fb, ok := s.backend.(node.FileBackend)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Message: "this node does not serve files"}
	}
	return fb, nil
}

func decodeFileRequest(w http.ResponseWriter, r *http.Request) (string, error) {
	var req FileRequest
	if err := decodeBody(w, r, &req); err != nil {
		return "", err
	}
	if !filepath.IsAbs(req.Path) {
		return "", &Error{Status: http.StatusBadRequest, Message: "path must be absolute, got " + req.Path}
	}
	return req.Path, nil
}

func (s *Server) sendFile(w http.ResponseWriter, r *http.Request) error {
	fb, err := s.fileBackend()
	if err != nil {
		return err
	}
	path, err := decodeFileRequest(w, r)
	if err != nil {
		return err
	}
	room := r.PathValue("room")
	f, err := fb.SendFile(r.Context(), room, path)
	if err != nil {
		return s.failed("send file", roomError(room, err))
	}
	return writeJSON(w, http.StatusCreated, f)
}

func (s *Server) files(w http.ResponseWriter, r *http.Request) error {
	fb, err := s.fileBackend()
	if err != nil {
		return err
	}
	room := r.URL.Query().Get("room")
	fs, err := fb.Files(r.Context(), room)
	if err != nil {
		return s.failed("files", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, nonNil(fs))
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) error {
	fb, err := s.fileBackend()
	if err != nil {
		return err
	}
	f, err := fb.File(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.failed("file", err)
	}
	return writeJSON(w, http.StatusOK, f)
}

// getFile answers once the file is complete, verified and written, or the
// download failed; a client shows progress by polling GET /api/files/{id}.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	fb, err := s.fileBackend()
	if err != nil {
		return err
	}
	path, err := decodeFileRequest(w, r)
	if err != nil {
		return err
	}
	f, err := fb.GetFile(r.Context(), r.PathValue("id"), path)
	if err != nil {
		return s.failed("get file", err)
	}
	return writeJSON(w, http.StatusOK, f)
}

// fetchFile answers once every chunk of the file is held on the node,
// verified, or the fetch failed. Its body is an empty JSON object: a JSON
// content type is what keeps a web page from posting it.
func (s *Server) fetchFile(w http.ResponseWriter, r *http.Request) error {
	fb, err := s.fileBackend()
	if err != nil {
		return err
	}
	var req struct{}
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	f, err := fb.FetchFile(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.failed("fetch file", err)
	}
	return writeJSON(w, http.StatusOK, f)
}
