package node

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRotationInChunksHidesRemovedRecipient: in a room of more than
// wire.MaxRecipients members a rotation goes out in several shares, and a
// member opens only its own. A member that rotated #general before it heard
// of a removal shares the new key with the removed member too, in a share
// the others cannot open: they must still not send with that key.
func TestRotationInChunksHidesRemovedRecipient(t *testing.T) {
	if testing.Short() {
		t.Skip("opens many nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "n0"))
	a := openNodeAlone(t, filepath.Join(dir, "n0"))
	const others = wire.MaxRecipients + 4
	for i := 1; i <= others; i++ {
		if _, err := a.Provision(ctx, filepath.Join(dir, fmt.Sprintf("n%d", i)), fmt.Sprintf("Member%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := openNodeAlone(t, filepath.Join(dir, "n1"))
	give(t, a, b)
	general := generalRoomID(a.hist.ws)
	r, err := b.hist.room(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	// b's rotation: b, then chunks of MaxRecipients-1 of the others in order.
	rest := othersOfRotation(b, r)
	chunkOf := func(p []byte) int {
		for i, q := range rest {
			if bytes.Equal(p, q) {
				return i / (wire.MaxRecipients - 1)
			}
		}
		t.Fatalf("%s not among b's recipients", peer.ID(p))
		return -1
	}
	var victim []byte
	for _, p := range rest {
		if !bytes.Equal(p, a.hist.self) && chunkOf(p) != chunkOf(a.hist.self) {
			victim = p
			break
		}
	}
	if victim == nil {
		t.Fatal("no member outside a's chunk")
	}
	if _, err := a.RemoveMember(ctx, peer.ID(victim).String()); err != nil {
		t.Fatal(err)
	}
	// b has not heard of the removal yet and rotates #general.
	keys, err := b.st.RoomKeys(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	b.hist.rotateMu.Lock()
	shares, err := b.hist.rotate(ctx, r, sendCandidate(keys), nil)
	b.hist.rotateMu.Unlock()
	if err != nil || len(shares) < 2 {
		t.Fatalf("rotate: %d shares, %v", len(shares), err)
	}
	rotated, err := b.hist.sendKey(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	give(t, b, a)
	k, err := a.hist.sendKey(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID == rotated.KeyID {
		t.Fatalf("a sends #general with epoch %d, which b shared with the removed member in a share a cannot open", k.Epoch)
	}
	// a rotated past it, to the members that remain.
	if k.Epoch != rotated.Epoch+1 {
		t.Fatalf("a sends #general with epoch %d, want %d", k.Epoch, rotated.Epoch+1)
	}
	got, err := a.st.KeyRecipients(ctx, k.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if containsPeer(got, victim) || !containsPeer(got, b.hist.self) {
		t.Fatalf("a's new key of #general reached the removed member (%v) or missed b (%v)", containsPeer(got, victim), !containsPeer(got, b.hist.self))
	}
}

// TestRotationInChunksNamesMembers: a member that opens one share of a
// rotation learns from it everyone the key went to, and takes them as the
// room's members as it does the recipients of its own share. It must: a
// member added to a room of more than MaxRecipients whose add op this node
// has not read yet (sync brings key shares before content) would otherwise
// look like someone the key may not reach, and this node's next message
// would rotate the room away from it.
func TestRotationInChunksNamesMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("opens many nodes; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	home := func(i int) string { return filepath.Join(dir, fmt.Sprintf("n%d", i)) }
	initHome(t, home(0))
	a := openNodeAlone(t, home(0))
	const first, added = wire.MaxRecipients - 1, 4 // a and 31 others, then 4 more
	var names []string
	peers := map[string][]byte{}
	for i := 1; i <= first+added; i++ {
		name := fmt.Sprintf("Member%d", i)
		p, err := a.Provision(ctx, home(i), name)
		if err != nil {
			t.Fatal(err)
		}
		peers[name] = []byte(p)
		if i <= first {
			names = append(names, name)
		}
	}
	if _, err := a.CreateRoomNamed(ctx, "obras", names); err != nil {
		t.Fatal(err)
	}
	room := mustRoom(t, a, "obras")
	held := map[wire.ID]bool{} // what a holds before the adds
	envs, err := a.missing(ctx, &wire.Vector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		held[e.ID] = true
	}
	var newcomers [][]byte
	for i := first + 1; i <= first+added; i++ {
		name := fmt.Sprintf("Member%d", i)
		if _, err := a.RoomAdd(ctx, "obras", name); err != nil {
			t.Fatal(err)
		}
		newcomers = append(newcomers, peers[name])
	}
	// b, a first member, reads the adds and rotates: 35 others, so two shares.
	b := openNodeAlone(t, home(1))
	give(t, a, b)
	r, err := b.hist.room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	rest := othersOfRotation(b, r)
	if len(rest) != first+added {
		t.Fatalf("b rotates #obras to %d others, want %d", len(rest), first+added)
	}
	chunkOf := func(p []byte) int {
		for i, q := range rest {
			if bytes.Equal(p, q) {
				return i / (wire.MaxRecipients - 1)
			}
		}
		t.Fatalf("%s not among b's recipients", peer.ID(p))
		return -1
	}
	// c, another first member, and x, a newcomer in the other share.
	var c int
	var x []byte
	for i := 2; i <= first && x == nil; i++ {
		for _, p := range newcomers {
			if chunkOf(p) != chunkOf(peers[fmt.Sprintf("Member%d", i)]) {
				c, x = i, p
				break
			}
		}
	}
	if x == nil {
		t.Fatal("no first member and newcomer in different shares")
	}
	keys, err := b.st.RoomKeys(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	b.hist.rotateMu.Lock()
	shares, err := b.hist.rotate(ctx, r, sendCandidate(keys), nil)
	b.hist.rotateMu.Unlock()
	if err != nil || len(shares) != 2 {
		t.Fatalf("rotate: %d shares, %v", len(shares), err)
	}
	rotated, err := b.hist.sendKey(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	// c holds what a wrote before the adds, and b's rotation: not the adds.
	cn := openNodeAlone(t, home(c))
	var raws [][]byte
	for _, e := range envs {
		raws = append(raws, e.Raw)
	}
	for _, sh := range shares {
		raws = append(raws, sh.raw)
	}
	if _, err := cn.hist.ingestRaw(ctx, raws); err != nil {
		t.Fatal(err)
	}
	cr, err := cn.hist.room(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if !containsPeer(cr.Members, x) {
		t.Fatalf("c does not count %s, whom b's rotation reached in a share c cannot open, as a member of #obras", peer.ID(x))
	}
	k, err := cn.hist.sendKey(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID != rotated.KeyID {
		t.Fatalf("c rotated #obras again (epoch %d, b's is %d): the newcomer in b's other share looked like someone who left", k.Epoch, rotated.Epoch)
	}
}

// TestDirectShareNamesNoOthers: a share of a direct room's key goes to its
// two parties alone; one that says the key went to a third is refused.
func TestDirectShareNamesNoOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("opens nodes; run without -short")
	}
	ctx := context.Background()
	nodes := office(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	give(t, a, b)
	give(t, a, c)
	dm := dmRoomID(a.hist.ws, a.hist.self, c.hist.self)
	key, err := crypto.NewRoomKey()
	if err != nil {
		t.Fatal(err)
	}
	all := [][]byte{a.hist.self, b.hist.self, c.hist.self}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i], all[j]) < 0 })
	share, err := c.hist.shareKey(ctx, &wire.KeyShare{
		Workspace: c.hist.ws, Room: dm, RoomKind: wire.RoomDirect, Epoch: 1, Cause: wire.CauseCreate,
		Recipients: [][]byte{a.hist.self, c.hist.self}, Key: key, AllRecipients: all,
	})
	if err != nil {
		t.Fatal(err)
	}
	before := a.hist.rejectedCounts()[reasonForbidden]
	if _, err := a.hist.ingestRaw(ctx, [][]byte{share.raw}); err != nil {
		t.Fatal(err)
	}
	if got := a.hist.rejectedCounts()[reasonForbidden]; got != before+1 {
		t.Errorf("forbidden %d, want %d", got, before+1)
	}
	if keys, err := a.st.RoomKeys(ctx, dm); err != nil || len(keys) != 0 {
		t.Fatalf("a holds %d keys of the direct room (%v), want none", len(keys), err)
	}
}

// othersOfRotation is who but n a rotation of room by n reaches, in the
// order rotate cuts them into shares.
func othersOfRotation(n *Node, room store.Room) [][]byte {
	var out [][]byte
	for _, p := range n.hist.rotationRecipients(room) {
		if !bytes.Equal(p, n.hist.self) {
			out = append(out, p)
		}
	}
	return out
}
