package store

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestCheckpointerCopiesWAL: after writes far below the writer's own
// automatic checkpoint (walBackstopPages), the pages reach the database
// file: the checkpointer copied them, beside the writer.
func TestCheckpointerCopiesWAL(t *testing.T) {
	s, path := openTest(t)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	envs := chain("ana", 400, testID("room"), testID("key"))
	for i := range envs {
		envs[i].Raw = bytes.Repeat([]byte{byte(i)}, 2048) // ~200 pages in all
	}
	for part := range 4 {
		update(t, s, func(tx *Tx) error {
			for _, e := range envs[part*100 : (part+1)*100] {
				if _, err := tx.PutEnvelope(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+400*2048 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes after 800 KiB of envelopes were written (%d before): the WAL was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got int
	if err := s.r.QueryRow(`SELECT count(*) FROM envelopes`).Scan(&got); err != nil || got != len(envs) {
		t.Fatalf("envelopes held: %d, %v; want %d", got, err, len(envs))
	}
}
