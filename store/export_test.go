package store

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/charla-im/charla/wire"
)

func TestMessagesAfter(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, _, all := twoRooms(t, s)
	// Paging forward with pages of 2 reaches every message of the room
	// once, in (lamport, author, seq) order, with its envelope's bytes.
	var got []string
	var after *Message
	for {
		page, err := s.MessagesAfter(ctx, room, after, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			got = append(got, m.Text)
			if !bytes.HasPrefix(m.Raw, []byte("raw:"+string(m.Author))) {
				t.Errorf("%s: raw %q", m.Text, m.Raw)
			}
		}
		if len(page) < 2 {
			break
		}
		after = &page[len(page)-1].Message
	}
	if want := []string{"ana 1", "bo 1", "ana 2", "bo 2", "ana 3", "bo 3"}; !slices.Equal(got, want) {
		t.Errorf("paged forward = %q, want %q", got, want)
	}
	// Author time from seq 2 on (chain's times are base + seq).
	page, err := s.MessagesAfter(ctx, room, nil, all[1].Time, 10)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, m := range page {
		got = append(got, m.Text)
	}
	if want := []string{"ana 2", "bo 2", "ana 3", "bo 3"}; !slices.Equal(got, want) {
		t.Errorf("since seq 2's time = %q, want %q", got, want)
	}
}

func TestFeedLinksAndRoomCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, key, other := testID("room"), testID("key"), testID("other key")
	envs := chain("ana", 5, room, key)
	envs[3].Key = other // no key held for this one
	envs[4].Raw = nil   // a tombstone
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		return tx.PutRoomKey(RoomKey{Room: room, KeyID: key, Epoch: 1})
	})
	var seqs []uint64
	err := s.EachFeedLink(ctx, []byte("ana"), 3, func(l FeedLink) error {
		seqs = append(seqs, l.Seq)
		if l.ID != envs[l.Seq-1].ID || l.Prev != envs[l.Seq-1].Prev || l.Raw == nil {
			t.Errorf("link %d: %+v", l.Seq, l)
		}
		return nil
	})
	if err != nil || !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Errorf("links up to 3: %v, %v", seqs, err)
	}
	seqs = nil
	if err := s.EachFeedLink(ctx, []byte("ana"), 0, func(l FeedLink) error { seqs = append(seqs, l.Seq); return nil }); err != nil || len(seqs) != 5 {
		t.Errorf("whole feed: %v, %v", seqs, err)
	}
	held, unreadable, err := s.RoomEnvelopes(ctx, room)
	if err != nil || held != 4 || unreadable != 1 {
		t.Errorf("room counts: %d held, %d unreadable, %v; want 4, 1 (the tombstone is neither)", held, unreadable, err)
	}
	if ok, err := s.HasRoomKey(ctx, key); !ok || err != nil {
		t.Errorf("HasRoomKey = %v, %v", ok, err)
	}
	// Content that is neither message nor action, with a key held, is a
	// room op candidate; the one without a key is not.
	var ids []wire.ID
	if err := s.EachRoomOpCandidate(ctx, func(e Envelope) error { ids = append(ids, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != envs[0].ID {
		t.Errorf("candidates %d, want the 3 with a key held", len(ids))
	}
	raw, ok, err := s.EnvelopeRaw(ctx, envs[1].ID)
	if err != nil || !ok || !bytes.Equal(raw, envs[1].Raw) {
		t.Errorf("EnvelopeRaw = %q, %v, %v", raw, ok, err)
	}
	if _, ok, err := s.EnvelopeRaw(ctx, testID("none")); ok || err != nil {
		t.Errorf("EnvelopeRaw of an unknown ID: %v, %v", ok, err)
	}
}
