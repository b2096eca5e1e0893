package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DoctorCheck is one finding of `charla doctor`. A check that is OK but
// carries a Fix is a note: nothing is broken, but something limits who can be
// reached (mDNS turned off, a VPN that mDNS does not cross).
type DoctorCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"` // what to do, in plain words
}

// DoctorInterface is a network interface that is up, is not loopback, and
// has an address.
type DoctorInterface struct {
	Name      string   `json:"name"`
	Addrs     []string `json:"addrs"` // prefixes, e.g. 192.168.1.20/24; IPv6 link-local left out
	Up        bool     `json:"up"`
	Multicast bool     `json:"multicast"`
	Virtual   bool     `json:"virtual"` // not a LAN adapter: a VPN, a container or VM bridge
	Kind      string   `json:"kind"`    // ethernet, wifi, loopback, vpn, virtual
}

// DoctorMember is one other member of the roster and whether it answers.
type DoctorMember struct {
	PeerID    string   `json:"peer_id"`
	Name      string   `json:"name"`
	Addrs     []string `json:"addrs"` // where it is connected, or the addresses tried
	Connected bool     `json:"connected"`
	Answered  bool     `json:"answered"`        // connected, or completed a handshake just now
	Error     string   `json:"error,omitempty"` // why it does not answer
}

// DoctorReport is what `charla doctor` shows.
type DoctorReport struct {
	Checks     []DoctorCheck     `json:"checks"`
	Interfaces []DoctorInterface `json:"interfaces"`
	Members    []DoctorMember    `json:"members"`
}

// Bounds on how long the doctor waits and how much it tries.
const (
	doctorDialTimeout  = 2 * time.Second  // one TCP connect to our own port
	doctorProbeTimeout = 3 * time.Second  // one handshake with a member
	doctorProbeBudget  = 10 * time.Second // every member probe together
	doctorProbers      = 8                // member handshakes at a time
	doctorMaxAddrs     = 8                // addresses probed per member, and own addresses dialled
)

// Check names, as the CLI prints them.
const (
	checkInterfaces = "interfaces"
	checkVPN        = "VPN"
	checkMDNS       = "mDNS"
	checkRoute      = "multicast route"
	checkPort       = "peer port"
	checkMembers    = "members"
	checkMembership = "membership"
)

// Doctor checks what breaks office chat in practice: the network interfaces,
// multicast, whether the peer port accepts connections, and which members
// answer. It takes at most a few seconds over doctorProbeBudget. Problems are
// reported as failed checks, not as an error; the error is for a store that
// cannot be read or a canceled ctx.
func (n *Node) Doctor(ctx context.Context) (DoctorReport, error) {
	var r DoctorReport
	ifaces, err := listInterfaces()
	if err != nil {
		r.Checks = append(r.Checks, DoctorCheck{Name: checkInterfaces, Detail: "cannot list the network interfaces: " + err.Error()})
	} else {
		r.Checks = append(r.Checks, interfaceChecks(ifaces)...)
	}
	r.Interfaces = ifaces
	mr := readMulticastRoute()
	r.Checks = append(r.Checks, n.mdnsCheck(ifaces, mr))
	if mr.known {
		r.Checks = append(r.Checks, routeCheck(ifaces, mr))
	}
	r.Checks = append(r.Checks, n.portCheck(ctx))
	members, err := n.doctorMembers(ctx)
	if err != nil {
		return DoctorReport{}, err
	}
	r.Members = members
	r.Checks = append(r.Checks, membersCheck(members))
	if n.hist.removedSelf() {
		// Members may still complete a handshake with it, so the checks
		// above can all pass; nothing else would tell why nothing arrives.
		r.Checks = append(r.Checks, DoctorCheck{
			Name:   checkMembership,
			Detail: "an admin removed this node from the workspace: every member refuses what it sends, and it no longer syncs",
			Fix:    "ask an admin for a new invite and join again with a new home: charla join CODE --home DIR",
		})
	}
	if err := ctx.Err(); err != nil {
		return DoctorReport{}, err
	}
	return r, nil
}

// interfaceChecks says whether a LAN interface is up, and notes a VPN.
func interfaceChecks(ifaces []DoctorInterface) []DoctorCheck {
	var lan, virtual, vpn, selfAssigned []string
	for _, ifi := range ifaces {
		switch {
		case ifi.Kind == kindVPN:
			vpn = append(vpn, describe(ifi))
		case ifi.Virtual:
			virtual = append(virtual, ifi.Name)
		case hasLANAddr(ifi):
			lan = append(lan, describe(ifi))
		default:
			selfAssigned = append(selfAssigned, ifi.Name)
		}
	}
	var out []DoctorCheck
	if len(lan) == 0 {
		c := DoctorCheck{
			Name:   checkInterfaces,
			Detail: "no LAN interface is up",
			Fix:    "connect to the office network: plug in the cable or join the office Wi-Fi",
		}
		if len(selfAssigned) > 0 {
			c.Detail = fmt.Sprintf("%s has only a self-assigned address: the network gave it none", strings.Join(selfAssigned, ", "))
			c.Fix = "check the cable or the Wi-Fi connection; if it persists, ask IT why this machine gets no address (DHCP)"
		}
		out = append(out, c)
	} else {
		d := "LAN on " + strings.Join(lan, "; ")
		if len(virtual) > 0 {
			d += "; virtual adapters, not the LAN: " + strings.Join(virtual, ", ")
		}
		out = append(out, DoctorCheck{Name: checkInterfaces, OK: true, Detail: d})
	}
	if len(vpn) > 0 {
		out = append(out, DoctorCheck{
			Name:   checkVPN,
			OK:     true,
			Detail: "a VPN is up: " + strings.Join(vpn, "; "),
			Fix: "mDNS does not cross a VPN: members on the other side of it are not found by themselves; " +
				"ask one of them for an address ('charla status' on their machine) and start with --peer ADDRESS",
		})
	}
	return out
}

func describe(ifi DoctorInterface) string {
	if len(ifi.Addrs) == 0 {
		return ifi.Name
	}
	return ifi.Name + " " + strings.Join(ifi.Addrs, ", ")
}

// hasLANAddr reports whether ifi has an address a LAN gave it: IPv4
// link-local (169.254/16) is what a machine picks when DHCP did not answer.
func hasLANAddr(ifi DoctorInterface) bool {
	for _, s := range ifi.Addrs {
		ip, _, err := net.ParseCIDR(s)
		if err == nil && ip.IsGlobalUnicast() {
			return true
		}
	}
	return false
}

// lanInterface names an interface to put in a suggested command.
func lanInterface(ifaces []DoctorInterface) string {
	for _, ifi := range ifaces {
		if !ifi.Virtual && hasLANAddr(ifi) {
			return ifi.Name
		}
	}
	return "IFACE"
}

const meanwhilePeer = "meanwhile start with --peer ADDRESS of a member ('charla status' on their machine shows it)"

// offline is the fix of every multicast check while no LAN interface is
// up: with the link down a missing route or a failing mDNS is no cause.
const offline = "connect to the office network first (see 'interfaces'); this check means something only once it is"

func lanUp(ifaces []DoctorInterface) bool { return lanInterface(ifaces) != "IFACE" }

func routeFix(ifaces []DoctorInterface) string {
	if !lanUp(ifaces) {
		return offline
	}
	return fmt.Sprintf("this machine has no multicast route; on Linux add one: sudo ip route add 224.0.0.0/4 dev %s, "+
		"or ask IT to allow multicast; %s", lanInterface(ifaces), meanwhilePeer)
}

// mdnsFix says what to do when mDNS fails: the missing route when that is
// the cause, the network's or a firewall's blocking otherwise.
func mdnsFix(ifaces []DoctorInterface, mr multicastRouteState) string {
	if !lanUp(ifaces) {
		return offline
	}
	if mr.known && mr.err == nil && !mr.found {
		return "add a multicast route (see 'multicast route'); " + meanwhilePeer
	}
	return "something blocks multicast here: allow UDP port 5353 (mDNS) in the firewall, or ask IT to allow multicast on this network; " +
		meanwhilePeer
}

// mdnsCheck reports whether this node advertises and browses on mDNS.
func (n *Node) mdnsCheck(ifaces []DoctorInterface, mr multicastRouteState) DoctorCheck {
	if n.mdns == nil {
		return DoctorCheck{
			Name:   checkMDNS,
			OK:     true,
			Detail: "mDNS is off (--no-mdns): this node neither advertises itself nor looks for members on the LAN",
			Fix:    "members are reached only through --peer and the address book; run without --no-mdns to find them on the LAN",
		}
	}
	st := n.mdns.Status()
	on := strings.Join(st.Interfaces, ", ")
	if on == "" {
		on = "no interface"
	}
	switch {
	case st.Serving && st.LastError == "":
		return DoctorCheck{Name: checkMDNS, OK: true, Detail: "advertising on " + on}
	case st.Serving:
		return DoctorCheck{
			Name:   checkMDNS,
			Detail: "advertising on " + on + ", but looking for members fails: " + st.LastError,
			Fix:    mdnsFix(ifaces, mr),
		}
	case st.LastError != "":
		return DoctorCheck{Name: checkMDNS, Detail: "not advertising: " + st.LastError, Fix: mdnsFix(ifaces, mr)}
	}
	return DoctorCheck{
		Name:   checkMDNS,
		OK:     true,
		Detail: "mDNS is starting",
		Fix:    "run 'charla doctor' again in a few seconds",
	}
}

// multicastRouteState is what /proc/net/route says of IPv4 mDNS.
type multicastRouteState struct {
	known bool // the routing table could be read, or failed to parse
	err   error
	found bool
	route ipv4Route
}

// readMulticastRoute looks up the route IPv4 mDNS would take in Linux's
// /proc/net/route. Where that file does not exist nothing is known.
func readMulticastRoute() multicastRouteState {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return multicastRouteState{}
	}
	defer f.Close()
	// The kernel prints each address, held in network order, as a host-order
	// integer.
	routes, err := parseRoutes(f, binary.NativeEndian)
	if err != nil {
		return multicastRouteState{known: true, err: err}
	}
	rt, ok := multicastRoute(routes)
	return multicastRouteState{known: true, found: ok, route: rt}
}

// routeCheck reports whether IPv4 mDNS has a route.
func routeCheck(ifaces []DoctorInterface, mr multicastRouteState) DoctorCheck {
	switch {
	case mr.err != nil:
		// Not a network problem: say so and let the mDNS check speak.
		return DoctorCheck{Name: checkRoute, OK: true, Detail: "not checked: cannot read /proc/net/route: " + mr.err.Error()}
	case !mr.found:
		return DoctorCheck{
			Name:   checkRoute,
			Detail: "no route for multicast (224.0.0.0/4) and no default route: mDNS over IPv4 cannot work",
			Fix:    routeFix(ifaces),
		}
	}
	how := "a route for " + mr.route.prefix().String()
	if mr.route.mask == 0 {
		how = "the default route"
	}
	return DoctorCheck{Name: checkRoute, OK: true, Detail: fmt.Sprintf("multicast goes out %s (%s)", mr.route.iface, how)}
}

// portCheck connects to this node's own peer port, as another member would.
// The connection comes from this machine, so it finds a port nobody listens
// on or that a local firewall rejects, not a firewall that filters only
// other machines; the member probes cover that from the other side.
func (n *Node) portCheck(ctx context.Context) DoctorCheck {
	var ports []int
	for _, a := range n.host.Network().ListenAddresses() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			if port, err := strconv.Atoi(p); err == nil && !slices.Contains(ports, port) {
				ports = append(ports, port)
			}
		}
	}
	if len(ports) == 0 {
		return DoctorCheck{
			Name:   checkPort,
			Detail: "not listening for peers on any TCP port",
			Fix:    "start with --listen /ip4/0.0.0.0/tcp/4747, or leave --listen out",
		}
	}
	listening := "listening on TCP " + joinInts(ports)
	if len(ports) == 1 && ports[0] == DefaultPort {
		listening += " (the default)"
	} else {
		listening += fmt.Sprintf(" (not the default %d: it was taken, or --listen chose another)", DefaultPort)
	}

	var lan, loop []string
	for _, a := range n.host.Addrs() {
		na, err := manet.ToNetAddr(a)
		if err != nil {
			continue
		}
		ta, ok := na.(*net.TCPAddr)
		if !ok || ta.IP.IsLinkLocalUnicast() {
			continue
		}
		if ta.IP.IsLoopback() {
			loop = append(loop, ta.String())
		} else {
			lan = append(lan, ta.String())
		}
	}
	targets := lan
	if len(lan) == 0 {
		targets = loop
	}
	targets = targets[:min(len(targets), doctorMaxAddrs)]
	failed := dialAll(ctx, targets)

	portFix := fmt.Sprintf("a firewall blocks TCP %s: allow it for charla "+
		"(Linux: sudo ufw allow %d/tcp; Windows: allow charla in Windows Defender Firewall; macOS: System Settings, Network, Firewall)",
		joinInts(ports), ports[0])
	switch {
	case len(targets) == 0:
		return DoctorCheck{Name: checkPort, Detail: listening + ", but on no address", Fix: "check the --listen addresses"}
	case len(failed) > 0:
		return DoctorCheck{Name: checkPort, Detail: listening + "; refused: " + strings.Join(failed, "; "), Fix: portFix}
	case len(lan) == 0:
		return DoctorCheck{
			Name:   checkPort,
			Detail: listening + " on loopback only (" + strings.Join(loop, ", ") + "): other machines cannot reach this node",
			Fix:    "start with --listen /ip4/0.0.0.0/tcp/4747, or leave --listen out",
		}
	}
	return DoctorCheck{Name: checkPort, OK: true, Detail: listening + "; accepts connections on " + strings.Join(targets, ", ")}
}

// dialAll connects to every TCP address at once and returns those that
// failed, each with its reason.
func dialAll(ctx context.Context, addrs []string) []string {
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			d := net.Dialer{Timeout: doctorDialTimeout}
			c, err := d.DialContext(ctx, "tcp", a)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, addrs[i]+" ("+dialReason(err)+")")
		}
	}
	return failed
}

func dialReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer in %v", doctorDialTimeout)
	}
	return err.Error()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// doctorMembers lists every other current member and whether it answers:
// connected now, or completing a handshake at one of its known addresses.
func (n *Node) doctorMembers(ctx context.Context) ([]DoctorMember, error) {
	type candidate struct {
		p     peer.ID
		name  string
		addrs []ma.Multiaddr
	}
	self := n.host.ID()
	n.hist.mu.Lock()
	var cands []candidate
	for p, m := range n.hist.members {
		if m.removed || peer.ID(p) == self {
			continue
		}
		cands = append(cands, candidate{p: peer.ID(p), name: m.name})
	}
	n.hist.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].name != cands[j].name {
			return cands[i].name < cands[j].name
		}
		return cands[i].p < cands[j].p
	})

	book, err := n.st.Book(ctx)
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	booked := map[peer.ID][]string{}
	for _, e := range book {
		booked[peer.ID(e.Peer)] = e.Addrs
	}

	out := make([]DoctorMember, len(cands))
	for i := range cands {
		c := &cands[i]
		m := DoctorMember{PeerID: c.p.String(), Name: c.name, Addrs: []string{}}
		if n.host.Network().Connectedness(c.p) == network.Connected {
			m.Connected, m.Answered = true, true
			for _, conn := range n.host.Network().ConnsToPeer(c.p) {
				m.Addrs = append(m.Addrs, conn.RemoteMultiaddr().String())
			}
			out[i] = m
			continue
		}
		c.addrs = probeAddrs(n.host.Peerstore().Addrs(c.p), booked[c.p])
		for _, a := range c.addrs {
			m.Addrs = append(m.Addrs, a.String())
		}
		if len(c.addrs) == 0 {
			m.Error = "no address known: not seen on this network yet"
		}
		out[i] = m
	}

	ctx, cancel := context.WithTimeout(ctx, doctorProbeBudget)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel) // the node is closing
	defer stop()
	var (
		mu  sync.Mutex // guards out's Answered and Error, and tried
		wg  sync.WaitGroup
		sem = make(chan struct{}, doctorProbers)
	)
	tried := make([]bool, len(out))
probe:
	for i, c := range cands {
		for _, a := range c.addrs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break probe
			}
			mu.Lock()
			done := out[i].Answered
			tried[i] = true
			mu.Unlock()
			if done {
				<-sem
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				err := n.probeMember(ctx, c.p, a)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					out[i].Answered, out[i].Error = true, ""
				} else if !out[i].Answered {
					out[i].Error = err.Error()
				}
			})
		}
	}
	wg.Wait()
	for i, c := range cands {
		if len(c.addrs) > 0 && !out[i].Answered && (!tried[i] || out[i].Error == "") {
			out[i].Error = fmt.Sprintf("not probed: the doctor's %v were up", doctorProbeBudget)
		}
	}
	return out, nil
}

// probeAddrs merges the peerstore's and the address book's addresses of a
// member into the TCP addresses to probe, without /p2p, at most
// doctorMaxAddrs of them.
func probeAddrs(stored []ma.Multiaddr, booked []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	seen := map[string]bool{}
	add := func(a ma.Multiaddr) {
		if a == nil || len(out) == doctorMaxAddrs {
			return
		}
		if t, _ := peer.SplitAddr(a); t != nil {
			a = t
		}
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil || seen[a.String()] {
			return
		}
		seen[a.String()] = true
		out = append(out, a)
	}
	for _, a := range stored {
		add(a)
	}
	for _, s := range booked {
		if a, err := ma.NewMultiaddr(s); err == nil {
			add(a)
		}
	}
	return out
}

// probeMember does the private-network and Noise handshakes with a and
// checks that want is behind it. It bypasses identify's cache on purpose:
// the doctor must see whether the member answers now.
func (n *Node) probeMember(ctx context.Context, want peer.ID, a ma.Multiaddr) error {
	ctx, cancel := context.WithTimeout(ctx, doctorProbeTimeout)
	defer cancel()
	got, err := n.handshake(ctx, a)
	switch {
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer in %v (machine off, or a firewall drops TCP)", a, doctorProbeTimeout)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%s: connection refused (charla not running there, or a firewall rejects it)", a)
		}
		return err
	case got == n.host.ID():
		// A member's loopback address, as its node saw itself: from here it
		// reaches this machine, not the member's.
		return fmt.Errorf("%s: this node itself answers there (an address of the member's own machine, not one to reach it by)", a)
	case got != want:
		return fmt.Errorf("%s: another member's node answers there now", a)
	}
	return nil
}

// membersCheck sums up which members answer.
func membersCheck(ms []DoctorMember) DoctorCheck {
	answered := 0
	for _, m := range ms {
		if m.Answered {
			answered++
		}
	}
	switch {
	case len(ms) == 0:
		return DoctorCheck{Name: checkMembers, OK: true, Detail: "no other members yet; 'charla invite' makes an invite code"}
	case answered == 0:
		return DoctorCheck{
			Name:   checkMembers,
			Detail: fmt.Sprintf("0 of %d members answer", len(ms)),
			Fix: "no member reachable: check the network, or ask a member for their address " +
				"('charla status' on their machine) and start with --peer ADDRESS",
		}
	}
	return DoctorCheck{Name: checkMembers, OK: true, Detail: fmt.Sprintf("%d of %d members answer", answered, len(ms))}
}
