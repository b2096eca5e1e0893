package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"
)

// TestPurgeLeavesNoTextAfterEverydayWrites: the purged text must leave the
// database files even when, before the purge, the pages that held it were
// rewritten by everyday writes (with secure_delete off): more messages
// arriving one transaction at a time, the search index merging its segments
// run after run, an edit replacing a message's text. "written before" is a
// database whose writes ran with secure_delete off, as before it was on for
// every write: the first Compact rewrites it whole.
func TestPurgeLeavesNoTextAfterEverydayWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool
	}{{"secure from the start", false}, {"written before", true}} {
		t.Run(tc.name, func(t *testing.T) { testPurgeEveryday(t, tc.before) })
	}
}

func testPurgeEveryday(t *testing.T, before bool) {
	ctx := context.Background()
	s, path := openTest(t)
	if before {
		// The writer has one connection: this holds for every write below.
		if _, err := s.w.ExecContext(ctx, "PRAGMA secure_delete = OFF"); err != nil {
			t.Fatal(err)
		}
	} else if err := s.Compact(ctx); err != nil { // the one-time rewrite, on an empty database
		t.Fatal(err)
	}
	const day = 86_400_000
	now := int64(1_800_000_000_000)
	room, key := testID("general"), testID("key")
	const n = 400
	envs := chain("ana", n, room, key)
	canaries := map[int]string{}
	update(t, s, func(tx *Tx) error {
		return tx.PutRoomKey(RoomKey{Room: room, KeyID: key, Epoch: 1})
	})
	for i := range envs {
		envs[i].Time, envs[i].Received = now-day/2, now-day/2
		text := fmt.Sprintf("m%03d alpha beta gamma %d", i, i)
		if i < 20 {
			envs[i].Time, envs[i].Received = now-10*day, now-10*day
			text = fmt.Sprintf("zzsecret%03dqq the old plan", i)
			canaries[i] = fmt.Sprintf("zzsecret%03dqq", i)
		}
		e := envs[i]
		update(t, s, func(tx *Tx) error {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			return tx.PutMessage(messageOf(e, text))
		})
		if i%10 == 9 { // the indexer runs between bursts: one segment per run
			if _, err := s.IndexText(ctx, 1000); err != nil {
				t.Fatal(err)
			}
		}
		if i == 30 { // an edit of an old message replaces its text in place
			update(t, s, func(tx *Tx) error {
				m := messageOf(envs[3], "zzeditedqq the new plan")
				canaries[-1] = "zzeditedqq"
				return tx.PutMessage(m)
			})
		}
	}
	if _, err := s.IndexText(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if before {
		if _, err := s.w.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
			t.Fatal(err)
		}
	}
	r := Retention{Default: now - 5*day}
	var from int64
	purged := 0
	for {
		p, err := s.Purge(ctx, r, from, purgeTestBatch)
		if err != nil {
			t.Fatal(err)
		}
		purged += p.Envelopes
		if from = p.Next; from == 0 {
			break
		}
	}
	if purged != 20 {
		t.Fatalf("purged %d envelopes, want 20", purged)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range canaries {
		if where := inFiles(t, path, []byte(c)); len(where) > 0 {
			t.Errorf("purged text %q (message %d) is still in %v", c, i, where)
		}
	}
	if got, err := s.Search(ctx, "gamma", 500); err != nil || len(got) == 0 {
		t.Errorf("search of kept messages: %d hits, %v", len(got), err)
	}
}

const purgeTestBatch = 500

// TestCompactBusyReaderBounded: a reader that keeps the write-ahead log
// busy fails Compact, but soon: Compact holds the store's writer, so every
// send and every envelope received waits for it.
func TestCompactBusyReaderBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a busy checkpoint; run without -short")
	}
	ctx := context.Background()
	s, path := openTest(t)
	room, key := testID("general"), testID("key")
	envs := chain("ana", 3, room, key)
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		return nil
	})
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rtx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var n int
	if err := rtx.QueryRow(`SELECT count(*) FROM envelopes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) error { return tx.SetMeta("after the reader", nil) }) // a frame the reader does not see
	start := time.Now()
	err = s.Compact(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Compact truncated the log under a reader: this test proves nothing")
	}
	if took > 2*busyTimeout+time.Second {
		t.Errorf("Compact held the writer %v under a busy reader (busy timeout %v)", took.Round(time.Second), busyTimeout)
	}
}
