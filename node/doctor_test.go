package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/store"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestClassifyInterface(t *testing.T) {
	up := net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	tests := []struct {
		name  string
		iface string
		flags net.Flags
		want  string
	}{
		{name: "linux ethernet", iface: "eth0", flags: up, want: kindEthernet},
		{name: "predictable ethernet", iface: "enp3s0", flags: up, want: kindEthernet},
		{name: "macos en0", iface: "en0", flags: up, want: kindEthernet},
		{name: "host bridge", iface: "br0", flags: up, want: kindEthernet},
		{name: "linux wifi", iface: "wlp2s0", flags: up, want: kindWiFi},
		{name: "old linux wifi", iface: "wlan0", flags: up, want: kindWiFi},
		{name: "windows wifi", iface: "Wi-Fi", flags: up, want: kindWiFi},
		{name: "loopback by flag", iface: "lo0", flags: net.FlagUp | net.FlagLoopback, want: kindLoopback},
		{name: "loopback by name", iface: "lo", flags: net.FlagUp, want: kindLoopback},
		{name: "docker", iface: "docker0", flags: up, want: kindVirtual},
		{name: "docker network bridge", iface: "br-3f2a9c1d7e4b", flags: up, want: kindVirtual},
		{name: "veth", iface: "veth1a2b3c", flags: up, want: kindVirtual},
		{name: "libvirt", iface: "virbr0", flags: up, want: kindVirtual},
		{name: "vmware", iface: "vmnet8", flags: up, want: kindVirtual},
		{name: "virtualbox", iface: "vboxnet0", flags: up, want: kindVirtual},
		{name: "hyper-v", iface: "vEthernet (WSL)", flags: up, want: kindVirtual},
		{name: "tun", iface: "tun0", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
		{name: "tap", iface: "tap0", flags: up, want: kindVPN},
		{name: "wireguard", iface: "wg0", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
		{name: "macos vpn", iface: "utun3", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
		{name: "tailscale", iface: "tailscale0", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
		{name: "zerotier", iface: "ztabcdef12", flags: up, want: kindVPN},
		{name: "ppp", iface: "ppp0", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
		{name: "ipsec", iface: "ipsec0", flags: up, want: kindVPN},
		{name: "unknown point-to-point", iface: "corpvpn", flags: net.FlagUp | net.FlagPointToPoint, want: kindVPN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyInterface(tt.iface, tt.flags); got != tt.want {
				t.Errorf("classifyInterface(%q, %v) = %q, want %q", tt.iface, tt.flags, got, tt.want)
			}
		})
	}
}

// routeHeader is the first line of /proc/net/route.
const routeHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"

// route writes one line of /proc/net/route.
func route(iface, dst, gw, flags, mask string) string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t0\t0\t0\t%s\t0\t0\t0\n", iface, dst, gw, flags, mask)
}

func TestMulticastRoute(t *testing.T) {
	// Little-endian words, as on x86 and arm64: 192.0.2.0 is 000200C0.
	var (
		defaultRoute = route("eth0", "00000000", "010200C0", "0003", "00000000")
		subnet       = route("eth0", "000200C0", "00000000", "0001", "00FFFFFF")
		multicast    = route("wlan0", "000000E0", "00000000", "0001", "000000F0") // 224.0.0.0/4
		mdnsOnly     = route("eth1", "FB0000E0", "00000000", "0001", "FFFFFFFF")  // 224.0.0.251/32
		downDefault  = route("eth0", "00000000", "010200C0", "0002", "00000000")
		otherNet     = route("eth0", "0000000A", "00000000", "0001", "000000FF") // 10.0.0.0/8
	)
	tests := []struct {
		name   string
		table  string
		order  binary.ByteOrder
		want   string // interface, "" for no route
		prefix string
	}{
		{name: "default route", table: routeHeader + subnet + defaultRoute, want: "eth0", prefix: "0.0.0.0/0"},
		{name: "subnet only", table: routeHeader + subnet + otherNet},
		{name: "multicast route beats the default", table: routeHeader + defaultRoute + multicast, want: "wlan0", prefix: "224.0.0.0/4"},
		{name: "longest prefix wins", table: routeHeader + multicast + mdnsOnly, want: "eth1", prefix: "224.0.0.251/32"},
		{name: "a route that is down", table: routeHeader + subnet + downDefault},
		{name: "empty table", table: routeHeader},
		{name: "no file content", table: ""},
		{name: "malformed lines skipped", table: routeHeader + "eth0\tzz\n" + route("eth0", "nothex", "0", "0001", "00000000") + multicast,
			want: "wlan0", prefix: "224.0.0.0/4"},
		{name: "header is not a route", table: route("eth0", "00000000", "010200C0", "0003", "00000000")},
		{name: "big-endian host", order: binary.BigEndian,
			table: routeHeader + route("eth0", "C0000200", "00000000", "0001", "FFFFFF00") + route("eth0", "E0000000", "00000000", "0001", "F0000000"),
			want:  "eth0", prefix: "224.0.0.0/4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := tt.order
			if order == nil {
				order = binary.LittleEndian
			}
			routes, err := parseRoutes(strings.NewReader(tt.table), order)
			if err != nil {
				t.Fatal(err)
			}
			rt, ok := multicastRoute(routes)
			if got := map[bool]string{true: rt.iface}[ok]; got != tt.want {
				t.Fatalf("route out %q, want %q (routes %+v)", got, tt.want, routes)
			}
			if ok && rt.prefix().String() != tt.prefix {
				t.Errorf("prefix %s, want %s", rt.prefix(), tt.prefix)
			}
		})
	}
}

func TestParseRoutesSubnet(t *testing.T) {
	routes, err := parseRoutes(strings.NewReader(routeHeader+route("eth0", "000200C0", "00000000", "0001", "00FFFFFF")), binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].iface != "eth0" || routes[0].prefix().String() != "192.0.2.0/24" || routes[0].flags != routeUp {
		t.Fatalf("routes = %+v, want eth0 192.0.2.0/24 up", routes)
	}
}

func TestInterfaceChecks(t *testing.T) {
	eth := DoctorInterface{Name: "eth0", Addrs: []string{"192.168.1.20/24"}, Up: true, Multicast: true, Kind: kindEthernet}
	wifi := DoctorInterface{Name: "wlan0", Addrs: []string{"fd00::5/64"}, Up: true, Multicast: true, Kind: kindWiFi}
	docker := DoctorInterface{Name: "docker0", Addrs: []string{"172.17.0.1/16"}, Up: true, Multicast: true, Virtual: true, Kind: kindVirtual}
	wg := DoctorInterface{Name: "wg0", Addrs: []string{"10.8.0.2/24"}, Up: true, Virtual: true, Kind: kindVPN}
	noDHCP := DoctorInterface{Name: "eth1", Addrs: []string{"169.254.10.3/16"}, Up: true, Multicast: true, Kind: kindEthernet}
	type result struct {
		name    string
		ok, fix bool
		detail  string // a part of the detail
	}
	tests := []struct {
		name   string
		ifaces []DoctorInterface
		want   []result
	}{
		{name: "ethernet", ifaces: []DoctorInterface{eth}, want: []result{{name: checkInterfaces, ok: true, detail: "LAN on eth0 192.168.1.20/24"}}},
		{name: "ipv6-only wifi", ifaces: []DoctorInterface{wifi}, want: []result{{name: checkInterfaces, ok: true, detail: "wlan0"}}},
		{name: "virtual named apart", ifaces: []DoctorInterface{docker, eth}, want: []result{{name: checkInterfaces, ok: true, detail: "not the LAN: docker0"}}},
		{name: "nothing", want: []result{{name: checkInterfaces, fix: true, detail: "no LAN interface is up"}}},
		{name: "virtual only", ifaces: []DoctorInterface{docker}, want: []result{{name: checkInterfaces, fix: true, detail: "no LAN interface is up"}}},
		{name: "self-assigned only", ifaces: []DoctorInterface{noDHCP}, want: []result{{name: checkInterfaces, fix: true, detail: "self-assigned"}}},
		{name: "vpn noted", ifaces: []DoctorInterface{eth, wg}, want: []result{
			{name: checkInterfaces, ok: true, detail: "eth0"},
			{name: checkVPN, ok: true, fix: true, detail: "wg0 10.8.0.2/24"},
		}},
		{name: "vpn only", ifaces: []DoctorInterface{wg}, want: []result{
			{name: checkInterfaces, fix: true, detail: "no LAN interface is up"},
			{name: checkVPN, ok: true, fix: true, detail: "wg0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := interfaceChecks(tt.ifaces)
			if len(got) != len(tt.want) {
				t.Fatalf("checks %+v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Name != w.name || g.OK != w.ok || (g.Fix != "") != w.fix || !strings.Contains(g.Detail, w.detail) {
					t.Errorf("check %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestMembersCheck(t *testing.T) {
	tests := []struct {
		name    string
		members []DoctorMember
		ok, fix bool
		detail  string
	}{
		{name: "alone", ok: true, detail: "no other members yet"},
		{name: "none answer", members: []DoctorMember{{Name: "Ben"}, {Name: "Carla"}}, fix: true, detail: "0 of 2 members answer"},
		{name: "some answer", members: []DoctorMember{{Name: "Ben", Answered: true}, {Name: "Carla"}}, ok: true, detail: "1 of 2 members answer"},
		{name: "all answer", members: []DoctorMember{{Name: "Ben", Answered: true, Connected: true}}, ok: true, detail: "1 of 1 members answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := membersCheck(tt.members)
			if c.OK != tt.ok || (c.Fix != "") != tt.fix || !strings.HasPrefix(c.Detail, tt.detail) {
				t.Errorf("got %+v, want ok=%v fix=%v detail %q", c, tt.ok, tt.fix, tt.detail)
			}
		})
	}
}

func findCheck(t *testing.T, rep DoctorReport, name string) DoctorCheck {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, rep.Checks)
	return DoctorCheck{}
}

// TestDoctorAlone: a node whose only other member never ran finds its own
// port open, says mDNS is off, and reports that no member answers, with a fix.
func TestDoctorAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	home := filepath.Join(dir, "ana")
	initHome(t, home)
	n, err := Open(ctx, Config{Home: home, Listen: []string{"/ip4/0.0.0.0/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ben, err := n.Provision(ctx, filepath.Join(dir, "ben"), "Ben")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if err := n.st.PutBookEntry(ctx, store.BookEntry{Peer: []byte(ben), Addrs: []string{closed}, Via: viaBook}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	rep, err := n.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > doctorProbeBudget+doctorDialTimeout+time.Second {
		t.Errorf("doctor took %v", d)
	}

	lan := false
	for _, a := range n.host.Addrs() {
		lan = lan || !manet.IsIPLoopback(a)
	}
	port := findCheck(t, rep, checkPort)
	if lan && !port.OK {
		t.Errorf("peer port check failed on a node listening on every interface: %+v", port)
	}
	if !strings.Contains(port.Detail, "not the default 4747") {
		t.Errorf("peer port check does not say the port is not the default: %q", port.Detail)
	}

	mdns := findCheck(t, rep, checkMDNS)
	if !mdns.OK || mdns.Fix == "" || !strings.Contains(mdns.Detail, "--no-mdns") {
		t.Errorf("mDNS off is not reported as a note: %+v", mdns)
	}

	members := findCheck(t, rep, checkMembers)
	if members.OK || members.Detail != "0 of 1 members answer" || !strings.Contains(members.Fix, "--peer") {
		t.Errorf("members check = %+v, want 0 of 1 with a fix", members)
	}
	if len(rep.Members) != 1 {
		t.Fatalf("members = %+v, want Ben alone", rep.Members)
	}
	m := rep.Members[0]
	if m.Name != "Ben" || m.PeerID != ben.String() || m.Connected || m.Answered || !strings.Contains(m.Error, "refused") {
		t.Errorf("member = %+v, want Ben not answering, refused", m)
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), hex.EncodeToString(n.netKey)) || strings.Contains(strings.ToLower(string(data)), "privkey") {
		t.Error("the report holds key material")
	}
}

// TestDoctorConnectedMember: a connected member shows as connected and the
// members check passes; a handshake probe tells members from strangers.
func TestDoctorConnectedMember(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	eventually(t, 60*time.Second, "ana and ben connect", func() bool {
		return len(ana.connectedMembers()) == 1 && len(ben.connectedMembers()) == 1
	})

	for _, tt := range []struct {
		name    string
		n       *Node
		other   string
		otherID string
	}{
		{name: "ana", n: ana, other: "Member1", otherID: ben.PeerID().String()},
		{name: "ben", n: ben, other: "Ana", otherID: ana.PeerID().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := tt.n.Doctor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Members) != 1 {
				t.Fatalf("members = %+v, want one", rep.Members)
			}
			m := rep.Members[0]
			if m.Name != tt.other || m.PeerID != tt.otherID || !m.Connected || !m.Answered || m.Error != "" || len(m.Addrs) == 0 {
				t.Errorf("member = %+v, want %s connected", m, tt.other)
			}
			if c := findCheck(t, rep, checkMembers); !c.OK || c.Detail != "1 of 1 members answer" || c.Fix != "" {
				t.Errorf("members check = %+v, want 1 of 1 ok", c)
			}
			if c := findCheck(t, rep, checkPort); c.OK || !strings.Contains(c.Detail, "loopback only") {
				t.Errorf("a node on 127.0.0.1 alone is not reported as unreachable: %+v", c)
			}
		})
	}

	if err := ana.probeMember(ctx, ben.PeerID(), ben.host.Addrs()[0]); err != nil {
		t.Errorf("probe of ben: %v", err)
	}
	if err := ana.probeMember(ctx, ana.PeerID(), ben.host.Addrs()[0]); err == nil || !strings.Contains(err.Error(), "another member") {
		t.Errorf("probe expecting someone else at ben's address: %v", err)
	}
	// A member's address where this node itself answers (its loopback
	// address, seen from another machine) says so, not "another member".
	if err := ana.probeMember(ctx, ben.PeerID(), ana.host.Addrs()[0]); err == nil || !strings.Contains(err.Error(), "this node itself answers there") {
		t.Errorf("probe of ben at ana's own address: %v", err)
	}
	otherHome := filepath.Join(t.TempDir(), "other")
	if _, err := Init(ctx, otherHome, InitOptions{Name: "Olga", Workspace: "Other office"}); err != nil {
		t.Fatal(err)
	}
	other := openNode(t, otherHome)
	if err := ana.probeMember(ctx, other.PeerID(), other.host.Addrs()[0]); err == nil {
		t.Error("another office's node passed the probe")
	}
}

// TestDoctorJSONNames pins the report's JSON names: scripts read them.
func TestDoctorJSONNames(t *testing.T) {
	rep := DoctorReport{
		Checks:     []DoctorCheck{{Name: "mDNS", OK: true, Detail: "advertising on eth0"}, {Name: "members", Detail: "0 of 1 members answer", Fix: "check"}},
		Interfaces: []DoctorInterface{{Name: "wg0", Addrs: []string{"10.8.0.2/24"}, Up: true, Virtual: true, Kind: kindVPN}},
		Members:    []DoctorMember{{PeerID: "12D3KooWBen", Name: "Ben", Addrs: []string{}, Error: "no address known"}},
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"checks":[{"name":"mDNS","ok":true,"detail":"advertising on eth0"},{"name":"members","ok":false,"detail":"0 of 1 members answer","fix":"check"}],` +
		`"interfaces":[{"name":"wg0","addrs":["10.8.0.2/24"],"up":true,"multicast":false,"virtual":true,"kind":"vpn"}],` +
		`"members":[{"peer_id":"12D3KooWBen","name":"Ben","addrs":[],"connected":false,"answered":false,"error":"no address known"}]}`
	if string(data) != want {
		t.Errorf("JSON\n%s\nwant\n%s", data, want)
	}
}

// TestDoctorRemovedNode: a node an admin removed is told so by doctor, which
// fails; before, every check passed (members still answer its handshake).
func TestDoctorRemovedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	allKnown(t, ana, ben)
	rep, err := ben.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Name == checkMembership {
			t.Fatalf("a member's doctor reports %+v", c)
		}
	}
	if _, err := ana.RemoveMember(ctx, ben.PeerID().String()); err != nil {
		t.Fatal(err)
	}
	// Ben is handed the removal here: over the network it reaches a removed
	// node only if that node syncs before it is cut off, which is a race
	// (a known gap, not what this test is about).
	heads, err := ana.st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if !bytes.Equal(h.Author, ana.hist.self) {
			continue
		}
		raw, held, err := ana.st.EnvelopeRaw(ctx, h.ID)
		if err != nil || !held {
			t.Fatalf("ana's removal op: held=%v err=%v", held, err)
		}
		if _, err := ben.hist.ingestRaw(ctx, [][]byte{raw}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "ben learns of its removal", ben.hist.removedSelf)
	if rep, err = ben.Doctor(ctx); err != nil {
		t.Fatal(err)
	}
	if c := findCheck(t, rep, checkMembership); c.OK || !strings.Contains(c.Detail, "removed") || !strings.Contains(c.Fix, "charla join") {
		t.Errorf("membership check of a removed node = %+v", c)
	}
}

// TestMulticastFixesOffline: with no LAN interface up, the multicast route
// and mDNS checks send the user to the network first, not to 'ip route add'.
func TestMulticastFixesOffline(t *testing.T) {
	eth := DoctorInterface{Name: "eth0", Addrs: []string{"192.168.1.20/24"}, Up: true, Multicast: true, Kind: kindEthernet}
	noRoute := multicastRouteState{known: true}
	if fix := routeFix([]DoctorInterface{eth}); !strings.Contains(fix, "ip route add 224.0.0.0/4 dev eth0") {
		t.Errorf("route fix on a LAN: %q", fix)
	}
	if fix := mdnsFix([]DoctorInterface{eth}, noRoute); !strings.Contains(fix, "multicast route") {
		t.Errorf("mDNS fix on a LAN without a route: %q", fix)
	}
	for _, fix := range []string{routeFix(nil), mdnsFix(nil, noRoute), mdnsFix(nil, multicastRouteState{})} {
		if fix != offline {
			t.Errorf("fix with no LAN up: %q, want %q", fix, offline)
		}
	}
}
