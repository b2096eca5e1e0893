package store

import (
	"context"
	"testing"
)

// TestFeedInOneTransaction stores arrivals in orders with gaps, duplicates
// and a demotion all inside one transaction, and checks after every step
// that the transaction's feed answers (Head, EnvelopeAt) agree with what is
// stored, and that the head written at commit is the one the store reads.
func TestFeedInOneTransaction(t *testing.T) {
	envs := chain("ana", 6, testID("room"), testID("key"))
	tests := []struct {
		name   string
		order  []int // seqs in the order they arrive; -n demotes from n
		before []int // seqs stored in an earlier transaction
		head   uint64
	}{
		{"in order", []int{1, 2, 3}, nil, 3},
		{"gap filled", []int{1, 3, 2}, nil, 3},
		{"reverse", []int{3, 2, 1}, nil, 3},
		{"two gaps", []int{2, 4, 6, 1, 5, 3}, nil, 6},
		{"duplicate", []int{1, 1, 2, 2}, nil, 2},
		{"gap left open", []int{1, 2, 4, 5}, nil, 2},
		{"continues an earlier head", []int{3, 4}, []int{1, 2}, 4},
		{"fills below an earlier envelope", []int{1, 2}, []int{3, 5}, 3},
		{"demoted", []int{1, 2, 3, -2, 2}, nil, 2},
		{"demoted to nothing", []int{1, 2, -1}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openTest(t)
			author := []byte("ana")
			held := map[uint64]bool{}
			update(t, s, func(tx *Tx) error {
				for _, seq := range tt.before {
					if _, err := tx.PutEnvelope(envs[seq-1]); err != nil {
						return err
					}
					held[uint64(seq)] = true
				}
				return nil
			})
			update(t, s, func(tx *Tx) error {
				for _, seq := range tt.order {
					if seq < 0 {
						if err := tx.DemoteFrom(author, uint64(-seq)); err != nil {
							return err
						}
						for k := range held {
							if k >= uint64(-seq) {
								delete(held, k)
							}
						}
					} else {
						if _, err := tx.PutEnvelope(envs[seq-1]); err != nil {
							return err
						}
						held[uint64(seq)] = true
					}
					var want uint64
					for held[want+1] {
						want++
					}
					h, ok, err := tx.Head(author)
					if err != nil {
						return err
					}
					if ok != (want > 0) || h.Seq != want || (want > 0 && h.ID != envs[want-1].ID) {
						t.Errorf("after %d: head %d (ok %v), want %d", seq, h.Seq, ok, want)
					}
					for q := uint64(1); q <= 7; q++ {
						id, ok, err := tx.EnvelopeAt(author, q)
						if err != nil {
							return err
						}
						if ok != held[q] || (ok && id != envs[q-1].ID) {
							t.Errorf("after %d: EnvelopeAt(%d) = %v, want %v", seq, q, ok, held[q])
						}
					}
				}
				return nil
			})
			heads, err := s.Heads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.head == 0 && len(heads) != 0:
				t.Errorf("Heads = %+v, want none", heads)
			case tt.head > 0 && (len(heads) != 1 || heads[0].Seq != tt.head || heads[0].ID != envs[tt.head-1].ID):
				t.Errorf("Heads = %+v, want seq %d", heads, tt.head)
			}
		})
	}
}

// TestFeedRollback: a head moved by a transaction that fails is not kept,
// in the store nor in the next transaction.
func TestFeedRollback(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 3, testID("room"), testID("key"))
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutEnvelope(envs[0])
		return err
	})
	boom := context.Canceled
	if err := s.Update(ctx, false, func(tx *Tx) error {
		if _, err := tx.PutEnvelope(envs[1]); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatalf("Update = %v, want %v", err, boom)
	}
	update(t, s, func(tx *Tx) error {
		if h, _, err := tx.Head([]byte("ana")); err != nil || h.Seq != 1 {
			t.Errorf("head after a rolled-back write = %d, %v; want 1", h.Seq, err)
		}
		if _, ok, _ := tx.EnvelopeAt([]byte("ana"), 2); ok {
			t.Error("seq 2 of a rolled-back write is found")
		}
		return nil
	})
	if hs, _ := s.Heads(ctx); len(hs) != 1 || hs[0].Seq != 1 {
		t.Errorf("Heads = %+v, want seq 1", hs)
	}
}

// TestFeedCutInOneTransaction: CutFeed changes a feed's rows behind the
// transaction's view of it; the view that follows must be the new one.
func TestFeedCutInOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 4, testID("room"), testID("key"))
	author := []byte("ana")
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		if _, err := tx.CutFeed(author, 2, envs[1].ID); err != nil {
			return err
		}
		if h, _, err := tx.Head(author); err != nil || h.Seq != 2 || h.ID != envs[1].ID {
			t.Errorf("head after the cut = %d, %v; want 2", h.Seq, err)
		}
		for q, want := range map[uint64]bool{2: true, 3: false, 4: false} {
			if _, ok, err := tx.EnvelopeAt(author, q); err != nil || ok != want {
				t.Errorf("EnvelopeAt(%d) after the cut = %v, %v; want %v", q, ok, err, want)
			}
		}
		return nil
	})
	if hs, _ := s.Heads(ctx); len(hs) != 1 || hs[0].Seq != 2 {
		t.Errorf("Heads after the cut = %+v, want seq 2", hs)
	}
}
