package node

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Reading an export's manifest back, for `charla export verify`. An export
// may come from anyone, so the reader trusts nothing in it: it holds one
// line or one JSON token at a time, bounds every line, and checks every
// entry's form.

// MaxManifestLine bounds one line of an HTML or Markdown export as the
// manifest reader reads it; longer lines only hold escaped message text.
const MaxManifestLine = 16 << 20

// maxKindBytes bounds an entry's kind.
const maxKindBytes = 16

// ManifestInfo is what ReadManifest found besides the entries.
type ManifestInfo struct {
	Format    string `json:"format"` // json, html, md
	Workspace string `json:"workspace"`
	Entries   int    `json:"entries"`
	Stated    string `json:"stated_sha256"`   // the manifest SHA-256 the export states
	Computed  string `json:"computed_sha256"` // the SHA-256 of the entries read (ManifestDigest)
	Complete  bool   `json:"complete"`        // the export's end was found: it was not cut short
}

// ReadManifest reads the manifest of the export r and calls fn for each
// entry, in order, with the workspace the export names. It fails if r
// holds no manifest, an entry is malformed, or fn fails.
func ReadManifest(r io.Reader, fn func(workspace string, e ManifestEntry) error) (ManifestInfo, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return ManifestInfo{}, errors.New("read manifest: the file is empty")
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			br.ReadByte()
			continue
		}
		if b[0] == '{' {
			return readJSONManifest(br, fn)
		}
		return readTextManifest(br, fn)
	}
}

// manifestSum accumulates ManifestDigest.
type manifestSum struct {
	h hash.Hash
	n int
}

func newManifestSum() *manifestSum { return &manifestSum{h: sha256.New()} }

// add checks e's form, normalises its case and adds it to the digest.
func (s *manifestSum) add(e *ManifestEntry) error {
	e.ID, e.SHA256 = strings.ToLower(e.ID), strings.ToLower(e.SHA256)
	if !isHex64(e.ID) || !isHex64(e.SHA256) {
		return fmt.Errorf("entry %d: want a 64-hex-digit ID and SHA-256, got %.70q %.70q", s.n+1, e.ID, e.SHA256)
	}
	if e.Kind == "" || len(e.Kind) > maxKindBytes || strings.IndexFunc(e.Kind, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
		return fmt.Errorf("entry %d: kind %.20q is not a word", s.n+1, e.Kind)
	}
	s.n++
	fmt.Fprintf(s.h, "%s %s\n", e.ID, e.SHA256)
	return nil
}

func (s *manifestSum) sum() string { return hex.EncodeToString(s.h.Sum(nil)) }

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func readTextManifest(br *bufio.Reader, fn func(string, ManifestEntry) error) (ManifestInfo, error) {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), MaxManifestLine)
	var info ManifestInfo
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return strings.TrimRight(sc.Text(), " \r"), true
	}
	for {
		l, ok := next()
		if !ok {
			if err := sc.Err(); err != nil {
				return info, fmt.Errorf("read manifest: line %d: %w", line+1, err)
			}
			return info, errors.New("read manifest: no charla export manifest in the file (is it an export, whole?)")
		}
		if l == manifestHTMLOpen {
			info.Format = FormatHTML
			break
		}
		if l == manifestMDOpen {
			info.Format = FormatMarkdown
			break
		}
	}
	if l, _ := next(); l != manifestMagic {
		return info, fmt.Errorf("read manifest: line %d: want %q, got %.60q", line, manifestMagic, l)
	}
	l, _ := next()
	ws, ok := strings.CutPrefix(l, manifestWorkspace)
	if !ok || !isHex64(ws) {
		return info, fmt.Errorf("read manifest: line %d: want the workspace ID, got %.80q", line, l)
	}
	info.Workspace = ws
	sum := newManifestSum()
	for {
		l, ok := next()
		if !ok {
			if err := sc.Err(); err != nil {
				return info, fmt.Errorf("read manifest: line %d: %w", line+1, err)
			}
			return info, fmt.Errorf("read manifest: the file ends after %d entries, before the manifest's end: it was cut short", sum.n)
		}
		if rest, ok := strings.CutPrefix(l, manifestEnd); ok {
			f := strings.Fields(rest)
			if len(f) != 2 {
				return info, fmt.Errorf("read manifest: line %d: want \"end COUNT SHA256\", got %.80q", line, l)
			}
			count, err := strconv.Atoi(f[0])
			if err != nil || count != sum.n {
				return info, fmt.Errorf("read manifest: line %d: the manifest says %s entries, %d are listed", line, f[0], sum.n)
			}
			info.Stated, info.Entries, info.Computed, info.Complete = strings.ToLower(f[1]), sum.n, sum.sum(), true
			return info, nil
		}
		f := strings.Fields(l)
		if len(f) != 3 {
			return info, fmt.Errorf("read manifest: line %d: want \"ID SHA256 KIND\", got %.80q", line, l)
		}
		e := ManifestEntry{ID: f[0], SHA256: f[1], Kind: f[2]}
		if err := sum.add(&e); err != nil {
			return info, fmt.Errorf("read manifest: line %d: %w", line, err)
		}
		if err := fn(info.Workspace, e); err != nil {
			return info, err
		}
	}
}

func readJSONManifest(br *bufio.Reader, fn func(string, ManifestEntry) error) (ManifestInfo, error) {
	info := ManifestInfo{Format: FormatJSON}
	dec := json.NewDecoder(br)
	fail := func(err error) (ManifestInfo, error) {
		return info, fmt.Errorf("read manifest: JSON at byte %d: %w", dec.InputOffset(), err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return fail(err)
	}
	var sum *manifestSum
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fail(fmt.Errorf("%q appears twice", key))
		}
		seen[key] = true
		switch key {
		case "charla_export":
			var v int
			if err := dec.Decode(&v); err != nil || v != 1 {
				return fail(fmt.Errorf("charla_export is not 1: not an export this charla reads"))
			}
		case "workspace":
			if err := dec.Decode(&info.Workspace); err != nil || !isHex64(info.Workspace) {
				return fail(errors.New("workspace is not a 64-hex-digit ID"))
			}
		case "manifest_sha256":
			if err := dec.Decode(&info.Stated); err != nil {
				return fail(err)
			}
			info.Stated = strings.ToLower(info.Stated)
		case "complete":
			if err := dec.Decode(&info.Complete); err != nil {
				return fail(err)
			}
		case "manifest":
			if info.Workspace == "" {
				return fail(errors.New("the manifest comes before the workspace it belongs to"))
			}
			sum = newManifestSum()
			if err := expectDelim(dec, '['); err != nil {
				return fail(err)
			}
			for dec.More() {
				var e ManifestEntry
				if err := dec.Decode(&e); err != nil {
					return fail(fmt.Errorf("entry %d: %w", sum.n+1, err))
				}
				if err := sum.add(&e); err != nil {
					return fail(err)
				}
				if err := fn(info.Workspace, e); err != nil {
					return info, err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return fail(err)
			}
		default:
			if err := skipJSON(dec); err != nil {
				return fail(err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fail(err)
	}
	if sum == nil {
		return info, errors.New("read manifest: the JSON holds no manifest (is it a charla export?)")
	}
	info.Entries, info.Computed = sum.n, sum.sum()
	return info, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}

// skipJSON reads past one value token by token, so that a large value (the
// rooms and their messages) is never held whole.
func skipJSON(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
