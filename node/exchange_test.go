package node

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// TestPeerExchangeRecordSignedByItsPeer: a member's peer exchange may pass
// on another member's record, but only one that member signed. A record
// for cai signed by ben (any key verifies its own signature) must not give
// ana an address to dial for cai, nor sit in ana's records with a seq that
// shuts out cai's own.
func TestPeerExchangeRecordSignedByItsPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	ana, ben := connectedPair(t)
	cai, err := ana.Provision(ctx, filepath.Join(t.TempDir(), "cai"), "Cai")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "cai is a member on ana and ben", func() bool {
		return ana.hist.isMember(cai) && ben.hist.isMember(cai)
	})
	bogus := ma.StringCast("/ip4/127.0.0.1/tcp/9")
	env, err := record.Seal(&peer.PeerRecord{PeerID: cai, Addrs: []ma.Multiaddr{bogus}, Seq: math.MaxUint64}, ben.id.PrivKey())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ben.recMu.Lock()
	ben.records[cai] = signedRecord{seq: math.MaxUint64, raw: raw}
	ben.recMu.Unlock()

	if err := ana.exchange(ctx, ben.host.ID()); err != nil {
		t.Fatal(err)
	}
	ana.recMu.Lock()
	_, kept := ana.records[cai]
	ana.recMu.Unlock()
	if kept {
		t.Error("ana keeps a record of cai that ben signed, to pass on")
	}
	book, err := ana.st.Book(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range book {
		if peer.ID(e.Peer) == cai && strings.Contains(strings.Join(e.Addrs, " "), bogus.String()) {
			t.Errorf("ana's address book has cai at %v, from a record ben signed", e.Addrs)
		}
	}
	for _, a := range ana.host.Peerstore().Addrs(cai) {
		if a.Equal(bogus) {
			t.Errorf("ana would dial cai at %s, from a record ben signed", a)
		}
	}
}
