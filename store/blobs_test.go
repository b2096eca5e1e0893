package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/charla-im/charla/wire"
)

func TestFiles(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	room, other := testID("room"), testID("other")
	envs := chain("ana", 3, room, testID("key"))
	envs[2].Room = other
	update(t, s, func(tx *Tx) error {
		for i, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			f := File{ID: e.ID, Room: e.Room, Author: e.Author, Time: e.Time, Key: e.Key, Manifest: []byte{byte(i + 1)}}
			if err := tx.PutFile(f); err != nil {
				return err
			}
			f.Manifest = []byte("changed")
			if err := tx.PutFile(f); err != nil { // a second put changes nothing
				return err
			}
		}
		return nil
	})
	all, err := s.Files(ctx, wire.ID{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != envs[2].ID || string(all[2].Manifest) != "\x01" {
		t.Fatalf("all files: %+v", all)
	}
	inRoom, err := s.Files(ctx, room)
	if err != nil || len(inRoom) != 2 {
		t.Fatalf("files of room: %d, %v", len(inRoom), err)
	}
	if err := s.SetFileWanted(ctx, envs[0].ID, true); err != nil {
		t.Fatal(err)
	}
	f, err := s.File(ctx, envs[0].ID)
	if err != nil || !f.Wanted || f.Key != testID("key") || string(f.Author) != "ana" {
		t.Fatalf("file: %+v, %v", f, err)
	}
	if _, err := s.File(ctx, testID("none")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown file: %v", err)
	}
	if err := s.SetFileWanted(ctx, testID("none"), true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want unknown file: %v", err)
	}
}

// TestFilesFrom: the files whose IDs start with a prefix, found by the range
// the prefix spans, in ID order, at most limit of them.
func TestFilesFrom(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	ids := []string{
		"abcdef0100000000000000000000000000000000000000000000000000000000",
		"abcdef01ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"abcdef0200000000000000000000000000000000000000000000000000000000",
		"abcdef0000000000000000000000000000000000000000000000000000000001",
	}
	envs := chain("ana", len(ids), testID("room"), testID("key"))
	update(t, s, func(tx *Tx) error {
		var prev wire.ID
		for i, e := range envs {
			id, err := wire.ParseID(ids[i])
			if err != nil {
				return err
			}
			e.ID, e.Prev, prev = id, prev, id
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutFile(File{ID: e.ID, Room: e.Room, Author: e.Author, Time: e.Time, Key: e.Key, Manifest: []byte{1}}); err != nil {
				return err
			}
		}
		return nil
	})
	span := func(prefix string) (wire.ID, wire.ID) {
		lo, _ := wire.ParseID(prefix + strings.Repeat("0", 64-len(prefix)))
		hi, _ := wire.ParseID(prefix + strings.Repeat("f", 64-len(prefix)))
		return lo, hi
	}
	tests := []struct {
		prefix string
		limit  int
		want   []int // indices into ids, in ID order
	}{
		{"abcdef01", 10, []int{0, 1}},
		{"abcdef01", 1, []int{0}},
		{"abcdef0", 10, []int{3, 0, 1, 2}},
		{"abcdef02", 10, []int{2}},
		{"abcdef03", 10, nil},
		{ids[1], 10, []int{1}},
	}
	for _, tt := range tests {
		lo, hi := span(tt.prefix)
		got, err := s.FilesFrom(ctx, lo, hi, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs, wantIDs []string
		for _, f := range got {
			gotIDs = append(gotIDs, f.ID.String())
		}
		for _, i := range tt.want {
			wantIDs = append(wantIDs, ids[i])
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("FilesFrom(%s…, limit %d) = %v, want %v", tt.prefix, tt.limit, gotIDs, wantIDs)
		}
	}
}
