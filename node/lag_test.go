package node

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLagPickStaysInRange: the member a periodic or gap pull goes to is
// one of those given, on every platform. On 32-bit ones a clock reading
// in nanoseconds converted to int is negative for 2.1 s out of every 4.3 s,
// so there the picks span longer than that.
func TestLagPickStaysInRange(t *testing.T) {
	ps := []peer.ID{"a", "b", "c"}
	span := time.Duration(0)
	if strconv.IntSize == 32 {
		span = 2200 * time.Millisecond
	}
	seen := map[peer.ID]int{}
	for start := time.Now(); len(seen) < len(ps) || time.Since(start) < span; {
		seen[anyOf(ps)]++
		time.Sleep(100 * time.Microsecond)
	}
	for p := range seen {
		if p != "a" && p != "b" && p != "c" {
			t.Fatalf("picked %q, not one of %v", p, ps)
		}
	}
}

// The claims noted between two looks are bounded, whatever a member's pulls
// name, and a claim already noted is still raised when the bound is reached.
func TestLagClaimsBounded(t *testing.T) {
	l := newLag()
	from := peer.ID("a member")
	for i := range maxClaims + 1000 {
		l.claim([]byte(fmt.Sprintf("author %d", i)), 7, from)
	}
	l.claim([]byte("author 0"), 9, from)
	_, claims := l.take()
	if len(claims) != maxClaims {
		t.Fatalf("%d claims noted; want the bound, %d", len(claims), maxClaims)
	}
	if got := claims[claim{"author 0", from}]; got != 9 {
		t.Fatalf("a claim noted before the bound was reached stayed at %d; want it raised to 9", got)
	}
	if _, ok := claims[claim{fmt.Sprintf("author %d", maxClaims), from}]; ok {
		t.Fatal("a claim past the bound was noted")
	}
}
