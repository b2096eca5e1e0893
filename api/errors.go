package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/charla-im/charla/node"
)

// Error is a failed API request: what the server answered with a status other
// than 2xx. The server writes it as {"error": Message, "hint": Hint}.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Hint    string `json:"hint,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("API answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// HintText returns the hint line a user should see with the error, if any.
// The CLI prints it as "charla: hint: ...".
func (e *Error) HintText() string { return e.Hint }

// Is reports whether the status stands for one of the node's sentinels, so
// that a client can branch on errors.Is(err, node.ErrUnknownRoom) as it would
// with the node itself.
func (e *Error) Is(target error) bool {
	switch target {
	case node.ErrInvalid:
		return e.Status == http.StatusBadRequest
	case node.ErrUnknownRoom, node.ErrUnknownFile, node.ErrUnknownMessage:
		return e.Status == http.StatusNotFound
	case node.ErrAmbiguous:
		return e.Status == http.StatusConflict
	case node.ErrForbidden:
		return e.Status == http.StatusForbidden
	case node.ErrRemoved:
		return e.Status == http.StatusGone
	case node.ErrDiskFull:
		return e.Status == http.StatusInsufficientStorage
	}
	return false
}

// ErrNoNode means that nothing answered at the API address: no node is
// running, or one stopped and left a stale api.json behind.
var ErrNoNode = errors.New("no node is listening")

// toError turns what a handler or the backend returned into the answer the
// client gets.
func toError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	e := &Error{Status: http.StatusInternalServerError, Message: err.Error()}
	switch {
	case errors.Is(err, node.ErrInvalid):
		e.Status = http.StatusBadRequest
	case errors.Is(err, node.ErrUnknownRoom):
		e.Status = http.StatusNotFound
		e.Hint = "'charla rooms' lists the rooms you can read"
	case errors.Is(err, node.ErrUnknownFile):
		e.Status = http.StatusNotFound
		e.Hint = "'charla files' lists the files you can read"
	case errors.Is(err, node.ErrUnknownMessage):
		e.Status = http.StatusNotFound
		e.Hint = "'charla log ROOM --json' shows the messages with their IDs"
	case errors.Is(err, node.ErrAmbiguous):
		e.Status = http.StatusConflict
		e.Hint = "name the member by peer ID; 'charla members' lists them"
	case errors.Is(err, node.ErrForbidden):
		e.Status = http.StatusForbidden
		e.Hint = "'charla members' shows roles; 'charla policy' the workspace's settings"
	case errors.Is(err, node.ErrDiskFull):
		e.Status = http.StatusInsufficientStorage
		e.Hint = "free space on that disk, then run the same command again: it resumes"
	case errors.Is(err, node.ErrRemoved):
		e.Status = http.StatusGone
		e.Hint = "an admin removed this device; join again with a new invite and a new --home"
	}
	// The node's own word on what to do, where it has one, is closer to
	// the case than the status's.
	if h, ok := errors.AsType[interface {
		error
		Hint() string
	}](err); ok {
		e.Hint = h.Hint()
	}
	return e
}
