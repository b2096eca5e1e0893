package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/charla-im/charla/node"
)

// maxEventBytes bounds one event frame a client accepts: a message of the
// largest text, escaped as JSON, fits with room to spare.
const maxEventBytes = 4 << 20

// Client calls the API of a running node. Its methods mirror node.Backend.
// A request that finds no node listening fails with an error matching
// ErrNoNode; one the server refuses fails with *Error.
type Client struct {
	base  string // http://host:port
	token string
	hc    *http.Client
}

// NewClient returns a client of the node that published info.
func NewClient(info Info) *Client {
	return &Client{
		base:  "http://" + info.API,
		token: info.Token,
		hc: &http.Client{
			Transport: &http.Transport{
				Proxy:           nil, // the API is on loopback; never hand the token to a proxy
				DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				MaxIdleConns:    4,
				IdleConnTimeout: 30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Status returns the node's view of itself.
func (c *Client) Status(ctx context.Context) (node.Status, error) {
	var st node.Status
	err := c.call(ctx, http.MethodGet, "/api/status", nil, &st)
	return st, err
}

// Rooms lists the rooms the node can read.
func (c *Client) Rooms(ctx context.Context) ([]node.Room, error) {
	var rooms []node.Room
	err := c.call(ctx, http.MethodGet, "/api/rooms", nil, &rooms)
	return rooms, err
}

// Members lists the workspace's members.
func (c *Client) Members(ctx context.Context) ([]node.Member, error) {
	var members []node.Member
	err := c.call(ctx, http.MethodGet, "/api/members", nil, &members)
	return members, err
}

// Peers lists the peers the node knows how to reach.
func (c *Client) Peers(ctx context.Context) ([]node.Peer, error) {
	var peers []node.Peer
	err := c.call(ctx, http.MethodGet, "/api/peers", nil, &peers)
	return peers, err
}

// Doctor asks the node to check the network, multicast, its peer port and
// which members answer. It takes up to about 15 seconds.
func (c *Client) Doctor(ctx context.Context) (node.DoctorReport, error) {
	var rep node.DoctorReport
	err := c.call(ctx, http.MethodGet, "/api/doctor", nil, &rep)
	return rep, err
}

// Send posts text to room, named as node.Backend.Send accepts it, and returns
// the message once the node has stored it.
func (c *Client) Send(ctx context.Context, room, text string) (node.Message, error) {
	var msg node.Message
	path, err := messagesPath(room)
	if err != nil {
		return msg, err
	}
	err = c.call(ctx, http.MethodPost, path, SendRequest{Text: text}, &msg)
	return msg, err
}

// Log returns the limit newest messages of room, oldest first. A limit of 0
// asks for the server's default.
func (c *Client) Log(ctx context.Context, room string, limit int) ([]node.Message, error) {
	var msgs []node.Message
	path, err := messagesPath(room)
	if err != nil {
		return nil, err
	}
	if limit != 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	err = c.call(ctx, http.MethodGet, path, nil, &msgs)
	return msgs, err
}

// CreateRoom creates a channel called name for the members named (display
// names or peer IDs) and the node, or, with all, for every current member.
func (c *Client) CreateRoom(ctx context.Context, name string, members []string, all bool) (node.Room, error) {
	var room node.Room
	err := c.call(ctx, http.MethodPost, "/api/rooms", CreateRoomRequest{Name: name, Members: members, All: all}, &room)
	return room, err
}

// CreateRoomWith creates a room as the request describes it (no_history too).
func (c *Client) CreateRoomWith(ctx context.Context, req CreateRoomRequest) (node.Room, error) {
	var room node.Room
	err := c.call(ctx, http.MethodPost, "/api/rooms", req, &room)
	return room, err
}

// LogBefore returns the limit messages of room just before message before,
// oldest first: the page above the oldest one the caller holds. An empty
// list means before is the room's oldest message. A limit of 0 asks for the
// server's default.
func (c *Client) LogBefore(ctx context.Context, room, before string, limit int) ([]node.Message, error) {
	var msgs []node.Message
	path, err := messagesPath(room)
	if err != nil {
		return nil, err
	}
	q := url.Values{"before": {before}}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	err = c.call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &msgs)
	return msgs, err
}

// Invite asks the node for a one-time invite code valid for expires.
func (c *Client) Invite(ctx context.Context, expires time.Duration) (string, error) {
	var resp InviteResponse
	err := c.call(ctx, http.MethodPost, "/api/invites", InviteRequest{Expires: expires.String()}, &resp)
	return resp.Code, err
}

// LoginURL asks the node for a fresh address of its web UI, carrying a
// one-time login token valid for LoginExpiry.
func (c *Client) LoginURL(ctx context.Context) (string, error) {
	var resp LoginURLResponse
	err := c.call(ctx, http.MethodPost, "/api/login-urls", LoginURLRequest{}, &resp)
	return resp.URL, err
}

func messagesPath(room string) (string, error) {
	if room == "" {
		return "", &Error{Status: http.StatusBadRequest, Message: "no room named"}
	}
	return "/api/rooms/" + url.PathEscape(room) + "/messages", nil
}

// call sends a request with body (if any) as JSON and decodes the answer
// into out.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// do sends a request and returns the response if its status is 2xx.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
			return nil, fmt.Errorf("%w at %s: %w", ErrNoNode, req.URL.Host, op.Err)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e = &Error{Message: fmt.Sprintf("%s %s: API answered %s", method, path, resp.Status)}
		}
		e.Status = resp.StatusCode
		return nil, e
	}
	return resp, nil
}

// EventStream is a subscription to the node's events.
type EventStream struct {
	body io.Closer
	sc   *bufio.Scanner
}

// Events subscribes to the node's events. It returns once the node has
// accepted the subscription: every event after that arrives, in order, from
// Next. The stream ends when ctx is done or Close is called.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/events", nil)
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /api/events: answered %q, not an event stream", mt)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	return &EventStream{body: resp.Body, sc: sc}, nil
}

// Next waits for the next event. It returns io.EOF when the node ends the
// stream, and an error once the stream's context is done or it is closed.
func (s *EventStream) Next() (node.Event, error) {
	var typ string
	var data []byte
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" { // the end of a frame
			if data == nil {
				typ = ""
				continue
			}
			var ev node.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return node.Event{}, fmt.Errorf("decode event: %w", err)
			}
			if ev.Type == "" {
				ev.Type = typ
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") { // a comment: the heartbeat
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			typ = value
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
	if err := s.sc.Err(); err != nil {
		return node.Event{}, fmt.Errorf("read events: %w", err)
	}
	return node.Event{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// SendFile posts the file at path, which must be absolute and readable by
// the node, to room.
func (c *Client) SendFile(ctx context.Context, room, path string) (node.File, error) {
	var f node.File
	if room == "" {
		return f, &Error{Status: http.StatusBadRequest, Message: "no room named"}
	}
	err := c.call(ctx, http.MethodPost, "/api/rooms/"+url.PathEscape(room)+"/files", FileRequest{Path: path}, &f)
	return f, err
}

// Files lists the files of room, or of every readable room for "".
func (c *Client) Files(ctx context.Context, room string) ([]node.File, error) {
	var fs []node.File
	p := "/api/files"
	if room != "" {
		p += "?room=" + url.QueryEscape(room)
	}
	err := c.call(ctx, http.MethodGet, p, nil, &fs)
	return fs, err
}

// File describes one file by its ID.
func (c *Client) File(ctx context.Context, id string) (node.File, error) {
	var f node.File
	err := c.call(ctx, http.MethodGet, "/api/files/"+url.PathEscape(id), nil, &f)
	return f, err
}

// GetFile asks the node to fetch file id and write it to path (absolute),
// and returns once it is complete and verified.
func (c *Client) GetFile(ctx context.Context, id, path string) (node.File, error) {
	var f node.File
	err := c.call(ctx, http.MethodPost, "/api/files/"+url.PathEscape(id)+"/get", FileRequest{Path: path}, &f)
	return f, err
}

// FetchFile asks the node to fetch file id and keep it, verified, without
// writing it out, and returns once it is complete.
func (c *Client) FetchFile(ctx context.Context, id string) (node.File, error) {
	var f node.File
	err := c.call(ctx, http.MethodPost, "/api/files/"+url.PathEscape(id)+"/fetch", struct{}{}, &f)
	return f, err
}
