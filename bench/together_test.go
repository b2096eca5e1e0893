package bench

import (
	"context"
	"testing"
	"time"
)

// TestPublishEachStampsEachLeg: in the burst on both networks at once, the
// second leg publishes a message only once the first leg's publish of it
// returned; its latency runs from its own publish, not from the first's.
func TestPublishEachStampsEachLeg(t *testing.T) {
	const slow = 50 * time.Millisecond
	var got [2][]byte
	var returned time.Time
	legs := []leg{
		{f: fanout{publish: func(_ context.Context, p []byte) error {
			got[0] = p
			time.Sleep(slow) // a durable send
			returned = time.Now()
			return nil
		}}},
		{f: fanout{publish: func(_ context.Context, p []byte) error {
			got[1] = p
			return nil
		}}},
	}
	w := together
	if err := w.publishEach(legs)(context.Background(), w.stamp(7, time.Now())); err != nil {
		t.Fatal(err)
	}
	seq0, sent0, ok0 := w.parseStamp(got[0])
	seq1, sent1, ok1 := w.parseStamp(got[1])
	if !ok0 || !ok1 || seq0 != 7 || seq1 != 7 {
		t.Fatalf("stamps: leg 0 seq %d (%v), leg 1 seq %d (%v); want 7 on both", seq0, ok0, seq1, ok1)
	}
	if sent1.Before(returned) {
		t.Errorf("leg 1's message is stamped %v before leg 0's publish returned: its latency counts leg 0's send", returned.Sub(sent1))
	}
	if !sent0.Before(returned.Add(-slow / 2)) {
		t.Errorf("leg 0's message is stamped after its publish began")
	}
}
