package node

import (
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater refuses every peer that is not on the roster, in both directions
// (DESIGN.md "Transport, join and sync"). This node dials current members
// only; it accepts a removed member's connection too, but only to tell it
// of its removal: every stream handler and gossip refuse it, and the
// connection is closed once it is told (node/removal.go).
type gater struct{ hist *history }

var _ connmgr.ConnectionGater = (*gater)(nil)

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.hist.isMember(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.hist.isMember(p) }

// InterceptAccept cannot know the peer yet; the private network already
// stops anyone without the key, and InterceptSecured judges the rest.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if dir == network.DirInbound && g.hist.wasRemoved(p) {
		return true
	}
	return g.hist.isMember(p)
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
