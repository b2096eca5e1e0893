package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/charla-im/charla/node"
)

// Typing indicators, read markers and presence: what the web UI tells the
// node about its user.

// TypingRequest is the body of POST /api/rooms/{room}/typing.
type TypingRequest struct{}

// TypingResponse answers POST /api/rooms/{room}/typing: Sent is false when
// the node sent nothing, because it did within node.TypingEvery or no
// member is connected.
type TypingResponse struct {
	Sent bool `json:"sent"`
}

// ReadRequest is the body of POST /api/rooms/{room}/read.
type ReadRequest struct {
	Message string `json:"message"` // the newest message of the room read
}

// PresenceRequest is the body of POST /api/presence.
type PresenceRequest struct {
	State string `json:"state"` // online or away
}

func (s *Server) ephemerals() (node.Ephemerals, error) {
	e, ok := s.backend.(node.Ephemerals)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Message: "this node does not send typing, read markers or presence"}
	}
	return e, nil
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request) error {
	e, err := s.ephemerals()
	if err != nil {
		return err
	}
	var req TypingRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	room := r.PathValue("room")
	sent, err := e.Typing(r.Context(), room)
	if err != nil {
		return s.failed("typing", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, TypingResponse{Sent: sent})
}

// markRead answers POST /api/rooms/{room}/read with the room's read state
// after the marker.
func (s *Server) markRead(w http.ResponseWriter, r *http.Request) error {
	e, err := s.ephemerals()
	if err != nil {
		return err
	}
	var req ReadRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Message) == "" {
		return &Error{Status: http.StatusBadRequest, Message: "no message named", Hint: `send {"message": "<message ID>"}`}
	}
	room := r.PathValue("room")
	if err := e.MarkRead(r.Context(), room, req.Message); err != nil {
		return s.failed("read", roomError(room, err))
	}
	return s.readState(w, r)
}

func (s *Server) readState(w http.ResponseWriter, r *http.Request) error {
	e, err := s.ephemerals()
	if err != nil {
		return err
	}
	room := r.PathValue("room")
	st, err := e.ReadMarkers(r.Context(), room)
	if err != nil {
		return s.failed("read markers", roomError(room, err))
	}
	st.Members = nonNil(st.Members)
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) presence(w http.ResponseWriter, r *http.Request) error {
	e, err := s.ephemerals()
	if err != nil {
		return err
	}
	var req PresenceRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := e.SetPresence(r.Context(), req.State); err != nil {
		return s.failed("presence", err)
	}
	return writeJSON(w, http.StatusOK, req)
}

func roomPath(room, what string) (string, error) {
	if room == "" {
		return "", &Error{Status: http.StatusBadRequest, Message: "no room named"}
	}
	return "/api/rooms/" + url.PathEscape(room) + "/" + what, nil
}

// Typing tells room's members that this node's user is writing; it reports
// whether a signal went out.
func (c *Client) Typing(ctx context.Context, room string) (bool, error) {
	path, err := roomPath(room, "typing")
	if err != nil {
		return false, err
	}
	var resp TypingResponse
	err = c.call(ctx, http.MethodPost, path, TypingRequest{}, &resp)
	return resp.Sent, err
}

// MarkRead records that this node's user read room up to message id.
func (c *Client) MarkRead(ctx context.Context, room, id string) (node.ReadState, error) {
	var st node.ReadState
	path, err := roomPath(room, "read")
	if err != nil {
		return st, err
	}
	err = c.call(ctx, http.MethodPost, path, ReadRequest{Message: id}, &st)
	return st, err
}

// ReadMarkers returns who is known to have read room how far.
func (c *Client) ReadMarkers(ctx context.Context, room string) (node.ReadState, error) {
	var st node.ReadState
	path, err := roomPath(room, "read")
	if err != nil {
		return st, err
	}
	err = c.call(ctx, http.MethodGet, path, nil, &st)
	return st, err
}

// SetPresence says whether this node's user is "online" or "away".
func (c *Client) SetPresence(ctx context.Context, state string) error {
	var resp PresenceRequest
	return c.call(ctx, http.MethodPost, "/api/presence", PresenceRequest{State: state}, &resp)
}
