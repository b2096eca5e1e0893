package api

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/charla-im/charla/node"
)

// The audit and the export (issue 6, office control).

// Trailers of GET /api/export: they come after the body, once it is whole.
const (
	TrailerExportRooms     = "X-Charla-Export-Rooms"
	TrailerExportMessages  = "X-Charla-Export-Messages"
	TrailerExportEnvelopes = "X-Charla-Export-Envelopes"
	TrailerManifestSHA256  = "X-Charla-Manifest-Sha256"
)

// exportTypes are the media types the export is served as.
var exportTypes = map[string]string{
	node.FormatJSON:     "application/json; charset=utf-8",
	node.FormatHTML:     "text/html; charset=utf-8",
	node.FormatMarkdown: "text/markdown; charset=utf-8",
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	a, ok := s.backend.(node.Auditor)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not audit"}
	}
	full, err := boolParam(r, "full")
	if err != nil {
		return err
	}
	rep, err := a.Audit(r.Context(), full)
	if err != nil {
		return s.failed("audit", err)
	}
	return writeJSON(w, http.StatusOK, rep)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s %q is not true or false", name, v)}
	}
	return b, nil
}

// ParseSince reads the since parameter of GET /api/export: an RFC 3339
// time, or a date (YYYY-MM-DD) taken as midnight in loc.
func ParseSince(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (2026-11-26) nor an RFC 3339 time (2026-11-26T09:00:00+01:00)", v)
}

// exportBody sends the response headers only when the export writes its
// first bytes, so that an export refused before it starts is answered
// with an error status.
type exportBody struct {
	w       http.ResponseWriter
	format  string
	started bool
}

func (b *exportBody) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		h := b.w.Header()
		h.Set("Content-Type", exportTypes[b.format])
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "charla-export." + b.format}))
		// Message text is escaped, and the export is an attachment; if a
		// browser opened it from this origin all the same, it runs nothing.
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'")
		b.w.WriteHeader(http.StatusOK)
	}
	return b.w.Write(p)
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	ex, ok := s.backend.(node.Exporter)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not export"}
	}
	q := r.URL.Query()
	opts := node.ExportOptions{Room: q.Get("room"), Format: strings.ToLower(q.Get("format"))}
	if _, ok := exportTypes[opts.Format]; !ok {
		return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("format %q: choose json, html or md", q.Get("format"))}
	}
	if v := q.Get("since"); v != "" {
		t, err := ParseSince(v, time.UTC)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Message: "since " + err.Error()}
		}
		opts.Since = t
	}
	w.Header().Set("Trailer", strings.Join([]string{TrailerExportRooms, TrailerExportMessages, TrailerExportEnvelopes, TrailerManifestSHA256}, ", "))
	body := &exportBody{w: w, format: opts.Format}
	sum, err := ex.Export(r.Context(), body, opts)
	if err != nil {
		if !body.started {
			w.Header().Del("Trailer")
			return s.failed("export", roomError(opts.Room, err))
		}
		// Half an export is on its way: cut the connection, so the client
		// sees the body end before its trailers rather than a short file
		// that looks whole.
		s.logger.Error("export failed part way", "err", err)
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	h.Set(TrailerExportRooms, strconv.Itoa(sum.Rooms))
	h.Set(TrailerExportMessages, strconv.Itoa(sum.Messages))
	h.Set(TrailerExportEnvelopes, strconv.Itoa(sum.Envelopes))
	h.Set(TrailerManifestSHA256, sum.ManifestSHA256)
	return nil
}

func (s *Server) verifyExport(w http.ResponseWriter, r *http.Request) error {
	ex, ok := s.backend.(node.Exporter)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not export"}
	}
	var req node.ExportCheck
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	v, err := ex.VerifyExport(r.Context(), req)
	if err != nil {
		return s.failed("verify export", err)
	}
	return writeJSON(w, http.StatusOK, v)
}
