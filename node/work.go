package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
)

// work counts what runs on a node's store and files — its loops, the
// goroutines they start, stream handlers, gossip validators — so that Close
// waits for all of it before it closes the store and lets go of the home.
//
// sync.WaitGroup requires an Add that finds the counter at zero to happen
// before Wait. Much of this work is started from goroutines the node does
// not count (libp2p's, the local API's), at any time: so every Add is made
// under mu after a look at closing, which Close sets under mu before it
// waits. Work is counted before that wait or never starts. Adds take mu
// shared: every gossip message enters, on pubsub's validator goroutines.
type work struct {
	mu      sync.RWMutex // guards closing; held across its check and wg.Add
	closing bool
	wg      sync.WaitGroup
}

// enter counts one piece of work, or reports false once Close has begun.
// A true is paired with one leave.
func (w *work) enter() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closing {
		return false
	}
	w.wg.Add(1)
	return true
}

func (w *work) leave() { w.wg.Done() }

// spawn runs f on a goroutine of its own, counted, unless Close has begun.
func (w *work) spawn(f func()) {
	if !w.enter() {
		return
	}
	go func() {
		defer w.leave()
		f()
	}()
}

// stop refuses work from now on.
func (w *work) stop() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
}

// stopped reports whether Close has begun.
func (w *work) stopped() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closing
}

// wait waits for the work counted; call it after stop.
func (w *work) wait() { w.wg.Wait() }

// serve wraps a stream handler so Close waits for it: libp2p's host.Close
// resets the streams but does not wait for their handlers. A stream that
// comes once Close has begun is reset unread.
func (n *Node) serve(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if !n.work.enter() {
			s.Reset()
			return
		}
		defer n.work.leave()
		if f := n.serving.Load(); f != nil {
			defer (*f)(s)()
		}
		h(s)
	}
}
