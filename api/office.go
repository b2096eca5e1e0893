package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/charla-im/charla/node"
)

// Office control: roles, removal, renames, policy, invites and room
// membership (docs/API.md "Office control").

// RoleRequest is the body of POST /api/members/{member}/role.
type RoleRequest struct {
	Role string `json:"role"` // member, admin or owner
}

// NameRequest is the body of PUT /api/me.
type NameRequest struct {
	Name string `json:"name"`
}

// PolicyRequest is the body of POST /api/policy: one setting. Room, if set,
// names the room a retention applies to.
type PolicyRequest struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Room  string `json:"room,omitempty"`
}

// RoomMemberRequest is the body of POST /api/rooms/{room}/members.
type RoomMemberRequest struct {
	Member string `json:"member"` // display name or peer ID
}

func (s *Server) routeOffice(mux *router) {
	mux.Handle("/api/members/{member}/role", methods{http.MethodPost: s.setRole})
	mux.Handle("/api/members/{member}", methods{http.MethodDelete: s.removeMember})
	mux.Handle("/api/me", methods{http.MethodPut: s.rename})
	mux.Handle("/api/policy", methods{http.MethodGet: s.policy, http.MethodPost: s.setPolicy})
	mux.Handle("/api/invites/{id}/revoke", methods{http.MethodPost: s.revokeInvite})
	mux.Handle("/api/rooms/{room}/members", methods{http.MethodPost: s.roomAdd})
	mux.Handle("/api/rooms/{room}/members/{member}", methods{http.MethodDelete: s.roomRemove})
	mux.Handle("/api/rooms/{room}/leave", methods{http.MethodPost: s.roomLeave})
}

// office returns the backend's office control, or an error to answer with.
func (s *Server) office() (node.Office, error) {
	o, ok := s.backend.(node.Office)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Message: "this node has no office control"}
	}
	return o, nil
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	var req RoleRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := o.SetRole(r.Context(), r.PathValue("member"), req.Role)
	if err != nil {
		return s.failed("set role", err)
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	m, err := o.RemoveMember(r.Context(), r.PathValue("member"))
	if err != nil {
		return s.failed("remove member", err)
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) rename(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	var req NameRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := o.Rename(r.Context(), req.Name)
	if err != nil {
		return s.failed("rename", err)
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) policy(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	p, err := o.Policy(r.Context())
	if err != nil {
		return s.failed("policy", err)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) setPolicy(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	var req PolicyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	p, err := o.SetPolicy(r.Context(), req.Key, req.Value, req.Room)
	if err != nil {
		return s.failed("set policy", err)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) invites(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	all, err := boolParam(r, "all")
	if err != nil {
		return err
	}
	vs, err := o.Invites(r.Context(), all)
	if err != nil {
		return s.failed("invites", err)
	}
	return writeJSON(w, http.StatusOK, vs)
}

func (s *Server) revokeInvite(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	v, err := o.RevokeInvite(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.failed("revoke invite", err)
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) roomAdd(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	var req RoomMemberRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	room, err := o.RoomAdd(r.Context(), r.PathValue("room"), req.Member)
	if err != nil {
		return s.failed("add to room", err)
	}
	return writeJSON(w, http.StatusOK, room)
}

func (s *Server) roomRemove(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	room, err := o.RoomRemove(r.Context(), r.PathValue("room"), r.PathValue("member"))
	if err != nil {
		return s.failed("remove from room", err)
	}
	return writeJSON(w, http.StatusOK, room)
}

func (s *Server) roomLeave(w http.ResponseWriter, r *http.Request) error {
	o, err := s.office()
	if err != nil {
		return err
	}
	room, err := o.RoomLeave(r.Context(), r.PathValue("room"))
	if err != nil {
		return s.failed("leave room", err)
	}
	return writeJSON(w, http.StatusOK, room)
}

// SetRole makes a member a member, admin or owner.
func (c *Client) SetRole(ctx context.Context, member, role string) (node.Member, error) {
	var m node.Member
	err := c.call(ctx, http.MethodPost, "/api/members/"+url.PathEscape(member)+"/role", RoleRequest{Role: role}, &m)
	return m, err
}

// RemoveMember removes a member from the workspace.
func (c *Client) RemoveMember(ctx context.Context, member string) (node.Member, error) {
	var m node.Member
	err := c.call(ctx, http.MethodDelete, "/api/members/"+url.PathEscape(member), nil, &m)
	return m, err
}

// Rename changes this member's display name.
func (c *Client) Rename(ctx context.Context, name string) (node.Member, error) {
	var m node.Member
	err := c.call(ctx, http.MethodPut, "/api/me", NameRequest{Name: name}, &m)
	return m, err
}

// Policy returns the workspace's policy.
func (c *Client) Policy(ctx context.Context) (node.Policy, error) {
	var p node.Policy
	err := c.call(ctx, http.MethodGet, "/api/policy", nil, &p)
	return p, err
}

// SetPolicy sets one policy setting (room only for retention-days).
func (c *Client) SetPolicy(ctx context.Context, key, value, room string) (node.Policy, error) {
	var p node.Policy
	err := c.call(ctx, http.MethodPost, "/api/policy", PolicyRequest{Key: key, Value: value, Room: room}, &p)
	return p, err
}

// InviteAs creates an invite code for a member or an admin.
func (c *Client) InviteAs(ctx context.Context, expires time.Duration, role string) (string, error) {
	var resp InviteResponse
	err := c.call(ctx, http.MethodPost, "/api/invites", InviteRequest{Expires: expires.String(), Role: role}, &resp)
	return resp.Code, err
}

// Invites lists the workspace's invites: pending ones, or all with all.
func (c *Client) Invites(ctx context.Context, all bool) ([]node.InviteView, error) {
	var vs []node.InviteView
	path := "/api/invites"
	if all {
		path += "?all=1"
	}
	err := c.call(ctx, http.MethodGet, path, nil, &vs)
	return vs, err
}

// RevokeInvite revokes the invite whose ID starts with id.
func (c *Client) RevokeInvite(ctx context.Context, id string) (node.InviteView, error) {
	var v node.InviteView
	err := c.call(ctx, http.MethodPost, "/api/invites/"+url.PathEscape(id)+"/revoke", struct{}{}, &v)
	return v, err
}

// RoomAdd lets a member read a room.
func (c *Client) RoomAdd(ctx context.Context, room, member string) (node.Room, error) {
	var r node.Room
	err := c.call(ctx, http.MethodPost, "/api/rooms/"+url.PathEscape(room)+"/members", RoomMemberRequest{Member: member}, &r)
	return r, err
}

// RoomRemove takes a member out of a room.
func (c *Client) RoomRemove(ctx context.Context, room, member string) (node.Room, error) {
	var r node.Room
	err := c.call(ctx, http.MethodDelete, "/api/rooms/"+url.PathEscape(room)+"/members/"+url.PathEscape(member), nil, &r)
	return r, err
}

// RoomLeave takes this member out of a room.
func (c *Client) RoomLeave(ctx context.Context, room string) (node.Room, error) {
	var r node.Room
	err := c.call(ctx, http.MethodPost, "/api/rooms/"+url.PathEscape(room)+"/leave", struct{}{}, &r)
	return r, err
}
