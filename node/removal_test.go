package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// TestRemovedWhileAwayLearnsIt: a member is removed while its node is off;
// the others then write in #general (with a new key) and make a roster op.
// When the node comes back and reaches a member it shows removed within
// seconds (status and doctor), and holds none of what was written after its
// removal: no message, no key, no later roster op. Before the removal
// notice, members' gaters refused it and it never learnt.
func TestRemovedWhileAwayLearnsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	general := generalRoomID(a.hist.ws)
	readsGeneral(t, a, b, c)
	if _, err := c.Send(ctx, "general", "before removal"); err != nil {
		t.Fatal(err)
	}
	feedHeld(t, c, a, b)
	keysBefore, err := c.st.RoomKeys(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	if _, err := a.RemoveMember(ctx, "Member2"); err != nil {
		t.Fatal(err)
	}
	const canaryA, canaryB = "canary-a-after-removal-91c2", "canary-b-after-removal-4d7e"
	if _, err := a.Send(ctx, "general", canaryA); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "b reads a's canary", func() bool {
		return strings.Contains(strings.Join(texts(t, b, "general"), "\n"), canaryA)
	})
	if _, err := b.Send(ctx, "general", canaryB); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetRole(ctx, "Member1", "admin"); err != nil {
		t.Fatal(err)
	}
	// What c must not get: the messages after its removal, and the roster
	// ops after it.
	var after []wire.ID
	eventually(t, 30*time.Second, "a reads b's canary", func() bool {
		return strings.Contains(strings.Join(texts(t, a, "general"), "\n"), canaryB)
	})
	ms, err := a.Log(ctx, "general", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Text == canaryA || m.Text == canaryB {
			id, err := wire.ParseID(m.ID)
			if err != nil {
				t.Fatal(err)
			}
			after = append(after, id)
		}
	}
	envs, err := a.st.RosterEnvelopes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removal := -1
	for i, e := range envs {
		if op := rosterOpOf(t, e.Raw); op.Kind == wire.RosterRemove && bytes.Equal(op.Target, []byte(c.PeerID())) {
			removal = i
		}
	}
	if removal < 0 {
		t.Fatal("a holds no removal of c")
	}
	for _, e := range envs[removal+1:] {
		after = append(after, e.ID)
	}
	if len(after) < 3 {
		t.Fatalf("%d envelopes after the removal, want at least 3", len(after))
	}
	eventually(t, 30*time.Second, "b holds everything a wrote", func() bool {
		for _, id := range after {
			if ok, _ := b.st.HasEnvelope(ctx, id); !ok {
				return false
			}
		}
		return true
	})

	start := time.Now()
	c = openNode(t, homes[2], a.Addrs()[0], b.Addrs()[0])
	eventually(t, 10*time.Second, "c shows itself removed", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.Removed
	})
	t.Logf("c knew it was removed %v after it started", time.Since(start).Round(time.Millisecond))
	rep, err := c.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mc := findCheck(t, rep, checkMembership); mc.OK {
		t.Fatalf("doctor's membership check passes on a removed node: %+v", mc)
	}
	eventually(t, 15*time.Second, "a and b close c's connections", func() bool {
		return len(a.host.Network().ConnsToPeer(c.PeerID())) == 0 && len(b.host.Network().ConnsToPeer(c.PeerID())) == 0
	})
	// Nothing else comes later either: c no longer dials, and members no
	// longer let it pull.
	time.Sleep(2 * time.Second)
	for _, id := range after {
		if ok, err := c.st.HasEnvelope(ctx, id); err != nil || ok {
			t.Fatalf("c holds envelope %s written after its removal (err %v)", id, err)
		}
	}
	if ok, _ := c.st.HasEnvelope(ctx, envs[removal].ID); !ok {
		t.Fatal("c does not hold its removal")
	}
	keysAfter, err := c.st.RoomKeys(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	if len(keysAfter) != len(keysBefore) {
		t.Fatalf("c holds %d keys of #general, had %d before its removal", len(keysAfter), len(keysBefore))
	}
	if got := texts(t, c, "general"); len(got) != 1 || got[0] != "before removal" {
		t.Fatalf("c's #general: %q", got)
	}
	c.Close()
	noCanary(t, homes[2], canaryA)
	noCanary(t, homes[2], canaryB)
}

// TestSecurityRemovedMemberGetsOnlyItsRemoval: a program with a removed
// member's identity and the network key connects to a member. The member
// lets the connection through only to tell it of its removal: while it
// holds the connection open (it stalls the notice), sync, peer exchange,
// blob, bodies, the removal protocol itself and gossip (GossipSub and
// floodsub) give it nothing, and the notice carries roster ops only, none
// after the removal; then the member closes the connection. The same
// probes with a current member's identity get an answer each (the
// control), so the refusals are not an accident of the probes.
func TestSecurityRemovedMemberGetsOnlyItsRemoval(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	cleo := provisionNamed(t, ana, filepath.Join(dir, "cleo"), "Cleo")
	dan := provisionNamed(t, ana, filepath.Join(dir, "dan"), "Dan")
	if _, err := ana.Send(ctx, "general", "before removal"); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.RemoveMember(ctx, "Cleo"); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.SetPolicy(ctx, "invite", "members", ""); err != nil {
		t.Fatal(err) // a roster op after the removal, which cleo must not get
	}
	heads, err := ana.st.Heads(ctx)
	if err != nil || len(heads) == 0 {
		t.Fatalf("ana's heads: %v %v", heads, err)
	}
	held := heads[0].ID // an envelope ana holds, to ask for by bodies

	// A member that speaks floodsub is sent every publication, past
	// pubsub's peer filter: no node offers floodsub, so the control has
	// no floodsub row.
	tests := []struct {
		name    string
		id      *crypto.Identity
		removed bool
		flood   bool
	}{
		{"current member (control)", dan, false, false},
		{"removed member", cleo, true, false},
		{"removed member speaking floodsub", cleo, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.removed {
				// ana tells a removed peer once per removalNoticeEvery
				// and cuts off a connection that comes sooner.
				eventually(t, removalNoticeEvery+5*time.Second, "ana may tell cleo again", func() bool {
					ana.notices.mu.Lock()
					defer ana.notices.mu.Unlock()
					last, ok := ana.notices.last[cleo.PeerID()]
					return !ok || time.Since(last) > removalNoticeEvery
				})
			}
			h := rawHost(t, tt.id, ana.netKey)
			notice := make(chan [][]byte, 1)
			probed := make(chan struct{})
			h.SetStreamHandler(removalProtocol, func(s network.Stream) {
				defer s.Close()
				<-probed // hold the connection open while the probes run
				notice <- takeNotice(t, s)
			})
			// What ana asks of the peer: a member is pulled from and
			// asked for peers; a removed one is only told.
			var askedMu sync.Mutex
			asked := map[protocol.ID]bool{}
			for _, p := range []protocol.ID{syncProtocol, exchangeProtocol, blobProtocol, bodiesProtocol} {
				h.SetStreamHandler(p, func(s network.Stream) {
					askedMu.Lock()
					asked[p] = true
					askedMu.Unlock()
					s.Reset()
				})
			}
			sub := rawSubscribe(t, h, ana, tt.flood)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := h.Connect(cctx, addrInfo(t, ana)); err != nil {
				t.Fatalf("connect: %v", err)
			}
			probes := []struct {
				proto  protocol.ID
				frames [][]byte
			}{
				{syncProtocol, [][]byte{(&wire.Vector{}).Marshal(), (&wire.Held{}).Marshal()}},
				{exchangeProtocol, nil},
				{blobProtocol, [][]byte{(&wire.BlobRequest{Op: wire.BlobHave, Chunks: []wire.ID{held}}).Marshal()}},
				{bodiesProtocol, [][]byte{(&wire.Want{IDs: []wire.ID{held}}).Marshal()}},
				{removalProtocol, nil},
			}
			for _, p := range probes {
				got, err := probe(h, ana, p.proto, p.frames)
				if got != !tt.removed {
					t.Errorf("%s: answered %v (err %v), want %v", p.proto, got, err, !tt.removed)
				}
				if tt.removed && errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%s: not refused, only silent", p.proto)
				}
			}
			// Gossip: ana publishes; a member's subscription gets it.
			deadline := time.Now().Add(4 * time.Second)
			if !tt.removed {
				deadline = time.Now().Add(15 * time.Second)
			}
			received := false
			for i := 0; time.Now().Before(deadline) && !received; i++ {
				if _, err := ana.Send(ctx, "general", "gossip probe"); err != nil {
					t.Fatal(err)
				}
				rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if _, err := sub.Next(rctx); err == nil {
					received = true
				}
				rcancel()
			}
			if received != !tt.removed {
				t.Errorf("gossip: received %v, want %v", received, !tt.removed)
			}
			close(probed)
			askedMu.Lock()
			pulled := asked[syncProtocol]
			delete(asked, syncProtocol)
			if tt.removed && (pulled || len(asked) > 0) {
				t.Errorf("ana opened to the removed member: sync %v, %v", pulled, asked)
			}
			askedMu.Unlock()
			if !tt.removed {
				if !pulled {
					t.Error("ana never pulled from a member (the control)")
				}
				return
			}
			var raws [][]byte
			select {
			case raws = <-notice:
			case <-time.After(removalNoticeTimeout):
				t.Fatal("no removal notice")
			}
			sawRemoval := false
			for _, raw := range raws {
				_, hdr, err := wire.DecodeEnvelope(raw)
				if err != nil {
					t.Fatal(err)
				}
				if hdr.Class != wire.ClassRoster {
					t.Fatalf("the notice carries a %s envelope", hdr.Class)
				}
				op := rosterOpOf(t, raw)
				if sawRemoval {
					t.Fatalf("the notice carries a %s op after the removal", op.Kind)
				}
				sawRemoval = op.Kind == wire.RosterRemove && bytes.Equal(op.Target, []byte(cleo.PeerID()))
			}
			if !sawRemoval {
				t.Fatalf("the notice (%d ops) does not end with the removal", len(raws))
			}
			eventually(t, 5*time.Second, "ana closes the removed member's connection", func() bool {
				return len(ana.host.Network().ConnsToPeer(cleo.PeerID())) == 0
			})
		})
	}
}

// probe opens proto to n, writes frames, and reports whether anything came
// back within a few seconds.
func probe(h host.Host, n *Node, proto protocol.ID, frames [][]byte) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, n.PeerID(), proto)
	if err != nil {
		return false, err
	}
	defer s.Reset()
	s.SetDeadline(time.Now().Add(5 * time.Second))
	for _, f := range frames {
		if err := wire.WriteFrame(s, f); err != nil {
			return false, err
		}
	}
	var b [1]byte
	k, err := s.Read(b[:])
	return k > 0, err
}

// takeNotice speaks the removed node's side of the removal protocol with
// nothing held, and returns the envelopes it is sent.
func takeNotice(t *testing.T, s network.Stream) [][]byte {
	s.SetDeadline(time.Now().Add(removalNoticeTimeout))
	if err := wire.WriteFrame(s, (&wire.Vector{}).Marshal()); err != nil {
		t.Error(err)
		return nil
	}
	if err := wire.WriteFrame(s, (&wire.Held{}).Marshal()); err != nil {
		t.Error(err)
		return nil
	}
	var out [][]byte
	for {
		b, err := wire.ReadFrame(s, syncFrameMax)
		if err != nil {
			t.Errorf("read notice: %v", err)
			return out
		}
		batch, err := wire.DecodeBatch(b)
		if err != nil {
			t.Errorf("read notice: %v", err)
			return out
		}
		if batch.Len() == 0 {
			return out
		}
		out = append(out, batch.Envelopes...)
	}
}

// rawSubscribe runs pubsub on h as a node would (or as floodsub) and
// subscribes to n's envelope topic.
func rawSubscribe(t *testing.T, h host.Host, n *Node, flood bool) *pubsub.Subscription {
	t.Helper()
	opts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(gossipID),
		pubsub.WithMaxMessageSize(gossipMaxMessage),
	}
	if flood {
		opts = append(opts, pubsub.WithGossipSubProtocols([]protocol.ID{pubsub.FloodSubID}, pubsub.GossipSubDefaultFeatures))
	}
	ps, err := pubsub.NewGossipSub(context.Background(), h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(envelopeTopic(n.hist.ws))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	return sub
}

// provisionNamed admits a member named name with a home at home and
// returns its identity.
func provisionNamed(t *testing.T, by *Node, home, name string) *crypto.Identity {
	t.Helper()
	if _, err := by.Provision(context.Background(), home, name); err != nil {
		t.Fatal(err)
	}
	id, err := crypto.LoadIdentity(filepath.Join(home, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rosterOpOf(t *testing.T, raw []byte) *wire.RosterOp {
	t.Helper()
	_, hdr, err := wire.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	op, err := wire.DecodeRosterOp(hdr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// TestRemovalNoticeTakesRosterOpsOnly: the removed node's side of the
// notice refuses a batch with anything but roster envelopes in it.
func TestRemovalNoticeTakesRosterOpsOnly(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	ana := openNodeAlone(t, home)
	provisionNamed(t, ana, filepath.Join(t.TempDir(), "ben"), "Ben")
	if _, err := ana.Send(ctx, "general", "hello"); err != nil {
		t.Fatal(err)
	}
	envs, err := ana.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	byClass := map[wire.Class][]byte{}
	for _, e := range envs {
		byClass[e.Class] = e.Raw
	}
	for _, c := range []wire.Class{wire.ClassRoster, wire.ClassKeyShare, wire.ClassContent} {
		if byClass[c] == nil {
			t.Fatalf("ana holds no %s envelope", c)
		}
	}
	tests := []struct {
		name  string
		batch wire.Batch
		ok    bool
	}{
		{"roster ops", wire.Batch{Envelopes: [][]byte{byClass[wire.ClassRoster]}}, true},
		{"the end", wire.Batch{}, true},
		{"a key share", wire.Batch{Envelopes: [][]byte{byClass[wire.ClassRoster], byClass[wire.ClassKeyShare]}}, false},
		{"content", wire.Batch{Envelopes: [][]byte{byClass[wire.ClassContent]}}, false},
		{"a tombstone", wire.Batch{Tombstones: []wire.Tombstone{{Author: []byte(ana.PeerID()), Seq: 1, Class: wire.ClassContent}}}, false},
		{"garbage", wire.Batch{Envelopes: [][]byte{[]byte("not an envelope")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := onlyRoster(&tt.batch); (err == nil) != tt.ok {
				t.Fatalf("onlyRoster: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestRemovedWhileConnectedLearnsIt: a member removed while it is connected
// to the admin that removes it, and to no one else, shows removed within
// seconds: the admin tells it before it closes the connection, whether or
// not gossip had brought it the op.
func TestRemovedWhileConnectedLearnsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	a, b := nodes[0], nodes[1]
	eventually(t, 30*time.Second, "a and b connected", func() bool {
		return len(a.host.Network().ConnsToPeer(b.PeerID())) > 0
	})
	if _, err := a.RemoveMember(ctx, "Member1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b shows itself removed", func() bool {
		st, err := b.Status(ctx)
		return err == nil && st.Removed
	})
	eventually(t, 10*time.Second, "a closes b's connections", func() bool {
		return len(a.host.Network().ConnsToPeer(b.PeerID())) == 0
	})
}
