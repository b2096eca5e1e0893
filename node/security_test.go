package node

// The security tests of SECURITY.md that need real nodes: each is named
// TestSecurity… and lists what an attacker tries and what it gets.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// rawHost is a bare libp2p host with charla's transport stack, the given
// identity and private-network key, and no gater of its own: what a
// hostile program could run.
func rawHost(t *testing.T, id *crypto.Identity, psk []byte) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.Identity(id.PrivKey()),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.PrivateNetwork(psk),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func addrInfo(t *testing.T, n *Node) peer.AddrInfo {
	t.Helper()
	ai, err := peer.AddrInfoFromString(n.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	return *ai
}

// TestSecurityForeignNetworkKey: a node with another workspace's network key
// cannot complete a connection (pnet), and one with the right key but an
// identity outside the roster is refused by the gater; a member's identity
// with the right key connects, so the refusals are not an accident of setup.
func TestSecurityForeignNetworkKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	// Another office: its own workspace and network key, on the same machine.
	initHome(t, filepath.Join(dir, "other"))
	other := openNode(t, filepath.Join(dir, "other"))
	if bytes.Equal(other.netKey, ana.netKey) {
		t.Fatal("two workspaces drew one network key")
	}
	ben := provisionIdentity(t, ana, filepath.Join(dir, "ben"))
	stranger, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      *crypto.Identity
		psk     []byte
		connect bool
	}{
		{"member identity, another workspace's key", ben, other.netKey, false},
		{"stranger, another workspace's key", stranger, other.netKey, false},
		{"stranger, the right key", stranger, ana.netKey, false},
		{"member identity, the right key", ben, ana.netKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := rawHost(t, tt.id, tt.psk)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			// Connect may return before the other side's gater has spoken;
			// a stream to the sync protocol shows whether the connection holds.
			err := h.Connect(cctx, addrInfo(t, ana))
			if err == nil {
				var s network.Stream
				if s, err = h.NewStream(cctx, ana.PeerID(), syncProtocol); err == nil {
					s.Reset()
				}
			}
			if tt.connect {
				if err != nil {
					t.Fatalf("a member with the network key cannot connect: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected and opened a stream")
			}
			// Nor did ana keep a connection to it.
			time.Sleep(200 * time.Millisecond)
			for _, p := range ana.host.Network().Peers() {
				if p == tt.id.PeerID() {
					t.Fatalf("ana holds a connection to %s", p)
				}
			}
		})
	}
	// The node of the other office, told ana's address, never reaches her either.
	if err := other.host.Connect(ctx, addrInfo(t, ana)); err == nil {
		t.Fatal("a node of another workspace connected")
	}
	if st, _ := ana.Status(ctx); len(st.Peers) != 0 && !(len(st.Peers) == 1 && st.Peers[0] == ben.PeerID().String()) {
		t.Fatalf("ana's peers: %v", st.Peers)
	}
}

// knockRaw speaks the join protocol to a door as knock does, and returns the
// door's answer whatever its status, so a test can see what it carries.
func knockRaw(t *testing.T, code string) (*wire.JoinResponse, error) {
	t.Helper()
	inv, err := wire.ParseInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	self, err := id.MemberRecord("Eve")
	if err != nil {
		t.Fatal(err)
	}
	h := rawHost(t, id, crypto.TokenPSK([16]byte(inv.Token)))
	issuer, _ := peer.IDFromBytes(inv.Issuer)
	ai := peer.AddrInfo{ID: issuer}
	for _, b := range inv.Addrs {
		a, _ := ma.NewMultiaddrBytes(b)
		ai.Addrs = append(ai.Addrs, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		return nil, err
	}
	s, err := h.NewStream(ctx, issuer, joinProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(s, (&wire.JoinRequest{Token: inv.Token, Member: self}).Marshal()); err != nil {
		return nil, err
	}
	b, err := wire.ReadFrame(s, wire.MaxJoinBytes)
	if err != nil {
		return nil, err
	}
	return wire.DecodeJoinResponse(b)
}

// TestSecurityClosedDoors: a holder of a used, expired or revoked invite code
// reaches at most a door that says why and hands over nothing of the
// workspace; a revoked invite's door closes at once, an expired one's when
// the door loop runs, and then not even a connection completes. The code's
// own expiry is only a hint to the joiner: a code edited to look valid meets
// the same door.
func TestSecurityClosedDoors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	members := func() int { ms, _ := ana.Members(ctx); return len(ms) }
	refusal := func(t *testing.T, code string, want wire.JoinStatus) {
		t.Helper()
		resp, err := knockRaw(t, code)
		if err != nil {
			t.Fatalf("door: %v", err)
		}
		if resp.Status != want {
			t.Fatalf("status %v, want %v", resp.Status, want)
		}
		if len(resp.NetKey) != 0 || len(resp.Genesis) != 0 || len(resp.Envelopes) != 0 || len(resp.Addrs) != 0 {
			t.Fatalf("a refusal carries workspace data: %d key bytes, %d genesis bytes, %d envelopes, %d addrs",
				len(resp.NetKey), len(resp.Genesis), len(resp.Envelopes), len(resp.Addrs))
		}
	}
	closed := func(t *testing.T, code string) {
		t.Helper()
		if resp, err := knockRaw(t, code); err == nil {
			t.Fatalf("reached a door: %+v", resp)
		}
		home := filepath.Join(t.TempDir(), "eve")
		if _, err := Join(ctx, home, code, "Eve"); !errors.Is(err, ErrIssuerUnreachable) {
			t.Fatalf("join: %v, want ErrIssuerUnreachable", err)
		}
	}

	// The control: a good code reaches an open door that hands everything over.
	used, err := ana.Invite(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := knockRaw(t, used)
	if err != nil || resp.Status != wire.JoinOK || len(resp.NetKey) != 32 {
		t.Fatalf("a good code: %v, %+v", err, resp)
	}
	expired, err := ana.Invite(ctx, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ana.Invite(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before := members()

	t.Run("used", func(t *testing.T) { refusal(t, used, wire.JoinUsed) })

	eventually(t, 10*time.Second, "the short invite expires", func() bool {
		vs, _ := ana.Invites(ctx, true)
		for _, v := range vs {
			if v.State == "expired" {
				return true
			}
		}
		return false
	})
	// Its holder edits the expiry in the code: the check that matters is the door's.
	einv, _ := wire.ParseInviteCode(expired)
	einv.Expires = time.Now().Add(time.Hour).UnixMilli()
	expiredEdited := einv.Code()
	t.Run("expired, code edited", func(t *testing.T) { refusal(t, expiredEdited, wire.JoinExpired) })

	rinv, _ := wire.ParseInviteCode(revoked)
	id := inviteID(crypto.HashToken([16]byte(rinv.Token)))
	if _, err := ana.RevokeInvite(ctx, hex.EncodeToString(id[:])); err != nil {
		t.Fatal(err)
	}
	t.Run("revoked", func(t *testing.T) { closed(t, revoked) })
	// The door loop (here: the roster change of the revocation) has closed
	// the expired invite's door too.
	ana.closeDoors(false)
	t.Run("expired, after the door loop", func(t *testing.T) { closed(t, expiredEdited) })
	if got := members(); got != before {
		t.Fatalf("roster went from %d to %d members", before, got)
	}
}

// TestSecurityPrivateRoomAndDM: a member outside a private room or a direct
// conversation stores its envelopes (store and forward) but never holds its
// plaintext, and cannot plant a key in it: a key share for the room from a
// member outside it is rejected, counted, and changes no key.
func TestSecurityPrivateRoomAndDM(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	allKnown(t, nodes...)
	secret, err := ana.CreateRoom(ctx, "secret", []peer.ID{ben.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	room, _ := wire.ParseID(secret)
	dm := dmRoomID(ana.hist.ws, ana.hist.self, ben.hist.self)
	eventually(t, 60*time.Second, "ben reads #secret", func() bool {
		_, _, err := ben.resolveRoom(ctx, "secret")
		return err == nil
	})
	roomKey := func(n *Node, r wire.ID) wire.ID {
		k, err := n.hist.sendKey(ctx, r)
		if err != nil {
			return wire.ID{}
		}
		return k.KeyID
	}
	keyBefore := roomKey(ana, room)
	if keyBefore != roomKey(ben, room) {
		t.Fatal("ana and ben send with different keys")
	}

	// Cai, a member of the workspace but not of #secret or of the direct
	// room, shares keys it made up: to all three (so it would read what the
	// others send with it), and, for the direct room, to ana and ben alone.
	forge := func(r wire.ID, kind wire.RoomKind, epoch uint64, parent wire.ID, recips ...*Node) *checked {
		t.Helper()
		key, err := crypto.NewRoomKey()
		if err != nil {
			t.Fatal(err)
		}
		ks := &wire.KeyShare{Workspace: cai.hist.ws, Room: r, RoomKind: kind, Epoch: epoch, Parent: parent, Cause: wire.CauseRotate, Key: key}
		if epoch == 1 {
			ks.Cause = wire.CauseCreate
		}
		for _, n := range recips {
			ks.Recipients = append(ks.Recipients, n.hist.self)
		}
		c, err := cai.hist.shareKey(ctx, ks)
		if err != nil {
			t.Fatal(err)
		}
		cai.publish(c)
		return c
	}
	forbidden := func(n *Node) int64 { return n.hist.rejectedCounts()[reasonForbidden] }
	wasAna, wasBen := forbidden(ana), forbidden(ben)
	forged := []*checked{
		forge(room, wire.RoomChannel, 2, keyBefore, ana, ben, cai),
		forge(dm, wire.RoomDirect, 1, wire.ID{}, ana, ben, cai),
		forge(dm, wire.RoomDirect, 1, wire.ID{}, ana, ben),
	}
	eventually(t, 60*time.Second, "ana and ben hold cai's shares", func() bool {
		for _, n := range []*Node{ana, ben} {
			for _, c := range forged {
				if _, err := n.st.Envelope(ctx, c.id); err != nil {
					return false
				}
			}
		}
		return true
	})
	// Each share that names ana or ben among its recipients is opened and
	// rejected by both: three each.
	if got := forbidden(ana) - wasAna; got != 3 {
		t.Errorf("ana counted %d forbidden key shares, want 3", got)
	}
	if got := forbidden(ben) - wasBen; got != 3 {
		t.Errorf("ben counted %d forbidden key shares, want 3", got)
	}
	if k := roomKey(ana, room); k != keyBefore {
		t.Error("ana's send key of #secret changed")
	}
	if k := roomKey(ben, room); k != keyBefore {
		t.Error("ben's send key of #secret changed")
	}
	for _, n := range []*Node{ana, ben} {
		if keys, _ := n.st.RoomKeys(ctx, dm); len(keys) != 0 {
			t.Errorf("%s holds %d keys of a direct room nobody created", n.PeerID(), len(keys))
		}
		r, err := n.hist.room(ctx, room)
		if err != nil || len(r.Members) != 2 {
			t.Errorf("#secret's members on %s: %v, %v", n.PeerID(), r.Members, err)
		}
	}

	// Now the canaries: one in #secret, one in the direct room.
	canaries := []string{"canary-secret-" + rand.Text(), "canary-dm-" + rand.Text()}
	m1, err := ana.Send(ctx, secret, canaries[0])
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ben.Send(ctx, "@Ana", canaries[1])
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben and ana read the canaries; cai stores both envelopes", func() bool {
		b, errb := ben.Log(ctx, secret, 10)
		a, erra := ana.Log(ctx, "@"+ben.PeerID().String(), 10)
		if os.Getenv("CHARLA_TEST_DEBUG") != "" {
			t.Logf("ben: %v %v; ana: %v %v", b, errb, a, erra)
		}
		for _, id := range []string{m1.ID, m2.ID} {
			wid, _ := wire.ParseID(id)
			if _, err := cai.st.Envelope(ctx, wid); err != nil {
				return false
			}
		}
		return len(b) == 1 && b[0].Text == canaries[0] && len(a) == 1 && a[0].Text == canaries[1]
	})
	if k := roomKey(ben, dm); k == (wire.ID{}) || k == forged[1].id {
		t.Fatal("ben has no key of the direct room")
	}
	// Cai's database, WAL and all, holds neither canary.
	cai.Close()
	grepHome(t, homes[2], canaries...)
}

// grepHome fails if any of needles is in a *.db* file of home.
func grepHome(t *testing.T, home string, needles ...string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, "*.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%q found in %s", s, f)
			}
		}
	}
}

// signAt signs, as n, a #general text envelope at seq after prev dated when.
func signAt(t *testing.T, n *Node, seq uint64, prev wire.ID, when time.Time, text string) *wire.Envelope {
	t.Helper()
	return forgeAt(t, n, generalRoomID(n.hist.ws), seq, prev, n.hist.nextLamport(), when, &wire.Content{Kind: wire.KindText, Text: text})
}

// TestSecurityBadEnvelopes: what a hostile member publishes by gossip, and a
// hostile sync peer sends: forged, non-canonical, foreign, malformed and
// oversized envelopes are rejected and counted by reason; replays change
// nothing and are not counted as attacks; the node stays up. An envelope
// dated two days ahead is accepted (time decides nothing), counted as
// future-time, and shown no later than shortly after it arrived.
func TestSecurityBadEnvelopes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, eve := nodes[0], nodes[1]
	readsGeneral(t, nodes...)
	if _, err := eve.Send(ctx, "general", "hola"); err != nil {
		t.Fatal(err)
	}
	feedHeld(t, eve, ana)
	eventually(t, 60*time.Second, "eve and ana share the envelope topic", func() bool {
		return len(eve.gsp.topic.ListPeers()) > 0 && len(ana.gsp.topic.ListPeers()) > 0
	})
	eveHead := func() (uint64, wire.ID) {
		hs, _ := eve.st.Heads(ctx)
		for _, h := range hs {
			if bytes.Equal(h.Author, eve.hist.self) {
				return h.Seq, h.ID
			}
		}
		return 0, wire.ID{}
	}
	seq, prev := eveHead()

	// Two good envelopes of eve's feed, not yet sent; the bad ones below
	// are made from them, so they share their envelope IDs.
	e1 := signAt(t, eve, seq+1, prev, time.Now(), "one")
	e2 := signAt(t, eve, seq+2, e1.ID(), time.Now(), "two")
	forged := e1.Marshal()
	forged[len(forged)-1] ^= 1 // the signature's last byte
	// Non-canonical: e2's fields, with the signed bytes' length prefix as a
	// three-byte varint. A decoder that took it would give the envelope two
	// encodings, and relays a way to change its bytes.
	nonCanonical := func() []byte {
		n := len(e2.Signed)
		if n >= 1<<14 {
			t.Fatal("signed bytes too long for the test's varint")
		}
		b := []byte{0x0a, byte(n&0x7f) | 0x80, byte(n>>7) | 0x80, 0x00}
		b = append(b, e2.Signed...)
		good := e2.Marshal()
		return append(b, good[len(good)-len(e2.Sig)-2:]...)
	}()
	if _, _, err := wire.DecodeEnvelope(e2.Marshal()); err != nil {
		t.Fatal(err)
	}
	foreign := func() []byte {
		env, err := eve.id.SealEnvelope(&wire.Header{
			Version: wire.Version, Workspace: wire.ID{7}, Author: eve.hist.self, Seq: 1,
			Lamport: 1, Time: time.Now().UnixMilli(), Class: wire.ClassRoster,
			Body: (&wire.RosterOp{Kind: wire.RosterRole, Target: eve.hist.self, Role: wire.RoleOwner}).Marshal(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return env.Marshal()
	}()
	oversized := make([]byte, wire.MaxEnvelopeBytes+1)
	copy(oversized, e1.Marshal())

	count := func(r string) int64 { return ana.hist.rejectedCounts()[r] }
	envelopes := func() int64 { c, _ := ana.st.EnvelopeCount(ctx); return c }
	held := envelopes()
	tests := []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"malformed", []byte("not an envelope"), reasonMalformed},
		{"truncated", e1.Marshal()[:len(forged)/2], reasonMalformed},
		{"non-canonical", nonCanonical, reasonMalformed},
		{"forged signature", forged, reasonForged},
		{"another workspace", foreign, reasonForeign},
		{"oversized", oversized, reasonOversized},
	}
	for _, path := range []string{"gossip", "sync"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				was := count(tt.reason)
				if path == "gossip" {
					// eve's own validator passes her own publication: ana's judges it.
					if err := eve.gsp.topic.Publish(ctx, tt.raw); err != nil {
						t.Fatal(err)
					}
				} else if _, err := ana.hist.ingestRaw(ctx, [][]byte{tt.raw}); err != nil {
					t.Fatal(err)
				}
				eventually(t, 20*time.Second, "ana counts it as "+tt.reason, func() bool { return count(tt.reason) == was+1 })
			})
		}
	}
	if got := envelopes(); got != held {
		t.Fatalf("bad input stored: %d envelopes, had %d", got, held)
	}

	// The real e1 and e2 now follow their bad copies by gossip, and arrive
	// by gossip: the copies did not mark them as seen. (Sync would bring
	// them too, but only at its next round, 30 s away.)
	if _, err := eve.hist.ingestRaw(ctx, [][]byte{e1.Marshal(), e2.Marshal()}); err != nil {
		t.Fatal(err)
	}
	delivered := ana.gsp.drops.delivered.Load()
	eve.publish(&checked{raw: e1.Marshal()})
	eve.publish(&checked{raw: e2.Marshal()})
	eventually(t, 10*time.Second, "gossip delivers e1 and e2 to ana", func() bool { return ana.gsp.drops.delivered.Load() == delivered+2 })
	eventually(t, 10*time.Second, "ana stores e1 and e2", func() bool { return envelopes() == held+2 })

	// Replays, by gossip and by sync, change nothing and count as nothing.
	before := ana.hist.rejectedCounts()
	for range 3 {
		if _, err := ana.hist.ingestRaw(ctx, [][]byte{e1.Marshal(), e2.Marshal()}); err != nil {
			t.Fatal(err)
		}
	}
	eve.gsp.topic.Publish(ctx, e1.Marshal())
	time.Sleep(500 * time.Millisecond)
	if got := envelopes(); got != held+2 {
		t.Fatalf("replays stored: %d envelopes, want %d", got, held+2)
	}
	if after := ana.hist.rejectedCounts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("replays counted: %v, before %v", after, before)
	}

	// A clock two days ahead: accepted, counted, shown as received.
	seq, prev = eveHead()
	ahead := time.Now().Add(48 * time.Hour)
	future := signAt(t, eve, seq+1, prev, ahead, "from the future")
	wasFuture := count(reasonFutureTime)
	if _, err := eve.hist.ingestRaw(ctx, [][]byte{future.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if err := eve.gsp.topic.Publish(ctx, future.Marshal()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "ana reads the message from the future", func() bool {
		ts := texts(t, ana, "general")
		return len(ts) > 0 && ts[len(ts)-1] == "from the future"
	})
	if got := count(reasonFutureTime); got == wasFuture {
		t.Error("future-time not counted")
	}
	ms, _ := ana.Log(ctx, "general", 1)
	if shown := ms[0].Time; shown.After(time.Now().Add(displaySkew)) || shown.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("a message dated %v is shown at %v", ahead, shown)
	}
	st, err := ana.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{reasonMalformed, reasonForged, reasonForeign, reasonOversized, reasonFutureTime} {
		if st.Rejected[r] == 0 {
			t.Errorf("status does not count %s", r)
		}
	}

	// And both nodes still work.
	if _, err := ana.Send(ctx, "general", "still here"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "eve reads ana", func() bool {
		ts := texts(t, eve, "general")
		return len(ts) > 0 && ts[len(ts)-1] == "still here"
	})
}

func TestShownTime(t *testing.T) {
	const received = 1_000_000
	skew := displaySkew.Milliseconds()
	tests := []struct {
		name                     string
		author, received, expect int64
	}{
		{"on time", received - 10, received, received - 10},
		{"written offline long before", received - 86_400_000, received, received - 86_400_000},
		{"a little ahead", received + skew, received, received + skew},
		{"far ahead", received + 2*86_400_000, received, received + skew},
		{"arrival unknown", received + 2*86_400_000, 0, received + 2*86_400_000},
	}
	for _, tt := range tests {
		if got := shownTime(tt.author, tt.received); got != tt.expect {
			t.Errorf("%s: shownTime(%d, %d) = %d, want %d", tt.name, tt.author, tt.received, got, tt.expect)
		}
	}
}

// TestSecurityFlood: one member publishes thousands of valid envelopes by
// gossip as fast as it can, far past what a send can do (they are signed
// beforehand, as a modified client would); meanwhile two others talk. Every
// message of the two reaches the other promptly, the flood is cut down to
// the per-author rate at the first hop, and sync still delivers all of it.
func TestSecurityFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, eve := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	if _, err := eve.Send(ctx, "general", "hola"); err != nil {
		t.Fatal(err)
	}
	head := feedHeld(t, eve, ana, ben)
	eventually(t, 60*time.Second, "everyone on the envelope topic", func() bool {
		for _, n := range nodes {
			if len(n.gsp.topic.ListPeers()) < 2 {
				return false
			}
		}
		return true
	})

	const flood = 3000 // and eve's "hola"
	raws := make([][]byte, 0, flood)
	prev := head.ID
	for i := range flood {
		env := signAt(t, eve, head.Seq+1+uint64(i), prev, time.Now(), fmt.Sprintf("flood %d", i))
		prev = env.ID()
		raws = append(raws, env.Marshal())
	}

	// Ana and ben talk while eve floods; each notes when the other's
	// messages reach it.
	const talk = 20
	type arrival struct {
		text string
		at   time.Time
	}
	arrived := make(chan arrival, 2*(flood+talk))
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for _, n := range []*Node{ana, ben} {
		evs := n.Subscribe(watchCtx)
		go func() {
			for ev := range evs {
				if ev.Message != nil && strings.HasPrefix(ev.Message.Text, "talk ") {
					arrived <- arrival{ev.Message.Text, time.Now()}
				}
			}
		}()
	}
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		for _, raw := range raws {
			if err := eve.gsp.topic.Publish(ctx, raw); err != nil {
				t.Error(err)
				break
			}
		}
		took := time.Since(start)
		// Only now does eve hold the flood, so no heartbeat of hers can
		// have ana and ben pull it by sync before gossip brings it to
		// their limiters; later, sync brings what the limit ignored.
		for i := 0; i < len(raws); i += wire.MaxBatchEnvelopes {
			if _, err := eve.hist.ingestRaw(ctx, raws[i:min(i+wire.MaxBatchEnvelopes, len(raws))]); err != nil {
				t.Error(err)
			}
		}
		done <- took
	}()
	sentAt := map[string]time.Time{}
	for i := range talk {
		from := ana
		if i%2 == 1 {
			from = ben
		}
		text := fmt.Sprintf("talk %d", i)
		if _, err := from.Send(ctx, "general", text); err != nil {
			t.Fatal(err)
		}
		sentAt[text] = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	took := <-done
	t.Logf("eve published %d envelopes in %v (%.0f/s)", flood, took.Round(time.Millisecond), flood/took.Seconds())

	// Every message of the talk reaches the other within a few seconds.
	// Each one arrives as an event on both nodes: the sender's own, at once.
	var lat []time.Duration
	deadline := time.After(30 * time.Second)
	for seen := map[string]int{}; len(lat) < talk; {
		select {
		case a := <-arrived:
			seen[a.text]++
			if seen[a.text] == 2 {
				lat = append(lat, a.at.Sub(sentAt[a.text]))
			}
		case <-deadline:
			t.Fatalf("after 30 s only %d of %d messages of the talk reached the other side", len(lat), talk)
		}
	}
	slices.Sort(lat)
	t.Logf("talk delivered during the flood: median %v, worst %v", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if worst := lat[len(lat)-1]; worst > 10*time.Second {
		t.Errorf("a message of the talk took %v", worst)
	}

	// The flood was held back on its way: by ana's and ben's per-author
	// limit, or, when the machine is too busy to drain eve's queue at her
	// pace, already by eve's own outbound queue (the flood never reached
	// their limiters in full). Either way the talk above got through.
	limited := ana.hist.rejectedCounts()[reasonRateLimited] + ben.hist.rejectedCounts()[reasonRateLimited]
	queued := eve.gsp.drops.rpc.Load()
	if limited == 0 && queued == 0 {
		t.Fatalf("no envelope of the flood was rate-limited or dropped from eve's queue: nothing held it back (ana: rejected %v, gossip %v, sync %v; ben: rejected %v, gossip %v)",
			ana.hist.rejectedCounts(), ana.gsp.drops.counts(), ana.gsp.drops.delivered.Load(), ben.hist.rejectedCounts(), ben.gsp.drops.counts())
	}
	t.Logf("rate-limited on ana and ben: %d; RPCs dropped from eve's full queues: %d", limited, queued)
	// Nothing is lost: sync brings what gossip ignored.
	start := time.Now()
	eventually(t, 120*time.Second, "ana and ben hold the whole flood", func() bool {
		for _, n := range []*Node{ana, ben} {
			if len(storedTexts(t, n)) != 1+flood+talk {
				return false
			}
		}
		return true
	})
	t.Logf("the whole flood held %v after the talk ended", time.Since(start).Round(time.Millisecond))
	// Eve's valid envelopes cost her no gossip score.
	for _, n := range []*Node{ana, ben} {
		if s, ok := n.gsp.scores.of(eve.PeerID()); ok && s < 0 {
			t.Errorf("eve's score on %s is %v", n.PeerID(), s)
		}
	}
}

// gossipReaches waits until a message from sends reaches each of to by
// gossip: until then the mesh may not be formed, and a publication reaches
// nobody (sync brings it later).
func gossipReaches(t *testing.T, from *Node, to ...*Node) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		was := make([]int64, len(to))
		for j, n := range to {
			was[j] = n.gsp.drops.delivered.Load()
		}
		if _, err := from.Send(context.Background(), "general", fmt.Sprintf("mesh probe %d", i)); err != nil {
			t.Fatal(err)
		}
		wait := time.Now().Add(2 * time.Second)
		for time.Now().Before(wait) {
			all := true
			for j, n := range to {
				all = all && n.gsp.drops.delivered.Load() > was[j]
			}
			if all {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatal("gossip never reached every node")
		}
	}
}

// storedTexts are the texts of #general as n's store holds them: without
// the views Log builds, which a test polling thousands of messages cannot afford.
func storedTexts(t *testing.T, n *Node) []string {
	t.Helper()
	ms, err := n.st.Messages(context.Background(), generalRoomID(n.hist.ws), 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// TestSecurityGarbageGraylisted: a member that sends malformed envelopes by
// gossip loses gossip score on the members it sends them to (they prune it
// from their mesh at once, and past about 20 recent ones graylist it), while
// the others go on talking, nobody loses score for forwarding, and the
// member's real messages still arrive.
func TestSecurityGarbageGraylisted(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 3)
	ana, ben, eve := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	gossipReaches(t, eve, ana, ben)
	const junk = 200
	receivers := []*Node{ana, ben}
	was := map[*Node]int64{}
	lowest := map[*Node]float64{}
	for _, n := range receivers {
		was[n] = n.hist.rejectedCounts()[reasonMalformed]
	}
	watch := func() {
		for _, n := range receivers {
			if s, ok := n.gsp.scores.of(eve.PeerID()); ok {
				lowest[n] = min(lowest[n], s)
			}
		}
	}
	for i := range junk {
		if err := eve.gsp.topic.Publish(ctx, []byte(fmt.Sprintf("junk %d", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		watch()
	}
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		watch()
	}
	var got int64
	for _, n := range receivers {
		checked := n.hist.rejectedCounts()[reasonMalformed] - was[n]
		got += checked
		t.Logf("%s checked %d of eve's %d junk envelopes; eve's lowest score there %.0f", n.PeerID(), checked, junk, lowest[n])
		if checked > 0 && lowest[n] >= 0 {
			t.Errorf("%s rejected %d of eve's envelopes and left her score at %v", n.PeerID(), checked, lowest[n])
		}
	}
	if got == 0 {
		t.Fatal("eve's junk reached nobody")
	}
	if _, err := ana.Send(ctx, "general", "hola ben"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "ben reads ana", func() bool {
		ts := texts(t, ben, "general")
		return len(ts) > 0 && ts[len(ts)-1] == "hola ben"
	})
	if s, ok := ana.gsp.scores.of(ben.PeerID()); !ok || s < 0 {
		t.Errorf("ben's score on ana is %v (%v)", s, ok)
	}
	if s, ok := ben.gsp.scores.of(ana.PeerID()); !ok || s < 0 {
		t.Errorf("ana's score on ben is %v (%v)", s, ok)
	}
	// Eve's real messages still reach everyone: by gossip once her score
	// has decayed (10% a second), or by sync.
	if _, err := eve.Send(ctx, "general", "sorry"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "ana and ben read eve", func() bool {
		for _, n := range []*Node{ana, ben} {
			if !slices.Contains(texts(t, n, "general"), "sorry") {
				return false
			}
		}
		return true
	})
}

// TestSecurityKeyShareSquat: a member outside a private room shares a key
// "for" it with a member of the room who has not yet heard of the room, as
// that member catches up from it. The room's creator's own share comes
// later. The member of the room must still send with the creator's key, and
// the room must still have its real members.
//
// It fails today: a key share for a room this node does not know yet is
// taken from anyone, and its recipients become the room's members, so the
// outsider's key (epoch 2) becomes the send key and it reads what the
// member then writes there. The outcome also depends on arrival order,
// which DESIGN.md rules out. See SECURITY.md, "Known gaps".
func TestSecurityKeyShareSquat(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, cai := nodes[0], nodes[1]
	danHome := filepath.Join(t.TempDir(), "dan")
	dan, err := ana.Provision(ctx, danHome, "Dan")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai knows dan", func() bool { return cai.hist.memberCount() == 3 })
	secret, err := ana.CreateRoom(ctx, "secret", []peer.ID{dan})
	if err != nil {
		t.Fatal(err)
	}
	room, _ := wire.ParseID(secret)
	var anaShare []byte
	eventually(t, 60*time.Second, "cai holds ana's key share of the room", func() bool {
		envs, _ := cai.st.EnvelopesAfter(ctx, ana.hist.self, 0, 1000)
		for _, e := range envs {
			if e.Class == wire.ClassKeyShare && e.Room == room {
				anaShare = e.Raw
				return true
			}
		}
		return false
	})
	key, err := crypto.NewRoomKey()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := cai.hist.shareKey(ctx, &wire.KeyShare{
		Workspace: cai.hist.ws, Room: room, RoomKind: wire.RoomChannel, Epoch: 2, Parent: wire.ID{1},
		Cause: wire.CauseRotate, Recipients: [][]byte{ana.hist.self, cai.hist.self, []byte(dan)}, Key: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Dan was offline; he catches up from cai, which sends its share first.
	d := openNode(t, danHome)
	if _, err := d.hist.ingestRaw(ctx, [][]byte{forged.raw}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.hist.ingestRaw(ctx, [][]byte{anaShare}); err != nil {
		t.Fatal(err)
	}
	k, err := d.hist.sendKey(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID == key.ID() {
		t.Error("dan sends in ana's private room with the key cai made up")
	}
	if r, err := d.hist.room(ctx, room); err != nil || len(r.Members) != 2 {
		t.Errorf("the room's members on dan: %d, %v; want ana and dan", len(r.Members), err)
	}
}

func TestAuthorLimiter(t *testing.T) {
	l := newAuthorLimiter(10, 5)
	start := time.Unix(1000, 0)
	took := func(author string, at time.Time, n int) int {
		got := 0
		for range n {
			if l.allow([]byte(author), at) {
				got++
			}
		}
		return got
	}
	if got := took("eve", start, 8); got != 5 {
		t.Fatalf("a burst of 8 took %d, want the burst of 5", got)
	}
	if got := took("ana", start, 3); got != 3 {
		t.Fatalf("another author's 3 took %d: authors share a bucket", got)
	}
	if got := took("eve", start.Add(300*time.Millisecond), 8); got != 3 {
		t.Fatalf("0.3 s later at 10/s took %d, want 3", got)
	}
	if got := took("eve", start.Add(time.Hour), 100); got != 5 {
		t.Fatalf("an hour later took %d, want no more than the burst of 5", got)
	}
	if got := took("eve", start, 1); got != 0 {
		t.Fatalf("a time before the last took %d: the clock going back refilled the bucket", got)
	}
}

// TestSecurityFalseVectorMarksNothingDelivered: a member that claims in its
// sync vector to hold our message, but names the wrong envelope at that seq,
// makes nothing "delivered" and is counted; the claim with the right ID
// (which only a holder of the envelope, or of a later one of ours, can name)
// does mark it, so the refusal is not an accident of setup.
func TestSecurityFalseVectorMarksNothingDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	ana, ben := founderAndIdentity(t, t.TempDir())
	m, err := ana.Send(ctx, "general", "did anyone get this?")
	if err != nil {
		t.Fatal(err)
	}
	var id wire.ID
	if _, err := hex.Decode(id[:], []byte(m.ID)); err != nil {
		t.Fatal(err)
	}
	h := rawHost(t, ben, ana.netKey)
	if err := h.Connect(ctx, addrInfo(t, ana)); err != nil {
		t.Fatal(err)
	}
	claim := func(seq uint64, id wire.ID) {
		t.Helper()
		s, err := h.NewStream(ctx, ana.PeerID(), syncProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		v := wire.Vector{Entries: []wire.VectorEntry{{Author: ana.hist.self, Seq: seq, ID: id}}}
		if err := wire.WriteFrame(s, v.Marshal()); err != nil {
			t.Fatal(err)
		}
		if err := wire.WriteFrame(s, (&wire.Held{}).Marshal()); err != nil {
			t.Fatal(err)
		}
		// The offer frame comes after the vector was judged.
		if _, err := wire.ReadFrame(s, syncFrameMax); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		ms, err := ana.Log(ctx, "general", 10)
		if err != nil || len(ms) != 1 {
			t.Fatalf("log: %v %v", ms, err)
		}
		return ms[0].State
	}
	wrong := id
	wrong[0] ^= 0xff
	claim(m.Seq, wrong)
	if got := state(); got != "local" {
		t.Fatalf("after a claim with the wrong ID the message is %q, want local", got)
	}
	if st, _ := ana.Status(ctx); st.Rejected[reasonFalseHead] != 1 {
		t.Fatalf("false-head count %d, want 1 (%v)", st.Rejected[reasonFalseHead], st.Rejected)
	}
	// A seq beyond ana's head marks nothing either; it is not counted, as a
	// node restored from an old backup hears of its own later seqs so.
	claim(m.Seq+5, wrong)
	if got := state(); got != "local" {
		t.Fatalf("after a claim beyond the head the message is %q, want local", got)
	}
	if st, _ := ana.Status(ctx); st.Rejected[reasonFalseHead] != 1 {
		t.Fatalf("false-head count %d after a claim beyond the head, want 1", st.Rejected[reasonFalseHead])
	}
	claim(m.Seq, id)
	if got := state(); got != "delivered" {
		t.Fatalf("after a true claim the message is %q, want delivered", got)
	}
}

// founderAndIdentity starts a founder's node in dir/ana and provisions a
// member, Ben, whose identity it returns without starting a node for it.
func founderAndIdentity(t *testing.T, dir string) (*Node, *crypto.Identity) {
	t.Helper()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	return ana, provisionIdentity(t, ana, filepath.Join(dir, "ben"))
}

// provisionIdentity admits a member named Ben with a home at home and
// returns its identity.
func provisionIdentity(t *testing.T, by *Node, home string) *crypto.Identity {
	t.Helper()
	if _, err := by.Provision(context.Background(), home, "Ben"); err != nil {
		t.Fatal(err)
	}
	id, err := crypto.LoadIdentity(filepath.Join(home, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSecurityKeyPlantedForNewcomer: mal, a member outside ana's private
// room, shares a made-up key for it with a high epoch to val, who is not in
// the room yet either (and, in the second run, after val was added), and
// posts an add of itself under that key. Ana then adds val. Val must write
// in the room with ana's key, never mal's: mal holds no plaintext of what
// val writes, is never a member of the room in val's view, and its key is
// refused (counted) or stays untrusted. Before key trust, val believed the
// first share it got (SECURITY.md, known gaps), so the first run failed.
func TestSecurityKeyPlantedForNewcomer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	for _, tt := range []struct {
		name         string
		plantedFirst bool
		noHistory    bool // val reads the room's ops through disclosures (node/disclose.go)
	}{
		{"planted before the add", true, false},
		{"planted after the add", false, false},
		{"no-history room, planted before the add", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			nodes, _ := workspace(t, 3)
			ana, mal, val := nodes[0], nodes[1], nodes[2]
			eventually(t, 60*time.Second, "everyone knows everyone", func() bool {
				return mal.hist.memberCount() == 3 && val.hist.memberCount() == 3
			})
			create := ana.CreateRoomNamed
			if tt.noHistory {
				create = ana.CreateRoomNoHistory
			}
			if _, err := create(ctx, "vault", nil); err != nil {
				t.Fatal(err)
			}
			room := mustRoom(t, ana, "vault")
			if _, err := ana.Send(ctx, "vault", "the combination is in the drawer"); err != nil {
				t.Fatal(err)
			}
			holds := func(n *Node, author []byte, id wire.ID) func() bool {
				return func() bool {
					envs, _ := n.st.EnvelopesAfter(ctx, author, 0, 1000)
					for _, e := range envs {
						if e.ID == id {
							return true
						}
					}
					return false
				}
			}
			// Every member stores every envelope: mal and val hold the creation.
			eventually(t, 60*time.Second, "mal and val hold the room's creation", func() bool {
				for _, n := range []*Node{mal, val} {
					envs, _ := n.st.EnvelopesAfter(ctx, ana.hist.self, 0, 1000)
					found := false
					for _, e := range envs {
						found = found || ana.hist.createsRoom(e, room)
					}
					if !found {
						return false
					}
				}
				return true
			})
			key, err := crypto.NewRoomKey()
			if err != nil {
				t.Fatal(err)
			}
			forbidden := val.hist.rejectedCounts()[reasonForbidden]
			plant := func() {
				t.Helper()
				forged, err := mal.hist.shareKey(ctx, &wire.KeyShare{
					Workspace: mal.hist.ws, Room: room, RoomKind: wire.RoomChannel, Epoch: 1000, Parent: wire.ID{7},
					Cause: wire.CauseReshare, Recipients: [][]byte{mal.hist.self, val.hist.self}, Key: key,
				})
				if err != nil {
					t.Fatal(err)
				}
				mal.publish(forged)
				eventually(t, 60*time.Second, "val holds mal's share", holds(val, mal.hist.self, forged.id))
				// Under its own key, mal names the room as if it had created
				// it, with itself among the first members, and adds itself.
				members := [][]byte{mal.hist.self, val.hist.self}
				slices.SortFunc(members, bytes.Compare)
				for _, c := range []*wire.Content{
					{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpName, RoomName: "mals-vault", RoomKind: wire.RoomChannel, Members: members},
					{Kind: wire.KindRoomOp, RoomOp: wire.RoomOpAdd, Peer: mal.hist.self},
					{Kind: wire.KindText, Text: "mal was here"},
				} {
					op, _, err := mal.hist.postContent(ctx, room, c)
					if err != nil {
						t.Fatal(err)
					}
					if op.hdr.Key != key.ID() {
						t.Fatal("mal's room op is not under its own key: the test plants nothing")
					}
					mal.publish(op)
					eventually(t, 60*time.Second, "val holds mal's room op", holds(val, mal.hist.self, op.id))
				}
			}
			if tt.plantedFirst {
				plant()
			}
			if _, err := ana.RoomAdd(ctx, "vault", "Member2"); err != nil {
				t.Fatal(err)
			}
			if !tt.noHistory {
				eventually(t, 60*time.Second, "val reads the room's history", func() bool {
					got, err := val.Log(ctx, "vault", 10)
					return err == nil && len(got) == 1 && got[0].Text == "the combination is in the drawer"
				})
			}
			eventually(t, 60*time.Second, "val knows it is in the room", func() bool {
				r, err := val.hist.room(ctx, room)
				return err == nil && containsPeer(r.Members, val.hist.self)
			})
			if tt.noHistory {
				// It knows who is in the room, and reads nothing from before.
				eventually(t, 60*time.Second, "val knows the room's members", func() bool {
					r, err := val.hist.room(ctx, room)
					return err == nil && r.MembersKnown && containsPeer(r.Members, ana.hist.self)
				})
				if got, err := val.Log(ctx, "vault", 10); err != nil || len(got) != 0 {
					t.Fatalf("val, added without history, reads %v (%v)", got, err)
				}
			}
			if !tt.plantedFirst {
				plant()
			}
			canary := "val's canary " + hex.EncodeToString(key[:4])
			sent, err := val.Send(ctx, "vault", canary)
			if err != nil {
				t.Fatal(err)
			}
			var sentID wire.ID
			if _, err := hex.Decode(sentID[:], []byte(sent.ID)); err != nil {
				t.Fatal(err)
			}
			eventually(t, 60*time.Second, "ana reads val's message", func() bool {
				got, err := ana.Log(ctx, "vault", 10)
				return err == nil && len(got) == 2 && got[1].Text == canary
			})
			eventually(t, 60*time.Second, "mal holds val's message", holds(mal, val.hist.self, sentID))
			envs, err := val.st.EnvelopesAfter(ctx, val.hist.self, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range envs {
				if e.ID == sentID && e.Key == key.ID() {
					t.Error("val wrote in the room with the key mal planted")
				}
			}
			msgs, err := mal.st.Messages(ctx, room, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if strings.Contains(m.Text, "canary") || strings.Contains(m.Text, "combination") {
					t.Errorf("mal reads the room: %q", m.Text)
				}
			}
			// What mal wrote under its key never shows in the room.
			got, err := val.Log(ctx, "vault", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range got {
				if m.Text == "mal was here" {
					t.Error("val shows mal's message in the room")
				}
			}
			r, err := val.hist.room(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			if containsPeer(r.Members, mal.hist.self) {
				t.Error("mal is a member of the room in val's view")
			}
			if r.Name != "vault" {
				t.Errorf("val calls the room #%s: mal renamed it", r.Name)
			}
			if !containsPeer(r.Members, ana.hist.self) || !r.MembersKnown {
				t.Errorf("val's view of the room: %d members, known %v; want ana and val, known", len(r.Members), r.MembersKnown)
			}
			keys, err := val.st.RoomKeys(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if k.KeyID == key.ID() && !k.Untrusted {
					t.Error("val trusts the key mal planted")
				}
			}
			// Val's audit lists mal's room ops, if it reads them, as
			// having taken no effect, as val's node judged them.
			rep, err := val.Audit(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rep.Entries {
				if e.Class == "room" && e.Author == mal.PeerID().String() && e.Effective {
					t.Errorf("val's audit says mal's %s took effect: %s", e.Op, e.Text)
				}
			}
			// Mal's name op is refused whenever it comes (only the creator
			// names a room), and so is its share once val knows the members.
			if val.hist.rejectedCounts()[reasonForbidden] == forbidden {
				t.Error("val refused nothing of mal's as forbidden")
			}
		})
	}
}
