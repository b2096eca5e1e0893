package discovery

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/multiformats/go-multiaddr"
)

func TestTagAccepted(t *testing.T) {
	tags := []string{"now", "before"}
	tests := []struct {
		name string
		txt  []string
		want bool
	}{
		{"current hour", []string{"t=now"}, true},
		{"previous hour", []string{"t=before"}, true},
		{"other workspace", []string{"t=other"}, false},
		{"no tag", nil, false},
		{"empty tag", []string{"t="}, false},
		{"other keys ignored", []string{"v=1", "t=now"}, true},
		{"two tags", []string{"t=now", "t=before"}, false},
		{"prefix of a tag", []string{"t=no"}, false},
		{"key case matters", []string{"T=now"}, false},
		{"past the field limit", append(slices.Repeat([]string{"x"}, maxTXTFields), "t=now"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tagAccepted(tt.txt, tags); got != tt.want {
				t.Errorf("tagAccepted(%q) = %v, want %v", tt.txt, got, tt.want)
			}
		})
	}
	if tagAccepted([]string{"t="}, []string{""}) {
		t.Error("an empty tag from the caller was accepted")
	}
}

func TestParseEntry(t *testing.T) {
	const own = "00112233aabbccdd._charla._tcp.local."
	entry := func(edit func(e *mdns.ServiceEntry)) *mdns.ServiceEntry {
		e := &mdns.ServiceEntry{
			Name:       "8899aabbccddeeff._charla._tcp.local.",
			Host:       "8899aabbccddeeff.local.",
			AddrV4:     net.ParseIP("10.0.0.2"),
			Port:       4747,
			InfoFields: []string{"t=now"},
		}
		if edit != nil {
			edit(e)
		}
		return e
	}
	v6 := func(s string) func(e *mdns.ServiceEntry) {
		return func(e *mdns.ServiceEntry) {
			e.AddrV6 = net.ParseIP(s)
			e.AddrV6IPAddr = &net.IPAddr{IP: net.ParseIP(s)}
		}
	}
	tests := []struct {
		name  string
		entry *mdns.ServiceEntry
		want  []string // nil: ignored
	}{
		{"ipv4", entry(nil), []string{"/ip4/10.0.0.2/tcp/4747"}},
		{"ipv4 and global ipv6", entry(v6("2001:db8::2")), []string{"/ip4/10.0.0.2/tcp/4747", "/ip6/2001:db8::2/tcp/4747"}},
		{"link-local ipv6 skipped", entry(v6("fe80::2")), []string{"/ip4/10.0.0.2/tcp/4747"}},
		{"only link-local ipv6", entry(func(e *mdns.ServiceEntry) {
			e.AddrV4 = nil
			v6("fe80::2")(e)
		}), nil},
		{"ipv6 only", entry(func(e *mdns.ServiceEntry) {
			e.AddrV4 = nil
			v6("fd00::7")(e)
		}), []string{"/ip6/fd00::7/tcp/4747"}},
		{"4-byte ipv4", entry(func(e *mdns.ServiceEntry) { e.AddrV4 = net.IP{10, 0, 0, 3} }), []string{"/ip4/10.0.0.3/tcp/4747"}},
		{"loopback", entry(func(e *mdns.ServiceEntry) { e.AddrV4 = net.ParseIP("127.0.0.1") }), nil},
		{"multicast", entry(func(e *mdns.ServiceEntry) { e.AddrV4 = net.ParseIP("224.0.0.251") }), nil},
		{"unspecified", entry(func(e *mdns.ServiceEntry) { e.AddrV4 = net.IPv4zero }), nil},
		{"other tag", entry(func(e *mdns.ServiceEntry) { e.InfoFields = []string{"t=other"} }), nil},
		{"previous hour", entry(func(e *mdns.ServiceEntry) { e.InfoFields = []string{"t=before"} }), []string{"/ip4/10.0.0.2/tcp/4747"}},
		{"no TXT", entry(func(e *mdns.ServiceEntry) { e.InfoFields = nil }), nil},
		{"own answer", entry(func(e *mdns.ServiceEntry) { e.Name = own }), nil},
		{"other service", entry(func(e *mdns.ServiceEntry) { e.Name = "printer._ipp._tcp.local." }), nil},
		{"service name as suffix of a label", entry(func(e *mdns.ServiceEntry) { e.Name = "x.not_charla._tcp.local." }), nil},
		{"port zero", entry(func(e *mdns.ServiceEntry) { e.Port = 0 }), nil},
		{"port too large", entry(func(e *mdns.ServiceEntry) { e.Port = 70000 }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseEntry(tt.entry, []string{"now", "before"}, own)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("parseEntry accepted it: %v", f.Addrs)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEntry: %v", err)
			}
			if got := addrStrings(f.Addrs); !slices.Equal(got, tt.want) {
				t.Errorf("addrs = %q, want %q", got, tt.want)
			}
			if f.Via != ViaMDNS {
				t.Errorf("via = %q, want %q", f.Via, ViaMDNS)
			}
		})
	}
}

func TestRecent(t *testing.T) {
	a := Found{Addrs: mustAddrs(t, "/ip4/10.0.0.2/tcp/4747", "/ip6/2001:db8::2/tcp/4747")}
	aReordered := Found{Addrs: mustAddrs(t, "/ip6/2001:db8::2/tcp/4747", "/ip4/10.0.0.2/tcp/4747")}
	b := Found{Addrs: mustAddrs(t, "/ip4/10.0.0.2/tcp/4747")}
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

	var r recent
	steps := []struct {
		name  string
		f     Found
		at    time.Duration
		fresh bool
	}{
		{"first answer", a, 0, true},
		{"repeat", a, 2 * time.Second, false},
		{"same set, other order", aReordered, 10 * time.Second, false},
		{"a subset is another set", b, 10 * time.Second, true},
		{"window not over", a, dedupeWindow - time.Millisecond, false},
		{"window over", a, dedupeWindow, true},
	}
	for _, s := range steps {
		if got := r.fresh(s.f, t0.Add(s.at)); got != s.fresh {
			t.Errorf("%s: fresh = %v, want %v", s.name, got, s.fresh)
		}
	}
}

func TestRecentBounded(t *testing.T) {
	var r recent
	t0 := time.Now()
	for i := range maxRemembered + 10 {
		f := Found{Addrs: mustAddrs(t, tcpAddr(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 4747))}
		if !r.fresh(f, t0) {
			t.Fatalf("answer %d not fresh", i)
		}
	}
	if len(r.seen) > maxRemembered {
		t.Errorf("remembered %d sets, bound is %d", len(r.seen), maxRemembered)
	}
	if r.dropped != 10 {
		t.Errorf("dropped = %d, want 10", r.dropped)
	}
	// Once the window is over, old sets make room again.
	f := Found{Addrs: mustAddrs(t, "/ip4/10.2.0.1/tcp/4747")}
	r.fresh(f, t0.Add(dedupeWindow))
	if _, ok := r.seen[addrKey(f.Addrs)]; !ok {
		t.Error("new set not remembered after the window")
	}
}

func TestAdvertised(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var as []netip.Addr
		for _, s := range ss {
			as = append(as, netip.MustParseAddr(s))
		}
		return as
	}
	ifaces := []netIface{
		{iface: net.Interface{Name: "eth0"}, addrs: addrs("10.0.0.5", "2001:db8::5", "fe80::5")},
		{iface: net.Interface{Name: "wlan0"}, addrs: addrs("192.168.1.5", "fe80::6")},
		{iface: net.Interface{Name: "wlan1"}, addrs: addrs("192.168.1.5")},
	}
	tests := []struct {
		name      string
		preferred string
		want      []string
	}{
		{"preferred v4 last among v4", "10.0.0.5", []string{"192.168.1.5", "10.0.0.5", "2001:db8::5"}},
		{"no preference", "", []string{"10.0.0.5", "192.168.1.5", "2001:db8::5"}},
		{"preferred not ours", "172.16.0.1", []string{"10.0.0.5", "192.168.1.5", "2001:db8::5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := netState{ifaces: ifaces}
			if tt.preferred != "" {
				st.mcastV4 = netip.MustParseAddr(tt.preferred)
			}
			var got []string
			for _, ip := range st.advertised() {
				got = append(got, ip.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("advertised = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNetStateEqual(t *testing.T) {
	eth0 := func(addr string) []netIface {
		return []netIface{{iface: net.Interface{Name: "eth0", Index: 2}, addrs: []netip.Addr{netip.MustParseAddr(addr)}}}
	}
	a := netState{ifaces: eth0("10.0.0.5")}
	if !a.equal(netState{ifaces: eth0("10.0.0.5")}) {
		t.Error("a state differs from its copy")
	}
	for _, b := range []netState{
		{ifaces: eth0("10.0.0.6")},
		{},
		{ifaces: eth0("10.0.0.5"), mcastV4: netip.MustParseAddr("10.0.0.5")}, // a multicast route appeared
	} {
		if a.equal(b) {
			t.Errorf("%v and %v compare equal", a, b)
		}
	}
}

func TestRandomInstance(t *testing.T) {
	a, b := randomInstance(), randomInstance()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a) {
		t.Errorf("instance %q is not 16 hex digits", a)
	}
	if a == b {
		t.Errorf("two instances are both %q", a)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	tags := func() []string { return []string{"now"} }
	found := func(Found) {}
	tests := []struct {
		name string
		m    *MDNS
		want string
	}{
		{"port zero", NewMDNS(0, tags, found, nil), "port 0"},
		{"port too large", NewMDNS(65536, tags, found, nil), "port 65536"},
		{"no tags", NewMDNS(4747, nil, found, nil), "tags"},
		{"no found", NewMDNS(4747, tags, nil, nil), "found"},
		{"query timeout", NewMDNS(4747, tags, found, nil, WithQueryTimeout(time.Hour)), "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // Run must fail before it touches the network
			err := tt.m.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParsePeerAddr(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	tests := []struct {
		name    string
		in      string
		addr    string
		wantErr string
	}{
		{"ipv4", "/ip4/10.0.0.2/tcp/4747/p2p/" + id, "/ip4/10.0.0.2/tcp/4747", ""},
		{"dns", "/dns4/office.example/tcp/4747/p2p/" + id, "/dns4/office.example/tcp/4747", ""},
		{"no peer ID", "/ip4/10.0.0.2/tcp/4747", "", "does not end in /p2p/<peer ID>"},
		{"peer ID only", "/p2p/" + id, "", "no network address"},
		{"not a multiaddr", "10.0.0.2:4747", "", `"10.0.0.2:4747"`},
		{"bad peer ID", "/ip4/10.0.0.2/tcp/4747/p2p/nope", "", "/p2p/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ai, err := ParsePeerAddr(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePeerAddr(%q) = %v, %v; want an error mentioning %q", tt.in, ai, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePeerAddr(%q): %v", tt.in, err)
			}
			if ai.ID.String() != id || len(ai.Addrs) != 1 || ai.Addrs[0].String() != tt.addr {
				t.Errorf("ParsePeerAddr(%q) = %v, want %s at %s", tt.in, ai, id, tt.addr)
			}
		})
	}
}

func mustAddrs(t *testing.T, ss ...string) []multiaddr.Multiaddr {
	t.Helper()
	var as []multiaddr.Multiaddr
	for _, s := range ss {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	return as
}

func addrStrings(as []multiaddr.Multiaddr) []string {
	var ss []string
	for _, a := range as {
		ss = append(ss, a.String())
	}
	return ss
}
