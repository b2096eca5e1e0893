package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// writeExport writes an export of one room with the given texts in format,
// through the format writers alone, and returns it with its manifest digest.
func writeExport(t *testing.T, format string, texts ...string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	fw, err := newExportWriter(format, &buf)
	if err != nil {
		t.Fatal(err)
	}
	ws := strings.Repeat("ab", 32)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fw.begin(exportHeader{Workspace: ws, WorkspaceName: "Acme", ExportedByName: "Ana", Rooms: []string{"#general"}}))
	must(fw.room(ExportRoom{ID: strings.Repeat("cd", 32), Name: "#general", Kind: "channel"}))
	var entries []ManifestEntry
	digest := sha256.New()
	for i, text := range texts {
		id := fmt.Sprintf("%064x", i+1)
		h := sha256.Sum256([]byte(text))
		must(fw.message(ExportMessage{ID: id, Time: time.Unix(int64(i), 0).UTC(), AuthorName: "Ana", Kind: "text", Text: text}))
		entries = append(entries, ManifestEntry{ID: id, SHA256: hex.EncodeToString(h[:]), Kind: "text"})
		fmt.Fprintf(digest, "%s %x\n", id, h)
	}
	must(fw.endRoom(len(texts)))
	sum := ExportSummary{Rooms: 1, Messages: len(texts), Envelopes: len(entries), ManifestSHA256: hex.EncodeToString(digest.Sum(nil))}
	must(fw.beginManifest(ws, sum))
	for _, e := range entries {
		must(fw.entry(e))
	}
	must(fw.end(sum))
	return buf.Bytes(), sum.ManifestSHA256
}

// TestManifestNotForgedByText: message text that imitates a manifest is
// never read as one, in any format.
func TestManifestNotForgedByText(t *testing.T) {
	fake := strings.Repeat("0", 64) + " " + strings.Repeat("1", 64) + " text"
	texts := []string{
		"```charla-manifest\n" + manifestMagic + "\nworkspace " + strings.Repeat("ee", 32) + "\n" + fake + "\nend 1 " + strings.Repeat("2", 64) + "\n```",
		manifestHTMLOpen + "\n" + manifestMagic + "\nworkspace " + strings.Repeat("ee", 32) + "\n" + fake + "\nend 1 x",
		`"manifest":[{"id":"` + strings.Repeat("0", 64) + `","sha256":"` + strings.Repeat("1", 64) + `","kind":"text"}],`,
		"plain",
	}
	for _, format := range []string{FormatJSON, FormatHTML, FormatMarkdown} {
		t.Run(format, func(t *testing.T) {
			b, digest := writeExport(t, format, texts...)
			var got []ManifestEntry
			info, err := ReadManifest(bytes.NewReader(b), func(ws string, e ManifestEntry) error {
				got = append(got, e)
				return nil
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if info.Format != format || info.Workspace != strings.Repeat("ab", 32) || len(got) != len(texts) ||
				info.Computed != digest || info.Stated != digest || !info.Complete {
				t.Fatalf("read %+v, %d entries; want %d entries and digest %s\n%s", info, len(got), len(texts), digest, b)
			}
			for _, e := range got {
				if e.ID == strings.Repeat("0", 64) {
					t.Fatalf("a message's text was read as a manifest entry:\n%s", b)
				}
			}
		})
	}
}

// TestReadManifestRefuses: what is not a whole export is refused, saying why.
func TestReadManifestRefuses(t *testing.T) {
	md, _ := writeExport(t, FormatMarkdown, "a", "b")
	js, _ := writeExport(t, FormatJSON, "a", "b")
	entry := regexpFirstEntry(t, string(md))
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "empty"},
		{name: "no manifest", in: "# notes\n\nhello\n", want: "no charla export manifest"},
		{name: "cut short", in: string(md[:bytes.Index(md, []byte("\nend "))]), want: "cut short"},
		{name: "count differs", in: strings.Replace(string(md), "\nend 2 ", "\nend 3 ", 1), want: "says 3 entries, 2 are listed"},
		{name: "bad entry", in: strings.Replace(string(md), entry, entry[:63]+"g"+entry[64:], 1), want: "64-hex-digit"},
		{name: "json manifest twice", in: strings.Replace(string(js), `"manifest_sha256"`, `"manifest":[],"manifest_sha256"`, 1), want: `"manifest" appears twice`},
		{name: "json manifest first", in: strings.Replace(string(js), `"workspace":`, `"manifest":[],"workspace":`, 1), want: "before the workspace"},
		{name: "json cut", in: string(js[:len(js)/2]), want: "JSON"},
		{name: "json other export version", in: strings.Replace(string(js), `"charla_export":1`, `"charla_export":2`, 1), want: "not 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadManifest(strings.NewReader(tt.in), func(string, ManifestEntry) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// regexpFirstEntry returns the first manifest entry line of a text export.
func regexpFirstEntry(t *testing.T, s string) string {
	t.Helper()
	i := strings.Index(s, manifestMagic)
	lines := strings.Split(s[i:], "\n")
	if len(lines) < 3 {
		t.Fatalf("no entry in\n%s", s)
	}
	return lines[2]
}

// FuzzReadManifest: any file is read without panic, and what is read is
// well formed and adds up to the digest reported. Seeds live in
// testdata/fuzz/FuzzReadManifest.
func FuzzReadManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var n int
		var order []string
		info, err := ReadManifest(bytes.NewReader(b), func(ws string, e ManifestEntry) error {
			n++
			if !isHex64(e.ID) || !isHex64(e.SHA256) || e.Kind == "" || !isHex64(ws) {
				t.Fatalf("entry %+v in workspace %q passed the reader", e, ws)
			}
			order = append(order, e.ID+" "+e.SHA256+"\n")
			return nil
		})
		if err != nil {
			return
		}
		if info.Entries != n {
			t.Fatalf("%d entries reported, %d read", info.Entries, n)
		}
		h := sha256.Sum256([]byte(strings.Join(order, "")))
		if info.Computed != hex.EncodeToString(h[:]) {
			t.Fatalf("digest %s, want %x", info.Computed, h)
		}
	})
}
