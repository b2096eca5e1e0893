package api

import (
	"errors"
	"net/http"

	"github.com/charla-im/charla/node"
)

// CreateRoomRequest is the body of POST /api/rooms. Members name members
// as after @ in a room path (display name or peer ID); All makes the room a
// channel of every current member instead. The creator is always a member.
type CreateRoomRequest struct {
	Name    string   `json:"name"`
	Members []string `json:"members,omitempty"`
	All     bool     `json:"all,omitempty"`
	// NoHistory: members added later read only from their joining on.
	NoHistory bool `json:"no_history,omitempty"`
}

// createRoom answers POST /api/rooms with 201 and the new node.Room.
func (s *Server) createRoom(w http.ResponseWriter, r *http.Request) error {
	rc, ok := s.backend.(node.RoomCreator)
	if !ok {
		return &Error{Status: http.StatusNotImplemented, Message: "this node does not create rooms"}
	}
	var req CreateRoomRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	members := req.Members
	if req.All {
		if len(members) > 0 {
			return &Error{Status: http.StatusBadRequest, Message: "name members or ask for all of them, not both"}
		}
		ms, err := s.backend.Members(r.Context())
		if err != nil {
			return s.failed("create room", err)
		}
		for _, m := range ms {
			members = append(members, m.PeerID)
		}
	}
	create := rc.CreateRoomNamed
	if req.NoHistory {
		create = rc.CreateRoomNoHistory
	}
	room, err := create(r.Context(), req.Name, members)
	if errors.Is(err, node.ErrUnknownRoom) { // only a member can be unknown here
		return &Error{Status: http.StatusNotFound, Message: err.Error(), Hint: "'charla members' lists the members"}
	}
	if err != nil {
		return s.failed("create room", err)
	}
	return writeJSON(w, http.StatusCreated, room)
}
