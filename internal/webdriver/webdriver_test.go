package webdriver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// page is what both browsers offer.
type page interface {
	Navigate(ctx context.Context, url string) error
	Eval(ctx context.Context, expr string, out any) error
	Click(ctx context.Context, selector string) error
	Keys(ctx context.Context, selector, keys string) error
	SetFiles(ctx context.Context, selector string, paths ...string) error
	Errors(ctx context.Context) ([]string, error)
	Close() error
}

var (
	_ page = (*Firefox)(nil)
	_ page = (*WebKit)(nil)
)

// testPage records what a person does to it: the keys that reach its text
// area's keydown handler, clicks, and the files chosen.
const testPage = `<!doctype html>
<meta charset="utf-8">
<textarea id="t"></textarea>
<button id="b" style="margin-top: 2000px">far below</button>
<input id="f" type="file" hidden>
<script>
window.keys = [];
window.clicks = 0;
document.querySelector("#t").addEventListener("keydown", (e) => {
  window.keys.push((e.shiftKey ? "Shift+" : "") + e.key);
  if (e.key === "Enter" && !e.shiftKey) e.preventDefault();
});
document.querySelector("#b").addEventListener("click", () => window.clicks++);
document.querySelector("#f").addEventListener("change", async (e) => {
  window.file = e.target.files[0].name + ":" + await e.target.files[0].text();
});
</script>`

func servePage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Security-Policy", "default-src 'self' 'unsafe-inline'")
			w.Write([]byte(testPage))
		case "/bad":
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
			w.Write([]byte(`<!doctype html><p>bad</p><script src="/bad.js"></script>`))
		case "/bad.js":
			w.Header().Set("Content-Type", "text/javascript")
			// Later than the load, so that WebKit's recorder sees them too.
			w.Write([]byte(`setTimeout(() => {
				const s = document.createElement("script");
				s.textContent = "1";
				document.body.append(s);
				throw new Error("deliberate");
			}, 300)`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL // httptest listens on 127.0.0.1
}

func exercise(t *testing.T, p page, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Navigate(ctx, url+"/"); err != nil {
		t.Fatal(err)
	}
	var two int
	if err := p.Eval(ctx, "Promise.resolve(1 + 1)", &two); err != nil || two != 2 {
		t.Fatalf("eval 1 + 1: %d, %v", two, err)
	}
	if err := p.Eval(ctx, `(() => { throw new Error("boom") })()`, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a throwing script gave %v", err)
	}
	if err := p.Keys(ctx, "#t", "ab"+Shift+Enter+"c"+Enter); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Value string
		Keys  []string
	}
	if err := p.Eval(ctx, `({ value: document.querySelector("#t").value, keys: window.keys })`, &got); err != nil {
		t.Fatal(err)
	}
	if got.Value != "ab\nc" || strings.Join(got.Keys, " ") != "a b Shift+Shift Shift+Enter c Enter" {
		t.Errorf("typed %q with keys %q", got.Value, got.Keys)
	}
	if err := p.Click(ctx, "#b"); err != nil {
		t.Fatal(err)
	}
	var clicks int
	if err := p.Eval(ctx, "window.clicks", &clicks); err != nil || clicks != 1 {
		t.Errorf("clicks %d, %v", clicks, err)
	}
	path := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(path, []byte("hola"), 0o600)
	if err := p.SetFiles(ctx, "#f", path); err != nil {
		t.Fatal(err)
	}
	var file string
	for deadline := time.Now().Add(10 * time.Second); file == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		p.Eval(ctx, `window.file || ""`, &file)
	}
	if file != "note.txt:hola" {
		t.Errorf("chosen file read as %q", file)
	}
	if errs, err := p.Errors(ctx); err != nil || len(errs) != 0 {
		t.Errorf("errors on a clean page: %q", errs)
	}

	if err := p.Navigate(ctx, url+"/bad"); err != nil {
		t.Fatal(err)
	}
	reported := func(s string) bool {
		errs, _ := p.Errors(ctx)
		for _, e := range errs {
			if strings.Contains(e, s) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !(reported("deliberate") && reported("Content")) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if !reported("deliberate") || !reported("Content") {
		errs, _ := p.Errors(ctx)
		t.Errorf("of an uncaught error and a script blocked by CSP, reported only %q", errs)
	}
}

func TestFirefox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Firefox")
	}
	exe := FindFirefox()
	if exe == "" {
		t.Skip("no Firefox found; on Debian: apt-get install firefox-esr")
	}
	f, err := StartFirefox(context.Background(), exe, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	exercise(t, f, servePage(t))
}

func TestWebKit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts WebKit")
	}
	driver, browser := FindWebKit()
	if driver == "" {
		t.Skip("no WebKitWebDriver and MiniBrowser found; on Debian: apt-get install webkit2gtk-driver")
	}
	xvfb := FindXvfb()
	if xvfb == "" {
		t.Skip("no Xvfb found for WebKitGTK's window; on Debian: apt-get install xvfb")
	}
	w, err := StartWebKit(context.Background(), driver, browser, xvfb, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	exercise(t, w, servePage(t))
}
