package node

import (
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
