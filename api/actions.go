package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/charla-im/charla/node"
)

// Edits, deletes, reactions and replies: POST requests on one message,
// answered with the message's view after the change.

// EditRequest is the body of POST /api/rooms/{room}/messages/{id}/edit.
type EditRequest struct {
	Text string `json:"text"`
}

// DeleteRequest is the body of POST /api/rooms/{room}/messages/{id}/delete.
type DeleteRequest struct{}

// ReactRequest is the body of POST /api/rooms/{room}/messages/{id}/reactions.
// The same emoji again takes this member's reaction back.
type ReactRequest struct {
	Emoji string `json:"emoji"`
}

func (s *Server) actor() (node.Actor, error) {
	a, ok := s.backend.(node.Actor)
	if !ok {
		return nil, &Error{Status: http.StatusNotImplemented, Message: "this node does not edit, delete or react"}
	}
	return a, nil
}

func (s *Server) editMessage(w http.ResponseWriter, r *http.Request) error {
	a, err := s.actor()
	if err != nil {
		return err
	}
	var req EditRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return &Error{Status: http.StatusBadRequest, Message: "empty message"}
	}
	room := r.PathValue("room")
	msg, err := a.Edit(r.Context(), room, r.PathValue("id"), req.Text)
	if err != nil {
		return s.failed("edit", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, msg)
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	a, err := s.actor()
	if err != nil {
		return err
	}
	var req DeleteRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	room := r.PathValue("room")
	msg, err := a.Delete(r.Context(), room, r.PathValue("id"))
	if err != nil {
		return s.failed("delete", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, msg)
}

func (s *Server) react(w http.ResponseWriter, r *http.Request) error {
	a, err := s.actor()
	if err != nil {
		return err
	}
	var req ReactRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	room := r.PathValue("room")
	msg, err := a.React(r.Context(), room, r.PathValue("id"), req.Emoji)
	if err != nil {
		return s.failed("react", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, msg)
}

// reply posts req as a reply to message req.ReplyTo.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, room string, req SendRequest) error {
	a, err := s.actor()
	if err != nil {
		return err
	}
	msg, err := a.Reply(r.Context(), room, req.ReplyTo, req.Text)
	if err != nil {
		return s.failed("reply", roomError(room, err))
	}
	return writeJSON(w, http.StatusCreated, msg)
}

func messagePath(room, id, action string) (string, error) {
	path, err := messagesPath(room)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", &Error{Status: http.StatusBadRequest, Message: "no message named"}
	}
	return path + "/" + url.PathEscape(id) + "/" + action, nil
}

// Edit replaces the text of one of this node's messages.
func (c *Client) Edit(ctx context.Context, room, id, text string) (node.Message, error) {
	var msg node.Message
	path, err := messagePath(room, id, "edit")
	if err != nil {
		return msg, err
	}
	err = c.call(ctx, http.MethodPost, path, EditRequest{Text: text}, &msg)
	return msg, err
}

// Delete deletes a message (this node's own, or any as an admin).
func (c *Client) Delete(ctx context.Context, room, id string) (node.Message, error) {
	var msg node.Message
	path, err := messagePath(room, id, "delete")
	if err != nil {
		return msg, err
	}
	err = c.call(ctx, http.MethodPost, path, DeleteRequest{}, &msg)
	return msg, err
}

// React toggles this node's reaction emoji on a message.
func (c *Client) React(ctx context.Context, room, id, emoji string) (node.Message, error) {
	var msg node.Message
	path, err := messagePath(room, id, "reactions")
	if err != nil {
		return msg, err
	}
	err = c.call(ctx, http.MethodPost, path, ReactRequest{Emoji: emoji}, &msg)
	return msg, err
}

// Reply posts text to room as a reply to message id.
func (c *Client) Reply(ctx context.Context, room, id, text string) (node.Message, error) {
	var msg node.Message
	path, err := messagesPath(room)
	if err != nil {
		return msg, err
	}
	err = c.call(ctx, http.MethodPost, path, SendRequest{Text: text, ReplyTo: id}, &msg)
	return msg, err
}

var _ node.Actor = (*Client)(nil)
