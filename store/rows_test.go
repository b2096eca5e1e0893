package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/charla-im/charla/wire"
)

// TestHeldRows: runs of new envelopes and messages are held back and
// inserted together (rows.go), in runs of every prepared size, and every
// read of the transaction sees every write before it.
func TestHeldRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, key := testID("room"), testID("key")
	// 300 from ana: over heldEnvelopesMax, and a remainder of 32s, 8s and 1s.
	ana := chain("ana", 300, room, key)
	bea := chain("bea", 13, room, key)
	text := func(e Envelope) string { return fmt.Sprintf("%s says %d", e.Author, e.Seq) }
	update(t, s, func(tx *Tx) error {
		for i, e := range ana {
			if ins, err := tx.PutEnvelope(e); err != nil || !ins {
				return fmt.Errorf("PutEnvelope seq %d = %v, %v; want true", e.Seq, ins, err)
			}
			if err := tx.PutMessage(messageOf(e, text(e))); err != nil {
				return err
			}
			if i == 100 {
				// A read in the middle sees what was put before it.
				id, ok, err := tx.storedAt(e.Author, e.Seq)
				if err != nil || !ok || id != e.ID {
					return fmt.Errorf("storedAt seq %d = %s, %v, %v; want %s", e.Seq, id, ok, err, e.ID)
				}
			}
		}
		for _, e := range bea {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, text(e))); err != nil {
				return err
			}
		}
		// An edit of a message held in this transaction replaces it.
		edited := messageOf(bea[12], "bea edited")
		if err := tx.PutMessage(edited); err != nil {
			return err
		}
		// The same envelope again, held or not: a duplicate.
		if ins, err := tx.PutEnvelope(bea[12]); err != nil || ins {
			return fmt.Errorf("PutEnvelope of a held envelope again = %v, %v; want false", ins, err)
		}
		if ins, err := tx.PutEnvelope(ana[0]); err != nil || ins {
			return fmt.Errorf("PutEnvelope of an inserted envelope again = %v, %v; want false", ins, err)
		}
		return nil
	})

	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[0].Seq != 300 || heads[0].ID != ana[299].ID || heads[1].Seq != 13 || heads[1].ID != bea[12].ID {
		t.Errorf("heads = %+v, want ana at 300 and bea at 13", heads)
	}
	for _, e := range append(ana, bea...) {
		got, err := s.Envelope(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != e.Seq || got.Prev != e.Prev || string(got.Raw) != string(e.Raw) || got.Lamport != e.Lamport {
			t.Fatalf("envelope %s = %+v, want %+v", e.ID, got, e)
		}
		m, err := s.Message(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := text(e)
		if e.ID == bea[12].ID {
			want = "bea edited"
		}
		if m.Text != want || m.Seq != e.Seq || m.Lamport != e.Lamport {
			t.Fatalf("message %s = %+v, want text %q", e.ID, m, want)
		}
	}
	// Held messages wait for the search index like any other new message.
	for _, q := range []string{"edited", "says"} {
		found, err := s.Search(ctx, q, 1000)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"edited": 1, "says": 312}[q]
		if len(found) != want {
			t.Errorf("Search %q found %d, want %d", q, len(found), want)
		}
	}

	// A later transaction's held messages take rowids above the indexed.
	more := chain("cy", 3, room, key)
	update(t, s, func(tx *Tx) error {
		for _, e := range more {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, "cy late")); err != nil {
				return err
			}
		}
		return nil
	})
	if found, err := s.Search(ctx, "late", 10); err != nil || len(found) != 3 {
		t.Errorf("Search late = %d messages, %v; want 3", len(found), err)
	}
}

// TestHeldRowsRefused: an envelope held as new whose ID is stored already
// (at another author and seq: never so for a real envelope, whose ID is the
// hash of what it signed) fails its transaction rather than be reported
// stored, and nothing of the transaction stays.
func TestHeldRowsRefused(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, key := testID("room"), testID("key")
	ana := chain("ana", 1, room, key)[0]
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutEnvelope(ana)
		return err
	})
	bea := chain("bea", 2, room, key)
	bea[1].ID = ana.ID
	err := s.Update(ctx, false, func(tx *Tx) error {
		for _, e := range bea {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "put envelopes") {
		t.Fatalf("Update = %v, want the held insert's error", err)
	}
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 1 || string(heads[0].Author) != "ana" {
		t.Errorf("heads = %+v, want ana's alone", heads)
	}
	if _, err := s.Envelope(ctx, bea[0].ID); err == nil {
		t.Error("bea's seq 1 is stored from a transaction that failed")
	}
}

// TestInsertRows: the prepared multi-row INSERTs have the placeholders their
// rows need.
func TestInsertRows(t *testing.T) {
	for _, n := range rowsPerInsert {
		q := insertRows("envelopes", envelopeInsertCols, envelopeInsertArgs, n)
		if got := strings.Count(q, "?"); got != n*envelopeInsertArgs {
			t.Errorf("%d rows: %d placeholders, want %d", n, got, n*envelopeInsertArgs)
		}
	}
	if got := insertSize(45); got != 32 {
		t.Errorf("insertSize(45) = %d, want 32", got)
	}
	if got := insertSize(13); got != 8 {
		t.Errorf("insertSize(13) = %d, want 8", got)
	}
	if got := insertSize(5); got != 1 {
		t.Errorf("insertSize(5) = %d, want 1", got)
	}
}

// TestHeldRowsTombstoneIDTaken: a tombstone's ID is only a peer's word, not
// the hash of what the row holds, so a held insert cannot assume it is new.
// A tombstone naming an ID stored at another place is not stored (false, as
// PutEnvelope documents), and an envelope that extends its feed but whose
// ID a planted tombstone took first fails only its own insert, never the
// transaction with the other envelopes of the batch.
func TestHeldRowsTombstoneIDTaken(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	room, key := testID("room"), testID("key")
	ana := chain("ana", 3, room, key)
	bea := chain("bea", 2, room, key)
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutEnvelope(ana[0])
		return err
	})

	// A tombstone at bea's seq 1 naming ana's seq 1.
	err := s.Update(ctx, false, func(tx *Tx) error {
		ins, err := tx.PutTombstone(Envelope{ID: ana[0].ID, Author: bea[0].Author, Seq: 1, Class: wire.ClassContent, Room: room})
		if err != nil || ins {
			return fmt.Errorf("PutTombstone of an ID stored elsewhere = %v, %v; want false", ins, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a tombstone naming a stored ID failed its transaction: %v", err)
	}

	// A tombstone at bea's seq 1 naming ana's seq 2, planted before it arrives.
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutTombstone(Envelope{ID: ana[1].ID, Author: bea[0].Author, Seq: 1, Class: wire.ClassContent, Room: room})
		return err
	})
	// Reopened: the store learns the tombstones from peers it holds.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.Update(ctx, false, func(tx *Tx) error {
		for _, e := range ana[1:] {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a batch with an envelope whose ID a tombstone took failed: %v", err)
	}
	if _, err := s.Envelope(ctx, ana[2].ID); err != nil {
		t.Errorf("the envelope after it in the batch is not stored: %v", err)
	}
}
