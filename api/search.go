package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/charla-im/charla/node"
)

// DefaultSearchLimit is how many messages a search returns unless told.
const DefaultSearchLimit = 50

// search answers GET /api/search?q=QUERY&limit=N, newest first.
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	sr, ok := s.backend.(node.Searcher)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not search"}
	}
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		return &Error{Status: http.StatusBadRequest, Message: "empty search", Hint: "pass the words to look for as ?q="}
	}
	limit := DefaultSearchLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > node.MaxSearchLimit {
			return &Error{
				Status:  http.StatusBadRequest,
				Message: fmt.Sprintf("limit %q is not a number from 1 to %d", v, node.MaxSearchLimit),
			}
		}
		limit = n
	}
	msgs, err := sr.Search(r.Context(), q, limit)
	if err != nil {
		return s.failed("search", err)
	}
	return writeJSON(w, http.StatusOK, nonNil(msgs))
}
