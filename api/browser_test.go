package api

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/charla-im/charla/node"
)

var screenshot = flag.String("screenshot", "", "write a screenshot of the web UI taken by TestBrowser to `FILE` (e.g. ../docs/screenshot.png)")

// findChromium returns the path of a Chromium the tests may drive, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserPage is one tab of a headless Chromium, logged in to one node.
type browserPage struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu     sync.Mutex // guards errors
	errors []string   // exceptions and CSP violations the page reported
}

// openPage starts a headless Chromium of its own, so that its tab is the
// visible one and unread counts behave as they do for a person looking at
// it, and opens a fresh login URL of ln.
func openPage(t *testing.T, exe, name string, ln *liveNode) *browserPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 760),
		// This machine's network is closed: no update checks, no Google.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	p := &browserPage{t: t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			text := fmt.Sprintf("%s: %s %s", m.Type, m.Text, m.URL)
			t.Logf("%s console: %s", name, text)
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				p.mu.Lock()
				p.errors = append(p.errors, text)
				p.mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(ln.srv.NewLoginURL(ln.addr))); err != nil {
		t.Fatalf("%s: open the UI: %v", name, err)
	}
	p.waitFor("the room is shown", `document.querySelector("#room-title").textContent === "#general"`)
	if h, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("location.hash")); h != "" {
		t.Errorf("%s: the login token stays in the address bar: %q", name, h)
	}
	return p
}

// waitFor polls a JavaScript condition in the page for up to 20 seconds.
func (p *browserPage) waitFor(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		title, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(document.querySelector("#text").value) + document.title + " | " + document.body.innerText.slice(0, 600)`))
		p.t.Fatalf("%s: %s: %v\npage: %s", p.name, what, err, title)
	}
}

func (p *browserPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func (p *browserPage) checkErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errors {
		p.t.Errorf("%s: the page reported %s", p.name, e)
	}
}

// pressEnter presses Enter in the focused element, with Shift if shift is
// set, as a browser does: one keyDown that carries its text, so that a
// handler that prevents its default also stops the new line. (chromedp's
// SendKeys sends the text in a separate char event, which no page can
// prevent.)
func pressEnter(shift bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var mod int64
		if shift {
			mod = 8 // Input.dispatchKeyEvent's Shift
		}
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Modifiers: mod,
			Key: "Enter", Code: "Enter", Text: "\r", UnmodifiedText: "\r", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		up := down
		up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
		for _, ev := range []input.DispatchKeyEventParams{down, up} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// hasMessage is a condition that the current room shows a message whose
// text contains s.
func hasMessage(s string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".msg .body")].some(e => e.textContent.includes(%q))`, s)
}

// browserOffice skips unless Chromium is here and the test is long, then
// starts Ana's and Bruno's nodes and waits until Bruno reads #general.
func browserOffice(t *testing.T) (exe string, ana, bruno *liveNode) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts nodes and Chromium")
	}
	if exe = findChromium(); exe == "" {
		t.Skip("no Chromium found; on Debian: apt-get install chromium")
	}
	nodes := workspace(t, "Ana", "Bruno")
	ana, bruno = nodes[0], nodes[1]
	eventually(t, 20*time.Second, "Bruno reads #general", func() bool {
		rooms, _ := bruno.node.Rooms(context.Background())
		return slices.ContainsFunc(rooms, func(r node.Room) bool { return r.Name == "general" })
	})
	return exe, ana, bruno
}

// TestBrowser drives the web UI of two nodes in Debian's Chromium: a message
// typed in one page appears in the other, and unread counts rise and clear.
func TestBrowser(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	ctx := context.Background()
	for _, m := range []struct {
		from *liveNode
		text string
	}{
		{ana, "Good morning! Has anyone got the key to the meeting room?"},
		{bruno, "I do. I'll leave it at reception by **10:00**."},
		{ana, "Thanks @Bruno! The minutes of yesterday are in `minutes/2026-11-25.odt`, see https://intranet.acme.example/minutes"},
	} {
		if _, err := m.from.node.Send(ctx, "general", m.text); err != nil {
			t.Fatal(err)
		}
		// Each answers the one before, so each waits until both have it.
		for _, n := range []*liveNode{ana, bruno} {
			eventually(t, 20*time.Second, "the message reaches every node", func() bool {
				log, _ := n.node.Log(ctx, "general", 10)
				return len(log) > 0 && log[len(log)-1].Text == m.text
			})
		}
	}

	pa := openPage(t, exe, "Ana's page", ana)
	pb := openPage(t, exe, "Bruno's page", bruno)
	pb.waitFor("history is shown", hasMessage("minutes/2026-11-25.odt"))
	pb.waitFor("markdown is rendered", `[...document.querySelectorAll(".msg .body strong")].some(e => e.textContent === "10:00")`)
	pb.waitFor("the mention of Bruno is highlighted", `document.querySelector("article.mention-me .mention.me")?.textContent === "@Bruno"`)

	pa.do("type a message", chromedp.SendKeys(chromedp.CSS("#text"), "Perfect, see you at *ten*"), pressEnter(true),
		chromedp.SendKeys(chromedp.CSS("#text"), "Bring the projector"))
	pa.waitFor("Shift+Enter starts a new line", `document.querySelector("#text").value === "Perfect, see you at *ten*\nBring the projector"`)
	pa.do("send it", pressEnter(false))
	pa.waitFor("the composer is emptied", `document.querySelector("#text").value === ""`)
	pb.waitFor("Ana's message appears", hasMessage("Perfect, see you at ten\nBring the projector"))
	pb.waitFor("italics are rendered", `[...document.querySelectorAll(".msg .body em")].some(e => e.textContent === "ten")`)

	// A direct message to Bruno while he reads #general: its room appears
	// with an unread count, in the sidebar and the tab title, until he opens it.
	if _, err := ana.node.Send(ctx, "@Bruno", "Can you call me?"); err != nil {
		t.Fatal(err)
	}
	pb.waitFor("the direct message is counted", `(() => {
		const b = document.querySelector("#directs button");
		return b && b.querySelector(".badge")?.textContent === "1" && document.title.startsWith("(1) ");
	})()`)
	// Ana steps away from her desk.
	if err := ana.node.SetPresence(ctx, "away"); err != nil {
		t.Fatal(err)
	}
	pb.waitFor("Ana is shown away", `!!document.querySelector("#member-list .dot.away")`)
	if *screenshot != "" {
		png, err := chromedp.Run(pb.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pb.do("open the direct room", chromedp.Click(chromedp.CSS("#directs button")))
	pb.waitFor("the count clears", `!document.querySelector("#directs .badge") && !document.title.startsWith("(")`)
	pb.waitFor("the direct message is shown", hasMessage("Can you call me?"))

	pa.checkErrors()
	pb.checkErrors()
}
