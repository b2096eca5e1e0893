package api

import (
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Bounds on the web UI's logins. A login token is what 'charla run' and
// 'charla ui' print in a URL's fragment; the page trades it, once, for a
// session token it keeps in sessionStorage.
const (
	LoginExpiry = 10 * time.Minute // a login token not used by then is void
	maxLogins   = 64               // login tokens waiting to be used; the oldest goes first
	maxSessions = 256              // sessions of this server; the oldest goes first
)

// sessions holds the UI's login and session tokens, in memory: a node that
// restarts forgets them, and its pages log in again with a fresh URL.
type sessions struct {
	now func() time.Time

	mu     sync.Mutex                      // guards logins and active
	logins map[[sha256.Size]byte]time.Time // SHA-256 of a login token → when it expires
	active map[[sha256.Size]byte]time.Time // SHA-256 of a session token → when it began
}

func newSessions() *sessions {
	return &sessions{
		now:    time.Now,
		logins: make(map[[sha256.Size]byte]time.Time),
		active: make(map[[sha256.Size]byte]time.Time),
	}
}

// newLogin returns a fresh login token, valid once within LoginExpiry.
func (ss *sessions) newLogin() string {
	token := NewToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for h, exp := range ss.logins {
		if !now.Before(exp) {
			delete(ss.logins, h)
		}
	}
	dropOldest(ss.logins, maxLogins-1)
	ss.logins[sha256.Sum256([]byte(token))] = now.Add(LoginExpiry)
	return token
}

// redeem trades a login token for a new session token. It reports false for
// a token that is unknown, used or expired; a token is gone once tried.
func (ss *sessions) redeem(login string) (string, bool) {
	h := sha256.Sum256([]byte(login))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, ok := ss.logins[h]
	delete(ss.logins, h)
	now := ss.now()
	if !ok || !now.Before(exp) {
		return "", false
	}
	session := NewToken()
	dropOldest(ss.active, maxSessions-1)
	ss.active[sha256.Sum256([]byte(session))] = now
	return session, true
}

// valid reports whether h is the SHA-256 of a session token. The lookup
// is by hash, so its time does not depend on how much of a guess is right.
func (ss *sessions) valid(h [sha256.Size]byte) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.active[h]
	return ok
}

// dropOldest removes the entries with the smallest times until m holds at
// most n. The maps are small and this runs only when one grows, so a scan is
// clearer than a heap.
func dropOldest(m map[[sha256.Size]byte]time.Time, n int) {
	for len(m) > n {
		var oldest [sha256.Size]byte
		var t time.Time
		first := true
		for h, v := range m {
			if first || v.Before(t) {
				oldest, t, first = h, v, false
			}
		}
		delete(m, oldest)
	}
}

// LoginRequest is the body of POST /api/session.
type LoginRequest struct {
	Login string `json:"login"`
}

// SessionResponse answers POST /api/session.
type SessionResponse struct {
	Token string `json:"token"`
}

// LoginURLRequest is the body of POST /api/login-urls; it has no fields yet.
type LoginURLRequest struct{}

// LoginURLResponse answers POST /api/login-urls.
type LoginURLResponse struct {
	URL string `json:"url"`
}

// NewLoginURL returns the address of the web UI at addr (the API's host:port)
// with a fresh login token in its fragment. The fragment never reaches a
// server or a Referer header; the page removes it from the address bar.
func (s *Server) NewLoginURL(addr string) string {
	return "http://" + addr + "/#login=" + s.sessions.newLogin()
}

// session is POST /api/session: the one request under /api/ that needs no
// bearer token, since it is how the page gets one.
func (s *Server) session(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := sameUser(r); err != nil {
		return err
	}
	token, ok := s.sessions.redeem(req.Login)
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		return &Error{
			Status:  http.StatusUnauthorized,
			Message: "this login link was used already or has expired",
			Hint:    "run 'charla ui' for a fresh one",
		}
	}
	return writeJSON(w, http.StatusCreated, SessionResponse{Token: token})
}

// loginURL is POST /api/login-urls. The request's Host has passed the
// loopback check, so the URL names the API as its caller reached it.
func (s *Server) loginURL(w http.ResponseWriter, r *http.Request) error {
	var req LoginURLRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, LoginURLResponse{URL: s.NewLoginURL(r.Host)})
}

// errUIDUnknown: this system does not say which user owns a socket.
var errUIDUnknown = errors.New("the owners of sockets are not known on this system")

// sameUser refuses a login sent by another local user's program. The login
// URL passes through the arguments of the desktop's opener and browser,
// which other users can read while they run: this one check keeps such a
// user from trading it for a session first. It uses the kernel's socket
// table, so Linux only; root's programs pass (root can read api.json, and
// WSL's localhost relay from the Windows side runs as root). The token is
// not spent by a refused try.
func sameUser(r *http.Request) error {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	server, err1 := netip.ParseAddrPort(local.String())
	client, err2 := netip.ParseAddrPort(r.RemoteAddr)
	if err1 != nil || err2 != nil {
		return nil
	}
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	uid, found, err := loopbackPeerUID(client, server)
	switch {
	case err != nil:
		return nil // cannot tell: the token alone decides, as everywhere before
	case !found:
		return &Error{Status: http.StatusForbidden, Message: "could not tell which user's program sent this login",
			Hint: "log in from a browser on this machine, run as the user who runs charla"}
	case uid != uint32(os.Getuid()) && uid != 0:
		return &Error{Status: http.StatusForbidden, Message: "this login came from another user's program on this machine",
			Hint: "open the login URL in your own browser session; run 'charla ui' for a fresh one"}
	}
	return nil
}
