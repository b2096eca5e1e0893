package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
	"github.com/chromedp/chromedp"
)

// dropFile is a script that drops a file of the given bytes on the message
// list, as a person dragging it from their desktop does.
func dropFile(name string, data []byte) string {
	return fmt.Sprintf(`(() => {
		const bin = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
		const dt = new DataTransfer();
		dt.items.add(new File([bin], %q));
		const target = document.querySelector("#messages");
		for (const type of ["dragenter", "dragover", "drop"]) {
			target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
		}
		return true;
	})()`, base64.StdEncoding.EncodeToString(data), name)
}

// eval runs a script that returns true.
func (p *browserPage) eval(what, script string) {
	p.t.Helper()
	ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](script))
	if err != nil || !ok {
		p.t.Fatalf("%s: %s: %v, %v", p.name, what, ok, err)
	}
}

// TestBrowserSearchAndFiles drives search and file sharing in two pages:
// a search result far back in history opens its room scrolled to the
// message; a file dropped in one page downloads identical in the other, and
// an image is previewed.
func TestBrowserSearchAndFiles(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	const filler = 80
	target := searchableHistory(t, ana, bruno, filler)

	pa := openPage(t, exe, "Ana's page", ana)
	pb := openPage(t, exe, "Bruno's page", bruno)
	pb.waitFor("history is shown", hasMessage(fmt.Sprintf("status update %d", filler-1)))
	pb.eval("the searched message is not loaded yet", fmt.Sprintf(`!document.querySelector('article[data-id=%q]')`, target.ID))

	pb.do("search", chromedp.SendKeys(chromedp.CSS("#search"), "budget spread*"), pressEnter(false))
	pb.waitFor("the result is shown, highlighted", `(() => {
		const marks = [...document.querySelectorAll("#result-list .result mark")].map((m) => m.textContent);
		return !document.querySelector("#results").hidden && marks.join(",") === "budget,spreadsheet";
	})()`)
	pb.do("open the result", chromedp.Click(chromedp.CSS("#result-list .result")))
	pb.waitFor("the message is shown, in view", fmt.Sprintf(`(() => {
		const m = document.querySelector('article.found[data-id=%q]');
		if (!m || !document.querySelector("#results").hidden) return false;
		const box = document.querySelector("#messages").getBoundingClientRect();
		const r = m.getBoundingClientRect();
		return r.top >= box.top && r.bottom <= box.bottom;
	})()`, target.ID))

	data := make([]byte, 700<<10)
	rand.Read(data)
	sum := sha256.Sum256(data)
	pa.eval("drop a file", dropFile("report 2026.bin", data))
	pa.waitFor("the upload ends", `document.querySelector("#uploads").children.length === 0`)
	pb.waitFor("the file appears with its size", `[...document.querySelectorAll(".msg .file")].some((f) =>
		f.querySelector(".file-name").textContent === "report 2026.bin" && f.querySelector(".file-size"))`)

	// The download button's bytes, as the page hands them to the browser.
	pb.eval("watch downloads", `(() => {
		const create = URL.createObjectURL;
		URL.createObjectURL = (b) => { window.downloaded = b; return create(b); };
		HTMLAnchorElement.prototype.click = function () { window.downloadedAs = this.download; };
		return true;
	})()`)
	pb.do("download", chromedp.Click(chromedp.CSS(`.msg .file .download`)))
	pb.waitFor("the download is handed over", `window.downloadedAs === "report 2026.bin"`)
	got, err := chromedp.Run(pb.ctx, chromedp.Evaluate[string](`(async () => {
		const h = await crypto.subtle.digest("SHA-256", await window.downloaded.arrayBuffer());
		return [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, "0")).join("");
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("downloaded SHA-256 %s, uploaded %s", got, want)
	}

	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = 0xc0
	}
	img.Set(3, 3, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	pa.eval("drop an image", dropFile("floor plan.png", buf.Bytes()))
	pb.waitFor("the image is previewed", `[...document.querySelectorAll(".msg img.preview")].some((i) =>
		i.complete && i.naturalWidth === 40 && i.alt.includes("floor plan.png"))`)

	pa.checkErrors()
	pb.checkErrors()
}

// searchableHistory has ana send the message a search looks for, then filler
// more, so that it is older than the first page the UI loads, and waits until
// bruno holds them all. It returns the message searched for.
func searchableHistory(t *testing.T, ana, bruno *liveNode, filler int) node.Message {
	t.Helper()
	ctx := context.Background()
	target, err := ana.node.Send(ctx, "general", "The quarterly budget spreadsheet is on the shared drive")
	if err != nil {
		t.Fatal(err)
	}
	for i := range filler {
		if _, err := ana.node.Send(ctx, "general", fmt.Sprintf("status update %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "Bruno holds the whole history", func() bool {
		log, _ := bruno.node.Log(ctx, "general", filler+10)
		return len(log) == filler+1
	})
	return target
}
