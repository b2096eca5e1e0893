package discovery

import (
	"net"
	"net/netip"
	"slices"
	"strings"
)

// netIface is an interface mDNS can use and its addresses.
type netIface struct {
	iface net.Interface
	addrs []netip.Addr // sorted, unmapped, no loopback or unspecified
}

func (n netIface) hasV4() bool { return slices.ContainsFunc(n.addrs, netip.Addr.Is4) }
func (n netIface) hasV6() bool { return slices.ContainsFunc(n.addrs, netip.Addr.Is6) }

// netState is what mDNS depends on in the network configuration. Two states
// are compared to notice network changes.
type netState struct {
	ifaces []netIface // up, multicast-capable, not loopback, with an address; sorted by name
	// mcastV4 is the source address of IPv4 mDNS, invalid if there is no
	// route for 224.0.0.251: without one the responder cannot start, so its
	// appearing is a change worth retrying on even if no address changed.
	mcastV4 netip.Addr
}

// readNetState reads the network state. An interface whose addresses cannot
// be read is left out.
func readNetState() (netState, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netState{}, err
	}
	var st netState
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		as, err := ifi.Addrs()
		if err != nil {
			continue
		}
		var addrs []netip.Addr
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
				continue
			}
			addrs = append(addrs, ip)
		}
		if len(addrs) == 0 {
			continue
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		st.ifaces = append(st.ifaces, netIface{iface: ifi, addrs: slices.Compact(addrs)})
	}
	slices.SortFunc(st.ifaces, func(a, b netIface) int { return strings.Compare(a.iface.Name, b.iface.Name) })
	st.mcastV4 = multicastSourceV4()
	return st, nil
}

func (s netState) equal(o netState) bool {
	return s.mcastV4 == o.mcastV4 && slices.EqualFunc(s.ifaces, o.ifaces, func(a, b netIface) bool {
		return a.iface.Name == b.iface.Name && a.iface.Index == b.iface.Index && slices.Equal(a.addrs, b.addrs)
	})
}

func (s netState) names() []string {
	names := make([]string, len(s.ifaces))
	for i, n := range s.ifaces {
		names[i] = n.iface.Name
	}
	return names
}

// advertised returns the addresses to put in A and AAAA records.
//
// IPv6 link-local addresses are left out: they mean nothing without the zone
// of the receiver's interface, and answers that carry them are ignored (see
// parseEntry). hashicorp/mdns's client keeps only the last A and the last AAAA
// record of an answer (client.go overwrites ServiceEntry.AddrV4 per record;
// compare hashicorp/mdns#92),
// so the source address this host uses for multicast, the likeliest to be
// reachable from where the query came, is put last.
func (s netState) advertised() []net.IP {
	preferred := s.mcastV4
	var addrs []netip.Addr
	for _, n := range s.ifaces {
		for _, a := range n.addrs {
			if a.Is6() && a.IsLinkLocalUnicast() {
				continue
			}
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	// IPv4 first, then IPv6; within each family preferred last.
	rank := func(a netip.Addr) int {
		r := 0
		if a.Is6() {
			r = 2
		}
		if a == preferred {
			r++
		}
		return r
	}
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int { return rank(a) - rank(b) })
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = net.IP(a.AsSlice())
	}
	return ips
}

// multicastSourceV4 returns the address this host would send IPv4 mDNS from.
// Connecting a UDP socket only consults the routing table; nothing is sent.
func multicastSourceV4() netip.Addr {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	return ua.AddrPort().Addr().Unmap()
}
