package node

import (
	"context"
	"sync"
	"time"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// lag is what this node has seen that it lacks: authors whose feed has a
// gap (an envelope held above the contiguous head), and heads a peer said
// it holds above ours (its heartbeat, or the vector of its pull). Gossip
// brings most of it within syncGapDebounce — during a burst every
// heartbeat is ahead by the messages in flight, and a pull then would
// carry them a second time — so syncLoop pulls only for what is still
// missing after that.
type lag struct {
	kick chan struct{} // something was noted since syncLoop last looked

	mu     sync.Mutex // guards the fields below
	gaps   map[string]bool
	claims map[string]claim // by author (binary peer ID)
}

// claim is the highest seq of an author a peer said it holds.
type claim struct {
	seq  uint64
	from peer.ID
}

func newLag() *lag { return &lag{kick: make(chan struct{}, 1)} }

func (l *lag) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// gap notes that author's feed has a hole below an envelope held.
func (l *lag) gap(author []byte) {
	l.mu.Lock()
	if l.gaps == nil {
		l.gaps = map[string]bool{}
	}
	l.gaps[string(author)] = true
	l.mu.Unlock()
	l.signal()
}

// claim notes that from holds author's feed up to seq.
func (l *lag) claim(author []byte, seq uint64, from peer.ID) {
	l.mu.Lock()
	if l.claims == nil {
		l.claims = map[string]claim{}
	}
	if c, ok := l.claims[string(author)]; !ok || seq > c.seq {
		l.claims[string(author)] = claim{seq: seq, from: from}
	}
	l.mu.Unlock()
	l.signal()
}

// take returns what was noted and forgets it.
func (l *lag) take() (map[string]bool, map[string]claim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, c := l.gaps, l.claims
	l.gaps, l.claims = nil, nil
	return g, c
}

// claimAhead notes every head of theirs above ours, as a claim of from,
// and reports whether there was one.
func (n *Node) claimAhead(ours, theirs []wire.VectorEntry, from peer.ID) bool {
	mine := make(map[string]uint64, len(ours))
	for _, e := range ours {
		mine[string(e.Author)] = e.Seq
	}
	ahead := false
	for _, e := range theirs {
		if e.Seq > mine[string(e.Author)] {
			n.lag.claim(e.Author, e.Seq, from)
			ahead = true
		}
	}
	return ahead
}

// lagging returns the peers to pull from for what is still missing of what
// was noted: for a head still above ours, the peer that claimed it (if it
// is still connected, else any member); for a gap still open, a random
// connected member. A gap still open is noted again, so it is looked at
// next time too.
func (n *Node) lagging(ctx context.Context) []peer.ID {
	gaps, claims := n.lag.take()
	if len(gaps) == 0 && len(claims) == 0 {
		return nil
	}
	members := n.connectedMembers()
	if len(members) == 0 {
		return nil
	}
	anyMember := func() peer.ID { return members[int(time.Now().UnixNano())%len(members)] }
	heads, err := n.st.Heads(ctx)
	if err != nil {
		return []peer.ID{anyMember()}
	}
	head := make(map[string]uint64, len(heads))
	for _, h := range heads {
		head[string(h.Author)] = h.Seq
	}
	var out []peer.ID
	add := func(p peer.ID) {
		for _, q := range out {
			if q == p {
				return
			}
		}
		out = append(out, p)
	}
	for a, c := range claims {
		if head[a] >= c.seq {
			continue
		}
		if n.host.Network().Connectedness(c.from) == 1 {
			add(c.from)
		} else {
			add(anyMember())
		}
	}
	for a := range gaps {
		above, err := n.st.EnvelopesAfter(ctx, []byte(a), head[a], 1)
		if err != nil || len(above) > 0 {
			n.lag.mu.Lock()
			if n.lag.gaps == nil {
				n.lag.gaps = map[string]bool{}
			}
			n.lag.gaps[a] = true
			n.lag.mu.Unlock()
			if len(out) == 0 {
				add(anyMember())
			}
		}
	}
	return out
}
