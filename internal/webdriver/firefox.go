package webdriver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// FindFirefox returns the path of a Firefox to drive, or "".
func FindFirefox() string {
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// firefoxPrefs keep a test's Firefox on loopback and quiet. Firefox's remote
// agent adds its own "recommended" preferences for automation on top
// (remote/shared/RecommendedPreferences.sys.mjs); these are what this
// machine, which has no way out, needs besides: nothing that phones home,
// and a proxy on a closed loopback port for whatever still tries.
var firefoxPrefs = map[string]any{
	"app.update.disabledForTesting":                               true,
	"app.update.auto":                                             false,
	"app.normandy.enabled":                                        false,
	"app.normandy.api_url":                                        "",
	"app.shield.optoutstudies.enabled":                            false,
	"messaging-system.rsexperimentloader.enabled":                 false,
	"datareporting.policy.dataSubmissionEnabled":                  false,
	"datareporting.healthreport.uploadEnabled":                    false,
	"toolkit.telemetry.enabled":                                   false,
	"toolkit.telemetry.unified":                                   false,
	"toolkit.telemetry.archive.enabled":                           false,
	"toolkit.telemetry.server":                                    "",
	"browser.ping-centre.telemetry":                               false,
	"services.settings.server":                                    "data:,#remote-settings-dummy/v1",
	"browser.safebrowsing.malware.enabled":                        false,
	"browser.safebrowsing.phishing.enabled":                       false,
	"browser.safebrowsing.downloads.enabled":                      false,
	"browser.safebrowsing.downloads.remote.enabled":               false,
	"browser.safebrowsing.blockedURIs.enabled":                    false,
	"browser.safebrowsing.provider.mozilla.updateURL":             "",
	"browser.safebrowsing.provider.google4.updateURL":             "",
	"browser.safebrowsing.provider.google.updateURL":              "",
	"extensions.update.enabled":                                   false,
	"extensions.getAddons.cache.enabled":                          false,
	"extensions.blocklist.enabled":                                false,
	"extensions.systemAddon.update.enabled":                       false,
	"media.gmp-manager.updateEnabled":                             false,
	"media.gmp-manager.url":                                       "",
	"browser.region.network.url":                                  "",
	"browser.region.update.enabled":                               false,
	"browser.search.update":                                       false,
	"geo.provider.network.url":                                    "",
	"network.captive-portal-service.enabled":                      false,
	"network.connectivity-service.enabled":                        false,
	"captivedetect.canonicalURL":                                  "",
	"network.dns.disablePrefetch":                                 true,
	"network.prefetch-next":                                       false,
	"network.predictor.enabled":                                   false,
	"network.http.speculative-parallel-limit":                     0,
	"network.trr.mode":                                            5, // no DNS over HTTPS
	"dom.push.connection.enabled":                                 false,
	"dom.push.serverURL":                                          "",
	"security.OCSP.enabled":                                       0,
	"security.remote_settings.crlite_filters.enabled":             false,
	"security.remote_settings.intermediates.enabled":              false,
	"identity.fxaccounts.enabled":                                 false,
	"browser.newtabpage.enabled":                                  false,
	"browser.startup.page":                                        0,
	"browser.startup.homepage":                                    "about:blank",
	"browser.topsites.contile.enabled":                            false,
	"browser.newtabpage.activity-stream.feeds.topsites":           false,
	"browser.newtabpage.activity-stream.feeds.section.topstories": false,
	"browser.shell.checkDefaultBrowser":                           false,
	"intl.accept_languages":                                       "en-US, en",
	// Everything but 127.0.0.1 and localhost (never proxied, as
	// network.proxy.allow_hijacking_localhost is false) goes to port 9 of
	// loopback, where nothing listens: a request this list forgot fails
	// at once instead of leaving the machine, and no name is resolved.
	"network.proxy.type":          1,
	"network.proxy.http":          "127.0.0.1",
	"network.proxy.http_port":     9,
	"network.proxy.ssl":           "127.0.0.1",
	"network.proxy.ssl_port":      9,
	"network.proxy.no_proxies_on": "",
}

// Firefox is a headless Firefox with one tab, driven over WebDriver BiDi.
type Firefox struct {
	proc    *process
	conn    *bidiConn
	context string // the tab's browsing context ID
	dir     string // profile and home; removed by Close

	mu     sync.Mutex // guards errors and logf
	errors []string
	logf   func(format string, args ...any)

	closeOnce sync.Once
	closeErr  error
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// StartFirefox starts exe headless with a fresh profile, connects to its
// BiDi server and opens a session on its one tab. logf, if not nil, gets
// every console line of the page and the browser's own output.
func StartFirefox(ctx context.Context, exe string, logf func(format string, args ...any)) (_ *Firefox, err error) {
	dir, err := os.MkdirTemp("", "charla-firefox-")
	if err != nil {
		return nil, fmt.Errorf("make a profile directory: %w", err)
	}
	f := &Firefox{dir: dir, logf: logf}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		return nil, err
	}
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		val, _ := json.Marshal(v)
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, val)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write the profile's preferences: %w", err)
	}

	// Port 0: Firefox takes a free port and says which on stderr.
	cmd := exec.Command(exe, "--headless", "--no-remote", "--remote-debugging-port=0",
		"--profile", profile, "about:blank")
	cmd.Env = append(browserEnv(dir), "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_HEADLESS_WIDTH=1280", "MOZ_HEADLESS_HEIGHT=760",
		// A release build takes services.settings.server from the
		// preferences only with this set; without it Firefox went on
		// looking up firefox.settings.services.mozilla.com (seen with
		// strace).
		"MOZ_REMOTE_SETTINGS_DEVTOOLS=1")
	found := make(chan string, 1)
	f.proc, err = startLogged(cmd, func(line string) {
		if m := bidiListening.FindStringSubmatch(line); m != nil {
			select {
			case found <- m[1]:
			default:
			}
		}
		f.log("firefox: %s", line)
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	var url string
	select {
	case url = <-found:
	case <-f.proc.exited:
		return nil, fmt.Errorf("%s exited before it served WebDriver BiDi (see its output in the test log)", exe)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s did not serve WebDriver BiDi within 30 s", exe)
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	if f.conn, err = dialBiDi(ctx, url+"/session", f.event); err != nil {
		return nil, err
	}
	if err := f.conn.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil); err != nil {
		return nil, err
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := f.conn.call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree); err != nil {
		return nil, err
	}
	if len(tree.Contexts) == 0 {
		return nil, fmt.Errorf("firefox has no tab open")
	}
	f.context = tree.Contexts[0].Context
	if err := f.conn.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Firefox) log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logf != nil {
		f.logf(format, args...)
	}
}

// event keeps the page's log entries; errors also go to Errors.
func (f *Firefox) event(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Type   string `json:"type"`
		Level  string `json:"level"`
		Text   string `json:"text"`
		Source struct {
			Context string `json:"context"`
		} `json:"source"`
		StackTrace *struct {
			CallFrames []struct {
				URL        string `json:"url"`
				LineNumber int    `json:"lineNumber"`
			} `json:"callFrames"`
		} `json:"stackTrace"`
	}
	if json.Unmarshal(params, &e) != nil {
		return
	}
	line := fmt.Sprintf("%s %s: %s", e.Type, e.Level, e.Text)
	if e.StackTrace != nil && len(e.StackTrace.CallFrames) > 0 {
		cf := e.StackTrace.CallFrames[0]
		line += fmt.Sprintf(" (%s:%d)", cf.URL, cf.LineNumber+1)
	}
	f.log("console: %s", line)
	if isConsoleError(e.Level, e.Text) {
		f.mu.Lock()
		f.errors = append(f.errors, line)
		f.mu.Unlock()
	}
}

// Navigate loads url in the tab and waits until its load event.
func (f *Firefox) Navigate(ctx context.Context, url string) error {
	return f.conn.call(ctx, "browsingContext.navigate", map[string]any{
		"context": f.context, "url": url, "wait": "complete",
	}, nil)
}

// Eval evaluates a JavaScript expression in the page, awaits it if it is a
// promise, and decodes its value, as JSON, into out unless out is nil.
func (f *Firefox) Eval(ctx context.Context, expr string, out any) error {
	// BiDi returns its own serialization of values; JSON.stringify gives
	// the same plain JSON as the classic protocol.
	var res struct {
		Type             string      `json:"type"`
		Result           remoteValue `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := f.conn.call(ctx, "script.evaluate", map[string]any{
		"expression":   "(async () => JSON.stringify(await (" + expr + "\n)))()",
		"target":       map[string]any{"context": f.context},
		"awaitPromise": true,
	}, &res)
	if err != nil {
		return err
	}
	if res.Type == "exception" {
		return fmt.Errorf("script threw: %s", res.ExceptionDetails.Text)
	}
	if out == nil || res.Result.Type != "string" {
		return nil // undefined has no JSON
	}
	var s string
	if err := json.Unmarshal(res.Result.Value, &s); err != nil {
		return err
	}
	return json.Unmarshal([]byte(s), out)
}

// remoteValue is BiDi's serialization of a script's value (spec section
// 7.5.3.5, "script.RemoteValue"), as far as this package reads it.
type remoteValue struct {
	Type     string          `json:"type"`
	Value    json.RawMessage `json:"value"`
	SharedID string          `json:"sharedId"`
}

// Click moves the mouse to the middle of the element of a CSS selector,
// scrolled into view, and clicks it.
func (f *Firefox) Click(ctx context.Context, selector string) error {
	var xy [2]int
	if err := f.Eval(ctx, centerScript(selector), &xy); err != nil {
		return err
	}
	return f.conn.call(ctx, "input.performActions", map[string]any{
		"context": f.context, "actions": clickActions(xy[0], xy[1]),
	}, nil)
}

// Keys focuses the element of a CSS selector and types keys into it as
// key events (see keyActions).
func (f *Firefox) Keys(ctx context.Context, selector, keys string) error {
	if err := f.Eval(ctx, focusScript(selector), nil); err != nil {
		return err
	}
	return f.conn.call(ctx, "input.performActions", map[string]any{
		"context": f.context, "actions": keyActions(keys),
	}, nil)
}

// SetFiles chooses files for the file input of a CSS selector, as a person
// does in the file dialog: the input gets them and fires "change".
func (f *Firefox) SetFiles(ctx context.Context, selector string, paths ...string) error {
	var res struct {
		Type   string      `json:"type"`
		Result remoteValue `json:"result"`
	}
	err := f.conn.call(ctx, "script.evaluate", map[string]any{
		"expression":   "document.querySelector(" + quote(selector) + ")",
		"target":       map[string]any{"context": f.context},
		"awaitPromise": false,
	}, &res)
	if err != nil {
		return err
	}
	if res.Result.Type != "node" {
		return fmt.Errorf("no element matches %s", selector)
	}
	return f.conn.call(ctx, "input.setFiles", map[string]any{
		"context": f.context,
		"element": map[string]any{"sharedId": res.Result.SharedID},
		"files":   paths,
	}, nil)
}

// Errors returns the page's errors so far: uncaught exceptions, rejected
// promises nobody handled, console errors and CSP violations.
func (f *Firefox) Errors(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...), nil
}

// Close ends the session and Firefox, and removes its profile. It is safe
// to call twice.
func (f *Firefox) Close() error {
	f.closeOnce.Do(func() {
		if f.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// browser.close ends Firefox; its answer may not arrive.
			f.conn.call(ctx, "browser.close", map[string]any{}, nil)
			cancel()
			f.conn.close()
		}
		if f.proc != nil {
			f.proc.stop(5 * time.Second)
		}
		f.mu.Lock()
		f.logf = nil // the test that logged may have ended
		f.mu.Unlock()
		f.closeErr = os.RemoveAll(f.dir)
	})
	return f.closeErr
}
