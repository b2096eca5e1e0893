package store

import (
	"context"
	"errors"
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
