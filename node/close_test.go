package node

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// These tests run under -short: they take a few seconds, and what they
// look for is what -race reports.

// Close waits for the stream handlers of every protocol, the join door's
// among them: libp2p's host.Close resets their streams but does not wait
// for them, so a handler could go on reading and writing the store and the
// blob packs after Close closed the store and let go of the home. The hook
// holds one handler of each protocol while Close runs; the second only
// bounds how long Close is given to return early.
func TestCloseWaitsForStreamHandlers(t *testing.T) {
	ctx := context.Background()
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	code, err := ana.Invite(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	protos := []protocol.ID{syncProtocol, exchangeProtocol, blobProtocol, bodiesProtocol, joinProtocol}
	var (
		mu      sync.Mutex
		entered = map[protocol.ID]chan struct{}{}
		running atomic.Int32
	)
	for _, p := range protos {
		entered[p] = make(chan struct{})
	}
	release := make(chan struct{})
	hook := func(s network.Stream) func() {
		running.Add(1)
		mu.Lock()
		if ch, ok := entered[s.Protocol()]; ok {
			delete(entered, s.Protocol())
			close(ch)
		}
		mu.Unlock()
		<-release
		return func() { running.Add(-1) }
	}
	waits := make([]chan struct{}, 0, len(protos))
	for _, p := range protos {
		waits = append(waits, entered[p])
	}
	ana.serving.Store(&hook)

	// Ben opens a stream of each of ana's protocols; a new member answers
	// the door with the invite.
	for _, p := range protos[:4] {
		s, err := ben.host.NewStream(ctx, ana.PeerID(), p)
		if err != nil {
			t.Fatalf("open %s to ana: %v", p, err)
		}
		defer s.Reset()
		s.Write([]byte{0}) // the protocol is negotiated with the first write
	}
	joined := make(chan error, 1)
	go func() {
		_, err := Join(ctx, filepath.Join(t.TempDir(), "cai"), code, "Cai")
		joined <- err
	}()
	for i, ch := range waits {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s handler ran on ana", protos[i])
		}
	}

	closed := make(chan struct{})
	var runningAtClose int32
	go func() {
		ana.Close()
		runningAtClose = running.Load()
		close(closed)
	}()
	select { // a Close that does not wait for handlers returns well within this
	case <-closed:
	case <-time.After(time.Second):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return once the handlers could end")
	}
	if runningAtClose != 0 {
		t.Fatalf("%d stream handlers still ran on ana when its Close returned", runningAtClose)
	}
	if err := <-joined; err == nil {
		t.Error("a join answered by a closing node succeeded")
	}
}

// An invite issued as Close runs opens its door after Close closed the
// doors: it must not stay open, answering joins on a closed node.
func TestCloseLeavesNoDoorOpen(t *testing.T) {
	home := filepath.Join(t.TempDir(), "n0")
	initHome(t, home)
	n := openNode(t, home)
	n.Close()
	h, err := n.openDoor(&invite{Hash: []byte("hash"), PSK: make([]byte, 32), Expires: time.Now().Add(time.Hour).UnixMilli()})
	if err == nil {
		h.Close()
		t.Fatal("a door opened after Close")
	}
	n.doors.mu.Lock()
	defer n.doors.mu.Unlock()
	if len(n.doors.open) != 0 {
		t.Fatalf("%d doors open after Close", len(n.doors.open))
	}
}

// Goroutines are started from goroutines Close does not wait for: a new
// connection's notification starts a pull and a peer exchange, an admit by
// the local API dials the address book. Started while Close waits, a
// goroutine is a WaitGroup Add racing its Wait (-race reports it; without
// -race it may panic "WaitGroup misuse"), and work that keeps being started
// keeps Close from returning. Once Close has begun, none starts.
func TestCloseRacesGoroutineStarts(t *testing.T) {
	nodes, _ := workspace(t, 2)
	ana, ben := nodes[0], nodes[1]
	// ben's static peer ana is gone: every dialKnown of ben starts a dial.
	ana.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ben.dialKnown()
				ben.pullAsync(ana.PeerID())
				ben.exchangeAsync(ana.PeerID())
			}
		})
	}
	closed := make(chan struct{})
	go func() {
		ben.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("Close did not return while goroutines kept being asked for")
	}
	close(stop)
	wg.Wait()
	<-closed
}
