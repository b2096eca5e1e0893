package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

// verifyBatch is how many manifest entries one verify request carries: well
// under node.MaxExportCheck and the API's body limit.
const verifyBatch = 2000

// maxProblemLines bounds the problems verify lists for a person; --json
// lists them all.
const maxProblemLines = 50

func exportCommand() *command {
	var room, since, format, out string
	var asJSON bool
	return &command{
		name:  "export",
		args:  "[--room ROOM] [--since DATE] [--format json|html|md] -o FILE | verify FILE [--json]",
		short: "write what you can read to a file, with a manifest; or verify one",
		long: `export writes every room you can read (or only --room ROOM), from --since DATE
on (2026-11-26, your local midnight, or an RFC 3339 time), to FILE: the messages
with their authors, times and room names, edits and deletes applied as the UI
shows them, replies, reactions with who reacted, and file names with the SHA-256
of their manifests. --format is json, html (one self-contained page that reads
in a browser and prints one room per page) or md; by default it follows FILE's
extension. -o - writes to standard output. The file is written whole or not at
all, readable by you alone. A room you are not a member of is refused: this node
holds only its ciphertext.

The export ends with a manifest: the ID and the SHA-256 of the bytes of every
envelope it shows (each message, edit, delete and reaction). Every member's
node stores every envelope of the workspace byte for byte, readable or not, so

  charla export verify FILE

run against any member's node checks each one: matched (held, same bytes,
valid signature), mismatched, missing, or purged by retention there. It exits
with status 1 unless every entry matched or was purged, and the manifest's
SHA-256 is the one the export states. With --json it prints one JSON object.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&room, "room", "", "export only `ROOM` (general, #general, @Name or a room ID)")
			fs.StringVar(&since, "since", "", "only messages from `DATE` on: 2026-11-26 (local midnight) or an RFC 3339 time")
			fs.StringVar(&format, "format", "", "the `FORMAT`: json, html or md (default: from FILE's extension)")
			fs.StringVar(&out, "o", "", "write the export to `FILE` (- for standard output)")
			fs.BoolVar(&asJSON, "json", false, "verify: print one JSON object")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 && args[0] == "verify" {
				if len(args) != 2 {
					return e.usagef("export verify needs one FILE, got %q", args[1:])
				}
				if room != "" || since != "" || format != "" || out != "" {
					return e.usagef("export verify takes only FILE and --json")
				}
				return verifyExport(ctx, e, args[1], asJSON)
			}
			if len(args) != 0 {
				return e.usagef("export takes no arguments but 'verify FILE', got %q", args)
			}
			if asJSON {
				return e.usagef("--json is for export verify; choose the export's format with --format json")
			}
			if out == "" {
				return e.usagef("export needs -o FILE (or -o - for standard output)")
			}
			if format == "" {
				format = formatOf(out)
				if format == "" {
					return e.usagef("cannot tell the format from %q: give --format json, html or md", out)
				}
			}
			format = strings.ToLower(format)
			if format != node.FormatJSON && format != node.FormatHTML && format != node.FormatMarkdown {
				return e.usagef("--format %q: choose json, html or md", format)
			}
			opts := node.ExportOptions{Room: room, Format: format}
			if since != "" {
				t, err := api.ParseSince(since, time.Local)
				if err != nil {
					return e.usagef("--since %v", err)
				}
				opts.Since = t
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if out == "-" {
				sum, err := c.Export(ctx, e.stdout, opts)
				if err != nil {
					return e.apiError(err)
				}
				_, err = fmt.Fprintln(e.stderr, exportSummary("standard output", sum))
				return err
			}
			sum, err := exportToFile(ctx, c, out, opts)
			if err != nil {
				return e.apiError(err)
			}
			_, err = fmt.Fprintln(e.stdout, exportSummary(out, sum))
			return err
		},
	}
}

// formatOf is the export format FILE's extension names, or "".
func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return node.FormatJSON
	case ".html", ".htm":
		return node.FormatHTML
	case ".md", ".markdown":
		return node.FormatMarkdown
	}
	return ""
}

func exportSummary(where string, s node.ExportSummary) string {
	return fmt.Sprintf("wrote %s: %d %s, %d %s, %d envelopes in the manifest; manifest SHA-256 %s",
		where, s.Rooms, plural(s.Rooms, "room", "rooms"), s.Messages, plural(s.Messages, "message", "messages"),
		s.Envelopes, s.ManifestSHA256)
}

// exportToFile writes the export beside path and renames it into place once
// whole, so that a failed export leaves no file that looks complete.
func exportToFile(ctx context.Context, c *api.Client, path string, opts node.ExportOptions) (node.ExportSummary, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part-*")
	if err != nil {
		return node.ExportSummary{}, withHint(fmt.Errorf("export: %w", err), "choose a FILE in a directory you can write to")
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	// CreateTemp makes it 0600: an export holds the office's messages.
	sum, err := c.Export(ctx, f, opts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return sum, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return sum, fmt.Errorf("export: %w", err)
	}
	return sum, nil
}

// verifyReport is what export verify found in one file.
type verifyReport struct {
	File     string             `json:"file"`
	Manifest node.ManifestInfo  `json:"manifest"`
	Verdict  node.ExportVerdict `json:"verdict"`
	OK       bool               `json:"ok"`
}

func verifyExport(ctx context.Context, e *env, path string, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("export verify: %w", err)
	}
	defer f.Close()
	c, err := e.client()
	if err != nil {
		return err
	}
	rep := verifyReport{File: path, Verdict: node.ExportVerdict{
		Mismatched: []node.ExportProblem{}, Missing: []node.ExportProblem{}, Purged: []node.ExportProblem{},
	}}
	var batch []node.ManifestEntry
	var ws string
	var apiErr error // the node's, not the file's
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		v, err := c.VerifyExport(ctx, node.ExportCheck{Workspace: ws, Entries: batch})
		if err != nil {
			apiErr = e.apiError(err)
			return apiErr
		}
		batch = batch[:0]
		r := &rep.Verdict
		r.Checked += v.Checked
		r.Matched += v.Matched
		r.Mismatched = append(r.Mismatched, v.Mismatched...)
		r.Missing = append(r.Missing, v.Missing...)
		r.Purged = append(r.Purged, v.Purged...)
		return nil
	}
	info, err := node.ReadManifest(f, func(workspace string, m node.ManifestEntry) error {
		ws = workspace
		batch = append(batch, m)
		if len(batch) == verifyBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return withHint(fmt.Errorf("export verify %s: %w", path, err), "give the file 'charla export' wrote, whole")
	}
	rep.Manifest = info
	v := rep.Verdict
	rep.OK = len(v.Mismatched) == 0 && len(v.Missing) == 0 && info.Stated == info.Computed && info.Complete
	if asJSON {
		if err := printJSON(e.stdout, rep); err != nil {
			return err
		}
	} else if err := printVerify(e.stdout, rep); err != nil {
		return err
	}
	if !rep.OK {
		return withHint(fmt.Errorf("export verify: %s does not match this node's store", path),
			"a mismatched or missing envelope means the export, or this store, was changed; check against another member's node too")
	}
	return nil
}

func printVerify(w io.Writer, rep verifyReport) error {
	info, v := rep.Manifest, rep.Verdict
	fmt.Fprintf(w, "%s: %s export of workspace %s, %d envelopes in its manifest\n", rep.File, info.Format, short(info.Workspace), info.Entries)
	fmt.Fprintf(w, "matched     %d (held here, same bytes, valid signature)\n", v.Matched)
	problems := func(label string, ps []node.ExportProblem) {
		fmt.Fprintf(w, "%-11s %d\n", label, len(ps))
		for i, p := range ps {
			if i == maxProblemLines {
				fmt.Fprintf(w, "  … and %d more (--json lists them all)\n", len(ps)-i)
				break
			}
			fmt.Fprintf(w, "  %s %s: %s", p.ID, p.Kind, p.Detail)
			if p.Got != "" {
				fmt.Fprintf(w, " (export %s…, held %s…)", p.Want[:12], p.Got[:12])
			}
			fmt.Fprintln(w)
		}
	}
	problems("mismatched", v.Mismatched)
	problems("missing", v.Missing)
	problems("purged", v.Purged)
	if info.Stated == info.Computed {
		fmt.Fprintf(w, "manifest SHA-256 %s, as the export states\n", info.Computed)
	} else {
		fmt.Fprintf(w, "manifest SHA-256 %s, but the export states %s: its manifest was changed\n", info.Computed, info.Stated)
	}
	if rep.OK {
		_, err := fmt.Fprintln(w, "ok: every envelope of the export is in this node's store, byte for byte")
		return err
	}
	return nil
}
