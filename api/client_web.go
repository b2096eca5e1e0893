package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/charla-im/charla/node"
)

// Search returns up to limit messages matching every word of query, newest
// first. A limit of 0 asks for the server's default.
func (c *Client) Search(ctx context.Context, query string, limit int) ([]node.Message, error) {
	v := url.Values{"q": {query}}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var msgs []node.Message
	err := c.call(ctx, http.MethodGet, "/api/search?"+v.Encode(), nil, &msgs)
	return msgs, err
}

// Upload posts the bytes of r as a file called name to room.
func (c *Client) Upload(ctx context.Context, room, name string, r io.Reader) (node.File, error) {
	var f node.File
	if room == "" {
		return f, &Error{Status: http.StatusBadRequest, Message: "no room named"}
	}
	p := "/api/rooms/" + url.PathEscape(room) + "/upload?" + url.Values{"name": {name}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+p, r)
	if err != nil {
		return f, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return f, fmt.Errorf("upload %s: %w", name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e = &Error{Message: "upload " + name + ": API answered " + resp.Status}
		}
		e.Status = resp.StatusCode
		return f, e
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("upload %s: decode answer: %w", name, err)
	}
	return f, nil
}

// Content returns the plaintext of file id, fetched by the node first if
// need be. The caller closes it.
func (c *Client) Content(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/files/"+url.PathEscape(id)+"/content", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
