package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charla-im/charla/node"
	"github.com/charla-im/charla/web"
)

// Bounds on what a client may ask for.
const (
	MaxBodyBytes        = 1 << 20 // one request body
	DefaultLogLimit     = 50      // messages a log request returns unless told
	MaxLogLimit         = 10000   // messages one log request may ask for
	DefaultInviteExpiry = 7 * 24 * time.Hour
)

const (
	heartbeatEvery  = 15 * time.Second
	shutdownTimeout = 5 * time.Second
)

// Server serves the local API of one node.
type Server struct {
	backend  node.Backend
	token    [sha256.Size]byte // SHA-256 of the token, so comparison time does not depend on its length
	noToken  bool              // an empty token admits nobody
	sessions *sessions         // the web UI's login and session tokens
	logger   *slog.Logger
	srv      *http.Server
	ctx      context.Context // parent of every request's context; canceled by Close
	cancel   context.CancelFunc
	routes   map[string]methods // every API pattern, as the last Handler registered them

	// Handlers in flight, which Close waits for: http.Server.Shutdown gives
	// up on them after its timeout, and Close does not wait for them at all.
	reqMu     sync.RWMutex // guards closing; held across its check and reqs.Add
	closing   bool
	reqs      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewServer returns a server that answers requests bearing token from b.
// A nil logger discards.
func NewServer(b node.Backend, token string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		backend:  b,
		token:    sha256.Sum256([]byte(token)),
		noToken:  token == "",
		sessions: newSessions(),
		logger:   logger,
		ctx:      ctx,
		cancel:   cancel,
	}
	s.srv = &http.Server{
		Handler:           s.counted(s.Handler()),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve answers requests on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server: it refuses new requests, ends event streams,
// waits a few seconds for requests in flight, then closes their connections
// and waits for their handlers to return. Once it returns no handler runs,
// so the caller may close the node. Safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.reqMu.Lock()
		s.closing = true
		s.reqMu.Unlock()
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.logger.Warn("API requests still running after the shutdown timeout; closing their connections and waiting for them")
			s.closeErr = s.srv.Close()
		}
		// Their contexts are cancelled and their connections closed, so
		// only a node call that does not look at its context (posting a
		// large file) still holds one here.
		s.reqs.Wait()
	})
	return s.closeErr
}

// counted runs next for each request unless Close has begun, and counts it
// so that Close waits for it. A request refused here came on a connection
// opened before Close.
func (s *Server) counted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqMu.RLock()
		if s.closing {
			s.reqMu.RUnlock()
			w.Header().Set("Connection", "close")
			writeError(w, &Error{Status: http.StatusServiceUnavailable, Message: "the node is stopping"})
			return
		}
		s.reqs.Add(1)
		s.reqMu.RUnlock()
		defer s.reqs.Done()
		next.ServeHTTP(w, r)
	})
}

// Handler returns the API as an http.Handler, with every check of the package
// doc in front of it. The Host and Origin checks need the port the request
// arrived on, which net/http records in the request's context; a request
// without it is refused.
func (s *Server) Handler() http.Handler {
	mux := &router{ServeMux: http.NewServeMux(), routes: map[string]methods{}}
	mux.Handle("/api/status", methods{http.MethodGet: s.status})
	mux.Handle("/api/rooms", methods{http.MethodGet: s.rooms, http.MethodPost: s.createRoom})
	mux.Handle("/api/members", methods{http.MethodGet: s.members})
	mux.Handle("/api/peers", methods{http.MethodGet: s.peers})
	mux.Handle("/api/doctor", methods{http.MethodGet: s.doctor})
	mux.Handle("/api/rooms/{room}/messages", methods{http.MethodGet: s.log, http.MethodPost: s.send})
	mux.Handle("/api/events", methods{http.MethodGet: s.events})
	mux.Handle("/api/rooms/{room}/messages/{id}/edit", methods{http.MethodPost: s.editMessage})
	mux.Handle("/api/rooms/{room}/messages/{id}/delete", methods{http.MethodPost: s.deleteMessage})
	mux.Handle("/api/rooms/{room}/messages/{id}/reactions", methods{http.MethodPost: s.react})
	mux.Handle("/api/rooms/{room}/files", methods{http.MethodPost: s.sendFile})
	mux.Handle("/api/files", methods{http.MethodGet: s.files})
	mux.Handle("/api/files/{id}", methods{http.MethodGet: s.file})
	mux.Handle("/api/files/{id}/get", methods{http.MethodPost: s.getFile})
	mux.Handle("/api/files/{id}/fetch", methods{http.MethodPost: s.fetchFile})
	mux.Handle("/api/files/{id}/content", methods{http.MethodGet: s.content})
	mux.Handle("/api/rooms/{room}/upload", methods{http.MethodPost: s.upload})
	mux.Handle("/api/search", methods{http.MethodGet: s.search})
	mux.Handle("/api/invites", methods{http.MethodGet: s.invites, http.MethodPost: s.invite})
	s.routeOffice(mux)
	mux.Handle("/api/rooms/{room}/typing", methods{http.MethodPost: s.typing})
	mux.Handle("/api/rooms/{room}/read", methods{http.MethodGet: s.readState, http.MethodPost: s.markRead})
	mux.Handle("/api/presence", methods{http.MethodPost: s.presence})
	mux.Handle("/api/audit", methods{http.MethodGet: s.audit})
	mux.Handle("/api/export", methods{http.MethodGet: s.export})
	mux.Handle("/api/export/verify", methods{http.MethodPost: s.verifyExport})
	mux.Handle("/api/session", methods{http.MethodPost: s.session})
	mux.Handle("/api/login-urls", methods{http.MethodPost: s.loginURL})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Message: "no such API endpoint: " + r.URL.Path})
	})
	mux.Handle("/", web.Handler())
	s.routes = mux.routes
	return s.guard(mux)
}

// router is a ServeMux that remembers the API's patterns and methods, so a
// test can walk every endpoint (api/security_test.go): an endpoint added
// later is checked without anyone listing it.
type router struct {
	*http.ServeMux
	routes map[string]methods
}

func (r *router) Handle(pattern string, h http.Handler) {
	if m, ok := h.(methods); ok {
		r.routes[pattern] = m
	}
	r.ServeMux.Handle(pattern, h)
}

// guard applies the Host, Origin and token checks, in that order: a request
// from a foreign page is refused before the token is even looked at. The
// web UI's static files and POST /api/session need no token: the files hold
// no data, and the session request is how the page gets one.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")

		port := localPort(r)
		if port == "" || !loopbackHost(r.Host, port) {
			s.logger.Warn("refused request with a foreign Host", "host", r.Host)
			writeError(w, &Error{
				Status:  http.StatusForbidden,
				Message: fmt.Sprintf("refused Host %q", r.Host),
				Hint:    "call the API as 127.0.0.1, localhost or [::1] with its port",
			})
			return
		}
		if origin, ok := r.Header["Origin"]; ok && (len(origin) != 1 || !loopbackOrigin(origin[0], port)) {
			s.logger.Warn("refused request with a foreign Origin", "origin", r.Header.Get("Origin"))
			writeError(w, &Error{
				Status:  http.StatusForbidden,
				Message: fmt.Sprintf("refused Origin %q", r.Header.Get("Origin")),
			})
			return
		}
		if needsToken(r) && !s.authorized(r) {
			h.Set("WWW-Authenticate", "Bearer")
			writeError(w, &Error{
				Status:  http.StatusUnauthorized,
				Message: "missing or wrong API token",
				Hint:    "send 'Authorization: Bearer TOKEN' with the token from api.json in the node's home",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// needsToken reports whether r is for the API rather than the UI's files.
// It judges the cleaned path, as the mux routes it, so that no spelling of
// an API path slips past as a file.
func needsToken(r *http.Request) bool {
	p := path.Clean("/" + r.URL.Path)
	return (p == "/api" || strings.HasPrefix(p, "/api/")) && p != "/api/session"
}

// authorized reports whether r bears the API token or a session token of
// the web UI.
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || s.noToken {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1 || s.sessions.valid(got)
}

// localPort is the port of the listener the request arrived on.
func localPort(r *http.Request) string {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	return port
}

func loopbackHost(host, port string) bool {
	switch host {
	case "127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port:
		return true
	}
	return false
}

func loopbackOrigin(origin, port string) bool {
	host, ok := strings.CutPrefix(origin, "http://")
	return ok && loopbackHost(host, port)
}

// methods routes a path by method, answering 405 as JSON for the others.
type methods map[string]func(w http.ResponseWriter, r *http.Request) error

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m[r.Method]
	if !ok {
		allow := make([]string, 0, len(m))
		for method := range m {
			allow = append(allow, method)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Message: r.Method + " is not allowed on " + r.URL.Path})
		return
	}
	if err := h(w, r); err != nil {
		writeError(w, err)
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st, err := s.backend.Status(r.Context())
	if err != nil {
		return s.failed("status", err)
	}
	if st.API == "" {
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			st.API = addr.String()
		}
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) rooms(w http.ResponseWriter, r *http.Request) error {
	rooms, err := s.backend.Rooms(r.Context())
	if err != nil {
		return s.failed("rooms", err)
	}
	return writeJSON(w, http.StatusOK, nonNil(rooms))
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) error {
	members, err := s.backend.Members(r.Context())
	if err != nil {
		return s.failed("members", err)
	}
	return writeJSON(w, http.StatusOK, nonNil(members))
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) error {
	peers, err := s.backend.Peers(r.Context())
	if err != nil {
		return s.failed("peers", err)
	}
	return writeJSON(w, http.StatusOK, nonNil(peers))
}

func (s *Server) doctor(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.backend.Doctor(r.Context())
	if err != nil {
		return s.failed("doctor", err)
	}
	rep.Checks, rep.Interfaces, rep.Members = nonNil(rep.Checks), nonNil(rep.Interfaces), nonNil(rep.Members)
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) log(w http.ResponseWriter, r *http.Request) error {
	limit := DefaultLogLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLogLimit {
			return &Error{
				Status:  http.StatusBadRequest,
				Message: fmt.Sprintf("limit %q is not a number from 1 to %d", v, MaxLogLimit),
			}
		}
		limit = n
	}
	room := r.PathValue("room")
	if before := r.URL.Query().Get("before"); before != "" {
		return s.logBefore(w, r, room, before, limit)
	}
	msgs, err := s.backend.Log(r.Context(), room, limit)
	if err != nil {
		return s.failed("log", roomError(room, err))
	}
	return writeJSON(w, http.StatusOK, nonNil(msgs))
}

// SendRequest is the body of POST /api/rooms/{room}/messages.
type SendRequest struct {
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"` // ID of the message replied to
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) error {
	var req SendRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return &Error{Status: http.StatusBadRequest, Message: "empty message"}
	}
	room := r.PathValue("room")
	if req.ReplyTo != "" {
		return s.reply(w, r, room, req)
	}
	msg, err := s.backend.Send(r.Context(), room, req.Text)
	if err != nil {
		return s.failed("send", roomError(room, err))
	}
	return writeJSON(w, http.StatusCreated, msg)
}

// InviteRequest is the body of POST /api/invites.
type InviteRequest struct {
	Expires string `json:"expires,omitempty"` // a Go duration; empty means DefaultInviteExpiry
	Role    string `json:"role,omitempty"`    // member (the default) or admin
}

// InviteResponse answers POST /api/invites.
type InviteResponse struct {
	Code string `json:"code"`
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	expires := DefaultInviteExpiry
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d <= 0 {
			return &Error{
				Status:  http.StatusBadRequest,
				Message: fmt.Sprintf("expires %q is not a positive duration", req.Expires),
				Hint:    "write it as 24h, 90m or 168h",
			}
		}
		expires = d
	}
	var code string
	var err error
	if o, ok := s.backend.(node.Office); ok && req.Role != "" {
		code, err = o.InviteAs(r.Context(), expires, req.Role)
	} else {
		code, err = s.backend.Invite(r.Context(), expires)
	}
	if err != nil {
		return s.failed("invite", err)
	}
	return writeJSON(w, http.StatusCreated, InviteResponse{Code: code})
}

// events streams the node's events until the client goes away, the server
// closes, or the node ends the subscription. It subscribes before answering,
// so a client that has the response headers misses no event from then on;
// one that falls behind loses an event and the node closes its channel
// (Backend.Subscribe): the stream ends rather than go on with a gap, and
// the client, reconnecting, reads what it missed from the history.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	evs := s.backend.Subscribe(ctx)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.logger.Debug("event stream cannot flush", "err", err)
		return nil
	}

	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		var frame []byte
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			frame = []byte(": ping\n\n")
		case ev, ok := <-evs:
			if !ok {
				if ctx.Err() == nil {
					s.logger.Debug("event stream ended by the node: the client fell behind, or the node stopped")
				}
				return nil
			}
			if ev.Type == "" || strings.ContainsAny(ev.Type, "\r\n") {
				s.logger.Warn("dropped an event with a malformed type")
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.logger.Error("encode event", "type", ev.Type, "err", err)
				continue
			}
			frame = fmt.Appendf(nil, "event: %s\ndata: %s\n\n", ev.Type, data)
		}
		if _, err := w.Write(frame); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// roomError points a user who named an unknown member to the member list
// rather than the room list.
func roomError(room string, err error) error {
	if strings.HasPrefix(room, "@") && errors.Is(err, node.ErrUnknownRoom) {
		return &Error{Status: http.StatusNotFound, Message: err.Error(), Hint: "'charla members' lists the members"}
	}
	return err
}

// failed logs an unexpected backend error before it is answered as 500;
// the ones that map to a status are the client's business.
func (s *Server) failed(op string, err error) error {
	if toError(err).Status == http.StatusInternalServerError {
		s.logger.Error("API request failed", "op", op, "err", err)
	}
	return err
}

// decodeBody decodes a JSON request body strictly into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{
			Status:  http.StatusUnsupportedMediaType,
			Message: "request body must be application/json",
			Hint:    "send 'Content-Type: application/json'",
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", MaxBodyBytes)}
		}
		return &Error{Status: http.StatusBadRequest, Message: "malformed request body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Message: "malformed request body: data after the JSON object"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
	return nil
}

func writeError(w http.ResponseWriter, err error) {
	e := toError(err)
	_ = writeJSON(w, e.Status, e)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
