package node

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// The three export formats. Each writes as it goes, through a buffer, and
// ends with the manifest in a block no message text can imitate: in JSON a
// top-level member, in HTML a <pre> element opened on a line of its own
// (message text is escaped, so it never holds a '<'), in Markdown a fenced
// block opened on a line of its own (every line of message text starts
// with "> "). ReadManifest reads it back.

// Lines that frame the manifest in HTML and Markdown.
const (
	manifestMagic     = "charla-export-manifest v1"
	manifestHTMLOpen  = `<pre id="charla-manifest" class="manifest">`
	manifestMDOpen    = "```charla-manifest"
	manifestWorkspace = "workspace "
	manifestEnd       = "end "
)

// exportFormat writes one format.
type exportFormat interface {
	begin(h exportHeader) error
	room(r ExportRoom) error
	message(m ExportMessage) error
	endRoom(count int) error
	beginManifest(workspace string, s ExportSummary) error
	entry(e ManifestEntry) error
	end(s ExportSummary) error
}

func newExportWriter(format string, w io.Writer) (exportFormat, error) {
	bw := &textOut{w: bufio.NewWriterSize(w, 64<<10)}
	switch strings.ToLower(format) {
	case FormatJSON:
		return &jsonExport{out: bw}, nil
	case FormatHTML, "htm":
		return &htmlExport{out: bw}, nil
	case FormatMarkdown, "markdown":
		return &mdExport{out: bw}, nil
	}
	return nil, fmt.Errorf("%w: export format %q: choose json, html or md", ErrInvalid, format)
}

// textOut is a buffered writer that keeps its first error.
type textOut struct {
	w   *bufio.Writer
	err error
}

func (o *textOut) str(ss ...string) {
	for _, s := range ss {
		if o.err == nil {
			_, o.err = o.w.WriteString(s)
		}
	}
}

func (o *textOut) printf(format string, args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.w, format, args...)
	}
}

// flush sends what is buffered on, so a reader sees progress room by room.
func (o *textOut) flush() error {
	if o.err == nil {
		o.err = o.w.Flush()
	}
	if o.err != nil {
		return fmt.Errorf("write export: %w", o.err)
	}
	return nil
}

func (o *textOut) check() error {
	if o.err != nil {
		return fmt.Errorf("write export: %w", o.err)
	}
	return nil
}

const (
	exportTime = "2006-01-02 15:04:05 MST"
	exportDay  = "Monday, 2 January 2006"
	exportHour = "15:04:05"
)

func formatSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// oneLine makes a name safe to stand inside a line: no line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// JSON

type jsonExport struct {
	out        *textOut
	firstRoom  bool
	firstMsg   bool
	firstEntry bool
}

// jsonInner is v's JSON object without its braces, to be extended.
func jsonInner(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode export: %w", err)
	}
	s := string(b)
	return strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}"), nil
}

func (j *jsonExport) begin(h exportHeader) error {
	inner, err := jsonInner(h)
	if err != nil {
		return err
	}
	j.out.str(`{"charla_export":1,`, inner, `,"rooms":[`)
	j.firstRoom = true
	return j.out.check()
}

func (j *jsonExport) room(r ExportRoom) error {
	inner, err := jsonInner(r)
	if err != nil {
		return err
	}
	if !j.firstRoom {
		j.out.str(",")
	}
	j.firstRoom, j.firstMsg = false, true
	j.out.str("\n{", inner, `,"messages":[`)
	return j.out.check()
}

func (j *jsonExport) message(m ExportMessage) error { return j.item(&j.firstMsg, m) }

// item writes v as the next element of a JSON array; *first says whether
// it opens the array.
func (j *jsonExport) item(first *bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode export: %w", err)
	}
	if !*first {
		j.out.str(",")
	}
	*first = false
	j.out.str("\n", string(b))
	return j.out.check()
}

func (j *jsonExport) endRoom(count int) error {
	j.out.printf("\n],\"message_count\":%d}", count)
	return j.out.flush()
}

func (j *jsonExport) beginManifest(workspace string, s ExportSummary) error {
	j.out.str("\n],\n\"manifest\":[")
	j.firstEntry = true
	return j.out.check()
}

func (j *jsonExport) entry(e ManifestEntry) error { return j.item(&j.firstEntry, e) }

func (j *jsonExport) end(s ExportSummary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode export: %w", err)
	}
	j.out.printf("\n],\n\"manifest_sha256\":%q,\n\"summary\":%s,\n\"complete\":true}\n", s.ManifestSHA256, b)
	return j.out.flush()
}

// HTML

type htmlExport struct {
	out *textOut
	day string // the day heading last written in this room
}

const exportCSS = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2430;background:#fff;max-width:60rem;margin:2rem auto;padding:0 1.25rem}
h1{font-size:1.7rem;margin:0 0 .25rem}
h2{font-size:1.3rem;margin:0 0 .35rem;padding-bottom:.3rem;border-bottom:2px solid #1c2430}
h3.day{font-size:.85rem;font-weight:600;color:#5b6472;text-transform:uppercase;letter-spacing:.04em;margin:1.2rem 0 .3rem}
header.export{margin-bottom:1.5rem}
header.export dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0;font-size:.9rem}
header.export dt{color:#5b6472}
header.export dd{margin:0}
.note{font-size:.85rem;color:#5b6472}
nav.toc ul{columns:2;padding-left:1.2rem;margin:.3rem 0}
section.room{margin-top:2.5rem}
.members{font-size:.85rem;color:#5b6472;margin:.2rem 0 .8rem}
article.msg{display:grid;grid-template-columns:5.5rem 1fr;gap:0 .9rem;padding:.35rem 0;border-bottom:1px solid #e7e9ee;break-inside:avoid}
article.msg time{font:.8rem/1.9 ui-monospace,"SF Mono",Menlo,Consolas,monospace;color:#5b6472}
.who{font-weight:600}
.who .pid,.id{font:.72rem ui-monospace,"SF Mono",Menlo,Consolas,monospace;color:#8a93a1;font-weight:400}
.tag{font-size:.75rem;color:#5b6472;border:1px solid #d5d9e0;border-radius:.6rem;padding:0 .4rem;margin-left:.3rem}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
.deleted{color:#8a93a1;font-style:italic}
blockquote.reply{margin:.1rem 0 .2rem;padding:.05rem .6rem;border-left:3px solid #c8ced8;color:#4a5260;font-size:.9rem}
blockquote.reply a{color:inherit}
.file{display:inline-block;border:1px solid #d5d9e0;border-radius:.4rem;padding:.2rem .5rem;margin:.15rem 0;font-size:.9rem}
.reactions{margin-top:.15rem;font-size:.85rem}
.reactions span{display:inline-block;border:1px solid #e0e3e8;border-radius:.8rem;padding:0 .45rem;margin:0 .3rem .2rem 0}
.count{font-size:.85rem;color:#5b6472;margin-top:.5rem}
section.manifest{margin-top:3rem}
pre.manifest{font:.68rem/1.35 ui-monospace,"SF Mono",Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f6f8;padding:.6rem;border-radius:.3rem}
@page{margin:16mm 14mm}
@media print{
body{max-width:none;margin:0;padding:0;font-size:10pt}
section.room,section.manifest{break-before:page;margin-top:0}
h2,h3.day{break-after:avoid}
a{color:inherit;text-decoration:none}
pre.manifest{background:none;padding:0}
nav.toc ul{columns:1}
}
`

func esc(s string) string { return html.EscapeString(s) }

func (x *htmlExport) begin(h exportHeader) error {
	o := x.out
	o.str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
		"<meta name=\"generator\" content=\"charla export\">\n",
		"<title>", esc(oneLine(h.WorkspaceName)), " — charla export</title>\n<style>", exportCSS, "</style>\n</head>\n<body>\n")
	o.str("<header class=\"export\">\n<h1>", esc(oneLine(h.WorkspaceName)), "</h1>\n<dl>\n")
	o.str("<dt>Exported by</dt><dd>", esc(oneLine(h.ExportedByName)), " <span class=\"id\">", esc(h.ExportedBy), "</span></dd>\n")
	o.str("<dt>Exported at</dt><dd><time datetime=\"", h.ExportedAt.Format(time.RFC3339), "\">", h.ExportedAt.Format(exportTime), "</time></dd>\n")
	o.str("<dt>Workspace</dt><dd class=\"id\">", esc(h.Workspace), "</dd>\n")
	if h.Room != "" {
		o.str("<dt>Room asked for</dt><dd>", esc(oneLine(h.Room)), "</dd>\n")
	}
	if !h.Since.IsZero() {
		o.str("<dt>Messages since</dt><dd>", h.Since.Format(exportTime), "</dd>\n")
	}
	o.str("</dl>\n<p class=\"note\">What this node could read, as its interface shows it: edits applied, deleted messages marked, times by each author's clock. ",
		"The manifest at the end lists the ID and SHA-256 of every envelope shown; <code>charla export verify FILE</code> checks it against any member's store.</p>\n</header>\n")
	o.str("<nav class=\"toc\"><h2>Rooms</h2>\n<ul>\n")
	for _, r := range h.Rooms {
		o.str("<li>", esc(oneLine(r)), "</li>\n")
	}
	o.str("</ul></nav>\n")
	return o.check()
}

func (x *htmlExport) room(r ExportRoom) error {
	o := x.out
	x.day = ""
	o.str("<section class=\"room\" id=\"r-", esc(r.ID), "\">\n<h2>", esc(oneLine(r.Name)), "</h2>\n<p class=\"members\">")
	o.str(esc(r.Kind), " · room <span class=\"id\">", esc(r.ID), "</span>")
	if len(r.Members) > 0 {
		o.str(" · members: ")
		for i, m := range r.Members {
			if i > 0 {
				o.str(", ")
			}
			o.str(esc(oneLine(m.Name)))
		}
	}
	if r.Unreadable > 0 {
		o.printf(" · %d envelopes held here could not be read (no key)", r.Unreadable)
	}
	o.str("</p>\n")
	return o.check()
}

func (x *htmlExport) message(m ExportMessage) error {
	o := x.out
	if day := m.Time.Format(exportDay); day != x.day {
		x.day = day
		o.str("<h3 class=\"day\">", day, "</h3>\n")
	}
	o.str("<article class=\"msg\" id=\"m-", esc(m.ID), "\">\n<time datetime=\"", m.Time.Format(time.RFC3339Nano), "\">",
		m.Time.Format(exportHour), "</time>\n<div>\n<div class=\"who\">", esc(oneLine(m.AuthorName)),
		" <span class=\"pid\">", esc(m.Author), "</span>")
	if m.Edited {
		o.str("<span class=\"tag\">edited</span>")
	}
	if m.Deleted {
		o.str("<span class=\"tag\">deleted</span>")
	}
	o.str("</div>\n")
	if m.ReplyTo != "" {
		o.str("<blockquote class=\"reply\">↪ <a href=\"#m-", esc(m.ReplyTo), "\">")
		if m.ReplyAuthor != "" {
			o.str(esc(oneLine(m.ReplyAuthor)), ": ", esc(m.ReplyText))
		} else {
			o.str("a message not held here")
		}
		o.str("</a></blockquote>\n")
	}
	switch {
	case m.Deleted:
		o.str("<div class=\"text deleted\">(deleted)</div>\n")
	case m.File != nil:
		f := m.File
		o.str("<div class=\"file\">📎 <strong>", esc(f.Name), "</strong> · ", formatSize(f.Size))
		if f.Type != "" {
			o.str(" · ", esc(f.Type))
		}
		o.str("<br><span class=\"id\">manifest SHA-256 ", esc(f.ManifestSHA256), "</span></div>\n")
	default:
		o.str("<div class=\"text\">", esc(m.Text), "</div>\n")
	}
	if len(m.Reactions) > 0 {
		o.str("<div class=\"reactions\">")
		for _, r := range m.Reactions {
			o.str("<span>", esc(r.Emoji), " ", esc(oneLine(strings.Join(r.By, ", "))), "</span>")
		}
		o.str("</div>\n")
	}
	o.str("<div class=\"id\">", esc(m.ID), "</div>\n</div>\n</article>\n")
	return o.check()
}

func (x *htmlExport) endRoom(count int) error {
	x.out.printf("<p class=\"count\">%d %s</p>\n</section>\n", count, plural(count, "message", "messages"))
	return x.out.flush()
}

func (x *htmlExport) beginManifest(workspace string, s ExportSummary) error {
	o := x.out
	o.str("<section class=\"manifest\">\n<h2>Manifest</h2>\n<p class=\"note\">Each line: envelope ID, SHA-256 of the envelope's bytes, kind. ",
		"Every member stores every envelope byte for byte, so any member can check these with <code>charla export verify FILE</code>.</p>\n")
	o.str(manifestHTMLOpen, "\n", manifestMagic, "\n", manifestWorkspace, esc(workspace), "\n")
	return o.check()
}

func (x *htmlExport) entry(e ManifestEntry) error {
	x.out.str(esc(e.ID), " ", esc(e.SHA256), " ", esc(e.Kind), "\n")
	return x.out.check()
}

func (x *htmlExport) end(s ExportSummary) error {
	x.out.printf("%s%d %s\n</pre>\n<p class=\"note\">%d %s in %d %s, %d envelopes; manifest SHA-256 %s.</p>\n</section>\n</body>\n</html>\n",
		manifestEnd, s.Envelopes, s.ManifestSHA256, s.Messages, plural(s.Messages, "message", "messages"),
		s.Rooms, plural(s.Rooms, "room", "rooms"), s.Envelopes, s.ManifestSHA256)
	return x.out.flush()
}

// Markdown

type mdExport struct {
	out *textOut
	day string
}

// mdEscaper keeps text from other members from being read as Markdown
// structure or raw HTML: backslash escapes, which CommonMark allows before
// any ASCII punctuation, and which render as the character itself.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "<", `\<`, ">", `\>`, "&", `\&`, "*", `\*`, "_", `\_`,
	"`", "\\`", "[", `\[`, "]", `\]`)

// mdText escapes only what could break out of the quote or smuggle HTML,
// and keeps the light markdown the UI shows.
var mdText = strings.NewReplacer(`\`, `\\`, "<", `\<`, ">", `\>`, "&", `\&`)

func mdName(s string) string { return mdEscaper.Replace(oneLine(s)) }

// mdQuote writes text as a block quote, every line starting with "> ".
func (x *mdExport) mdQuote(text string) {
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n") {
		x.out.str(">", strings.TrimRight(" "+mdText.Replace(line), " "), "\n")
	}
}

func (x *mdExport) begin(h exportHeader) error {
	o := x.out
	o.str("# ", mdName(h.WorkspaceName), " — charla export\n\n")
	o.str("- Exported by: **", mdName(h.ExportedByName), "** `", h.ExportedBy, "`\n")
	o.str("- Exported at: ", h.ExportedAt.Format(exportTime), "\n")
	o.str("- Workspace: `", h.Workspace, "`\n")
	if h.Room != "" {
		o.str("- Room asked for: ", mdName(h.Room), "\n")
	}
	if !h.Since.IsZero() {
		o.str("- Messages since: ", h.Since.Format(exportTime), "\n")
	}
	o.str("- Rooms: ")
	for i, r := range h.Rooms {
		if i > 0 {
			o.str(", ")
		}
		o.str(mdName(r))
	}
	o.str("\n\nWhat this node could read, as its interface shows it: edits applied, deleted messages marked, ",
		"times by each author's clock. The manifest at the end lists the ID and SHA-256 of every envelope shown; ",
		"`charla export verify FILE` checks it against any member's store.\n")
	return o.check()
}

func (x *mdExport) room(r ExportRoom) error {
	o := x.out
	x.day = ""
	o.str("\n---\n\n## ", mdName(r.Name), "\n\n", r.Kind, " · room `", r.ID, "`")
	if len(r.Members) > 0 {
		o.str(" · members: ")
		for i, m := range r.Members {
			if i > 0 {
				o.str(", ")
			}
			o.str(mdName(m.Name))
		}
	}
	if r.Unreadable > 0 {
		o.printf(" · %d envelopes held here could not be read (no key)", r.Unreadable)
	}
	o.str("\n")
	return o.check()
}

func (x *mdExport) message(m ExportMessage) error {
	o := x.out
	if day := m.Time.Format(exportDay); day != x.day {
		x.day = day
		o.str("\n### ", day, "\n")
	}
	o.str("\n**", mdName(m.AuthorName), "** · ", m.Time.Format(exportHour), " · `", m.ID[:16], "`")
	if m.Edited {
		o.str(" · edited")
	}
	o.str("\n")
	if m.ReplyTo != "" {
		if m.ReplyAuthor != "" {
			o.str("> ↪ *", mdName(m.ReplyAuthor), ":* ", mdName(m.ReplyText), "\n>\n")
		} else {
			o.str("> ↪ a message not held here (`", m.ReplyTo[:16], "`)\n>\n")
		}
	}
	switch {
	case m.Deleted:
		o.str("> *(deleted)*\n")
	case m.File != nil:
		f := m.File
		o.str("> 📎 **", mdName(f.Name), "** · ", formatSize(f.Size))
		if f.Type != "" {
			o.str(" · ", mdName(f.Type))
		}
		o.str(" · manifest SHA-256 `", f.ManifestSHA256, "`\n")
	default:
		x.mdQuote(m.Text)
	}
	if len(m.Reactions) > 0 {
		o.str(">\n>")
		for _, r := range m.Reactions {
			o.str(" ", mdName(r.Emoji), " ", mdName(strings.Join(r.By, ", ")), " ")
		}
		o.str("\n")
	}
	return o.check()
}

func (x *mdExport) endRoom(count int) error {
	x.out.printf("\n*%d %s*\n", count, plural(count, "message", "messages"))
	return x.out.flush()
}

func (x *mdExport) beginManifest(workspace string, s ExportSummary) error {
	o := x.out
	o.str("\n---\n\n## Manifest\n\nEach line: envelope ID, SHA-256 of the envelope's bytes, kind. ",
		"Every member stores every envelope byte for byte, so any member can check these with `charla export verify FILE`.\n\n")
	o.str(manifestMDOpen, "\n", manifestMagic, "\n", manifestWorkspace, workspace, "\n")
	return o.check()
}

func (x *mdExport) entry(e ManifestEntry) error {
	x.out.str(e.ID, " ", e.SHA256, " ", e.Kind, "\n")
	return x.out.check()
}

func (x *mdExport) end(s ExportSummary) error {
	x.out.printf("%s%d %s\n```\n\n%d %s in %d %s, %d envelopes; manifest SHA-256 `%s`.\n",
		manifestEnd, s.Envelopes, s.ManifestSHA256, s.Messages, plural(s.Messages, "message", "messages"),
		s.Rooms, plural(s.Rooms, "room", "rooms"), s.Envelopes, s.ManifestSHA256)
	return x.out.flush()
}
