package discovery

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// ParsePeerAddr parses a peer address as given to --peer or kept in the
// address book: a multiaddr that ends in /p2p/<peer ID>, such as
// /ip4/10.0.0.2/tcp/4747/p2p/12D3KooW…. The peer ID is required because it is
// what the handshake checks the remote side against.
func ParsePeerAddr(s string) (peer.AddrInfo, error) {
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("peer address %q: %w", s, err)
	}
	transport, id := peer.SplitAddr(a)
	if id == "" {
		return peer.AddrInfo{}, fmt.Errorf("peer address %q does not end in /p2p/<peer ID>", s)
	}
	if len(transport) == 0 {
		return peer.AddrInfo{}, fmt.Errorf("peer address %q has no network address before /p2p", s)
	}
	return peer.AddrInfo{ID: id, Addrs: []multiaddr.Multiaddr{transport}}, nil
}
