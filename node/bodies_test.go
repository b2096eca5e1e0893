package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
)

// TestPurgedRoomOpsReachNewcomer: a room's ops are older than the
// retention limit. A node outside the room purges them to tombstones, and a
// node that joins the workspace later takes those tombstones from it. When
// that newcomer is added to the room, it asks for the disclosed ops by ID,
// gets them from a member, and learns who is in the room from them: its
// key is trusted and the members are the ones the creator named. Run for a
// room with its history (the keys are reshared) and for a --no-history room
// (the newcomer gets a new epoch only).
func TestPurgedRoomOpsReachNewcomer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	for _, noHistory := range []bool{false, true} {
		name := "with history"
		if noHistory {
			name = "no history"
		}
		t.Run(name, func(t *testing.T) { purgedRoomOpsReachNewcomer(t, noHistory) })
	}
}

func purgedRoomOpsReachNewcomer(t *testing.T, noHistory bool) {
	ctx := context.Background()
	nodes, homes := workspace(t, 3)
	ana, ben, cai := nodes[0], nodes[1], nodes[2]
	readsGeneral(t, nodes...)
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "everyone has the one-day retention", func() bool {
		for _, n := range nodes {
			if n.hist.currentPolicy().RetentionDays != 1 {
				return false
			}
		}
		return true
	})

	// Three days ago, ana made #vault with ben and wrote in it.
	create := ana.CreateRoomNamed
	if noHistory {
		create = ana.CreateRoomNoHistory
	}
	if _, err := threeDaysAgo(ana, func() (Room, error) { return create(ctx, "vault", []string{"Member1"}) }); err != nil {
		t.Fatal(err)
	}
	sendOld(t, ana, "vault", "old vault talk")
	room := mustRoom(t, ana, "vault")
	var ops []wire.ID
	if err := ana.st.Update(ctx, false, func(tx *store.Tx) error {
		envs, err := tx.RoomOps(room)
		for _, e := range envs {
			ops = append(ops, e.ID)
		}
		return err
	}); err != nil || len(ops) == 0 {
		t.Fatalf("ana's ops of #vault: %v, %v", ops, err)
	}

	// cai, outside the room, purges them; dan, provisioned now, meets only cai.
	homeDan := filepath.Join(t.TempDir(), "dan")
	if _, err := ana.Provision(ctx, homeDan, "Member3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai holds what ana holds", func() bool { return sameHeads(ana, cai) })
	if _, err := cai.purge(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if raw := heldRaw(t, cai, ops[0]); raw != nil {
		t.Fatal("cai, outside #vault, kept the body of its name op: the test needs it purged")
	}
	ana.Close()
	ben.Close()
	dan := openNode(t, homeDan, cai.Addrs()[0])
	eventually(t, 60*time.Second, "dan holds the name op as a tombstone", func() bool {
		var weak bool
		dan.st.Update(ctx, false, func(tx *store.Tx) error {
			var err error
			weak, err = tx.UnverifiedTombstone(ops[0])
			return err
		})
		return weak
	})

	// ana comes back and adds dan: dan gets the ops' bodies from ana.
	ana = openNode(t, homes[0], cai.Addrs()[0], dan.Addrs()[0])
	eventually(t, 60*time.Second, "ana knows dan", func() bool {
		_, ok := ana.hist.member(dan.hist.self)
		return ok
	})
	if _, err := ana.RoomAdd(ctx, "vault", "Member3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "dan knows #vault's members from its creator", func() bool {
		r, err := dan.hist.room(ctx, room)
		return err == nil && r.MembersKnown && len(r.Members) == 3 &&
			containsPeer(r.Members, ana.hist.self) && containsPeer(r.Members, ben.hist.self) && containsPeer(r.Members, dan.hist.self)
	})
	for _, id := range ops {
		if heldRaw(t, dan, id) == nil {
			t.Errorf("dan holds room op %s as a tombstone still", id)
		}
	}
	keys, err := dan.st.RoomKeys(ctx, room)
	if err != nil || len(keys) == 0 {
		t.Fatalf("dan's keys of #vault: %v, %v", keys, err)
	}
	for _, k := range keys {
		if k.Untrusted {
			t.Errorf("dan holds key epoch %d of #vault untrusted", k.Epoch)
		}
	}
	if _, err := dan.Send(ctx, "vault", "hello vault"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ana reads dan in #vault", func() bool {
		got, err := ana.Log(ctx, "vault", 10)
		return err == nil && len(got) > 0 && got[len(got)-1].Text == "hello vault"
	})
	// The old message was purged everywhere; the bodies fetched are the ops only.
	got, err := dan.Log(ctx, "vault", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got {
		if m.Text == "old vault talk" {
			t.Error("dan reads a message older than the retention limit")
		}
	}
}

// heldRaw returns the bytes n holds of envelope id: nil for a tombstone
// (fails if id is not held at all).
func heldRaw(t *testing.T, n *Node, id wire.ID) []byte {
	t.Helper()
	raws, err := n.st.RawsByID(context.Background(), []wire.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	if raws[id] == nil {
		if ok, err := n.st.HasEnvelope(context.Background(), id); err != nil || !ok {
			t.Fatalf("%s does not hold %s: %v", n.PeerID(), id, err)
		}
	}
	return raws[id]
}

// TestSecurityBodiesProtocol: the bodies protocol serves only what it is
// asked for and a member holds, refuses a malformed request, and a peer
// that answers with an envelope not asked for is cut off.
func TestSecurityBodiesProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	ana, ben := founderAndIdentity(t, t.TempDir())
	m, err := ana.Send(ctx, "general", "a body to ask for")
	if err != nil {
		t.Fatal(err)
	}
	id, err := wire.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := rawHost(t, ben, ana.netKey)
	if err := h.Connect(ctx, addrInfo(t, ana)); err != nil {
		t.Fatal(err)
	}
	ask := func(frame []byte) ([][]byte, error) {
		t.Helper()
		s, err := h.NewStream(ctx, ana.PeerID(), bodiesProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := wire.WriteFrame(s, frame); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for {
			b, err := wire.ReadFrame(s, syncFrameMax)
			if err != nil {
				return got, err
			}
			batch, err := wire.DecodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if batch.Len() == 0 {
				return got, nil
			}
			got = append(got, batch.Envelopes...)
		}
	}
	absent := id
	absent[0] ^= 0xff
	ids := []wire.ID{id, absent}
	if string(absent[:]) < string(id[:]) {
		ids = []wire.ID{absent, id}
	}
	got, err := ask((&wire.Want{IDs: ids}).Marshal())
	if err != nil || len(got) != 1 {
		t.Fatalf("asked for one held and one absent envelope: got %d, %v", len(got), err)
	}
	if env, _, err := wire.DecodeEnvelope(got[0]); err != nil || env.ID() != id {
		t.Fatalf("answer is not the envelope asked for: %v", err)
	}
	if _, err := ask([]byte{0x0a, 0x03, 1, 2, 3}); err == nil {
		t.Fatal("a malformed request got an answer")
	}
	if st, _ := ana.Status(ctx); st.Rejected[reasonMalformed] != 1 {
		t.Fatalf("malformed count %d, want 1", st.Rejected[reasonMalformed])
	}

	// ana wants a body (a disclosed op held as a tombstone, set by hand);
	// the peer answers with another envelope.
	want := forgeContent(t, ana, 1000, wire.ID{}, 1, &wire.Content{Kind: wire.KindText, Text: "never sent"})
	if err := ana.st.Update(ctx, false, func(tx *store.Tx) error {
		if _, err := tx.PutTombstone(store.Envelope{ID: want.ID(), Author: ana.hist.self, Seq: 1000, Lamport: 1,
			Time: time.Now().UnixMilli(), Class: wire.ClassContent, Room: generalRoomID(ana.hist.ws)}); err != nil {
			return err
		}
		return tx.PutDisclosed(generalRoomID(ana.hist.ws), want.ID(), [16]byte{1})
	}); err != nil {
		t.Fatal(err)
	}
	h.SetStreamHandler(bodiesProtocol, func(s network.Stream) {
		defer s.Close()
		if _, err := wire.ReadFrame(s, bodiesWantMax); err != nil {
			return
		}
		var b wire.Batch
		b.Add(got[0]) // held by ana, but not what it asked for
		wire.WriteFrame(s, b.Marshal())
		wire.WriteFrame(s, (&wire.Batch{}).Marshal())
	})
	if err := ana.fetchBodies(ctx, h.ID()); err == nil {
		t.Fatal("an answer with an envelope not asked for was taken")
	}
	if st, _ := ana.Status(ctx); st.Rejected[reasonMalformed] != 2 {
		t.Fatalf("malformed count %d, want 2", st.Rejected[reasonMalformed])
	}
	eventually(t, 10*time.Second, "ana cut the peer off", func() bool {
		return ana.host.Network().Connectedness(h.ID()) != network.Connected
	})
}

// TestSecurityBodiesRestoreOnlyRoomOps: a disclosure names envelopes by ID,
// and any member can make a share that discloses (takeDisclosed stores what
// it names, unchecked). A member that names a message this node purged,
// and then answers the node's Want with the message it kept, must not bring
// the message back past the retention limit: a wanted body is put back only
// if it is a room op of the room the disclosure was for. What was refused is
// not wanted again.
func TestSecurityBodiesRestoreOnlyRoomOps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; run without -short")
	}
	ctx := context.Background()
	ana, ben := founderAndIdentity(t, t.TempDir())
	if _, err := ana.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := threeDaysAgo(ana, func() (Room, error) { return ana.CreateRoomNamed(ctx, "vault", nil) }); err != nil {
		t.Fatal(err)
	}
	id := sendOld(t, ana, "vault", "old secret")
	raw := heldRaw(t, ana, id)
	// A purged message of general, disclosed for another channel.
	m2 := sendOld(t, ana, "general", "old general")
	raw2 := heldRaw(t, ana, m2)
	if _, err := ana.purge(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if heldRaw(t, ana, id) != nil || heldRaw(t, ana, m2) != nil {
		t.Fatal("the old messages were not purged: the test needs them purged")
	}
	// What shares disclosing the message's ID leave: one for its own
	// room, with the message's true file key, one for another channel.
	room := mustRoom(t, ana, "vault")
	var fk [16]byte
	if err := ana.st.Update(ctx, false, func(tx *store.Tx) error {
		_, hdr, err := wire.DecodeEnvelope(raw)
		if err != nil {
			return err
		}
		k, _, err := tx.RoomKey(hdr.Key)
		if err != nil {
			return err
		}
		if fk, err = crypto.ContentFileKey(crypto.RoomKey(k.Key), hdr.Body); err != nil {
			return err
		}
		if err := tx.PutDisclosed(room, id, fk); err != nil {
			return err
		}
		return tx.PutDisclosed(wire.ID{7}, m2, [16]byte{1})
	}); err != nil {
		t.Fatal(err)
	}

	h := rawHost(t, ben, ana.netKey)
	if err := h.Connect(ctx, addrInfo(t, ana)); err != nil {
		t.Fatal(err)
	}
	h.SetStreamHandler(bodiesProtocol, func(s network.Stream) {
		defer s.Close()
		f, err := wire.ReadFrame(s, bodiesWantMax)
		if err != nil {
			return
		}
		w, err := wire.DecodeWant(f)
		if err != nil {
			return
		}
		var b wire.Batch
		for _, asked := range w.IDs {
			switch asked {
			case id:
				b.Add(raw)
			case m2:
				b.Add(raw2)
			}
		}
		wire.WriteFrame(s, b.Marshal())
		wire.WriteFrame(s, (&wire.Batch{}).Marshal())
	})
	if err := ana.fetchBodies(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if heldRaw(t, ana, id) != nil || heldRaw(t, ana, m2) != nil {
		t.Error("a disclosure of a purged message brought its body back")
	}
	got, err := ana.Log(ctx, "vault", 50)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := ana.Log(ctx, "general", 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range append(got, gen...) {
		if msg.Text == "old secret" || msg.Text == "old general" {
			t.Error("a message past the retention limit reads again")
		}
	}
	if ids, err := ana.st.WantedBodies(ctx, 10); err != nil || len(ids) != 0 {
		t.Errorf("still wanted after it was refused: %v, %v", ids, err)
	}
}

// threeDaysAgo runs fn while n dates what it writes three days back:
// history for a one-day retention to find.
func threeDaysAgo[T any](n *Node, fn func() (T, error)) (T, error) {
	n.hist.dateBack.Store(int64(72 * time.Hour))
	defer n.hist.dateBack.Store(0)
	return fn()
}

// sendOld sends text to room as n, dated three days back, and returns its ID.
func sendOld(t *testing.T, n *Node, room, text string) wire.ID {
	t.Helper()
	m, err := threeDaysAgo(n, func() (Message, error) { return n.Send(context.Background(), room, text) })
	if err != nil {
		t.Fatal(err)
	}
	id, err := wire.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
