package node

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// joinProtocol runs on an invite's door: the joiner sends a JoinRequest
// frame, the issuer answers with one JoinResponse frame.
const joinProtocol = protocol.ID("/charla/join/1")

// Errors of join that callers and the CLI tell apart.
var (
	ErrInviteForged      = errors.New("invite code is not valid")
	ErrInviteExpired     = errors.New("invite has expired")
	ErrInviteUsed        = errors.New("invite was already used")
	ErrInviteRevoked     = errors.New("invite was revoked")
	ErrIssuerUnreachable = errors.New("could not reach the member who issued the invite")
)

const (
	metaInvites        = "invites"
	DefaultInviteValid = 7 * 24 * time.Hour
	joinTimeout        = 30 * time.Second
	joinAttemptsPerMin = 10 // per door; a wrong token cannot even connect
	// usedDoorGrace keeps a used door answering "already used" for a while,
	// so a second joiner gets a clear error instead of silence.
	usedDoorGrace = 24 * time.Hour
)

// invite is an issued invite as the issuer keeps it: the token only hashed.
type invite struct {
	ID      string    `json:"id"`      // hex of its ID in the roster
	Role    wire.Role `json:"role"`    // what it admits to
	Hash    []byte    `json:"hash"`    // crypto.HashToken(token)
	PSK     []byte    `json:"psk"`     // the door's private-network key, derived from the token
	Expires int64     `json:"expires"` // unix ms
	Used    bool      `json:"used"`    // redeemed
	UsedAt  int64     `json:"used_at"` // unix ms
	Revoked bool      `json:"revoked"` //
	Joiner  string    `json:"joiner"`  // peer ID admitted with it
}

// doors are the join-only hosts of this node's pending invites.
type doors struct {
	mu      sync.Mutex // guards invites, open and attempts
	invites []*invite
	open    map[string]host.Host // by string(hash)
	attempt map[string][]time.Time
}

func (n *Node) loadInvites(ctx context.Context) error {
	b, err := n.st.Meta(ctx, metaInvites)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &n.doors.invites)
}

// saveInvites writes the invite list; the caller holds doors.mu.
func (n *Node) saveInvites(ctx context.Context) error {
	b, err := json.Marshal(n.doors.invites)
	if err != nil {
		return err
	}
	return n.st.SetMeta(ctx, metaInvites, b)
}

// Invite issues a one-time invite for a member, valid for expires, opens its
// door and returns the code to hand to the new member.
func (n *Node) Invite(ctx context.Context, expires time.Duration) (string, error) {
	return n.InviteAs(ctx, expires, "member")
}

// InviteAs is Invite for a role: "member" or "admin". The invite goes into
// the roster (its ID, issuer, role and expiry, never its token), so every
// member lists it and an admin can revoke it; the roster's policy decides
// who may invite.
func (n *Node) InviteAs(ctx context.Context, expires time.Duration, role string) (string, error) {
	if expires <= 0 {
		expires = DefaultInviteValid
	}
	r, err := parseRole(role)
	if err != nil {
		return "", err
	}
	token, err := crypto.NewToken()
	if err != nil {
		return "", err
	}
	h := crypto.HashToken(token)
	id := inviteID(h)
	inv := &invite{ID: hex.EncodeToString(id[:]), Role: r, Hash: h[:], PSK: crypto.TokenPSK(token), Expires: time.Now().Add(expires).UnixMilli()}
	op := wire.RosterOp{Kind: wire.RosterInvite, Role: r, Invite: id, Expires: inv.Expires}
	if err := n.appendRoster(ctx, &op); err != nil {
		return "", fmt.Errorf("invite: %w", err)
	}
	n.doors.mu.Lock()
	n.doors.invites = append(n.doors.invites, inv)
	err = n.saveInvites(ctx)
	n.doors.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("save invite: %w", err)
	}
	door, err := n.openDoor(inv)
	if err != nil {
		return "", err
	}
	code := wire.Invite{Workspace: n.hist.ws, Issuer: []byte(n.host.ID()), Token: token[:], Expires: inv.Expires}
	for _, a := range door.Addrs() {
		if len(code.Addrs) < wire.MaxInviteAddrs {
			code.Addrs = append(code.Addrs, a.Bytes())
		}
	}
	return code.Code(), nil
}

// openDoors opens a door for every invite still worth answering.
func (n *Node) openDoors() {
	n.doors.mu.Lock()
	invs := append([]*invite(nil), n.doors.invites...)
	n.doors.mu.Unlock()
	for _, inv := range invs {
		if n.doorWanted(inv, time.Now()) {
			if _, err := n.openDoor(inv); err != nil {
				n.log.Warn("reopen invite door", "err", err)
			}
		}
	}
}

func (n *Node) doorWanted(inv *invite, now time.Time) bool {
	switch {
	case inv.Revoked || n.inviteRevoked(inv):
		return false
	case inv.Used:
		return now.Before(time.UnixMilli(inv.UsedAt).Add(usedDoorGrace)) && now.UnixMilli() < inv.Expires
	}
	return now.UnixMilli() < inv.Expires
}

// openDoor starts the join-only host of one invite: same identity, its own
// port, in a private network keyed from the invite's token, so a wrong
// token cannot complete a connection.
func (n *Node) openDoor(inv *invite) (host.Host, error) {
	var listen []string
	for _, a := range n.host.Network().ListenAddresses() {
		ip, err := a.ValueForProtocol(ma.P_IP4)
		proto := "ip4"
		if err != nil {
			if ip, err = a.ValueForProtocol(ma.P_IP6); err != nil {
				continue
			}
			proto = "ip6"
		}
		listen = append(listen, fmt.Sprintf("/%s/%s/tcp/0", proto, ip))
	}
	h, err := libp2p.New(
		libp2p.Identity(n.id.PrivKey()),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.PrivateNetwork(inv.PSK),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("open invite door: %w", err)
	}
	key := string(inv.Hash)
	h.SetStreamHandler(joinProtocol, n.serve(func(s network.Stream) { n.handleJoin(s, key) }))
	n.doors.mu.Lock()
	// Close stops work before closeDoors takes mu: a door opened by an
	// Invite racing Close is either closed by it or never kept.
	if n.work.stopped() {
		n.doors.mu.Unlock()
		h.Close()
		return nil, errors.New("open invite door: the node is shutting down; issue the invite again once it runs")
	}
	if n.doors.open == nil {
		n.doors.open = map[string]host.Host{}
		n.doors.attempt = map[string][]time.Time{}
	}
	if old := n.doors.open[key]; old != nil {
		old.Close()
	}
	n.doors.open[key] = h
	n.doors.mu.Unlock()
	return h, nil
}

// closeDoors closes doors no longer wanted (all of them when everything is true).
func (n *Node) closeDoors(everything bool) {
	now := time.Now()
	n.doors.mu.Lock()
	defer n.doors.mu.Unlock()
	for _, inv := range n.doors.invites {
		key := string(inv.Hash)
		if h := n.doors.open[key]; h != nil && (everything || !n.doorWanted(inv, now)) {
			h.Close()
			delete(n.doors.open, key)
		}
	}
}

// doorLoop closes doors of invites that expired.
func (n *Node) doorLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.closeDoors(false)
		}
	}
}

// handleJoin answers one join request on the door of invite key.
func (n *Node) handleJoin(s network.Stream, key string) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(joinTimeout))
	resp := n.redeem(s, key)
	if err := wire.WriteFrame(s, resp.Marshal()); err != nil {
		s.Reset()
		return
	}
	if resp.Status == wire.JoinOK {
		n.log.Info("member joined", "peer", peer.ID(resp.joiner))
	}
}

type joinAnswer struct {
	wire.JoinResponse
	joiner []byte
}

func refuse(st wire.JoinStatus, msg string) *joinAnswer {
	return &joinAnswer{JoinResponse: wire.JoinResponse{Status: st, Message: msg}}
}

// redeem checks a join request against the invite and, when it holds,
// admits the joiner through the pipeline and gathers what it needs.
func (n *Node) redeem(s network.Stream, key string) *joinAnswer {
	if !n.allowAttempt(key) {
		return refuse(wire.JoinRateLimit, "too many attempts; wait a minute")
	}
	b, err := wire.ReadFrame(s, wire.MaxJoinBytes)
	if err != nil {
		return refuse(wire.JoinRefused, "no request")
	}
	req, err := wire.DecodeJoinRequest(b)
	if err != nil {
		return refuse(wire.JoinRefused, "malformed request")
	}
	ctx, cancel := context.WithTimeout(n.ctx, joinTimeout)
	defer cancel()
	h := crypto.HashToken([16]byte(req.Token))
	n.doors.mu.Lock()
	var inv *invite
	for _, i := range n.doors.invites {
		if subtle.ConstantTimeCompare(i.Hash, h[:]) == 1 {
			inv = i
		}
	}
	switch {
	case inv == nil || string(inv.Hash) != key:
		n.doors.mu.Unlock()
		return refuse(wire.JoinUnknown, "unknown invite")
	case inv.Revoked || n.inviteRevoked(inv):
		n.doors.mu.Unlock()
		return refuse(wire.JoinRevoked, "invite revoked")
	case inv.Used:
		n.doors.mu.Unlock()
		return refuse(wire.JoinUsed, "invite already used")
	case time.Now().UnixMilli() >= inv.Expires:
		n.doors.mu.Unlock()
		return refuse(wire.JoinExpired, "invite expired")
	case !n.hist.mayAdmit(inv.role()):
		// The roster would refuse the admit (this node was made a member,
		// or removed): say so, and keep the token for if it is allowed again.
		n.doors.mu.Unlock()
		return refuse(wire.JoinRevoked, "the member who issued this invite may no longer admit anyone with it")
	}
	if err := crypto.VerifyMember(&req.Member); err != nil || peer.ID(req.Member.Peer) != s.Conn().RemotePeer() {
		n.doors.mu.Unlock()
		return refuse(wire.JoinRefused, "member record does not verify")
	}
	if _, known := n.hist.member(req.Member.Peer); known {
		n.doors.mu.Unlock()
		return refuse(wire.JoinRefused, "this peer ID is already on the roster")
	}
	// Spend the invite before admitting, so a crash in between admits nobody twice.
	inv.Used, inv.UsedAt, inv.Joiner = true, time.Now().UnixMilli(), peer.ID(req.Member.Peer).String()
	err = n.saveInvites(ctx)
	n.doors.mu.Unlock()
	if err != nil {
		return refuse(wire.JoinRefused, "issuer could not record the invite")
	}
	if err := n.admitWith(ctx, req.Member, inv.role(), inv.rosterID()); err != nil {
		n.log.Error("admit joiner", "err", err)
		return refuse(wire.JoinRefused, "issuer could not admit you")
	}
	resp, err := n.welcome(ctx)
	if err != nil {
		n.log.Error("gather workspace for joiner", "err", err)
		return refuse(wire.JoinRefused, "issuer could not hand over the workspace")
	}
	return &joinAnswer{JoinResponse: *resp, joiner: req.Member.Peer}
}

// inviteRevoked reports whether the roster holds a revocation of inv.
func (n *Node) inviteRevoked(inv *invite) bool {
	id := inv.rosterID()
	n.hist.mu.Lock()
	defer n.hist.mu.Unlock()
	st, ok := n.hist.invites[id]
	return ok && st.Revoked
}

// role is the role the invite admits to; member for invites from before
// invites had one.
func (inv *invite) role() wire.Role {
	if inv.Role == 0 {
		return wire.RoleMember
	}
	return inv.Role
}

// rosterID is the invite's ID in the roster; zero for invites issued before
// invites were roster ops.
func (inv *invite) rosterID() wire.ID {
	b, err := hex.DecodeString(inv.ID)
	if err != nil || len(b) != len(wire.ID{}) {
		return wire.ID{}
	}
	return wire.ID(b)
}

// rosterChanged closes the doors of invites the roster revoked.
func (n *Node) rosterChanged() {
	n.closeDoors(false)
}

func (n *Node) allowAttempt(key string) bool {
	n.doors.mu.Lock()
	defer n.doors.mu.Unlock()
	now := time.Now()
	recent := n.doors.attempt[key][:0]
	for _, t := range n.doors.attempt[key] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	if len(recent) >= joinAttemptsPerMin {
		n.doors.attempt[key] = recent
		return false
	}
	n.doors.attempt[key] = append(recent, now)
	return true
}

// welcome gathers what a new member needs: genesis, network key, every
// roster op and key share (roster first), and this node's addresses.
func (n *Node) welcome(ctx context.Context) (*wire.JoinResponse, error) {
	g, err := n.st.Meta(ctx, metaGenesis)
	if err != nil {
		return nil, err
	}
	nk, err := n.st.Meta(ctx, metaNetKey)
	if err != nil {
		return nil, err
	}
	envs, err := n.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		return nil, err
	}
	resp := &wire.JoinResponse{Status: wire.JoinOK, Genesis: g, NetKey: nk}
	size := len(g) + len(nk)
	for _, e := range envs {
		if e.Class == wire.ClassContent || len(resp.Envelopes) == wire.MaxJoinEnvelopes || size+len(e.Raw)+16 > wire.MaxJoinBytes-64<<10 {
			continue // sync brings the rest
		}
		resp.Envelopes = append(resp.Envelopes, e.Raw)
		size += len(e.Raw) + 16
	}
	for _, a := range n.host.Addrs() {
		if len(resp.Addrs) < wire.MaxInviteAddrs {
			resp.Addrs = append(resp.Addrs, a.Bytes())
		}
	}
	return resp, nil
}

// Join redeems an invite code: it creates a new identity in home, proves the
// invite to its issuer's door, and writes the workspace it is handed. The
// node is then ready for `charla run`.
func Join(ctx context.Context, home, code, name string) (string, error) {
	name, err := checkName("name", name)
	if err != nil {
		return "", err
	}
	inv, err := wire.ParseInviteCode(code)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInviteForged, err)
	}
	if time.Now().UnixMilli() >= inv.Expires {
		return "", fmt.Errorf("%w (on %s); ask for a new one", ErrInviteExpired, time.UnixMilli(inv.Expires).Format(time.RFC1123))
	}
	issuer, err := peer.IDFromBytes(inv.Issuer)
	if err != nil {
		return "", fmt.Errorf("%w: issuer: %v", ErrInviteForged, err)
	}
	ai := peer.AddrInfo{ID: issuer}
	var tried []string
	for _, b := range inv.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return "", fmt.Errorf("%w: address: %v", ErrInviteForged, err)
		}
		ai.Addrs = append(ai.Addrs, a)
		tried = append(tried, a.String())
	}
	lock, id, self, err := claimNewHome(home, name, "join")
	if err != nil {
		return "", err
	}
	defer lock.release()
	resp, err := knock(ctx, id, ai, [16]byte(inv.Token), self, tried)
	if err != nil {
		return "", err
	}
	g, err := wire.DecodeGenesis(resp.Genesis)
	if err != nil || g.ID() != inv.Workspace {
		return "", fmt.Errorf("%w: the issuer handed over a workspace that does not match the code", ErrInviteForged)
	}
	st, err := createHome(ctx, home, id, g, [32]byte(resp.NetKey))
	if err != nil {
		return "", err
	}
	defer st.Close()
	hist, err := newHistory(st, id, g, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	if _, err := hist.ingestRaw(ctx, resp.Envelopes); err != nil {
		return "", fmt.Errorf("store the workspace: %w", err)
	}
	var addrs []string
	for _, b := range resp.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			addrs = append(addrs, a.String())
		}
	}
	if err := st.PutBookEntry(ctx, store.BookEntry{Peer: []byte(issuer), Addrs: addrs, Via: viaInvite, LastSeen: time.Now().UnixMilli()}); err != nil {
		return "", err
	}
	return id.PeerID().String(), nil
}

// knock connects to the issuer's door and exchanges the join frames.
func knock(ctx context.Context, id *crypto.Identity, ai peer.AddrInfo, token [16]byte, self wire.Member, tried []string) (*wire.JoinResponse, error) {
	h, err := libp2p.New(
		libp2p.Identity(id.PrivKey()),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.PrivateNetwork(crypto.TokenPSK(token)),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("join: start libp2p: %w", err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	unreachable := func(err error) error {
		return fmt.Errorf("%w at %s (%s); is the issuer's charla running and on this network? (a used, revoked or mistyped invite cannot connect either)",
			ErrIssuerUnreachable, strings.Join(tried, ", "), dialSummary(err, 300))
	}
	if err := h.Connect(ctx, ai); err != nil {
		return nil, unreachable(err)
	}
	s, err := h.NewStream(ctx, ai.ID, joinProtocol)
	if err != nil {
		return nil, unreachable(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(joinTimeout))
	req := wire.JoinRequest{Token: token[:], Member: self}
	if err := wire.WriteFrame(s, req.Marshal()); err != nil {
		return nil, unreachable(err)
	}
	b, err := wire.ReadFrame(s, wire.MaxJoinBytes)
	if err != nil {
		return nil, unreachable(err)
	}
	resp, err := wire.DecodeJoinResponse(b)
	if err != nil {
		return nil, fmt.Errorf("join: the issuer's answer is malformed: %w", err)
	}
	switch resp.Status {
	case wire.JoinOK:
		return resp, nil
	case wire.JoinExpired:
		return nil, fmt.Errorf("%w; ask for a new one", ErrInviteExpired)
	case wire.JoinUsed:
		return nil, fmt.Errorf("%w; each code admits one device: ask for a new one", ErrInviteUsed)
	case wire.JoinRevoked:
		return nil, fmt.Errorf("%w; ask for a new one", ErrInviteRevoked)
	case wire.JoinUnknown:
		return nil, fmt.Errorf("%w: the issuer does not know it", ErrInviteForged)
	}
	return nil, fmt.Errorf("join refused: %s: %s", resp.Status, resp.Message)
}

// dialSummary is err's message on one line of at most max bytes: libp2p's dial
// errors list every address tried, a line each, which buried what a person
// should read.
func dialSummary(err error, max int) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*")); l != "" {
			parts = append(parts, l)
		}
	}
	s := strings.Join(parts, "; ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
