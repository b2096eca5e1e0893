package api

import (
	"fmt"
	"net"
	"strconv"
)

// DefaultPort is where the API listens unless told otherwise; when it is
// taken, Listen tries the next defaultPortTries-1 ports.
const (
	DefaultPort      = 4748
	defaultPortTries = 20
)

// Listen opens the API's listener on a loopback address. addr is "" for the
// default (127.0.0.1:4748, or the next free port), or HOST:PORT where HOST is
// 127.0.0.1, ::1, localhost or empty (meaning 127.0.0.1), and PORT 0 picks a
// free port. Any other host is an error: the API listens on loopback only,
// and its Host check accepts only those names.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return listenFrom("127.0.0.1", DefaultPort, defaultPortTries)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("API address %q: %w", addr, err)
	}
	switch host {
	case "", "localhost", "127.0.0.1":
		host = "127.0.0.1"
	case "::1":
	default:
		return nil, fmt.Errorf("API address %q is not loopback: the API listens on 127.0.0.1 or [::1] only", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("API address %q: bad port %q", addr, port)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("listen for the API: %w", err)
	}
	return l, nil
}

// listenFrom listens on the first free port of first, first+1, … (tries ports).
func listenFrom(host string, first, tries int) (net.Listener, error) {
	var err error
	for port := first; port < first+tries && port <= 65535; port++ {
		var l net.Listener
		l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("listen for the API: ports %d to %d are all taken: %w", first, first+tries-1, err)
}
