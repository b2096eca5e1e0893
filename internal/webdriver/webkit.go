package webdriver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FindWebKit returns the paths of WebKitWebDriver and of the WebKitGTK
// MiniBrowser it launches, or "" for both. Debian's webkit2gtk-driver has
// the one, libwebkit2gtk-4.1-0 the other, in its multiarch lib directory.
func FindWebKit() (driver, browser string) {
	driver, err := exec.LookPath("WebKitWebDriver")
	if err != nil {
		return "", ""
	}
	for _, pattern := range []string{
		"/usr/lib/*/webkit2gtk-4.*/MiniBrowser",
		"/usr/libexec/webkit2gtk-4.*/MiniBrowser",
		"/usr/lib/*/webkitgtk-6.*/MiniBrowser",
		"/usr/libexec/webkitgtk-6.*/MiniBrowser",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return driver, m[0]
		}
	}
	return "", ""
}

// FindXvfb returns the path of Xvfb, or "": WebKitGTK's MiniBrowser has no
// headless mode and needs an X display.
func FindXvfb() string {
	p, _ := exec.LookPath("Xvfb")
	return p
}

// WebKit is a WebKitGTK MiniBrowser on a virtual X display of its own,
// driven over WebDriver classic by WebKitWebDriver.
type WebKit struct {
	xvfb, driver *process
	base         string // http://127.0.0.1:PORT/session/ID
	dir          string // home and caches; removed by Close
	client       http.Client

	mu     sync.Mutex // guards errors and logf
	errors []string
	logf   func(format string, args ...any)

	closeOnce sync.Once
	closeErr  error
}

// StartWebKit starts Xvfb, WebKitWebDriver and, through a new session, the
// MiniBrowser. logf, if not nil, gets every console line of the page and
// the processes' own output.
func StartWebKit(ctx context.Context, driver, browser, xvfb string, logf func(format string, args ...any)) (_ *WebKit, err error) {
	dir, err := os.MkdirTemp("", "charla-webkit-")
	if err != nil {
		return nil, fmt.Errorf("make a home directory: %w", err)
	}
	w := &WebKit{dir: dir, logf: logf}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()

	display, err := w.startXvfb(ctx, xvfb)
	if err != nil {
		return nil, err
	}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		// As for Firefox: anything but loopback goes to a closed port of
		// loopback instead of leaving the machine.
		"proxy": map[string]any{
			"proxyType": "manual", "httpProxy": "127.0.0.1:9", "sslProxy": "127.0.0.1:9",
			"noProxy": []string{"127.0.0.1", "localhost"},
		},
		"webkitgtk:browserOptions": map[string]any{
			"binary": browser,
			"args":   []string{"--automation"},
		},
	}}}
	// Now and then (about one start in ten on this machine, only under
	// load) a new session never answers: the driver has no MiniBrowser
	// child and prints nothing, and waits on. A session normally comes in
	// 1-8 s; after 20 s a fresh driver tries again, three times in all.
	for attempt := 1; ; attempt++ {
		addr, err := w.startDriver(ctx, driver, display)
		if err != nil {
			return nil, err
		}
		w.base = "http://" + addr
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = w.do(sctx, "POST", "/session", caps, &session)
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			return nil, fmt.Errorf("new WebKit session: %w", err)
		}
		w.output("webkit")(fmt.Sprintf("new session: %v; starting the driver again", err))
		w.driver.stop(5 * time.Second)
	}
	w.base += "/session/" + session.SessionID
	if err := w.do(ctx, "POST", "/window/rect", map[string]int{"width": 1280, "height": 760}, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// startXvfb starts an X server on the first free display, listening on
// its Unix socket only, and returns the display's name.
func (w *WebKit) startXvfb(ctx context.Context, exe string) (string, error) {
	r, wr, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	// -displayfd: Xvfb picks a free display and writes its number to fd 3.
	cmd := exec.Command(exe, "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1280x800x24")
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Env = browserEnv(w.dir)
	w.xvfb, err = startLogged(cmd, w.output("xvfb"))
	wr.Close()
	if err != nil {
		return "", fmt.Errorf("start %s: %w", exe, err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		if _, err := strconv.Atoi(n); err != nil {
			return "", fmt.Errorf("%s did not say which display it took (%q)", exe, n)
		}
		return ":" + n, nil
	case <-time.After(20 * time.Second):
		return "", fmt.Errorf("%s did not start within 20 s", exe)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// startDriver starts WebKitWebDriver on a free loopback port and waits
// until it answers; it returns its host:port.
func (w *WebKit) startDriver(ctx context.Context, exe, display string) (string, error) {
	// The driver takes a port number, not 0: take a free one from the
	// kernel and hand it over. Another process may take it in between,
	// so a driver that exits at once is started again.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		l.Close()
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(exe, "--port="+port, "--host=127.0.0.1")
		cmd.Env = append(browserEnv(w.dir), "DISPLAY="+display, "GDK_BACKEND=x11")
		if w.driver, err = startLogged(cmd, w.output("webkit")); err != nil {
			return "", fmt.Errorf("start %s: %w", exe, err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := w.client.Get("http://" + addr + "/status")
			if err == nil {
				resp.Body.Close()
				return addr, nil
			}
			select {
			case <-w.driver.exited:
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(50 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
				return "", fmt.Errorf("%s did not answer on %s within 20 s", exe, addr)
			}
			if attempt == 2 {
				return "", fmt.Errorf("%s exited at start three times (see its output in the test log)", exe)
			}
			break
		}
	}
}

// output logs a process's output line by line.
func (w *WebKit) output(name string) func(string) {
	return func(line string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.logf != nil {
			w.logf("%s: %s", name, line)
		}
	}
}

// do sends one command of the classic protocol: method and path relative
// to the session, params as the JSON body, and the answer's "value"
// decoded into out unless out is nil (spec section 6.6, "Processing
// model": errors are {"value": {"error", "message"}}).
func (w *WebKit) do(ctx context.Context, method, path string, params, out any) error {
	var body io.Reader
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("%s %s: decode the answer (HTTP %d): %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(answer.Value, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer.Value, out)
}

// Navigate loads url, waits until its load event, and starts recording
// the page's errors.
func (w *WebKit) Navigate(ctx context.Context, url string) error {
	w.Errors(ctx) // keep what the page before reported
	if err := w.do(ctx, "POST", "/url", map[string]string{"url": url}, nil); err != nil {
		return err
	}
	return w.Eval(ctx, recordErrors, nil)
}

// recordErrors is a script that keeps a page's errors in an array for
// Errors. WebDriver classic has no way to read a page's console, and
// MiniBrowser's option to print it does not reach the views automation
// creates, so this is the page's own view of its errors, from the moment
// Navigate runs it: an error thrown while the page loads is not seen.
const recordErrors = `(() => {
	if (window.__webdriverErrors) return;
	const errs = window.__webdriverErrors = [];
	addEventListener("error", (e) => errs.push(e.target === window
		? "uncaught " + e.message + " (" + e.filename + ":" + e.lineno + ")"
		: "failed to load " + (e.target.src || e.target.href || e.target.tagName)), true);
	addEventListener("unhandledrejection", (e) => errs.push("unhandled rejection: " + (e.reason?.stack || e.reason)));
	addEventListener("securitypolicyviolation", (e) =>
		errs.push("Content-Security-Policy violation: " + e.violatedDirective + " " + e.blockedURI));
	const error = console.error;
	console.error = (...args) => {
		errs.push("console.error: " + args.join(" "));
		error.apply(console, args);
	};
})()`

// Eval evaluates a JavaScript expression in the page, awaits it if it is a
// promise, and decodes its value, as JSON, into out unless out is nil.
func (w *WebKit) Eval(ctx context.Context, expr string, out any) error {
	// Execute Async Script hands the script a callback as its last
	// argument; a thrown error or rejection comes back as {err}.
	script := `const done = arguments[arguments.length - 1];
		Promise.resolve().then(() => (` + expr + `
		)).then((v) => done({ ok: JSON.stringify(v) }), (e) => done({ err: String(e) }));`
	var res struct {
		OK  *string `json:"ok"`
		Err *string `json:"err"`
	}
	if err := w.do(ctx, "POST", "/execute/async", map[string]any{"script": script, "args": []any{}}, &res); err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("script threw: %s", *res.Err)
	}
	if out == nil || res.OK == nil {
		return nil // undefined has no JSON
	}
	return json.Unmarshal([]byte(*res.OK), out)
}

// Click moves the mouse to the middle of the element of a CSS selector,
// scrolled into view, and clicks it.
func (w *WebKit) Click(ctx context.Context, selector string) error {
	var xy [2]int
	if err := w.Eval(ctx, centerScript(selector), &xy); err != nil {
		return err
	}
	return w.do(ctx, "POST", "/actions", map[string]any{"actions": clickActions(xy[0], xy[1])}, nil)
}

// Keys focuses the element of a CSS selector and types keys into it as
// key events (see keyActions).
func (w *WebKit) Keys(ctx context.Context, selector, keys string) error {
	if err := w.Eval(ctx, focusScript(selector), nil); err != nil {
		return err
	}
	return w.do(ctx, "POST", "/actions", map[string]any{"actions": keyActions(keys)}, nil)
}

// SetFiles chooses files for the file input of a CSS selector, as a person
// does in the file dialog: the input gets them and fires "change". (Element
// Send Keys to a file input takes paths, one a line.)
func (w *WebKit) SetFiles(ctx context.Context, selector string, paths ...string) error {
	var el map[string]string
	if err := w.do(ctx, "POST", "/element", map[string]string{"using": "css selector", "value": selector}, &el); err != nil {
		return err
	}
	id := el["element-6066-11e4-a52e-4f735466cecf"] // the spec's web element identifier
	return w.do(ctx, "POST", "/element/"+id+"/value", map[string]string{"text": strings.Join(paths, "\n")}, nil)
}

// Errors returns the errors of the pages Navigate opened so far: uncaught
// exceptions, rejected promises nobody handled, resources that failed to
// load, console errors and CSP violations.
func (w *WebKit) Errors(ctx context.Context) ([]string, error) {
	var got []string
	err := w.Eval(ctx, `window.__webdriverErrors?.splice(0) ?? []`, &got)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errors = append(w.errors, got...)
	return append([]string(nil), w.errors...), err
}

// Close ends the session (and with it the MiniBrowser), the driver and the
// X server, and removes the home directory. It is safe to call twice.
func (w *WebKit) Close() error {
	w.closeOnce.Do(func() {
		if strings.Contains(w.base, "/session/") {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			w.do(ctx, "DELETE", "", nil, nil)
			cancel()
		}
		if w.driver != nil {
			w.driver.stop(5 * time.Second)
		}
		if w.xvfb != nil {
			w.xvfb.stop(5 * time.Second)
		}
		w.mu.Lock()
		w.logf = nil // the test that logged may have ended
		w.mu.Unlock()
		w.closeErr = os.RemoveAll(w.dir)
	})
	return w.closeErr
}
