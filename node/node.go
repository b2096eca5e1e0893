package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/discovery"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ymx "github.com/libp2p/go-yamux/v5"
	ma "github.com/multiformats/go-multiaddr"
)

// Meta keys in the store.
const (
	metaGenesis = "genesis"     // the encoded genesis record
	metaNetKey  = "network-key" // 32 bytes: the private network's pre-shared key
)

// DefaultPort is the TCP port a node listens on unless told otherwise.
const DefaultPort = 4747

// Node is one running charla node: its store, its libp2p host, gossip and sync.
type Node struct {
	cfg  Config
	log  *slog.Logger
	lock *homeLock
	st   *store.Store
	id   *crypto.Identity
	hist *history
	host host.Host
	gsp  *gossip

	ctx    context.Context
	cancel context.CancelFunc
	work   work // node/work.go: what Close waits for
	// serving is for tests: every stream handler calls it first, counted
	// in work, and calls what it returns when the handler returns.
	serving atomic.Pointer[func(network.Stream) func()]

	subsMu sync.Mutex // guards subs
	subs   map[chan Event]struct{}

	syncing    inflight
	lag        *lag          // node/lag.go
	bodiesKick chan struct{} // node/bodies.go
	static     []peer.AddrInfo
	doors      doors
	mdns       *discovery.MDNS
	find       finder
	pres       presence
	sig        signals
	prog       progress
	notices    notices // node/removal.go
	// headKnown is closed once a pull from a peer has completed: from then
	// on this node holds its own feed's head as the office knows it.
	headKnown chan struct{}
	headOnce  sync.Once
	started   time.Time
	recMu     sync.Mutex // guards records
	records   map[peer.ID]signedRecord
	netKey    []byte
	files     files
	ret       retention
	text      textIndex

	closeOnce sync.Once
	closeErr  error
}

// inflight is the set of peers with a sync pull under way. A pull asked for
// while one runs is not dropped: it runs once more when the first ends, so a
// trigger that came after the first pull's vector is never lost.
type inflight struct {
	mu sync.Mutex       // guards m
	m  map[peer.ID]bool // true: pull again when done
}

func (f *inflight) begin(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[peer.ID]bool{}
	}
	if _, running := f.m[p]; running {
		f.m[p] = true
		return false
	}
	f.m[p] = false
	return true
}

// again asks for another pull of p when the one under way ends.
func (f *inflight) again(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, running := f.m[p]; running {
		f.m[p] = true
	}
}

// end reports whether another pull was asked for meanwhile.
func (f *inflight) end(p peer.ID) (again bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	again = f.m[p]
	delete(f.m, p)
	return again
}

// Init creates a new identity and workspace with #general in home, and
// returns the new peer ID. It refuses a home that already has an identity.
func Init(ctx context.Context, home string, opts InitOptions) (string, error) {
	name, err := checkName("name", opts.Name)
	if err != nil {
		return "", err
	}
	wsName, err := checkName("workspace name", opts.Workspace)
	if err != nil {
		return "", err
	}
	lock, id, self, err := claimNewHome(home, name, "init")
	if err != nil {
		return "", err
	}
	defer lock.release()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	g := &wire.Genesis{Name: wsName, Founder: self, Created: time.Now().UnixMilli(), Nonce: nonce}
	var netKey [32]byte
	rand.Read(netKey[:])
	st, err := createHome(ctx, home, id, g, netKey)
	if err != nil {
		return "", err
	}
	defer st.Close()
	hist, err := newHistory(st, id, g, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	ws := g.ID()
	if _, err := hist.createRoom(ctx, generalRoomID(ws), wire.RoomChannel, "general", nil, false); err != nil {
		return "", fmt.Errorf("create #general: %w", err)
	}
	return id.PeerID().String(), nil
}

// createHome writes a node's identity and the workspace it belongs to.
// The identity file is written last: a home is initialised once it exists.
func createHome(ctx context.Context, home string, id *crypto.Identity, g *wire.Genesis, netKey [32]byte) (*store.Store, error) {
	st, err := store.Open(ctx, filepath.Join(home, databaseFile))
	if err != nil {
		return nil, err
	}
	for k, v := range map[string][]byte{
		metaGenesis: g.Marshal(),
		metaNetKey:  netKey[:],
	} {
		if err := st.SetMeta(ctx, k, v); err != nil {
			st.Close()
			return nil, fmt.Errorf("write workspace: %w", err)
		}
	}
	if err := crypto.SaveIdentity(filepath.Join(home, identityFile), id); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func checkName(what, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > wire.MaxNameBytes {
		return "", fmt.Errorf("%w: %s is over %d bytes", ErrInvalid, what, wire.MaxNameBytes)
	}
	return s, nil
}

// Open starts a node from its home: store, libp2p host, gossip and sync.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "node")
	if !IsInitialized(cfg.Home) {
		return nil, fmt.Errorf("%w %s", ErrNotInit, cfg.Home)
	}
	n := &Node{cfg: cfg, log: log, records: map[peer.ID]signedRecord{}, headKnown: make(chan struct{}), started: time.Now(), subs: map[chan Event]struct{}{}, lag: newLag(), bodiesKick: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.lock, err = lockHome(cfg.Home); err != nil {
		return nil, err
	}
	if n.id, err = crypto.LoadIdentity(filepath.Join(cfg.Home, identityFile)); err != nil {
		return nil, err
	}
	if n.st, err = store.Open(ctx, filepath.Join(cfg.Home, databaseFile)); err != nil {
		return nil, err
	}
	gb, err := n.st.Meta(ctx, metaGenesis)
	if err != nil {
		return nil, fmt.Errorf("read workspace from %s: %w", cfg.Home, err)
	}
	g, err := wire.DecodeGenesis(gb)
	if err != nil {
		return nil, fmt.Errorf("read workspace from %s: %w", cfg.Home, err)
	}
	netKey, err := n.st.Meta(ctx, metaNetKey)
	if err != nil || len(netKey) != 32 {
		return nil, fmt.Errorf("read network key from %s: missing or damaged", cfg.Home)
	}
	n.netKey = netKey
	if n.hist, err = newHistory(n.st, n.id, g, log); err != nil {
		return nil, err
	}
	n.initFiles()
	n.initRetention(ctx)
	n.text.wrote = make(chan struct{}, 1)
	n.hist.onMessages = func(ms []store.Message) {
		n.textStored(len(ms))
		n.emit(ms)
		n.filesArrived(ms)
		n.retentionSeen(ms)
	}
	n.hist.onGap = n.lag.gap
	for _, s := range cfg.Peers {
		ai, err := parsePeer(s)
		if err != nil {
			return nil, err
		}
		n.static = append(n.static, ai)
	}
	if n.host, err = newHost(cfg.Listen, n.id, netKey, n.hist); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.gsp, err = newGossip(n.ctx, n.host, n.hist, &n.work); err != nil {
		return nil, err
	}
	n.pres.lastTime, n.pres.lastSeen, n.pres.lastPull = map[peer.ID]int64{}, map[peer.ID]time.Time{}, map[peer.ID]time.Time{}
	n.pres.sentHeads = map[string]uint64{}
	if err := n.startPresence(ctx); err != nil {
		return nil, err
	}
	n.host.SetStreamHandler(syncProtocol, n.serve(n.handleSync))
	n.host.SetStreamHandler(exchangeProtocol, n.serve(n.handleExchange))
	n.host.SetStreamHandler(blobProtocol, n.serve(n.handleBlob))
	n.host.SetStreamHandler(bodiesProtocol, n.serve(n.handleBodies))
	n.host.SetStreamHandler(removalProtocol, n.serve(n.handleRemoval))
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if n.ctx.Err() != nil {
				return
			}
			if !n.hist.isMember(c.RemotePeer()) {
				n.removedConnected(c) // node/removal.go: told, and nothing else
				return
			}
			n.pullAsync(c.RemotePeer())
			n.exchangeAsync(c.RemotePeer())
			n.peerConnected()
			n.kickFiles()
		},
	})
	n.hist.onAdmit = func(p []byte) { n.dialKnown() }
	n.hist.onRemove = n.memberRemoved
	n.hist.onRoster = func() {
		n.rosterChanged()
		n.retentionChanged()
	}
	n.hist.onPublish = n.publish
	n.hist.onDisclosed = n.kickBodies
	if err := n.loadInvites(ctx); err != nil {
		return nil, fmt.Errorf("read invites: %w", err)
	}
	n.openDoors()
	if cfg.MDNS {
		n.startMDNS([32]byte(netKey))
	}
	n.work.spawn(func() { n.retentionLoop(n.ctx) })
	n.work.spawn(func() { n.bodiesLoop(n.ctx) })
	n.work.spawn(func() { n.textLoop(n.ctx) })
	n.work.spawn(func() { n.fileLoop(n.ctx) })
	n.work.spawn(func() { n.gsp.watchJoins(n.ctx, n.pullSoon) })
	n.work.spawn(func() { n.doorLoop(n.ctx) })
	n.work.spawn(func() { n.bookLoop(n.ctx) })
	n.work.spawn(func() { n.gsp.receive(n.ctx, n.host.ID(), n.hist) })
	n.work.spawn(func() { n.syncLoop(n.ctx) })
	log.Info("node started", "peer", n.host.ID(), "workspace", g.Name, "addrs", n.host.Addrs())
	return n, nil
}

func parsePeer(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: peer address %q: %v", ErrInvalid, s, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: peer address %q must end in /p2p/<peer ID>", ErrInvalid, s)
	}
	return *ai, nil
}

// muxer is go-libp2p's yamux with keepalives every 5 s of silence instead
// of 30: a member whose cable was pulled, or whose laptop slept, showed as
// connected for ~40 s (a ping after 30 s of silence, then its 10 s
// timeout), now for 5–15 s. Members send a presence heartbeat every 5 s,
// so on a live connection the pings hardly ever go out.
var muxer = func() *yamux.Transport {
	cfg := *(*ymx.Config)(yamux.DefaultTransport)
	cfg.KeepAliveInterval = 5 * time.Second
	return (*yamux.Transport)(&cfg)
}()

// newHost starts the libp2p host: TCP, Noise and yamux inside the
// workspace's private network, with a gater that admits roster members only.
func newHost(listen []string, id *crypto.Identity, netKey []byte, hist *history) (host.Host, error) {
	opts := func(addrs []string) []libp2p.Option {
		return []libp2p.Option{
			libp2p.Identity(id.PrivKey()),
			libp2p.ListenAddrStrings(addrs...),
			// Without SO_REUSEPORT: with it (go-libp2p's default) a second
			// node on the machine also binds 4747, and the kernel splits
			// incoming connections between the two, so half the dials to
			// either fail the private-network handshake.
			libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
			libp2p.Security(noise.ID, noise.New),
			libp2p.Muxer(yamux.ID, muxer),
			libp2p.PrivateNetwork(netKey),
			libp2p.ConnectionGater(&gater{hist: hist}),
			libp2p.DisableRelay(),
			libp2p.DisableMetrics(),
			libp2p.UserAgent("charla"),
			// A peer of another office fails the pnet handshake silently; do not
			// wait the default 5 s for it (FINDINGS.md).
			libp2p.SwarmOpts(swarm.WithDialTimeoutLocal(2 * time.Second)),
		}
	}
	if len(listen) == 0 {
		h, err := libp2p.New(opts([]string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort)})...)
		if err == nil {
			return h, nil
		}
		listen = []string{"/ip4/0.0.0.0/tcp/0"} // 4747 is taken: any free port
	}
	h, err := libp2p.New(opts(listen)...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p on %s: %w", strings.Join(listen, ", "), err)
	}
	return h, nil
}

func (n *Node) exchangeAsync(p peer.ID) {
	n.work.spawn(func() {
		if err := n.exchange(n.ctx, p); err != nil && n.ctx.Err() == nil {
			n.log.Debug("peer exchange", "peer", p, "err", err)
		}
	})
}

func (n *Node) connectedMembers() []peer.ID {
	var out []peer.ID
	for _, p := range n.host.Network().Peers() {
		if n.hist.isMember(p) {
			out = append(out, p)
		}
	}
	return out
}

// Close stops the node and waits for its goroutines. Safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		// Nothing starts from here on, and what runs is counted: the wait
		// below covers all of it, so none of it outlives the store or the
		// home's lock. Stream handlers end once host.Close resets their
		// streams, or at their next use of the cancelled n.ctx.
		n.work.stop()
		if n.cancel != nil {
			n.cancel()
		}
		n.closeDoors(true)
		if n.host != nil {
			n.saveBook()
			if err := n.host.Close(); err != nil {
				n.closeErr = err
			}
		}
		n.work.wait()
		n.subsMu.Lock()
		for ch := range n.subs {
			delete(n.subs, ch)
			close(ch)
		}
		n.subsMu.Unlock()
		if n.st != nil {
			if err := n.st.Close(); err != nil && n.closeErr == nil {
				n.closeErr = err
			}
		}
		n.lock.release()
	})
	return n.closeErr
}

// PeerID is this node's peer ID.
func (n *Node) PeerID() peer.ID { return n.id.PeerID() }

// Addrs are the node's full listen multiaddrs, each ending in /p2p/<peer ID>.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	sort.Strings(out)
	return out
}

// Status reports the node's view of itself.
func (n *Node) Status(ctx context.Context) (Status, error) {
	self, _ := n.hist.member(n.hist.self)
	count, err := n.st.EnvelopeCount(ctx)
	if err != nil {
		return Status{}, err
	}
	s := Status{
		PeerID:        n.host.ID().String(),
		Name:          self.name,
		Workspace:     n.hist.ws.String(),
		WorkspaceName: n.hist.genesis.Name,
		Addrs:         n.Addrs(),
		Peers:         []string{},
		Rejected:      n.hist.rejectedCounts(),
		Dropped:       n.gsp.drops.counts(),
		Envelopes:     count,
		Sync:          n.prog.snapshot(),
		Forks:         []Fork{},
		Role:          self.role.String(),
		Removed:       self.removed,
		Sources:       n.BlobSources(),
	}
	last := n.lastPurge()
	s.LastPurge, s.Purged, s.PurgedFiles, s.PurgedChunks, s.PurgedTotal = last.Time, last.Envelopes, last.Files, last.Chunks, last.Total
	forks, err := n.st.ForkHeaders(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, f := range forks {
		m, _ := n.hist.member(f.Author)
		s.Forks = append(s.Forks, Fork{Author: peer.ID(f.Author).String(), AuthorName: m.name, Seq: f.Seq, ID: f.ID.String()})
	}
	for _, p := range n.connectedMembers() {
		s.Peers = append(s.Peers, p.String())
	}
	sort.Strings(s.Peers)
	return s, nil
}

// Rooms lists the rooms this node can read.
func (n *Node) Rooms(ctx context.Context) ([]Room, error) {
	rs, err := n.st.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Room, 0, len(rs))
	for _, r := range rs {
		out = append(out, n.roomView(r))
	}
	return out, nil
}

func (n *Node) roomView(r store.Room) Room {
	v := Room{ID: r.ID.String(), Name: r.Name, Kind: r.Kind.String(), Members: []string{}}
	members := r.Members
	if r.ID == generalRoomID(n.hist.ws) {
		// #general is every member's. Its stored members are the recipients
		// of the key shares this node could read, which on a member's node
		// leave out everyone admitted after it.
		members = n.hist.currentMembers()
	}
	for _, p := range members {
		v.Members = append(v.Members, peer.ID(p).String())
	}
	sort.Strings(v.Members)
	if r.Kind == wire.RoomDirect {
		if p, ok := n.hist.dmPeer(r); ok {
			m, _ := n.hist.member(p)
			v.Name = "@" + m.name
			if m.removed {
				// A colleague who joins again under the same name has a
				// conversation of its own: the two must not read alike.
				v.Name += " (removed)"
			}
		}
	}
	return v
}

// Members lists the workspace roster.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	n.hist.mu.Lock()
	out := make([]Member, 0, len(n.hist.members))
	var ids []peer.ID
	for p, m := range n.hist.members {
		if m.removed {
			continue
		}
		out = append(out, Member{PeerID: peer.ID(p).String(), Name: m.name, Role: m.role.String()})
		ids = append(ids, peer.ID(p))
	}
	n.hist.mu.Unlock()
	for i := range out {
		out[i].Presence = n.presenceOf(ids[i])
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].PeerID < out[j].PeerID
	})
	return out, nil
}

// Peers lists the members this node is connected to or knows how to reach.
func (n *Node) Peers(ctx context.Context) ([]Peer, error) {
	out := []Peer{}
	seen := map[peer.ID]bool{}
	for _, p := range n.connectedMembers() {
		m, _ := n.hist.member([]byte(p))
		v := Peer{PeerID: p.String(), Name: m.name, Connected: true, Via: n.find.viaOf(p), Addrs: []string{}}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			v.Addrs = append(v.Addrs, c.RemoteMultiaddr().String())
		}
		out = append(out, v)
		seen[p] = true
	}
	book, err := n.st.Book(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range book {
		p := peer.ID(e.Peer)
		m, ok := n.hist.member(e.Peer)
		if seen[p] || !ok || m.removed || p == n.host.ID() {
			continue
		}
		out = append(out, Peer{PeerID: p.String(), Name: m.name, Addrs: e.Addrs, Via: viaBook})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolveRoom finds a room by "general", "#general", hex ID, or "@member".
// For a direct room that does not exist yet it returns create=true.
func (n *Node) resolveRoom(ctx context.Context, name string) (id wire.ID, other []byte, err error) {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "@") {
		p, err := n.resolveMember(strings.TrimPrefix(name, "@"))
		if errors.Is(err, ErrUnknownRoom) {
			// A removed member's direct conversation stays readable.
			if id, ok := n.removedDM(ctx, strings.TrimPrefix(name, "@")); ok {
				return id, nil, nil
			}
		}
		if err != nil {
			return wire.ID{}, nil, err
		}
		return dmRoomID(n.hist.ws, n.hist.self, p), p, nil
	}
	if id, err := wire.ParseID(name); err == nil {
		if _, err := n.hist.room(ctx, id); err == nil {
			return id, nil, nil
		}
	}
	rs, err := n.hist.allRooms(ctx)
	if err != nil {
		return wire.ID{}, nil, err
	}
	want := strings.TrimPrefix(name, "#")
	for _, r := range rs {
		if r.Kind == wire.RoomChannel && r.Name == want {
			return r.ID, nil, nil
		}
	}
	return wire.ID{}, nil, fmt.Errorf("%w %q", ErrUnknownRoom, name)
}

// removedDM finds the direct room this node holds with a removed member,
// named by display name or peer ID, if exactly one matches.
func (n *Node) removedDM(ctx context.Context, s string) (wire.ID, bool) {
	var ids []wire.ID
	n.hist.mu.Lock()
	for p, m := range n.hist.members {
		if m.removed && (strings.EqualFold(m.name, s) || peer.ID(p).String() == s) {
			ids = append(ids, dmRoomID(n.hist.ws, n.hist.self, []byte(p)))
		}
	}
	n.hist.mu.Unlock()
	var found []wire.ID
	for _, id := range ids {
		if _, err := n.hist.room(ctx, id); err == nil {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return wire.ID{}, false
	}
	return found[0], true
}

// resolveMember finds a member by display name or peer ID.
func (n *Node) resolveMember(s string) ([]byte, error) {
	if p, err := peer.Decode(s); err == nil {
		if m, ok := n.hist.member([]byte(p)); ok && !m.removed {
			return []byte(p), nil
		}
	}
	n.hist.mu.Lock()
	var found []string
	for p, m := range n.hist.members {
		if !m.removed && strings.EqualFold(m.name, s) {
			found = append(found, p)
		}
	}
	n.hist.mu.Unlock()
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no member named %q", ErrUnknownRoom, s)
	case 1:
		return []byte(found[0]), nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = peer.ID(p).String()
	}
	sort.Strings(ids)
	return nil, fmt.Errorf("%w: %d members are named %q: %s; use a peer ID", ErrAmbiguous, len(found), s, strings.Join(ids, ", "))
}

// Send posts a text message and returns it once it is durably stored.
func (n *Node) Send(ctx context.Context, room, text string) (Message, error) {
	if strings.TrimSpace(text) == "" {
		return Message{}, fmt.Errorf("%w: empty message", ErrInvalid)
	}
	if len(text) > wire.MaxTextBytes {
		return Message{}, fmt.Errorf("%w: message is %d bytes; the limit is %d", ErrInvalid, len(text), wire.MaxTextBytes)
	}
	id, other, err := n.resolveRoom(ctx, room)
	if err != nil {
		return Message{}, err
	}
	if other != nil && string(other) == string(n.hist.self) {
		return Message{}, fmt.Errorf("%w: a direct message needs another member", ErrInvalid)
	}
	n.awaitOwnHead(ctx)
	if other != nil {
		if _, err := n.hist.sendKey(ctx, id); errors.Is(err, ErrUnknownRoom) {
			cs, err := n.hist.createRoom(ctx, id, wire.RoomDirect, "", [][]byte{other}, false)
			if err != nil {
				return Message{}, err
			}
			for _, c := range cs {
				n.publish(c)
			}
		}
	}
	c, msgs, err := n.hist.postContent(ctx, id, &wire.Content{Kind: wire.KindText, Text: text})
	if err != nil {
		return Message{}, err
	}
	n.publish(c)
	if len(msgs) == 0 {
		return Message{}, fmt.Errorf("send: message %s stored but not readable", c.id)
	}
	return n.messageView(ctx, msgs[0]), nil
}

// awaitOwnHead holds a node's first send after start until one sync has
// shown it what the office holds of its own feed: a node restored from an
// old backup must not reuse a seq (DESIGN.md). It waits while peers are
// connected or the node has just started and may still reach one; a node
// that is the only member, or that stays offline, sends at once or after
// ownHeadWait.
func (n *Node) awaitOwnHead(ctx context.Context) {
	select {
	case <-n.headKnown:
		return
	default:
	}
	if n.hist.memberCount() < 2 {
		return
	}
	deadline := n.started.Add(ownHeadWait)
	if len(n.connectedMembers()) > 0 {
		deadline = time.Now().Add(ownHeadWait)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-n.headKnown:
	case <-t.C:
	case <-ctx.Done():
	}
}

// ownHeadWait bounds how long a first send waits for a sync to finish.
const ownHeadWait = 5 * time.Second

// publish hands an already stored envelope to gossip. A failure loses
// nothing: sync delivers what gossip did not.
func (n *Node) publish(c *checked) {
	if err := n.gsp.publish(n.ctx, c); err != nil && n.ctx.Err() == nil {
		n.log.Warn("publish", "err", err, "id", c.id)
	}
}

// Log returns the limit newest messages of a room, oldest first.
func (n *Node) Log(ctx context.Context, room string, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = 50
	}
	id, _, err := n.resolveRoom(ctx, room)
	if err != nil {
		return nil, err
	}
	ms, err := n.st.Messages(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, n.messageView(ctx, m))
	}
	return out, nil
}

func (n *Node) messageView(ctx context.Context, m store.Message) Message {
	return n.messageViewAt(ctx, m, n.received(ctx, m.ID))
}

// messageViewAt is messageView for a message this node first held at
// received (unix ms), which dates it (see shownTime).
func (n *Node) messageViewAt(ctx context.Context, m store.Message, received int64) Message {
	author, _ := n.hist.member(m.Author)
	v := Message{
		ID: m.ID.String(), Room: m.Room.String(), Author: peer.ID(m.Author).String(),
		AuthorName: author.name, Time: time.UnixMilli(shownTime(m.Time, received)).UTC(), Kind: wire.ContentKind(m.Kind).String(),
		Text: m.Text, Lamport: m.Lamport, Seq: m.Seq, State: n.stateOf(m),
	}
	if r, err := n.hist.room(ctx, m.Room); err == nil {
		v.RoomName = n.roomView(r).Name
	}
	n.addActions(ctx, m, &v)
	v.Mentions = n.mentionsIn(v.Text)
	return v
}

// Subscribe delivers events until ctx is done or the node stops. A
// subscriber that does not keep up never blocks the node: the first event
// its full buffer cannot take is dropped (counted) and its channel closed,
// so that it learns it missed something rather than going on with a gap.
func (n *Node) Subscribe(ctx context.Context) <-chan Event {
	size := n.cfg.EventBuffer
	if size <= 0 {
		size = DefaultEventBuffer
	}
	ch := make(chan Event, size)
	n.subsMu.Lock()
	if n.ctx.Err() != nil {
		n.subsMu.Unlock()
		close(ch)
		return ch
	}
	n.subs[ch] = struct{}{}
	n.subsMu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		n.subsMu.Lock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
		n.subsMu.Unlock()
	}()
	return ch
}

func (n *Node) emit(ms []store.Message) {
	// A view costs reads of the store (room, actions); a catch-up with no
	// one listening must not pay them per message.
	n.subsMu.Lock()
	none := len(n.subs) == 0
	n.subsMu.Unlock()
	if none {
		return
	}
	// What is emitted was stored just now, or decrypted just now when its
	// key arrived; either way now bounds when it was received, without a
	// read per message on the ingest path.
	now := time.Now().UnixMilli()
	for _, m := range ms {
		v := n.messageViewAt(context.Background(), m, now)
		n.emitEvent(Event{Type: "message", Message: &v})
	}
}

// emitEvent hands an event to every subscriber, and ends the subscription
// of one too far behind to take it.
func (n *Node) emitEvent(ev Event) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- ev:
		default:
			n.hist.count("slow-subscriber")
			delete(n.subs, ch)
			close(ch)
		}
	}
}

// CreateRoom makes a channel readable only by the given members and this node.
func (n *Node) CreateRoom(ctx context.Context, name string, members []peer.ID) (string, error) {
	return n.createChannel(ctx, name, members, false)
}

// createChannel is CreateRoom; with noHistory, members added later get only
// the keys from their joining on.
func (n *Node) createChannel(ctx context.Context, name string, members []peer.ID, noHistory bool) (string, error) {
	name, err := checkName("room name", strings.TrimPrefix(name, "#"))
	if err != nil {
		return "", err
	}
	var ps [][]byte
	for _, m := range members {
		ps = append(ps, []byte(m))
	}
	// A zero ID: createRoom names the channel after this node and the seq
	// of its first key share.
	cs, err := n.hist.createRoom(ctx, wire.ID{}, wire.RoomChannel, name, ps, noHistory)
	for _, c := range cs {
		n.publish(c)
	}
	if len(cs) == 0 {
		return "", err
	}
	return cs[0].hdr.Room.String(), err
}
