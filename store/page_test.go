package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/charla-im/charla/wire"
)

func TestMessagesBefore(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, _, all := twoRooms(t, s)
	bo2, ana3, ana1 := all[1], all[5], all[3]
	tests := []struct {
		name   string
		before Envelope
		limit  int
		want   []string
	}{
		{"all above", ana3, 100, []string{"ana 1", "bo 1", "ana 2", "bo 2"}},
		{"the two just above", ana3, 2, []string{"ana 2", "bo 2"}},
		{"tie on lamport, author decides", bo2, 1, []string{"ana 2"}},
		{"nothing above the oldest", ana1, 10, nil},
		{"limit 0", ana3, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := s.MessagesBefore(ctx, room, tt.before.ID, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("MessagesBefore = %q, want %q", got, tt.want)
			}
		})
	}

	// Paging back from the newest reaches every message once, in order.
	newest, err := s.Messages(ctx, room, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{newest[0].Text}
	for cursor := newest[0].ID; ; {
		page, err := s.MessagesBefore(ctx, room, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		var texts []string
		for _, m := range page {
			texts = append(texts, m.Text)
		}
		got = append(texts, got...)
		cursor = page[0].ID
	}
	if want := []string{"ana 1", "bo 1", "ana 2", "bo 2", "ana 3", "bo 3"}; !slices.Equal(got, want) {
		t.Errorf("paged back = %q, want %q", got, want)
	}

	for _, tt := range []struct {
		name   string
		before Envelope
	}{
		{"unknown message", Envelope{ID: testID("nothing")}},
		{"message of another room", all[6]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.MessagesBefore(ctx, room, tt.before.ID, 10); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

// twoRooms stores three messages each of bo and ana in one room and two of
// cy in another, texts "AUTHOR SEQ": lamports 10, 20, 30 for each author, so
// ana and bo tie on lamport and are told apart by author bytes, as in
// TestMessagesOrderAndLimit.
func twoRooms(t *testing.T, s *Store) (room, elsewhere wire.ID, all []Envelope) {
	t.Helper()
	room, elsewhere = testID("room"), testID("elsewhere")
	key := testID("key")
	all = append(all, chain("bo", 3, room, key)...)
	all = append(all, chain("ana", 3, room, key)...)
	all = append(all, chain("cy", 2, elsewhere, key)...)
	update(t, s, func(tx *Tx) error {
		for _, e := range all {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, fmt.Sprintf("%s %d", e.Author, e.Seq))); err != nil {
				return err
			}
		}
		return nil
	})
	return room, elsewhere, all
}
