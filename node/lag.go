package node

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/network"
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
	claims map[claim]uint64 // the highest seq each peer said it holds of each author
}

// claim is one peer's word about one author's feed. Each peer's is kept
// apart, so a member that claims more than it holds (or one that left) does
// not hide an honest claim.
type claim struct {
	author string // binary peer ID
	from   peer.ID
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
	l.noteGaps(string(author))
	l.signal()
}

// noteGaps notes authors with a hole, without a signal: a gap looked at and
// still open is looked at again when something else is noted, or by the
// periodic pull.
func (l *lag) noteGaps(authors ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gaps == nil {
		l.gaps = map[string]bool{}
	}
	for _, a := range authors {
		l.gaps[a] = true
	}
}

// maxClaims bounds the claims noted between two looks of syncLoop (about
// every syncGapDebounce): a member's pull may name 4,096 authors, and a
// member opening pull after pull could otherwise grow the map without end.
// A claim not noted is not lost for good: the periodic pull, and the
// claimer's next heartbeat, bring what it would have.
const maxClaims = 16384

// claim notes that from holds author's feed up to seq.
func (l *lag) claim(author []byte, seq uint64, from peer.ID) {
	l.mu.Lock()
	if l.claims == nil {
		l.claims = map[claim]uint64{}
	}
	k := claim{string(author), from}
	if have, ok := l.claims[k]; (ok || len(l.claims) < maxClaims) && seq > have {
		l.claims[k] = seq
	}
	l.mu.Unlock()
	l.signal()
}

// take returns what was noted and forgets it.
func (l *lag) take() (map[string]bool, map[claim]uint64) {
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
// was noted: every connected peer that claimed a head still above ours
// (any member for a claimer no longer connected), and, for a gap still
// open, a random connected member if no one else is pulled. A gap still
// open is noted again (noteGaps).
func (n *Node) lagging(ctx context.Context) []peer.ID {
	gaps, claims := n.lag.take()
	if len(gaps) == 0 && len(claims) == 0 {
		return nil
	}
	heads, err := n.st.Heads(ctx)
	head := make(map[string]uint64, len(heads))
	for _, h := range heads {
		head[string(h.Author)] = h.Seq
	}
	var open []string
	for a := range gaps {
		if err != nil {
			open = append(open, a)
			continue
		}
		above, aerr := n.st.EnvelopesAfter(ctx, []byte(a), head[a], 1)
		if aerr != nil || len(above) > 0 {
			open = append(open, a)
		}
	}
	n.lag.noteGaps(open...)
	members := n.connectedMembers()
	if len(members) == 0 {
		return nil // the pull on the next connection brings it
	}
	anyMember := func() peer.ID { return anyOf(members) }
	if err != nil {
		return []peer.ID{anyMember()}
	}
	var out []peer.ID
	add := func(p peer.ID) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for c, seq := range claims {
		switch {
		case head[c.author] >= seq:
		case n.host.Network().Connectedness(c.from) == network.Connected:
			add(c.from)
		default:
			add(anyMember())
		}
	}
	if len(open) > 0 && len(out) == 0 {
		add(anyMember())
	}
	return out
}

// anyOf picks one of ps, which is not empty, at random. (A clock reading
// modulo len(ps) was negative half the time on 32-bit platforms, where the
// conversion to int truncates, and the index panicked.)
func anyOf(ps []peer.ID) peer.ID { return ps[rand.IntN(len(ps))] }
