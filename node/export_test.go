package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// exportDoc is a JSON export, decoded.
type exportDoc struct {
	CharlaExport int    `json:"charla_export"`
	Workspace    string `json:"workspace"`
	ExportedBy   string `json:"exported_by_name"`
	Rooms        []struct {
		ExportRoom
		Messages     []ExportMessage `json:"messages"`
		MessageCount int             `json:"message_count"`
	} `json:"rooms"`
	Manifest       []ManifestEntry `json:"manifest"`
	ManifestSHA256 string          `json:"manifest_sha256"`
	Summary        ExportSummary   `json:"summary"`
	Complete       bool            `json:"complete"`
}

func export(t *testing.T, n *Node, opts ExportOptions) ([]byte, ExportSummary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := n.Export(context.Background(), &buf, opts)
	if err != nil {
		t.Fatalf("export %+v: %v", opts, err)
	}
	return buf.Bytes(), sum
}

// readManifest reads an export's manifest whole.
func readManifest(t *testing.T, b []byte) (ManifestInfo, []ManifestEntry) {
	t.Helper()
	var es []ManifestEntry
	info, err := ReadManifest(bytes.NewReader(b), func(ws string, e ManifestEntry) error {
		es = append(es, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return info, es
}

// TestExport: what a member reads, in three formats, as the UI shows it,
// with a manifest that every member's store vouches for, even one who
// cannot read the room; a changed hash is caught; a room this node cannot
// read is refused.
func TestExport(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	legal, err := a.CreateRoomNamed(ctx, "legal", []string{"Member1"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b reads #legal", func() bool {
		_, _, err := b.resolveRoom(ctx, "legal")
		return err == nil
	})
	const script = "<script>alert('x')</script> & \"more\"\nsecond line"
	m1, err := a.Send(ctx, "general", script)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Send(ctx, "general", "to be edited")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Edit(ctx, "general", m2.ID, "edited by Member1"); err != nil {
		t.Fatal(err)
	}
	m3, err := a.Send(ctx, "general", "to be deleted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, "general", m3.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "b and c hold m1", func() bool {
		_, okb := find(t, b, "general", m1.ID)
		_, okc := find(t, c, "general", m1.ID)
		return okb && okc
	})
	if _, err := b.React(ctx, "general", m1.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.React(ctx, "general", m1.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	reply, err := a.Reply(ctx, "general", m1.ID, "a reply")
	if err != nil {
		t.Fatal(err)
	}
	path, _ := randomFile(t, "contract.pdf", 3000)
	file, err := a.SendFile(ctx, "legal", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, "legal", "signed"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "a holds everything", func() bool {
		v, ok := find(t, a, "general", m1.ID)
		return ok && len(v.Reactions) == 1 && v.Reactions[0].Count == 2 && len(texts(t, a, "legal")) == 2 &&
			len(texts(t, a, "general")) == 4
	})

	raw, sum := export(t, a, ExportOptions{Format: FormatJSON})
	var doc exportDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the JSON export does not decode: %v\n%s", err, raw)
	}
	if doc.CharlaExport != 1 || !doc.Complete || doc.Workspace != a.hist.ws.String() || doc.ExportedBy != "Ana" ||
		len(doc.Rooms) != 2 || doc.Summary != sum || doc.ManifestSHA256 != sum.ManifestSHA256 {
		t.Fatalf("export: %+v, summary %+v", doc, sum)
	}
	general, lg := doc.Rooms[0], doc.Rooms[1]
	if general.Name != "#general" || lg.Name != "#legal" || lg.ID != legal.ID || len(lg.Members) != 2 {
		t.Fatalf("rooms %+v, %+v", general.ExportRoom, lg.ExportRoom)
	}
	byID := map[string]ExportMessage{}
	for _, r := range doc.Rooms {
		if len(r.Messages) != r.MessageCount {
			t.Fatalf("%s: %d messages, count %d", r.Name, len(r.Messages), r.MessageCount)
		}
		for _, m := range r.Messages {
			byID[m.ID] = m
		}
	}
	if v := byID[m1.ID]; v.Text != script || v.AuthorName != "Ana" || len(v.Reactions) != 1 ||
		v.Reactions[0].Emoji != "👍" || strings.Join(v.Reactions[0].By, ",") != "Member1,Member2" {
		t.Errorf("m1: %+v", v)
	}
	if v := byID[m2.ID]; v.Text != "edited by Member1" || !v.Edited || v.AuthorName != "Member1" {
		t.Errorf("m2: %+v", v)
	}
	if v := byID[m3.ID]; v.Text != "" || !v.Deleted {
		t.Errorf("m3: %+v", v)
	}
	if v := byID[reply.ID]; v.ReplyTo != m1.ID || v.ReplyAuthor != "Ana" || v.Text != "a reply" {
		t.Errorf("reply: %+v", v)
	}
	if v := byID[file.ID]; v.Kind != "file" || v.File == nil || v.File.Name != "contract.pdf" || v.File.Size != 3000 || len(v.File.ManifestSHA256) != 64 {
		t.Errorf("file: %+v", v)
	}
	// Messages, then the edit, the delete and both reactions.
	if want := len(byID) + 4; sum.Envelopes != want || len(doc.Manifest) != want {
		t.Errorf("manifest of %d entries (summary %d), want %d", len(doc.Manifest), sum.Envelopes, want)
	}
	kinds := map[string]int{}
	for _, e := range doc.Manifest {
		kinds[e.Kind]++
	}
	if kinds["edit"] != 1 || kinds["delete"] != 1 || kinds["reaction"] != 2 || kinds["file"] != 1 {
		t.Errorf("manifest kinds %v", kinds)
	}

	html, hsum := export(t, a, ExportOptions{Format: FormatHTML})
	md, msum := export(t, a, ExportOptions{Format: FormatMarkdown})
	for _, want := range []string{"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;more&#34;", "<style>", "break-before:page",
		"@media print", "<h2>#legal</h2>", "contract.pdf", `<span class="tag">deleted</span>`, "Member1, Member2"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the HTML export lacks %q", want)
		}
	}
	if strings.Contains(string(html), "<script") || strings.Count(string(html), `<section class="room"`) != 2 {
		t.Errorf("the HTML export holds a script element, or not two room sections:\n%s", html)
	}
	if !strings.Contains(string(md), `> \<script\>alert('x')\</script\> \& "more"`+"\n> second line\n") {
		t.Errorf("the Markdown export does not quote and escape the text:\n%s", md)
	}
	for name, b := range map[string][]byte{"json": raw, "html": html, "md": md} {
		info, es := readManifest(t, b)
		if info.Format != name || info.Workspace != doc.Workspace || info.Computed != sum.ManifestSHA256 ||
			info.Stated != sum.ManifestSHA256 || len(es) != sum.Envelopes || !info.Complete {
			t.Errorf("%s manifest: %+v, %d entries", name, info, len(es))
		}
	}
	if hsum != sum || msum != sum {
		t.Errorf("summaries differ: %+v %+v %+v", sum, hsum, msum)
	}

	// Every member's store vouches for it, c's too, who cannot read #legal.
	_, entries := readManifest(t, html)
	for _, n := range []*Node{b, c} {
		eventually(t, 60*time.Second, "the manifest matches every store", func() bool {
			v, err := n.VerifyExport(ctx, ExportCheck{Workspace: doc.Workspace, Entries: entries})
			return err == nil && v.Matched == len(entries) && v.Checked == len(entries)
		})
	}

	// One hash changed: that entry mismatches, and the manifest's digest
	// is not the one stated.
	first := entries[0]
	changed := first.SHA256[:10] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", first.SHA256[10])+1)%16]) + first.SHA256[11:]
	bad := bytes.Replace(html, []byte(first.ID+" "+first.SHA256), []byte(first.ID+" "+changed), 1)
	info, badEntries := readManifest(t, bad)
	if info.Computed == info.Stated {
		t.Error("the changed manifest has the stated digest")
	}
	v, err := a.VerifyExport(ctx, ExportCheck{Workspace: info.Workspace, Entries: badEntries})
	if err != nil {
		t.Fatal(err)
	}
	if v.Matched != len(entries)-1 || len(v.Mismatched) != 1 || v.Mismatched[0].ID != first.ID || v.Mismatched[0].Got != first.SHA256 {
		t.Errorf("verdict on the changed export: %+v", v)
	}
	// An ID no store holds is missing.
	badEntries[1].ID = strings.Repeat("ab", 32)
	if v, _ := a.VerifyExport(ctx, ExportCheck{Entries: badEntries[1:2]}); len(v.Missing) != 1 {
		t.Errorf("verdict on an unknown ID: %+v", v)
	}
	if _, err := a.VerifyExport(ctx, ExportCheck{Workspace: strings.Repeat("00", 32), Entries: entries}); !errors.Is(err, ErrInvalid) {
		t.Errorf("another workspace's export: %v", err)
	}

	// c holds #legal's envelopes but no key: refused, nothing written.
	var out bytes.Buffer
	_, err = c.Export(ctx, &out, ExportOptions{Room: legal.ID, Format: FormatHTML})
	if !errors.Is(err, ErrUnknownRoom) || !strings.Contains(err.Error(), "only as ciphertext") || out.Len() != 0 {
		t.Errorf("c exports #legal: %v, %d bytes written", err, out.Len())
	}
	if _, err := c.Export(ctx, &out, ExportOptions{Room: "legal", Format: FormatHTML}); !errors.Is(err, ErrUnknownRoom) {
		t.Errorf("c exports #legal by name: %v", err)
	}
	if _, err := a.Export(ctx, &out, ExportOptions{Format: "pdf"}); !errors.Is(err, ErrInvalid) || out.Len() != 0 {
		t.Errorf("format pdf: %v", err)
	}

	// One room, and a time filter.
	raw, sum = export(t, a, ExportOptions{Room: "legal", Format: FormatJSON})
	doc = exportDoc{}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Rooms) != 1 || sum.Messages != 2 || doc.Rooms[0].Name != "#legal" {
		t.Errorf("export of #legal: %v, %+v", err, sum)
	}
	raw, _ = export(t, a, ExportOptions{Room: "general", Format: FormatJSON, Since: byID[reply.ID].Time})
	doc = exportDoc{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Rooms[0].Messages {
		if m.Time.Before(byID[reply.ID].Time) {
			t.Errorf("since %v exported %s of %v", byID[reply.ID].Time, m.ID, m.Time)
		}
	}
	if len(doc.Rooms[0].Messages) == 0 {
		t.Error("since the reply's time exported nothing")
	}
}

// TestExportPages: a room longer than a page comes out whole, in order,
// each message once.
func TestExportPages(t *testing.T) {
	if testing.Short() {
		t.Skip("sends over a thousand messages; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir()
	initHome(t, home)
	a := openNode(t, home)
	n := 2*exportPage + 7
	for i := range n {
		if _, err := a.Send(ctx, "general", fmt.Sprintf("m%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{FormatHTML, FormatMarkdown} {
		start := time.Now()
		b, _ := export(t, a, ExportOptions{Format: f})
		t.Logf("%s: %d messages, %d bytes in %v", f, n, len(b), time.Since(start))
	}
	start := time.Now()
	raw, sum := export(t, a, ExportOptions{Format: FormatJSON})
	t.Logf("json: %d messages, %d bytes in %v", n, len(raw), time.Since(start))
	var doc exportDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ms := doc.Rooms[0].Messages
	if len(ms) != n || sum.Messages != n || sum.Envelopes != n {
		t.Fatalf("%d messages exported (summary %+v), want %d", len(ms), sum, n)
	}
	for i, m := range ms {
		if m.Text != fmt.Sprintf("m%04d", i) {
			t.Fatalf("message %d is %q", i, m.Text)
		}
	}
	start = time.Now()
	rep, err := a.Audit(ctx, true)
	if c := rep.Chains[0]; err != nil || !rep.Verified || c.Signatures != c.Checked || c.Checked < n {
		t.Fatalf("full audit: %v, %+v", err, rep.Chains)
	}
	t.Logf("full audit of a feed of %d envelopes in %v", rep.Chains[0].Checked, time.Since(start))
}

// TestExportAndAuditAfterRetention: once retention purges what an export
// showed, verify says so rather than calling it missing or changed; the
// audit still lists the room ops, which are kept, and checks the feed's
// links through the tombstones.
func TestExportAndAuditAfterRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a node; run without -short")
	}
	ctx := context.Background()
	home := t.TempDir()
	initHome(t, home)
	a := openNode(t, home)
	for _, s := range []string{"one", "two", "three"} {
		if _, err := a.Send(ctx, "general", s); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := export(t, a, ExportOptions{Format: FormatMarkdown})
	_, entries := readManifest(t, before)
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	if _, err := a.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.purge(ctx, time.Now().Add(48*time.Hour)); err != nil || rep.Envelopes != 3 {
		t.Fatalf("purge: %+v, %v", rep, err)
	}
	v, err := a.VerifyExport(ctx, ExportCheck{Entries: entries})
	if err != nil || len(v.Purged) != 3 || v.Matched != 0 || len(v.Missing) != 0 || len(v.Mismatched) != 0 {
		t.Fatalf("verify after the purge: %+v, %v", v, err)
	}
	_, sum := export(t, a, ExportOptions{Format: FormatJSON})
	if sum.Messages != 0 {
		t.Errorf("the purged messages were exported: %+v", sum)
	}
	rep := mustAudit(t, a, true)
	if _, ok := auditText(rep, "Ana created #general"); !ok || !rep.Verified {
		t.Fatalf("audit after the purge: verified %v, %+v", rep.Verified, rep.Entries)
	}
	if c := rep.Chains[0]; c.Status != ChainOK || c.Tombstones != 3 || !strings.Contains(c.Problem, "purged by retention") {
		t.Errorf("chain after the purge: %+v", c)
	}
}
