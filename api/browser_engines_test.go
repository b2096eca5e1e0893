package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/internal/webdriver"
	"github.com/charla-im/charla/node"
)

// The web UI must work in current Chromium, Firefox and Safari (issue 7).
// browser_test.go and its siblings drive Chromium through chromedp; the
// tests here run one office scenario in Firefox, over WebDriver BiDi, and
// in WebKitGTK, Safari's engine, over WebDriver classic
// (internal/webdriver).

// drivenPage is one browser with one tab, as internal/webdriver offers it.
type drivenPage interface {
	Navigate(ctx context.Context, url string) error
	Eval(ctx context.Context, expr string, out any) error
	Click(ctx context.Context, selector string) error
	Keys(ctx context.Context, selector, keys string) error
	SetFiles(ctx context.Context, selector string, paths ...string) error
	Errors(ctx context.Context) ([]string, error)
	Close() error
}

var (
	_ drivenPage = (*webdriver.Firefox)(nil)
	_ drivenPage = (*webdriver.WebKit)(nil)
)

// enginePage is a page of the UI in a browser other than Chromium, logged in
// to one node; its methods fail the test with what went wrong.
type enginePage struct {
	t    *testing.T
	name string
	b    drivenPage
}

func (p *enginePage) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

// waitFor polls a JavaScript condition in the page for up to 20 seconds.
func (p *enginePage) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := p.ctx()
		var ok bool
		err = p.b.Eval(ctx, "!!("+cond+")", &ok)
		cancel()
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := p.ctx()
	defer cancel()
	var page string
	p.b.Eval(ctx, `document.title + " | " + document.querySelector("#banners")?.innerText + " | " +
		document.querySelector("#messages")?.innerText.slice(-800) + " | " +
		[...document.querySelectorAll(".msg .file")].map((f) => f.outerHTML).join()`, &page)
	p.t.Fatalf("%s: %s: not within 20 s (last error: %v)\npage: %s", p.name, what, err, page)
}

// eval runs a script that returns true.
func (p *enginePage) eval(what, script string) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	var ok bool
	if err := p.b.Eval(ctx, script, &ok); err != nil || !ok {
		p.t.Fatalf("%s: %s: %v, %v", p.name, what, ok, err)
	}
}

func (p *enginePage) click(what, selector string) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.b.Click(ctx, selector); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func (p *enginePage) keys(what, selector, keys string) {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.b.Keys(ctx, selector, keys); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func (p *enginePage) checkErrors() {
	p.t.Helper()
	ctx, cancel := p.ctx()
	defer cancel()
	errs, err := p.b.Errors(ctx)
	if err != nil {
		p.t.Errorf("%s: read the page's errors: %v", p.name, err)
	}
	for _, e := range errs {
		p.t.Errorf("%s: the page reported %s", p.name, e)
	}
}

// openEnginePage logs b in to ln's UI with a fresh login URL.
func openEnginePage(t *testing.T, name string, b drivenPage, ln *liveNode) *enginePage {
	t.Helper()
	p := &enginePage{t: t, name: name, b: b}
	ctx, cancel := p.ctx()
	defer cancel()
	if err := b.Navigate(ctx, ln.srv.NewLoginURL(ln.addr)); err != nil {
		t.Fatalf("%s: open the UI: %v", name, err)
	}
	p.waitFor("the room is shown", `document.querySelector("#room-title").textContent === "#general"`)
	p.eval("the login token leaves the address bar", `location.hash === ""`)
	return p
}

// engineOffice skips in -short mode, then starts Ana's and Bruno's nodes
// and waits until Bruno reads #general.
func engineOffice(t *testing.T) (ana, bruno *liveNode) {
	t.Helper()
	nodes := workspace(t, "Ana", "Bruno")
	ana, bruno = nodes[0], nodes[1]
	eventually(t, 20*time.Second, "Bruno reads #general", func() bool {
		rooms, _ := bruno.node.Rooms(context.Background())
		return slices.ContainsFunc(rooms, func(r node.Room) bool { return r.Name == "general" })
	})
	return ana, bruno
}

// prefixed logs lines of one browser under its page's name.
func prefixed(t *testing.T, name string) func(string, ...any) {
	return func(format string, args ...any) { t.Logf(name+": "+format, args...) }
}

// TestFirefox runs the office scenario in Debian's Firefox ESR.
func TestFirefox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes and Firefox")
	}
	exe := webdriver.FindFirefox()
	if exe == "" {
		t.Skip("no Firefox found; on Debian: apt-get install firefox-esr")
	}
	engineScenario(t, func(ctx context.Context, name string) (drivenPage, error) {
		return webdriver.StartFirefox(ctx, exe, prefixed(t, name))
	})
}

// TestWebKit runs the office scenario in WebKitGTK, Safari's engine.
func TestWebKit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes and WebKit")
	}
	driver, browser := webdriver.FindWebKit()
	if driver == "" {
		t.Skip("no WebKitWebDriver and MiniBrowser found; on Debian: apt-get install webkit2gtk-driver")
	}
	xvfb := webdriver.FindXvfb()
	if xvfb == "" {
		t.Skip("no Xvfb found for WebKitGTK's window; on Debian: apt-get install xvfb")
	}
	engineScenario(t, func(ctx context.Context, name string) (drivenPage, error) {
		return webdriver.StartWebKit(ctx, driver, browser, xvfb, prefixed(t, name))
	})
}

// engineScenario: Ana and Bruno, each in a browser of their own so that
// each page is the one in view, as it is for a person at a desk. A message
// typed in one page (Shift+Enter for a new line, Enter to send) appears in
// the other; a direct message and a message in a room Bruno does not look
// at (a mention, picked from the @ list with Tab) are counted as unread
// until he opens them; scrolling up reads back the page above in place;
// ArrowUp edits the last message; a search finds a message older than the
// page loaded and opens it; a file chosen with the file input downloads
// identical on the other side, and an image is previewed; a room made in
// the sidebar's dialog reaches Bruno; and neither page reports an error.
func engineScenario(t *testing.T, start func(ctx context.Context, name string) (drivenPage, error)) {
	ana, bruno := engineOffice(t)
	ctx := context.Background()
	const filler = 60
	target := searchableHistory(t, ana, bruno, filler)

	// The two browsers start side by side: most of their start is waiting.
	began := time.Now()
	names := []string{"Ana's page", "Bruno's page"}
	browsers := make([]drivenPage, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			browsers[i], errs[i] = start(sctx, name)
		})
	}
	wg.Wait()
	for i := range names {
		if errs[i] == nil {
			t.Cleanup(func() { browsers[i].Close() })
		}
	}
	for i, name := range names {
		if errs[i] != nil {
			t.Fatalf("%s: start the browser: %v", name, errs[i])
		}
	}
	pa := openEnginePage(t, names[0], browsers[0], ana)
	pb := openEnginePage(t, names[1], browsers[1], bruno)
	t.Logf("two browsers started and logged in in %v", time.Since(began).Round(time.Millisecond))
	pb.waitFor("history is shown", hasMessage(fmt.Sprintf("status update %d", filler-1)))
	pb.eval("the searched message is not loaded yet", fmt.Sprintf(`!document.querySelector('article[data-id=%q]')`, target.ID))

	// Paging: Ana scrolls to the top of #general; the page above comes and
	// the message she was at stays where it was (WebKit has no scroll
	// anchoring of its own; the page does it).
	pa.waitFor("the newest page is shown", hasMessage(fmt.Sprintf("status update %d", filler-1))+` && !`+hasMessage("quarterly budget"))
	pa.eval("scroll to the top", `(() => {
		const box = document.querySelector("#messages");
		box.scrollTop = 0;
		const top = box.getBoundingClientRect().top;
		const first = [...box.querySelectorAll("article")].find((a) => a.getBoundingClientRect().bottom > top);
		window.anchor = { id: first.dataset.id, offset: first.getBoundingClientRect().top - top };
		return true;
	})()`)
	pa.waitFor("the page above is shown", hasMessage("quarterly budget"))
	pa.waitFor("the message in view stays in view, where it was", `(() => {
		const box = document.querySelector("#messages");
		const a = box.querySelector('article[data-id="' + window.anchor.id + '"]');
		const offset = a.getBoundingClientRect().top - box.getBoundingClientRect().top;
		return Math.abs(offset - window.anchor.offset) < 4 && box.scrollTop > 200;
	})()`)
	pa.waitFor("the start of the room is shown", `[...document.querySelectorAll("#messages .note")].some((n) => n.textContent === "This is the start of #general.")`)

	// Typing: Shift+Enter is a new line, Enter sends.
	pa.keys("type a message", "#text", "Perfect, see you at *ten*"+webdriver.Shift+webdriver.Enter+"Bring the projector")
	pa.waitFor("Shift+Enter starts a new line", `document.querySelector("#text").value === "Perfect, see you at *ten*\nBring the projector"`)
	pa.keys("send it", "#text", webdriver.Enter)
	pa.waitFor("the composer is emptied", `document.querySelector("#text").value === ""`)
	pb.waitFor("Ana's message appears", hasMessage("Perfect, see you at ten\nBring the projector"))
	pb.waitFor("italics are rendered", `[...document.querySelectorAll(".msg .body em")].some(e => e.textContent === "ten")`)

	// Unread: a direct message while Bruno reads #general.
	if _, err := ana.node.Send(ctx, "@Bruno", "Can you call me?"); err != nil {
		t.Fatal(err)
	}
	pb.waitFor("the direct message is counted", `(() => {
		const b = document.querySelector("#directs button");
		return b && b.querySelector(".badge")?.textContent === "1" && document.title.startsWith("(1) ");
	})()`)
	pb.click("open the direct room", "#directs button")
	pb.waitFor("the count clears", `!document.querySelector("#directs .badge") && !document.title.startsWith("(")`)
	pb.waitFor("the direct message is shown", hasMessage("Can you call me?"))

	// Unread: Ana mentions Bruno in #general, picking him from the @ list
	// with Tab, while he is in the direct room.
	pa.keys("start a mention", "#text", "@Bru")
	pa.waitFor("the @ list offers Bruno", `(() => {
		const l = document.querySelector("#mention-list");
		return !l.hidden && [...l.querySelectorAll("[role=option]")].map((o) => o.textContent).join() === "Bruno";
	})()`)
	pa.keys("pick Bruno with Tab", "#text", webdriver.Tab)
	pa.waitFor("the mention is written out", `document.querySelector("#text").value === "@Bruno " && document.querySelector("#mention-list").hidden`)
	pa.keys("finish and send", "#text", "projector is in room 2"+webdriver.Enter)
	pb.waitFor("the mention is counted in the title and marked in the sidebar", `(() => {
		const b = [...document.querySelectorAll("#channels button")].find((b) => b.textContent.startsWith("#general"));
		return document.title.startsWith("(1) ") && b?.querySelector(".badge.mention");
	})()`)
	pb.click("open #general", "#channels button")
	pb.waitFor("#general's count clears", `document.querySelector("#room-title").textContent === "#general" &&
		!document.querySelector("#channels .badge") && !document.title.startsWith("(")`)
	pb.waitFor("the mention is highlighted for him", `[...document.querySelectorAll("article.mention-me")].some((a) => a.textContent.includes("projector is in room 2"))`)

	// Editing from the keyboard: ArrowUp in the empty composer takes Ana's
	// last message; Control+A and typing replace it.
	pa.keys("edit the last message", "#text", webdriver.ArrowUp)
	pa.waitFor("the composer holds it", `document.querySelector("#text").value === "@Bruno projector is in room 2"`)
	pa.keys("write it anew", "#text", webdriver.Control+"a"+"@Bruno projector is in room 3"+webdriver.Enter)
	pb.waitFor("the edit shows", `[...document.querySelectorAll("article")].some((a) =>
		a.textContent.includes("projector is in room 3") && a.querySelector(".edited"))`)

	// Search, and open the result far back in history.
	pb.keys("search", "#search", "budget spread*"+webdriver.Enter)
	pb.waitFor("the result is shown, highlighted", `(() => {
		const marks = [...document.querySelectorAll("#result-list .result mark")].map((m) => m.textContent);
		return !document.querySelector("#results").hidden && marks.join(",") === "budget,spreadsheet";
	})()`)
	pb.click("open the result", "#result-list .result")
	pb.waitFor("the message is shown, in view", fmt.Sprintf(`(() => {
		const m = document.querySelector('article.found[data-id=%q]');
		if (!m || !document.querySelector("#results").hidden) return false;
		const box = document.querySelector("#messages").getBoundingClientRect();
		const r = m.getBoundingClientRect();
		return r.top >= box.top && r.bottom <= box.bottom;
	})()`, target.ID))

	// A file, chosen with the file input as in the file dialog.
	data := make([]byte, 300<<10)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "report 2026.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err := pa.b.SetFiles(sctx, "#file-input", path)
	cancel()
	if err != nil {
		t.Fatalf("choose a file: %v", err)
	}
	pa.waitFor("the upload ends", `document.querySelector("#uploads").children.length === 0 &&
		[...document.querySelectorAll(".msg .file-name")].some((f) => f.textContent === "report 2026.bin")`)
	pb.waitFor("the file appears with its size", `[...document.querySelectorAll(".msg .file")].some((f) =>
		f.querySelector(".file-name").textContent === "report 2026.bin" && f.querySelector(".file-size"))`)
	// A redraw of the list, here for a new message, keeps the elements of
	// the messages that did not change: the button under the pointer, or
	// with the keyboard's focus, is still there after it. (Replaced, it
	// lost the focus, and a click whose press and release straddled a
	// redraw did nothing.)
	pb.eval("focus the download button", `(() => {
		window.kept = document.querySelector(".msg .file .download");
		window.kept.focus();
		return document.activeElement === window.kept;
	})()`)
	if _, err := ana.node.Send(ctx, "general", "One more thing"); err != nil {
		t.Fatal(err)
	}
	pb.waitFor("the new message is shown", hasMessage("One more thing"))
	pb.eval("the button and its focus stay", `document.querySelector(".msg .file .download") === window.kept && document.activeElement === window.kept`)

	// The download button's bytes, as the page hands them to the browser.
	pb.eval("watch downloads", `(() => {
		const create = URL.createObjectURL;
		URL.createObjectURL = (b) => { window.downloaded = b; return create(b); };
		HTMLAnchorElement.prototype.click = function () { window.downloadedAs = this.download; };
		return true;
	})()`)
	pb.click("download", ".msg .file .download")
	pb.waitFor("the download is handed over", `window.downloadedAs === "report 2026.bin"`)
	var got string
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = pb.b.Eval(dctx, `new Promise((resolve, reject) => {
		const r = new FileReader();
		r.onload = () => resolve(r.result.slice(r.result.indexOf(",") + 1));
		r.onerror = () => reject(r.error);
		r.readAsDataURL(window.downloaded);
	})`, &got)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(raw) != sha256.Sum256(data) {
		t.Errorf("downloaded %d bytes that differ from the %d uploaded", len(raw), len(data))
	}

	// An image is previewed.
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = 0xc0
	}
	img.Set(3, 3, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "floor plan.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	err = pa.b.SetFiles(sctx, "#file-input", path)
	cancel()
	if err != nil {
		t.Fatalf("choose an image: %v", err)
	}
	pb.waitFor("the image is previewed", `[...document.querySelectorAll(".msg img.preview")].some((i) =>
		i.complete && i.naturalWidth === 40 && i.alt.includes("floor plan.png"))`)

	// A room made in the sidebar's dialog.
	pa.click("open the room dialog", "#new-room")
	pa.waitFor("the dialog is open, its name field focused", `document.querySelector("#room-dialog").open && document.activeElement.id === "room-name"`)
	pa.keys("name the room", "#room-name", "ventas")
	pa.click("create it", "#room-form button[type=submit]")
	pa.waitFor("the new room is open", `!document.querySelector("#room-dialog").open && document.querySelector("#room-title").textContent === "#ventas"`)
	pb.waitFor("Bruno has the room", `[...document.querySelectorAll("#channels button")].some((b) => b.textContent === "#ventas")`)

	pa.checkErrors()
	pb.checkErrors()
	if t.Failed() {
		return
	}
	t.Logf("the scenario took %v, the browsers' start included", time.Since(began).Round(time.Millisecond))
}
