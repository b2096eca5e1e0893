package api

import (
	"net/http"

	"github.com/charla-im/charla/node"
)

// logBefore answers GET /api/rooms/{room}/messages?before=ID&limit=N: the
// limit messages just above message ID, oldest first, as a reader scrolls
// back. An empty list means ID is the room's oldest message.
func (s *Server) logBefore(w http.ResponseWriter, r *http.Request, room, before string, limit int) error {
	p, ok := s.backend.(node.Pager)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not page through history"}
	}
	msgs, err := p.LogBefore(r.Context(), room, before, limit)
	if err != nil {
		return s.failed("log", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, nonNil(msgs))
}
