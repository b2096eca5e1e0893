package node

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Interface kinds the doctor tells apart.
const (
	kindEthernet = "ethernet"
	kindWiFi     = "wifi"
	kindLoopback = "loopback"
	kindVPN      = "vpn"
	kindVirtual  = "virtual"
)

// Name prefixes of adapters that are not the office LAN, lowercased. Linux
// names most; utun is macOS's, vEthernet Windows' Hyper-V and WSL switch.
var (
	virtualPrefixes = []string{"docker", "br-", "veth", "virbr", "vmnet", "vboxnet", "lxcbr", "lxdbr", "podman", "cni", "vethernet"}
	vpnPrefixes     = []string{"tun", "tap", "wg", "utun", "tailscale", "zt", "ppp", "ipsec"}
	wifiPrefixes    = []string{"wl", "wi-fi", "wifi"}
)

// classifyInterface guesses what an interface is from its name and flags.
// Names are only a convention, so an unknown point-to-point link is taken
// for a VPN, and anything else unknown for ethernet.
func classifyInterface(name string, flags net.Flags) string {
	lower := strings.ToLower(name)
	hasPrefix := func(ps []string) bool {
		for _, p := range ps {
			if strings.HasPrefix(lower, p) {
				return true
			}
		}
		return false
	}
	switch {
	case flags&net.FlagLoopback != 0 || lower == "lo":
		return kindLoopback
	case hasPrefix(virtualPrefixes):
		return kindVirtual
	case hasPrefix(vpnPrefixes):
		return kindVPN
	case hasPrefix(wifiPrefixes):
		return kindWiFi
	case flags&net.FlagPointToPoint != 0:
		return kindVPN
	}
	return kindEthernet
}

// listInterfaces lists the interfaces that are up, not loopback, and have an
// address other than IPv6 link-local, sorted by name.
func listInterfaces() ([]DoctorInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := []DoctorInterface{}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := ifi.Addrs()
		if err != nil {
			continue
		}
		var addrs []string
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || (ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast()) {
				continue
			}
			addrs = append(addrs, ipn.String())
		}
		if len(addrs) == 0 {
			continue
		}
		kind := classifyInterface(ifi.Name, ifi.Flags)
		out = append(out, DoctorInterface{
			Name:      ifi.Name,
			Addrs:     addrs,
			Up:        true,
			Multicast: ifi.Flags&net.FlagMulticast != 0,
			Virtual:   kind == kindVPN || kind == kindVirtual,
			Kind:      kind,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ipv4Route is one line of /proc/net/route.
type ipv4Route struct {
	iface string
	dst   netip.Addr
	mask  uint32 // in network order read as a big-endian integer: /24 is 0xffffff00
	flags uint32
}

const routeUp = 0x1 // RTF_UP

func (r ipv4Route) prefix() netip.Prefix {
	return netip.PrefixFrom(r.dst, bits.OnesCount32(r.mask))
}

// maxRouteLines bounds how much of /proc/net/route is read.
const maxRouteLines = 10000

// parseRoutes reads the IPv4 routing table in the format of Linux's
// /proc/net/route, its hex words in byte order order. Lines that do not
// parse are skipped.
func parseRoutes(r io.Reader, order binary.ByteOrder) ([]ipv4Route, error) {
	sc := bufio.NewScanner(r)
	var out []ipv4Route
	for line := 0; sc.Scan() && line < maxRouteLines; line++ {
		f := strings.Fields(sc.Text())
		if line == 0 || len(f) < 8 {
			continue // the header, or a line too short
		}
		dst, err1 := hexWord(f[1], order)
		flags, err2 := strconv.ParseUint(f[3], 16, 32)
		mask, err3 := hexWord(f[7], order)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, ipv4Route{
			iface: f[0],
			dst:   netip.AddrFrom4(dst),
			mask:  binary.BigEndian.Uint32(mask[:]),
			flags: uint32(flags),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	return out, nil
}

// hexWord decodes one 32-bit word of /proc/net/route into the four bytes
// of an IPv4 address or mask.
func hexWord(s string, order binary.ByteOrder) ([4]byte, error) {
	var b [4]byte
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return b, err
	}
	order.PutUint32(b[:], uint32(v))
	return b, nil
}

// mdnsGroup is where IPv4 mDNS goes (RFC 6762 §3).
var mdnsGroup = netip.AddrFrom4([4]byte{224, 0, 0, 251})

// multicastRoute returns the route IPv4 mDNS would leave by: the longest
// prefix among the routes that are up and cover 224.0.0.251, which may be
// the default route.
func multicastRoute(routes []ipv4Route) (ipv4Route, bool) {
	var best ipv4Route
	found := false
	for _, r := range routes {
		if r.flags&routeUp == 0 || !r.dst.Is4() {
			continue
		}
		g := mdnsGroup.As4()
		if binary.BigEndian.Uint32(g[:])&r.mask != binary.BigEndian.Uint32(r.dst.AsSlice())&r.mask {
			continue
		}
		if !found || bits.OnesCount32(r.mask) > bits.OnesCount32(best.mask) {
			best, found = r, true
		}
	}
	return best, found
}
