package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/multiformats/go-multiaddr"
)

// ViaMDNS is Found.Via for addresses learnt from an mDNS answer.
const ViaMDNS = "mdns"

const (
	serviceName = "_charla._tcp"
	domain      = "local."
	tagKey      = "t="
	maxTagLen   = 64 // a TXT string holds at most 255 bytes; a truncated HMAC needs far fewer

	defaultQueryTimeout = time.Second      // hashicorp/mdns waits this long for answers, always
	fastQueryPause      = time.Second      // between queries in the fast phase: one query every 2 s
	fastPhase           = 30 * time.Second // after start and after every interface change
	slowQueryPause      = 10 * time.Second
	serveRetry          = 30 * time.Second
	netPoll             = 5 * time.Second
	tagPoll             = time.Minute
	dedupeWindow        = 30 * time.Second
	maxQueryInterfaces  = 16 // interfaces queried at once; a host with more is queried on the first 16 by name
)

// Found is a node that answered with an accepted workspace tag: the addresses
// it advertised, as /ip4/<addr>/tcp/<port> or /ip6/<addr>/tcp/<port>. The peer
// ID is not known until a libp2p handshake with one of them.
type Found struct {
	Addrs []multiaddr.Multiaddr
	Via   string // how the addresses were learnt; ViaMDNS here
}

// MDNSStatus is what MDNS reports to `charla doctor`.
type MDNSStatus struct {
	Serving    bool     `json:"serving"`              // this node answers queries
	LastError  string   `json:"last_error,omitempty"` // why advertising or browsing is not working now; empty when both work
	Interfaces []string `json:"interfaces"`           // up, multicast-capable, non-loopback interfaces with an address
}

// Option adjusts an MDNS. An invalid option makes Run fail at once.
type Option func(*MDNS) error

// WithQueryTimeout sets how long each query waits for answers (default 1 s).
// hashicorp/mdns always waits the whole timeout, and answers are handed to
// found only when it ends, so this is also the least time to a discovery.
func WithQueryTimeout(d time.Duration) Option {
	return func(m *MDNS) error {
		if d < 50*time.Millisecond || d > 5*time.Second {
			return fmt.Errorf("mdns query timeout %v out of range 50ms-5s", d)
		}
		m.queryTimeout = d
		return nil
	}
}

// MDNS advertises this node on the local network and browses for others with
// multicast DNS. Create it with NewMDNS and call Run once.
type MDNS struct {
	port         int
	tags         func() []string
	found        func(Found)
	log          *slog.Logger
	libLog       *log.Logger // for hashicorp/mdns, which takes only a *log.Logger
	queryTimeout time.Duration
	err          error // from the arguments or an option; returned by Run
	running      atomic.Bool

	mu     sync.Mutex // guards status
	status MDNSStatus
}

// NewMDNS returns an MDNS that advertises port, the TCP port node listens on.
//
// tags returns the acceptable workspace tags, the one to advertise first (see
// the package documentation); found is told the addresses of every node that
// answers with one of them, at most once per address set in 30 s. Both are
// called only from Run's goroutine; found should return quickly, as the next
// query waits for it. A nil logger discards. An invalid argument or option
// is reported by Run.
func NewMDNS(port int, tags func() []string, found func(Found), logger *slog.Logger, opts ...Option) *MDNS {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "discovery")
	m := &MDNS{
		port:         port,
		tags:         tags,
		found:        found,
		log:          logger,
		libLog:       log.New(slogWriter{logger}, "", 0),
		queryTimeout: defaultQueryTimeout,
	}
	switch {
	case port < 1 || port > 65535:
		m.err = fmt.Errorf("mdns port %d out of range 1-65535", port)
	case tags == nil:
		m.err = errors.New("mdns needs a tags function")
	case found == nil:
		m.err = errors.New("mdns needs a found function")
	}
	for _, opt := range opts {
		if err := opt(m); err != nil && m.err == nil {
			m.err = err
		}
	}
	return m
}

// Status returns a snapshot of what MDNS is doing. It is safe to call at any
// time, from any goroutine.
func (m *MDNS) Status() MDNSStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	st.Interfaces = append([]string(nil), st.Interfaces...)
	return st
}

// Run advertises and browses until ctx is done, then stops answering and
// returns nil. A host without multicast is not an error: Run keeps retrying,
// every 30 s and whenever the network interfaces change, and Status says why
// it is not serving. Run returns an error only for an invalid argument or
// option, or when called a second time.
//
// On return no more calls to found are made. hashicorp/mdns's own receive
// goroutines end on their own once their sockets are closed; Run cannot wait
// for them.
func (m *MDNS) Run(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("mdns discovery already running")
	}
	if ctx.Err() != nil {
		return nil
	}
	r := &runner{m: m}
	defer r.stop()

	r.refreshNet()
	r.serve()
	fastUntil := time.Now().Add(fastPhase)

	query := time.NewTimer(0)
	defer query.Stop()
	netTick := time.NewTicker(netPoll)
	defer netTick.Stop()
	tagTick := time.NewTicker(tagPoll)
	defer tagTick.Stop()
	retryTick := time.NewTicker(serveRetry)
	defer retryTick.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-query.C:
			r.query(ctx)
			pause := slowQueryPause
			if time.Now().Before(fastUntil) {
				pause = fastQueryPause
			}
			query.Reset(pause)
		case <-netTick.C:
			if !r.refreshNet() {
				continue
			}
			m.log.Info("network changed", "interfaces", r.net.names())
			r.announced = false
			r.restart()
			fastUntil = time.Now().Add(fastPhase)
			query.Reset(0)
		case <-tagTick.C:
			if r.server != nil && advertisedTag(m.tags()) != r.servedTag {
				m.log.Debug("workspace tag rotated")
				r.restart()
			}
		case <-retryTick.C:
			if r.server == nil {
				r.serve()
			}
		}
	}
}

// runner is the state of one Run, touched only by its goroutine.
type runner struct {
	m         *MDNS
	net       netState
	server    *mdns.Server // nil when not serving
	own       string       // our instance's full name while serving
	servedTag string
	serveErr  error
	queryErr  error
	loggedErr bool // the current serving failure has been logged at Info
	announced bool // serving on the current interfaces has been logged at Info
	recent    recent
}

// refreshNet re-reads the interfaces and reports whether they changed.
func (r *runner) refreshNet() bool {
	st, err := readNetState()
	if err != nil {
		r.m.log.Debug("list network interfaces", "err", err)
		return false
	}
	changed := !st.equal(r.net)
	r.net = st
	r.publish()
	return changed
}

func (r *runner) restart() {
	r.stopServer()
	r.serve()
}

func (r *runner) stop() {
	r.stopServer()
	r.m.mu.Lock()
	r.m.status.Serving = false
	r.m.mu.Unlock()
}

func (r *runner) stopServer() {
	if r.server == nil {
		return
	}
	if err := r.server.Shutdown(); err != nil {
		r.m.log.Debug("stop mdns responder", "err", err)
	}
	r.server, r.own, r.servedTag = nil, "", ""
}

// serve starts answering queries, or records and logs why it cannot. Only
// changes are logged at Info, repeats at Debug: on a network without
// multicast the retries, and the hourly restarts for a new tag, would
// otherwise fill the log.
func (r *runner) serve() {
	r.serveErr = r.startServer()
	level, msg, args := slog.LevelDebug, "advertising on mdns", []any{"port", r.m.port, "interfaces", r.net.names()}
	if r.serveErr != nil {
		msg, args = "not advertising on mdns; will retry", []any{"err", r.serveErr}
	}
	switch {
	case r.serveErr == nil && !r.announced:
		level, r.announced, r.loggedErr = slog.LevelInfo, true, false
	case r.serveErr != nil && !r.loggedErr:
		level, r.announced, r.loggedErr = slog.LevelInfo, false, true
	}
	r.m.log.Log(context.Background(), level, msg, args...)
	r.publish()
}

func (r *runner) startServer() error {
	tag := advertisedTag(r.m.tags())
	switch {
	case tag == "":
		return errors.New("no workspace tag to advertise")
	case len(tag) > maxTagLen:
		return fmt.Errorf("workspace tag is %d bytes, more than %d", len(tag), maxTagLen)
	case len(r.net.ifaces) == 0:
		return errors.New("no up, multicast-capable network interface with an address")
	}
	ips := r.net.advertised()
	if len(ips) == 0 {
		return errors.New("no address to advertise (only IPv6 link-local)")
	}
	instance := randomInstance()
	// The host name is the random instance too: left empty, hashicorp/mdns
	// would put os.Hostname() on the wire. IPs must not be empty either, or
	// it resolves the host name through the system resolver.
	svc, err := mdns.NewMDNSService(instance, serviceName, domain, instance+"."+domain, r.m.port, ips, []string{tagKey + tag})
	if err != nil {
		return fmt.Errorf("build mdns service: %w", err)
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Logger: r.m.libLog})
	if err != nil {
		// "no multicast listeners could be started": no route for 224.0.0.0/4
		// and no IPv6 (FINDINGS.md, "mDNS").
		return fmt.Errorf("start mdns responder: %w", err)
	}
	r.server, r.own, r.servedTag = srv, instance+serviceSuffix, tag
	return nil
}

// query asks every usable interface for charla nodes and reports the answers.
func (r *runner) query(ctx context.Context) {
	ifs := r.net.ifaces[:min(len(r.net.ifaces), maxQueryInterfaces)]
	if len(ifs) == 0 {
		r.queryErr = errors.New("no network interface to query on")
		r.publish()
		return
	}
	entries := make([]chan *mdns.ServiceEntry, len(ifs))
	errs := make([]error, len(ifs))
	var wg sync.WaitGroup
	for i, n := range ifs {
		entries[i] = make(chan *mdns.ServiceEntry, maxEntriesPerQuery)
		wg.Go(func() {
			defer close(entries[i])
			errs[i] = queryOn(ctx, n, entries[i], r.m.queryTimeout, r.m.libLog)
		})
	}
	// hashicorp/mdns keeps writing to an entry it has handed over when a
	// second answer for the same instance arrives (one per IP family), so the
	// entries are read only once the queries have returned (hashicorp/mdns#75,
	// #131: still open in v1.0.7).
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	tags := r.m.tags()
	now := time.Now()
	var failed []string
	for i, ch := range entries {
		if errs[i] != nil {
			failed = append(failed, fmt.Sprintf("query on %s: %v", ifs[i].iface.Name, errs[i]))
		}
		if len(ch) == cap(ch) {
			r.m.log.Debug("mdns answers may have been dropped", "interface", ifs[i].iface.Name, "limit", maxEntriesPerQuery)
		}
		for e := range ch {
			f, err := parseEntry(e, tags, r.own)
			if err != nil {
				r.m.log.Debug("ignored mdns answer", "name", e.Name, "reason", err)
				continue
			}
			if !r.recent.fresh(f, now) {
				continue
			}
			r.m.log.Debug("found on mdns", "addrs", f.Addrs)
			r.m.found(f)
		}
	}
	r.queryErr = nil
	if len(failed) > 0 {
		r.queryErr = errors.New(strings.Join(failed, "; "))
		r.m.log.Debug("mdns query failed", "err", r.queryErr)
	}
	r.publish()
}

// queryOn sends one query out of n and collects answers until the timeout.
func queryOn(ctx context.Context, n netIface, entries chan *mdns.ServiceEntry, timeout time.Duration, logger *log.Logger) error {
	ifi := n.iface
	p := &mdns.QueryParam{
		Service:     serviceName,
		Domain:      "local",
		Timeout:     timeout,
		Interface:   &ifi,
		Entries:     entries, // never blocks: hashicorp/mdns drops an entry when the buffer is full
		DisableIPv4: !n.hasV4(),
		DisableIPv6: !n.hasV6(),
		Logger:      logger,
	}
	err := mdns.QueryContext(ctx, p)
	if err != nil && !p.DisableIPv4 && !p.DisableIPv6 && ctx.Err() == nil {
		// A failed IPv6 send (its link-local address still tentative, or no
		// IPv6 route) fails the whole query before IPv4 answers are read.
		p.DisableIPv6 = true
		err = mdns.QueryContext(ctx, p)
	}
	return err
}

// publish copies the runner's state to the status Status returns.
func (r *runner) publish() {
	st := MDNSStatus{Serving: r.server != nil, Interfaces: r.net.names()}
	var errs []string
	for _, err := range []error{r.serveErr, r.queryErr} {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	st.LastError = strings.Join(errs, "; ")
	r.m.mu.Lock()
	r.m.status = st
	r.m.mu.Unlock()
}

func advertisedTag(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	return tags[0]
}

// randomInstance returns a fresh instance name: 8 random bytes in hex, so the
// name says nothing about the machine and does not link one advertisement to
// the next.
func randomInstance() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
