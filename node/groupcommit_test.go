package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/charla-im/charla/wire"
)

// TestGroupCommit: sends made at once share transactions, every one lands
// with its own seq and is readable after a restart, and one that fails gets
// its own error without costing the others theirs.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	ana := openNodeAlone(t, home)
	// burst sends n messages at once; the one at index failing (if any)
	// fails inside the group's transaction.
	bad := errors.New("this one cannot be built")
	seen := map[uint64]bool{}
	burst := func(n, failing int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, n)
		seqs := make([]uint64, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == failing {
					_, _, errs[i] = ana.hist.appendGrouped(ctx, wire.ID{}, func(uint64) (wire.ID, []byte, error) { return wire.ID{}, nil, bad })
					return
				}
				m, err := ana.Send(ctx, "general", fmt.Sprintf("message %d", len(seen)+i))
				errs[i], seqs[i] = err, m.Seq
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if i == failing {
				if !errors.Is(err, bad) {
					t.Errorf("failing send: %v, want its own error", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			if seen[seqs[i]] {
				t.Fatalf("seq %d given twice", seqs[i])
			}
			seen[seqs[i]] = true
		}
	}
	if _, err := ana.Send(ctx, "general", "first"); err != nil { // #general's key exists before the burst
		t.Fatal(err)
	}
	const sends = 40
	burst(sends, -1)
	ana.hist.group.mu.Lock()
	commits := ana.hist.group.commits
	ana.hist.group.mu.Unlock()
	t.Logf("%d sends in %d group commits", sends, commits-1)
	if commits-1 >= sends {
		t.Errorf("%d sends took %d commits: none were grouped", sends, commits-1)
	}
	burst(20, 7)
	ana.hist.group.mu.Lock()
	leading, waiting := ana.hist.group.leading, len(ana.hist.group.waiting)
	ana.hist.group.mu.Unlock()
	if leading || waiting != 0 {
		t.Errorf("after the sends: leading %v, %d waiting", leading, waiting)
	}
	good := 1 + sends + 19
	if err := ana.Close(); err != nil {
		t.Fatal(err)
	}
	again := openNodeAlone(t, home)
	ms, err := again.Log(ctx, "general", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != good {
		t.Fatalf("after a restart %d messages, want %d", len(ms), good)
	}
}
