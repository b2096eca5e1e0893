package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable sessions.now.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// loginToken asks the server for a login URL with the API token and returns
// the token in its fragment.
func (ts *testServer) loginToken(t *testing.T) string {
	t.Helper()
	resp, body := ts.do(t, request{method: "POST", path: "/api/login-urls", body: `{}`})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/login-urls: %d %s", resp.StatusCode, body)
	}
	var lu LoginURLResponse
	if err := json.Unmarshal([]byte(body), &lu); err != nil {
		t.Fatal(err)
	}
	prefix := "http://" + ts.info.API + "/#login="
	token, ok := strings.CutPrefix(lu.URL, prefix)
	if !ok || len(token) != 64 {
		t.Fatalf("login URL %q, want %s and 64 hex digits", lu.URL, prefix)
	}
	return token
}

// redeem posts a login token to /api/session with no Authorization header,
// as the page does.
func (ts *testServer) redeem(t *testing.T, login string, header map[string]string) (int, string) {
	t.Helper()
	h := map[string]string{"Authorization": ""}
	for k, v := range header {
		h[k] = v
	}
	body, _ := json.Marshal(LoginRequest{Login: login})
	resp, data := ts.do(t, request{method: "POST", path: "/api/session", body: string(body), header: h})
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, ""
	}
	var sr SessionResponse
	if err := json.Unmarshal([]byte(data), &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Token == "" || sr.Token == login {
		t.Fatalf("session token %q for login %q", sr.Token, login)
	}
	return resp.StatusCode, sr.Token
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func TestSession(t *testing.T) {
	ts := startServer(t)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	ts.srv.sessions.now = clock.now

	login := ts.loginToken(t)
	status, session := ts.redeem(t, login, nil)
	if status != http.StatusCreated {
		t.Fatalf("first use of a login token: %d, want 201", status)
	}
	if status, _ := ts.redeem(t, login, nil); status != http.StatusUnauthorized {
		t.Errorf("second use of a login token: %d, want 401", status)
	}

	for _, path := range []string{"/api/status", "/api/rooms", "/api/members"} {
		if resp, body := ts.do(t, request{path: path, header: bearer(session)}); resp.StatusCode != 200 {
			t.Errorf("GET %s with the session token: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := ts.do(t, request{method: "POST", path: "/api/rooms/general/messages", body: `{"text":"hola"}`,
		header: bearer(session)}); resp.StatusCode != http.StatusCreated {
		t.Errorf("send with the session token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := ts.do(t, request{path: "/api/status", header: bearer(login)}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a login token used as a session token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := ts.do(t, request{path: "/api/status", header: bearer(NewToken())}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unknown session token: %d, want 401", resp.StatusCode)
	}

	t.Run("expiry", func(t *testing.T) {
		login := ts.loginToken(t)
		clock.add(LoginExpiry - time.Second)
		fresh := ts.loginToken(t)
		clock.add(time.Second)
		if status, _ := ts.redeem(t, login, nil); status != http.StatusUnauthorized {
			t.Errorf("a login token at its expiry: %d, want 401", status)
		}
		if status, _ := ts.redeem(t, fresh, nil); status != http.StatusCreated {
			t.Errorf("a login token before its expiry: %d, want 201", status)
		}
		if resp, _ := ts.do(t, request{path: "/api/status", header: bearer(session)}); resp.StatusCode != 200 {
			t.Errorf("a session after its login token's expiry: %d, want 200", resp.StatusCode)
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			login  string
			header map[string]string
			want   int
		}{
			{name: "unknown token", login: NewToken(), want: 401},
			{name: "empty token", login: "", want: 401},
			{name: "foreign origin", login: ts.loginToken(t), header: map[string]string{"Origin": "http://evil.example"}, want: 403},
			{name: "foreign host", login: ts.loginToken(t), header: map[string]string{"Host": "evil.example"}, want: 403},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := tt.header
				req := request{method: "POST", path: "/api/session", body: `{"login":"` + tt.login + `"}`,
					header: map[string]string{"Authorization": "", "Origin": h["Origin"]}}
				if host, ok := h["Host"]; ok {
					req.host = host
				}
				if resp, body := ts.do(t, req); resp.StatusCode != tt.want {
					t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.want, body)
				}
			})
		}
	})

	t.Run("login URLs need the token", func(t *testing.T) {
		resp, _ := ts.do(t, request{method: "POST", path: "/api/login-urls", body: `{}`, header: map[string]string{"Authorization": ""}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /api/login-urls without a token: %d, want 401", resp.StatusCode)
		}
		resp, _ = ts.do(t, request{path: "/api/login-urls"})
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /api/login-urls: %d, want 405", resp.StatusCode)
		}
	})
}

func TestSessionBounds(t *testing.T) {
	ss := newSessions()
	clock := &fakeClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	ss.now = clock.now
	first := ss.newLogin()
	for range maxLogins {
		clock.add(time.Millisecond)
		ss.newLogin()
	}
	if len(ss.logins) != maxLogins {
		t.Errorf("%d login tokens kept, want %d", len(ss.logins), maxLogins)
	}
	if _, ok := ss.redeem(first); ok {
		t.Error("the oldest login token still works after maxLogins newer ones")
	}
	for range maxSessions + 3 {
		clock.add(time.Millisecond)
		if _, ok := ss.redeem(ss.newLogin()); !ok {
			t.Fatal("a fresh login token was refused")
		}
	}
	if len(ss.active) != maxSessions {
		t.Errorf("%d sessions kept, want %d", len(ss.active), maxSessions)
	}
}

func TestStaticFiles(t *testing.T) {
	ts := startServer(t)
	noToken := map[string]string{"Authorization": ""}
	tests := []struct {
		name   string
		req    request
		want   int
		ctype  string // prefix of Content-Type
		static bool   // answered by the UI's file server, with its CSP
	}{
		{name: "index", req: request{path: "/", header: noToken}, want: 200, ctype: "text/html", static: true},
		{name: "script", req: request{path: "/app.js", header: noToken}, want: 200, ctype: "text/javascript", static: true},
		{name: "catalogue", req: request{path: "/i18n/es.js", header: noToken}, want: 200, ctype: "text/javascript", static: true},
		{name: "style", req: request{path: "/style.css", header: noToken}, want: 200, ctype: "text/css", static: true},
		{name: "with a token", req: request{path: "/"}, want: 200, ctype: "text/html", static: true},
		{name: "missing file", req: request{path: "/nope.js", header: noToken}, want: 404, static: true},
		{name: "POST", req: request{method: "POST", path: "/", body: `{}`, header: noToken}, want: 405, static: true},
		{name: "foreign host", req: request{path: "/", host: "evil.example", header: noToken}, want: 403},
		{name: "rebound host", req: request{path: "/app.js", host: "evil.example:" + ts.port, header: noToken}, want: 403},
		{name: "foreign origin", req: request{path: "/", header: map[string]string{"Authorization": "", "Origin": "http://evil.example"}}, want: 403},
		{name: "API path in disguise", req: request{path: "/x/../api/status", header: noToken}, want: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; body %.200s", resp.StatusCode, tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if tt.static && (!strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe")) {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if tt.want == 200 && strings.Contains(body, testToken) {
				t.Error("a static file holds the API token")
			}
		})
	}
}
