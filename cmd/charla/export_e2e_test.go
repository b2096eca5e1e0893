package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAuditAndExportEndToEnd drives audit and export with the built binary:
// Ana's audit lists the invite and Ben's admission, verified; her HTML export
// escapes what was typed and Ben's node vouches for its manifest; one hash
// changed in the file makes verify fail; Ben cannot export a room he is not
// in, and no file is left behind.
func TestAuditAndExportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two charla nodes; skipped in -short mode")
	}
	bin := buildCharla(t)
	dir := t.TempDir()
	ana, ben := filepath.Join(dir, "ana"), filepath.Join(dir, "ben")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", ana)
	runNode(ctx, t, bin, ana)
	code := strings.TrimSpace(mustRun(ctx, t, bin, "invite", "--expires", "1h", "--home", ana))
	mustRun(ctx, t, bin, "join", code, "--name", "Ben", "--home", ben)
	benNode := runNode(ctx, t, bin, ben)

	var secret struct{ ID string }
	decode(t, mustRun(ctx, t, bin, "room", "create", "secret", "--json", "--home", ana), &secret)
	mustRun(ctx, t, bin, "send", "secret", "only Ana reads this", "--home", ana)
	const typed = `<script>alert("hi")</script> & co`
	id := strings.TrimSpace(mustRun(ctx, t, bin, "send", "general", typed, "--home", ana))
	eventually(t, 60*time.Second, func() bool {
		out, _, err := runCharla(ctx, bin, "log", "general", "--json", "--home", ben)
		return err == nil && strings.Contains(out, id)
	}, func() string { return "ben never read ana's message; stderr:\n" + benNode.stderr.String() })
	mustRun(ctx, t, bin, "react", "general", id, "👍", "--home", ben)
	eventually(t, 60*time.Second, func() bool {
		out, _, err := runCharla(ctx, bin, "log", "general", "--json", "--home", ana)
		return err == nil && strings.Contains(out, `"emoji":"👍","count":1`)
	}, func() string { return "ana never saw ben's reaction" })

	t.Run("audit", func(t *testing.T) {
		var rep struct {
			Verified bool
			Entries  []struct {
				Text, Op, Class, ID, Prev, Author, Signature, Chain string
				AuthorName                                          string `json:"author_name"`
				Effective                                           bool
			}
		}
		decode(t, mustRun(ctx, t, bin, "audit", "--json", "--home", ana), &rep)
		var texts []string
		for _, e := range rep.Entries {
			texts = append(texts, e.Text)
			if e.Signature != "ok" || e.Chain != "ok" || !e.Effective || e.AuthorName != "Ana" || len(e.ID) != 64 || len(e.Prev) != 64 {
				t.Errorf("entry %+v", e)
			}
		}
		all := strings.Join(texts, "\n")
		for _, want := range []string{"Ana issued invite ", "Ana admitted Ben as member with invite ", "Ana created #general", "Ana created #secret"} {
			if !strings.Contains(all, want) {
				t.Errorf("audit lacks %q:\n%s", want, all)
			}
		}
		if !rep.Verified {
			t.Error("audit not verified")
		}
		out := mustRun(ctx, t, bin, "audit", "--verify", "--home", ana)
		if !strings.Contains(out, "Ana admitted Ben as member") || !strings.Contains(out, "verified: ") || !strings.Contains(out, "every feed whole") {
			t.Errorf("audit --verify printed:\n%s", out)
		}
		// Ben holds the roster, not #secret's ops.
		eventually(t, 60*time.Second, func() bool {
			out, _, err := runCharla(ctx, bin, "audit", "--home", ben)
			return err == nil && strings.Contains(out, "Ana admitted Ben") && !strings.Contains(out, "#secret")
		}, func() string { out, _, _ := runCharla(ctx, bin, "audit", "--home", ben); return "ben's audit:\n" + out })
	})

	t.Run("export and verify", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "acme.html")
		out := mustRun(ctx, t, bin, "export", "-o", file, "--home", ana)
		if !regexp.MustCompile(`^wrote .*acme\.html: 2 rooms, 2 messages, 3 envelopes in the manifest; manifest SHA-256 [0-9a-f]{64}\n$`).MatchString(out) {
			t.Errorf("export printed %q", out)
		}
		html, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" {
			if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
				t.Errorf("the export has mode %o, want 600", fi.Mode().Perm())
			}
		}
		if bytes.Contains(html, []byte("<script")) || !bytes.Contains(html, []byte("&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; co")) {
			t.Errorf("the export does not escape the message:\n%s", html)
		}
		eventually(t, 60*time.Second, func() bool {
			_, _, err := runCharla(ctx, bin, "export", "verify", file, "--home", ben)
			return err == nil
		}, func() string {
			out, stderr, _ := runCharla(ctx, bin, "export", "verify", file, "--home", ben)
			return "ben never vouched for ana's export:\n" + out + stderr
		})
		out = mustRun(ctx, t, bin, "export", "verify", file, "--home", ben)
		if !strings.Contains(out, "matched     3 ") || !strings.Contains(out, "ok: every envelope") {
			t.Errorf("verify printed:\n%s", out)
		}
		printsOneRoomPerPage(ctx, t, file, 2)

		// One hash changed by a hex digit.
		m := regexp.MustCompile(`(?m)^([0-9a-f]{64}) ([0-9a-f]{64}) text$`).FindSubmatchIndex(html)
		if m == nil {
			t.Fatalf("no manifest entry in\n%s", html)
		}
		bad := append([]byte(nil), html...)
		at := m[4] + 5
		bad[at] = "1032547698badcfe"[strings.IndexByte("0123456789abcdef", bad[at])]
		badFile := filepath.Join(t.TempDir(), "changed.html")
		if err := os.WriteFile(badFile, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := runCharla(ctx, bin, "export", "verify", badFile, "--home", ben)
		if err == nil || !strings.Contains(out, "mismatched  1") || !strings.Contains(out, "its manifest was changed") ||
			!strings.Contains(stderr, "does not match this node's store") {
			t.Errorf("verify of a changed export: %v\n%s%s", err, out, stderr)
		}

		// JSON to standard output, since a date.
		out = mustRun(ctx, t, bin, "export", "-o", "-", "--format", "json", "--since", "2000-01-01", "--room", "general", "--home", ana)
		var doc struct {
			Rooms []struct {
				Name     string
				Messages []struct{ Text string }
			}
			Complete bool
		}
		decode(t, out, &doc)
		if !doc.Complete || len(doc.Rooms) != 1 || len(doc.Rooms[0].Messages) != 1 || doc.Rooms[0].Messages[0].Text != typed {
			t.Errorf("JSON export: %+v", doc)
		}
	})

	t.Run("refused", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "secret.md")
		var stderr string
		eventually(t, 60*time.Second, func() bool {
			var err error
			_, stderr, err = runCharla(ctx, bin, "export", "--room", secret.ID, "-o", file, "--home", ben)
			return err != nil && strings.Contains(stderr, "only as ciphertext")
		}, func() string { return "ben's export of #secret: " + stderr })
		if !strings.Contains(stderr, "charla: hint: ") {
			t.Errorf("no hint: %s", stderr)
		}
		if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 0 {
			t.Errorf("a refused export left %v", entries)
		}
	})
}

// printsOneRoomPerPage prints the HTML export at path to PDF with a
// headless Chromium, if there is one, and checks the pages: the header,
// one per room (each short here), and the manifest.
func printsOneRoomPerPage(ctx context.Context, t *testing.T, path string, rooms int) {
	t.Helper()
	var exe string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		t.Log("no Chromium: the print layout is not checked")
		return
	}
	pdf := filepath.Join(t.TempDir(), "export.pdf")
	cmd := exec.CommandContext(ctx, exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-component-update",
		"--user-data-dir="+t.TempDir(), "--no-pdf-header-footer", "--print-to-pdf="+pdf, "file://"+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --print-to-pdf: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	pages := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(b, -1))
	if want := rooms + 2; pages != want {
		t.Errorf("the export prints on %d pages, want %d: the header, one per room, the manifest", pages, want)
	}
}
