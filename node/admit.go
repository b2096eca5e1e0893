package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// admit appends the roster op that admits a member with its self-signed
// record, then hands it the keys of #general so it can read the office's
// main room from the start.
func (n *Node) admit(ctx context.Context, m wire.Member, role wire.Role) error {
	return n.admitWith(ctx, m, role, wire.ID{})
}

// admitWith is admit for the redeemer of invite inv (zero for none).
func (n *Node) admitWith(ctx context.Context, m wire.Member, role wire.Role, inv wire.ID) error {
	if err := crypto.VerifyMember(&m); err != nil {
		return fmt.Errorf("admit %q: %w", m.Name, err)
	}
	op := wire.RosterOp{Kind: wire.RosterAdmit, Member: m, Role: role, Invite: inv}
	c, _, err := n.hist.appendLocal(ctx, wire.ClassRoster, wire.ID{}, wire.ID{}, op.Marshal())
	if err != nil {
		return fmt.Errorf("admit %q: %w", m.Name, err)
	}
	n.publish(c)
	general := generalRoomID(n.hist.ws)
	keys, err := n.st.RoomKeys(ctx, general)
	if err != nil {
		return err
	}
	for _, k := range keys {
		share, err := n.hist.shareKey(ctx, &wire.KeyShare{
			Workspace: n.hist.ws, Room: general, RoomKind: wire.RoomChannel,
			Epoch: k.Epoch, Parent: k.Parent, Cause: wire.CauseReshare,
			Recipients: [][]byte{n.hist.self, m.Peer}, Key: k.Key,
		})
		if err != nil {
			return fmt.Errorf("share #general with %q: %w", m.Name, err)
		}
		n.publish(share)
	}
	return nil
}

// prepareMember creates a home for a node joining the workspace of g: a new
// identity, and the workspace records it needs before its admission arrives.
// It returns the self-signed record the admitting member puts in the roster.
func prepareMember(ctx context.Context, home, name string, g *wire.Genesis, netKey [32]byte) (wire.Member, error) {
	name, err := checkName("name", name)
	if err != nil {
		return wire.Member{}, err
	}
	lock, id, self, err := claimNewHome(home, name, "join")
	if err != nil {
		return wire.Member{}, err
	}
	defer lock.release()
	st, err := createHome(ctx, home, id, g, netKey)
	if err != nil {
		return wire.Member{}, err
	}
	return self, st.Close()
}

// Provision creates a new member's home on this machine and admits it to
// the workspace: what an invite and join do across the network, for
// `charla demo`, benchmarks and tests that start many nodes in one place.
func (n *Node) Provision(ctx context.Context, home, name string) (peer.ID, error) {
	netKey, err := n.st.Meta(ctx, metaNetKey)
	if err != nil || len(netKey) != 32 {
		return "", fmt.Errorf("provision %s: network key missing", home)
	}
	m, err := prepareMember(ctx, home, name, n.hist.genesis, [32]byte(netKey))
	if err != nil {
		return "", err
	}
	if err := n.admit(ctx, m, wire.RoleMember); err != nil {
		return "", err
	}
	// Hand over the roster and keys as the join door would.
	resp, err := n.welcome(ctx)
	if err != nil {
		return "", err
	}
	st, err := store.Open(ctx, filepath.Join(home, databaseFile))
	if err != nil {
		return "", err
	}
	defer st.Close()
	id, err := crypto.LoadIdentity(filepath.Join(home, identityFile))
	if err != nil {
		return "", err
	}
	hist, err := newHistory(st, id, n.hist.genesis, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	if _, err := hist.ingestRaw(ctx, resp.Envelopes); err != nil {
		return "", err
	}
	return peer.ID(m.Peer), nil
}
