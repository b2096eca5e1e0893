package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// searchIDs is the seqs that Search finds for q, newest first.
func searchSeqs(t *testing.T, s *Store, q string) []uint64 {
	t.Helper()
	ms, err := s.Search(context.Background(), q, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range ms {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

// ftsIntegrity indexes what waits, then runs FTS5's integrity check, which
// compares the index with the messages table (rank 1): a row indexed twice,
// with the wrong text, or never, fails it.
func ftsIntegrity(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.IndexText(context.Background(), 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("FTS integrity check: %v", err)
	}
}

func indexed(t *testing.T, s *Store) (mark, waiting int64) {
	t.Helper()
	if err := s.w.QueryRow(`SELECT indexed, (SELECT count(*) FROM messages WHERE rowid > indexed) FROM text_index`).Scan(&mark, &waiting); err != nil {
		t.Fatal(err)
	}
	return mark, waiting
}

// TestTextIndexLags: a stored message waits for the index until IndexText
// takes it, in chunks; Search takes whatever waits before it queries.
func TestTextIndexLags(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 5, testID("room"), testID("key"))
	update(t, s, func(tx *Tx) error {
		for i, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, "alpha number "+string(rune('a'+i)))); err != nil {
				return err
			}
		}
		return nil
	})
	if !s.TextWaiting() {
		t.Error("TextWaiting false with 5 messages stored")
	}
	if _, waiting := indexed(t, s); waiting != 5 {
		t.Errorf("%d messages wait for the index, want 5 (indexed in the storing transaction?)", waiting)
	}
	if n, err := s.IndexText(ctx, 2); err != nil || n != 2 {
		t.Errorf("IndexText(2) = %d, %v; want 2", n, err)
	}
	if _, waiting := indexed(t, s); waiting != 3 || !s.TextWaiting() {
		t.Errorf("after indexing 2: %d wait (TextWaiting %v), want 3", waiting, s.TextWaiting())
	}
	// Search indexes the other 3 before it queries.
	if got := searchSeqs(t, s, "alpha"); len(got) != 5 {
		t.Errorf("Search(alpha) found seqs %v, want all 5", got)
	}
	if _, waiting := indexed(t, s); waiting != 0 || s.TextWaiting() {
		t.Errorf("after Search: %d wait (TextWaiting %v), want none", waiting, s.TextWaiting())
	}
	if n, err := s.IndexText(ctx, 10); err != nil || n != 0 {
		t.Errorf("IndexText with nothing waiting = %d, %v", n, err)
	}
	ftsIntegrity(t, s)
}

// TestTextIndexEditsAndDeletes: an edit of a message that waits changes
// what will be indexed; an edit of an indexed one re-indexes it; deleting
// messages, indexed or waiting, keeps the index whole; and a message stored
// after the newest indexed ones were deleted still waits for the index
// rather than taking a rowid the index claims to hold.
func TestTextIndexEditsAndDeletes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 6, testID("room"), testID("key"))
	put := func(texts map[int]string) {
		update(t, s, func(tx *Tx) error {
			for seq, text := range texts {
				if _, err := tx.PutEnvelope(envs[seq-1]); err != nil {
					return err
				}
				if err := tx.PutMessage(messageOf(envs[seq-1], text)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	put(map[int]string{1: "first draft", 2: "second draft", 3: "third draft"})
	if _, err := s.IndexText(ctx, 100); err != nil {
		t.Fatal(err)
	}
	put(map[int]string{4: "fourth draft"})
	update(t, s, func(tx *Tx) error {
		// seq 1 is indexed, seq 4 waits.
		if err := tx.PutMessage(messageOf(envs[0], "first final")); err != nil {
			return err
		}
		return tx.PutMessage(messageOf(envs[3], "fourth final"))
	})
	ftsIntegrity(t, s)
	if got := searchSeqs(t, s, "final"); len(got) != 2 || got[0] != 4 || got[1] != 1 {
		t.Errorf("Search(final) = %v, want [4 1]", got)
	}
	if got := searchSeqs(t, s, "draft"); len(got) != 2 {
		t.Errorf("Search(draft) = %v, want [3 2]", got)
	}

	// Demoting seq 3 on deletes the messages of 3 (indexed) and 4, and 5,
	// stored now, waits. Its rowid must be above the mark.
	put(map[int]string{5: "fifth draft"})
	update(t, s, func(tx *Tx) error { return tx.DemoteFrom([]byte("ana"), 3) })
	ftsIntegrity(t, s)
	put(map[int]string{3: "third again"})
	mark, waiting := indexed(t, s)
	if waiting != 1 {
		t.Errorf("after re-storing seq 3: %d messages wait (mark %d), want 1", waiting, mark)
	}
	if got := searchSeqs(t, s, "again"); len(got) != 1 || got[0] != 3 {
		t.Errorf("Search(again) = %v, want [3]", got)
	}
	if got := searchSeqs(t, s, "draft"); len(got) != 1 || got[0] != 2 {
		t.Errorf("Search(draft) = %v, want [2]", got)
	}
	ftsIntegrity(t, s)
}

// TestTextIndexReopen: a reopened store finds what waited when it closed.
func TestTextIndexReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	envs := chain("ana", 2, testID("room"), testID("key"))
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, "kept waiting")); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.TextWaiting() {
		t.Error("a reopened store does not look for waiting messages")
	}
	if got := searchSeqs(t, s2, "waiting"); len(got) != 2 {
		t.Errorf("Search after reopen = %v, want both", got)
	}
	ftsIntegrity(t, s2)
}

// TestTextIndexMigration: messages of a database written before the index
// lagged (schema 4) count as indexed, and stay searchable and whole.
func TestTextIndexMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migs[:4] {
		if err := applyMigration(ctx, db, i+1, m); err != nil {
			t.Fatal(err)
		}
	}
	// What schema 4's PutMessage wrote: the row and its index entry.
	e := chain("ana", 1, testID("room"), testID("key"))[0]
	for _, q := range []string{
		`INSERT INTO envelopes (id, author, seq, prev, lamport, time, class, room, key, raw, received)
			VALUES (?, CAST('ana' AS BLOB), 1, ?, 10, 0, 3, ?, ?, x'00', 0)`,
		`INSERT INTO messages (rowid, id, room, author, seq, lamport, time, kind, text)
			VALUES (7, ?, ?, CAST('ana' AS BLOB), 1, 10, 0, 1, 'written long ago')`,
		`INSERT INTO messages_fts (rowid, text) VALUES (7, 'written long ago')`,
	} {
		args := []any{e.ID[:], e.Prev[:], e.Room[:], e.Key[:]}
		if strings.Contains(q, "messages (") {
			args = []any{e.ID[:], e.Room[:]}
		} else if strings.Contains(q, "messages_fts") {
			args = nil
		}
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mark, waiting := indexed(t, s); mark != 7 || waiting != 0 {
		t.Errorf("after migration: mark %d, %d waiting; want 7, 0", mark, waiting)
	}
	if got := searchSeqs(t, s, "long ago"); len(got) != 1 {
		t.Errorf("Search(long ago) = %v, want [1]", got)
	}
	ftsIntegrity(t, s)
}
