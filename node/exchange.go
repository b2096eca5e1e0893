package node

import (
	"context"
	"fmt"
	"time"

	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
)

// exchangeProtocol hands the asker signed peer records of the roster members
// this node reaches (itself included), one PeerExchange frame. A laptop on
// a network that blocks multicast reaches every member once it reaches one.
const exchangeProtocol = protocol.ID("/charla/peers/1")

const viaExchange = "exchange"

// signedRecord is a member's own signed peer record as this node last got it.
// libp2p's identify does not keep them, so the node does, to pass them on.
type signedRecord struct {
	seq uint64
	raw []byte
}

func (n *Node) handleExchange(s network.Stream) {
	defer s.Close()
	if !n.hist.isMember(s.Conn().RemotePeer()) {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	var x wire.PeerExchange
	if self, err := n.selfRecord(); err == nil {
		x.Records = append(x.Records, self)
	}
	n.recMu.Lock()
	for p, r := range n.records {
		if len(x.Records) == wire.MaxExchangeRecords {
			break
		}
		if n.hist.isMember(p) && p != s.Conn().RemotePeer() {
			x.Records = append(x.Records, r.raw)
		}
	}
	n.recMu.Unlock()
	if err := wire.WriteFrame(s, x.Marshal()); err != nil {
		s.Reset()
	}
}

// selfRecord is this node's own signed peer record.
func (n *Node) selfRecord() ([]byte, error) {
	rec := peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	env, err := record.Seal(rec, n.id.PrivKey())
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// exchange asks p for the members it reaches and dials those we do not.
func (n *Node) exchange(ctx context.Context, p peer.ID) error {
	if !n.hist.isMember(p) {
		return fmt.Errorf("peer exchange with %s: not a member", p)
	}
	ctx, cancel := context.WithTimeout(ctx, syncStepTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, exchangeProtocol)
	if err != nil {
		return fmt.Errorf("peer exchange with %s: %w", p, err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(syncStepTimeout))
	b, err := wire.ReadFrame(s, wire.MaxExchangeBytes)
	if err != nil {
		s.Reset()
		return fmt.Errorf("peer exchange with %s: %w", p, err)
	}
	x, err := wire.DecodePeerExchange(b)
	if err != nil {
		n.hist.count(reasonMalformed)
		n.dropPeer(p)
		return fmt.Errorf("peer exchange with %s: %w", p, err)
	}
	n.log.Debug("peer exchange", "peer", p, "records", len(x.Records))
	for _, raw := range x.Records {
		env, rec, err := record.ConsumeEnvelope(raw, peer.PeerRecordEnvelopeDomain)
		if err != nil {
			n.log.Debug("peer exchange: bad record", "peer", p, "err", err)
			n.hist.count(reasonForged)
			continue
		}
		pr, ok := rec.(*peer.PeerRecord)
		if !ok || pr.PeerID == n.host.ID() || !n.hist.isMember(pr.PeerID) || len(pr.Addrs) == 0 {
			continue // only roster members
		}
		// The envelope verifies against the key it carries, whoever's that
		// is: only the member's own key may speak for its addresses.
		if !pr.PeerID.MatchesPublicKey(env.PublicKey) {
			n.log.Debug("peer exchange: record not signed by its peer", "peer", p, "record", pr.PeerID)
			n.hist.count(reasonForged)
			continue
		}
		n.recMu.Lock()
		if prev, ok := n.records[pr.PeerID]; !ok || pr.Seq > prev.seq {
			n.records[pr.PeerID] = signedRecord{seq: pr.Seq, raw: raw}
		}
		n.recMu.Unlock()
		var addrs []string
		for _, a := range pr.Addrs {
			addrs = append(addrs, a.String())
		}
		if len(addrs) > 16 {
			addrs = addrs[:16]
		}
		if err := n.st.PutBookEntry(ctx, store.BookEntry{Peer: []byte(pr.PeerID), Addrs: addrs, Via: viaExchange, LastSeen: time.Now().UnixMilli()}); err != nil {
			return err
		}
		if n.host.Network().Connectedness(pr.PeerID) != network.Connected {
			n.find.setVia(pr.PeerID, viaExchange)
			n.host.Peerstore().AddAddrs(pr.PeerID, pr.Addrs, peerstore.AddressTTL)
			ai := peer.AddrInfo{ID: pr.PeerID, Addrs: pr.Addrs}
			n.work.spawn(func() {
				dctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
				defer cancel()
				if err := n.host.Connect(dctx, ai); err != nil && n.ctx.Err() == nil {
					n.log.Debug("dial exchanged peer", "peer", ai.ID, "err", err)
				}
			})
		}
	}
	return nil
}
