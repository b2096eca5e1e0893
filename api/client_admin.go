package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/charla-im/charla/node"
)

// Audit returns the node's audit: every roster op, the room ops it can
// read and the key rotations it can open, verified. full checks every
// author's whole feed too.
func (c *Client) Audit(ctx context.Context, full bool) (node.AuditReport, error) {
	var rep node.AuditReport
	p := "/api/audit"
	if full {
		p += "?full=true"
	}
	err := c.call(ctx, http.MethodGet, p, nil, &rep)
	return rep, err
}

// ErrExportCut means the node's export ended before it was whole.
var ErrExportCut = errors.New("the export ended before it was whole")

// Export streams the node's export to w and returns its summary, which
// arrives after the body: an export that stops part way fails with
// ErrExportCut, having written only part of it to w.
func (c *Client) Export(ctx context.Context, w io.Writer, opts node.ExportOptions) (node.ExportSummary, error) {
	var sum node.ExportSummary
	q := url.Values{"format": {opts.Format}}
	if opts.Room != "" {
		q.Set("room", opts.Room)
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.Format(time.RFC3339Nano))
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/export?"+q.Encode(), nil)
	if err != nil {
		return sum, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return sum, fmt.Errorf("%w: %v (the node logs why)", ErrExportCut, err)
		}
		return sum, fmt.Errorf("export: %w", err)
	}
	t := resp.Trailer
	sum.ManifestSHA256 = t.Get(TrailerManifestSHA256)
	if sum.ManifestSHA256 == "" {
		return sum, fmt.Errorf("%w: no summary after the body (the node logs why)", ErrExportCut)
	}
	sum.Rooms, _ = strconv.Atoi(t.Get(TrailerExportRooms))
	sum.Messages, _ = strconv.Atoi(t.Get(TrailerExportMessages))
	sum.Envelopes, _ = strconv.Atoi(t.Get(TrailerExportEnvelopes))
	return sum, nil
}

// VerifyExport asks the node to check manifest entries (at most
// node.MaxExportCheck) against its store.
func (c *Client) VerifyExport(ctx context.Context, check node.ExportCheck) (node.ExportVerdict, error) {
	var v node.ExportVerdict
	err := c.call(ctx, http.MethodPost, "/api/export/verify", check, &v)
	return v, err
}
