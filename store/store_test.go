package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/charla-im/charla/wire"
)

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, path
}

func update(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), false, fn); err != nil {
		t.Fatal(err)
	}
}

func testID(parts ...any) wire.ID {
	return sha256.Sum256(fmt.Append(nil, parts...))
}

// chain returns seqs 1..n of author's feed in room, linked by Prev, encrypted
// with key. Lamport is seq*10 so tests can interleave authors.
func chain(author string, n int, room, key wire.ID) []Envelope {
	envs := make([]Envelope, n)
	var prev wire.ID
	for i := range envs {
		seq := uint64(i + 1)
		envs[i] = Envelope{
			ID:      testID("env", author, seq),
			Author:  []byte(author),
			Seq:     seq,
			Prev:    prev,
			Lamport: seq * 10,
			Time:    int64(1_700_000_000_000 + seq),
			Class:   wire.ClassContent,
			Room:    room,
			Key:     key,
			Raw:     binary.BigEndian.AppendUint64([]byte("raw:"+author), seq),
		}
		prev = envs[i].ID
	}
	return envs
}

func messageOf(e Envelope, text string) Message {
	return Message{ID: e.ID, Room: e.Room, Author: e.Author, Seq: e.Seq, Lamport: e.Lamport, Time: e.Time,
		Kind: uint8(wire.KindText), Text: text}
}

func TestMigrationsNumbered(t *testing.T) {
	migs, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 {
		t.Fatal("no migrations embedded")
	}
}

func TestClassContentIsThree(t *testing.T) {
	// Undecrypted and the partial index envelopes_content_key spell it out.
	if wire.ClassContent != 3 {
		t.Fatalf("wire.ClassContent = %d; update store's SQL", wire.ClassContent)
	}
}

func TestOpenReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	room := testID("room")
	envs := chain("ana", 2, room, testID("key"))
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, "hola")); err != nil {
				return err
			}
		}
		return tx.PutRoom(Room{ID: room, Name: "general", Kind: wire.RoomChannel})
	})
	if err := s.SetMeta(ctx, "workspace", []byte("w1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("database mode %v, want 0600", mode)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.EnvelopeCount(ctx); err != nil || n != 2 {
		t.Errorf("EnvelopeCount = %d, %v; want 2", n, err)
	}
	if got, err := s.Meta(ctx, "workspace"); err != nil || string(got) != "w1" {
		t.Errorf("Meta = %q, %v; want w1", got, err)
	}
	if r, err := s.Room(ctx, room); err != nil || r.Name != "general" {
		t.Errorf("Room = %+v, %v", r, err)
	}
	if msgs, err := s.Messages(ctx, room, 10); err != nil || len(msgs) != 2 {
		t.Errorf("Messages = %d, %v; want 2", len(msgs), err)
	}
	heads, err := s.Heads(ctx)
	if err != nil || len(heads) != 1 || heads[0].Seq != 2 || heads[0].ID != envs[1].ID {
		t.Errorf("Heads = %+v, %v", heads, err)
	}
	var version int
	if err := s.r.QueryRow(`SELECT max(version) FROM schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if migs, _ := migrations(); version != len(migs) {
		t.Errorf("schema version %d, want %d", version, len(migs))
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	missing := filepath.Join(dir, "no", "such", "dir", "history.db")
	if _, err := Open(ctx, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open in a missing directory: %v; want an error naming %s", err, missing)
	}

	newer := filepath.Join(dir, "newer.db")
	s, err := Open(ctx, newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`INSERT INTO schema_version (version, applied) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, newer); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v; want a refusal", err)
	}
}

func TestOpenOddPath(t *testing.T) {
	// Characters that mean something in a URI stay part of the file name.
	path := filepath.Join(t.TempDir(), "a dir?x=1#%41", "h.db")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetMeta(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %q: %v", path, err)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Update(context.Background(), false, func(*Tx) error { return nil }); err == nil {
		t.Error("Update after Close succeeded")
	}
}

func TestPutEnvelopeDuplicate(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	e := chain("ana", 1, testID("room"), testID("key"))[0]
	e.Received = 1000
	update(t, s, func(tx *Tx) error {
		if ins, err := tx.PutEnvelope(e); err != nil || !ins {
			t.Errorf("first PutEnvelope = %v, %v; want true", ins, err)
		}
		return nil
	})
	again := e
	again.Received = 2000
	update(t, s, func(tx *Tx) error {
		if ins, err := tx.PutEnvelope(again); err != nil || ins {
			t.Errorf("second PutEnvelope = %v, %v; want false, nil", ins, err)
		}
		return nil
	})
	if n, _ := s.EnvelopeCount(ctx); n != 1 {
		t.Errorf("EnvelopeCount = %d, want 1", n)
	}
	got, err := s.Envelope(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Received != 1000 {
		t.Errorf("Received = %d, want the first 1000", got.Received)
	}
	if !bytes.Equal(got.Raw, e.Raw) || got.Seq != e.Seq || got.Class != e.Class || got.Key != e.Key {
		t.Errorf("Envelope = %+v, want %+v", got, e)
	}
	if _, err := s.Envelope(ctx, testID("nothing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Envelope of unknown ID: %v, want ErrNotFound", err)
	}
}

func TestHeadAdvancesOverGaps(t *testing.T) {
	envs := chain("ana", 6, testID("room"), testID("key"))
	tests := []struct {
		name  string
		order []int    // seqs in the order they arrive
		heads []uint64 // head after each arrival; 0 = none
	}{
		{"in order", []int{1, 2, 3}, []uint64{1, 2, 3}},
		{"gap filled", []int{1, 3, 2}, []uint64{1, 1, 3}},
		{"reverse", []int{3, 2, 1}, []uint64{0, 0, 3}},
		{"two gaps", []int{2, 4, 6, 1, 5, 3}, []uint64{0, 0, 0, 2, 2, 6}},
		{"duplicate", []int{1, 1, 2, 2}, []uint64{1, 1, 2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			author := []byte("ana")
			for i, seq := range tt.order {
				update(t, s, func(tx *Tx) error {
					if _, err := tx.PutEnvelope(envs[seq-1]); err != nil {
						return err
					}
					h, ok, err := tx.Head(author)
					if err != nil {
						return err
					}
					want := tt.heads[i]
					if ok != (want > 0) || h.Seq != want {
						t.Errorf("after seq %d: head %d (ok %v), want %d", seq, h.Seq, ok, want)
					}
					if want > 0 && h.ID != envs[want-1].ID {
						t.Errorf("after seq %d: head ID %s, want %s", seq, h.ID, envs[want-1].ID)
					}
					return nil
				})
			}
		})
	}
}

func TestForks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	e := chain("ana", 1, testID("room"), testID("key"))[0]
	other := e
	other.ID = testID("other branch")
	other.Raw = []byte("other raw")
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutEnvelope(e)
		return err
	})
	err := s.Update(ctx, false, func(tx *Tx) error {
		_, err := tx.PutEnvelope(other)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "fork") {
		t.Errorf("second envelope at one seq: %v, want a fork error", err)
	}
	update(t, s, func(tx *Tx) error {
		for range 2 { // twice: the second is a no-op
			if err := tx.PutFork(other.Author, other.Seq, other.ID, other.Raw); err != nil {
				return err
			}
		}
		id, ok, err := tx.EnvelopeAt(e.Author, 1)
		if err != nil || !ok || id != e.ID {
			t.Errorf("EnvelopeAt = %s, %v, %v; want the canonical %s", id, ok, err, e.ID)
		}
		if _, ok, _ := tx.EnvelopeAt(e.Author, 2); ok {
			t.Error("EnvelopeAt seq 2 found something")
		}
		return nil
	})
	forks, err := s.ForkHeadersOf(ctx, [][]byte{[]byte("ana")})
	if err != nil {
		t.Fatal(err)
	}
	if len(forks) != 1 || forks[0].ID != other.ID || forks[0].Seq != 1 || forks[0].Raw != nil {
		t.Errorf("ForkHeadersOf = %+v", forks)
	}
	raws := map[wire.ID][]byte{}
	if err := s.ForkRaws(ctx, []wire.ID{other.ID}, raws); err != nil || !bytes.Equal(raws[other.ID], other.Raw) {
		t.Errorf("ForkRaws = %q, %v; want the fork's bytes", raws[other.ID], err)
	}
}

// TestForkQueries: fork headers come without bytes, of every author or of
// those asked for; bytes come by ID.
func TestForkQueries(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	type fork struct {
		author string
		seq    uint64
	}
	made := []fork{{"bo", 2}, {"ana", 3}, {"ana", 1}, {"cy", 1}, {"ana", 3}}
	raws := map[wire.ID][]byte{}
	var ids []wire.ID
	update(t, s, func(tx *Tx) error {
		for i, f := range made {
			id, raw := testID("fork", i), fmt.Appendf(nil, "fork %d of %s at %d", i, f.author, f.seq)
			if err := tx.PutFork([]byte(f.author), f.seq, id, raw); err != nil {
				return err
			}
			raws[id] = raw
			ids = append(ids, id)
		}
		return nil
	})
	// sorted is what a list of forks must be ordered by: author, seq, ID.
	sorted := func(fs []Fork) bool {
		return slices.IsSortedFunc(fs, func(a, b Fork) int {
			if c := bytes.Compare(a.Author, b.Author); c != 0 {
				return c
			}
			if a.Seq != b.Seq {
				return cmp.Compare(a.Seq, b.Seq)
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
	}

	hs, err := s.ForkHeaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != len(made) || !sorted(hs) {
		t.Errorf("ForkHeaders = %+v, want %d sorted by author, seq and ID", hs, len(made))
	}
	for _, h := range hs {
		if h.Raw != nil {
			t.Errorf("ForkHeaders: fork %s comes with its bytes", h.ID)
		}
		if raws[h.ID] == nil {
			t.Errorf("ForkHeaders: fork %s was not stored", h.ID)
		}
	}

	tests := []struct {
		name    string
		authors []string
		want    int // forks returned
	}{
		{"one author", []string{"ana"}, 3},
		{"two authors", []string{"cy", "bo"}, 2},
		{"an author twice", []string{"bo", "bo"}, 1},
		{"an author with none", []string{"dee"}, 0},
		{"none", nil, 0},
	}
	for _, tt := range tests {
		t.Run("ForkHeadersOf "+tt.name, func(t *testing.T) {
			var authors [][]byte
			for _, a := range tt.authors {
				authors = append(authors, []byte(a))
			}
			fs, err := s.ForkHeadersOf(ctx, authors)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != tt.want || !sorted(fs) {
				t.Errorf("%d forks %+v, want %d sorted", len(fs), fs, tt.want)
			}
			for _, f := range fs {
				if !slices.Contains(tt.authors, string(f.Author)) {
					t.Errorf("fork %s of %q, not asked for", f.ID, f.Author)
				}
				if f.Raw != nil || raws[f.ID] == nil {
					t.Errorf("fork %s: bytes %q, want a header of a stored fork", f.ID, f.Raw)
				}
			}
		})
	}

	// Bytes by ID: only those asked for, and nothing for a fork not held.
	update(t, s, func(tx *Tx) error { return tx.DropFork(ids[1]) })
	got := map[wire.ID][]byte{}
	if err := s.ForkRaws(ctx, []wire.ID{ids[0], ids[1], ids[3], testID("never")}, got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[ids[0]], raws[ids[0]]) || !bytes.Equal(got[ids[3]], raws[ids[3]]) {
		t.Errorf("ForkRaws = %q, want the bytes of forks 0 and 3 only", got)
	}
}

func TestMessagesOrderAndLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, elsewhere := testID("room"), testID("elsewhere")
	key := testID("key")
	// Lamports 10, 20, 30 for each author; ana and bo tie on lamport and
	// are told apart by author bytes.
	var all []Envelope
	all = append(all, chain("bo", 3, room, key)...)
	all = append(all, chain("ana", 3, room, key)...)
	all = append(all, chain("cy", 2, elsewhere, key)...)
	// Arrive in a scrambled order.
	for _, i := range []int{4, 0, 7, 2, 5, 1, 6, 3} {
		update(t, s, func(tx *Tx) error {
			if _, err := tx.PutEnvelope(all[i]); err != nil {
				return err
			}
			return tx.PutMessage(messageOf(all[i], fmt.Sprintf("%s %d", all[i].Author, all[i].Seq)))
		})
	}
	order := func(msgs []Message) []string {
		var out []string
		for _, m := range msgs {
			out = append(out, m.Text)
		}
		return out
	}
	tests := []struct {
		name  string
		limit int
		want  []string
	}{
		{"all", 100, []string{"ana 1", "bo 1", "ana 2", "bo 2", "ana 3", "bo 3"}},
		{"newest three", 3, []string{"bo 2", "ana 3", "bo 3"}},
		{"newest one", 1, []string{"bo 3"}},
		{"none", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := s.Messages(ctx, room, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := order(msgs); !slices.Equal(got, tt.want) {
				t.Errorf("Messages(%d) = %q, want %q", tt.limit, got, tt.want)
			}
		})
	}
	m, err := s.Message(ctx, all[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := messageOf(all[0], "bo 1"); m.Text != want.Text || m.Room != want.Room || m.Seq != want.Seq ||
		m.Lamport != want.Lamport || m.Time != want.Time || m.Kind != want.Kind || !bytes.Equal(m.Author, want.Author) {
		t.Errorf("Message = %+v, want %+v", m, want)
	}
	if _, err := s.Message(ctx, testID("nothing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message of unknown ID: %v, want ErrNotFound", err)
	}
}

func TestPutMessageNeedsEnvelope(t *testing.T) {
	s, _ := openTest(t)
	e := chain("ana", 1, testID("room"), testID("key"))[0]
	err := s.Update(context.Background(), false, func(tx *Tx) error {
		return tx.PutMessage(messageOf(e, "orphan"))
	})
	if err == nil {
		t.Error("PutMessage without its envelope succeeded")
	}
}

func TestUndecrypted(t *testing.T) {
	s, _ := openTest(t)
	room := testID("room")
	k1, k2 := testID("key1"), testID("key2")
	envs := chain("ana", 5, room, k1)
	envs[3].Key = k2                 // another key
	envs[4].Class = wire.ClassRoster // not content, whatever its key says
	update(t, s, func(tx *Tx) error {
		for _, i := range []int{2, 0, 1, 3, 4} {
			if _, err := tx.PutEnvelope(envs[i]); err != nil {
				return err
			}
		}
		return tx.PutMessage(messageOf(envs[1], "already read"))
	})
	update(t, s, func(tx *Tx) error {
		got, err := tx.Undecrypted(k1)
		if err != nil {
			return err
		}
		var seqs []uint64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
			if !bytes.Equal(e.Raw, envs[e.Seq-1].Raw) {
				t.Errorf("seq %d: raw %q, want %q", e.Seq, e.Raw, envs[e.Seq-1].Raw)
			}
		}
		if want := []uint64{1, 3}; !slices.Equal(seqs, want) {
			t.Errorf("Undecrypted(k1) seqs = %v, want %v", seqs, want)
		}
		if got, err := tx.Undecrypted(testID("unknown")); err != nil || len(got) != 0 {
			t.Errorf("Undecrypted(unknown) = %v, %v", got, err)
		}
		// Decrypting them empties the set.
		for _, e := range got {
			if err := tx.PutMessage(messageOf(e, "now read")); err != nil {
				return err
			}
		}
		if got, err := tx.Undecrypted(k1); err != nil || len(got) != 0 {
			t.Errorf("Undecrypted(k1) after decrypting = %d envelopes, %v", len(got), err)
		}
		return nil
	})
}

func TestPutRoomMemberUnion(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	general, random := testID("general"), testID("random")
	update(t, s, func(tx *Tx) error {
		if err := tx.PutRoom(Room{ID: general, Name: "general", Kind: wire.RoomChannel,
			Members: [][]byte{[]byte("bo"), []byte("ana")}}); err != nil {
			return err
		}
		if err := tx.PutRoom(Room{ID: general, Members: [][]byte{[]byte("cy"), []byte("bo")}}); err != nil {
			return err
		}
		return tx.PutRoom(Room{ID: random, Name: "random"})
	})
	r, err := s.Room(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "general" || r.Kind != wire.RoomChannel {
		t.Errorf("empty name/kind overwrote: %+v", r)
	}
	if got, want := fmt.Sprintf("%s", r.Members), "[ana bo cy]"; got != want {
		t.Errorf("members %s, want %s", got, want)
	}

	update(t, s, func(tx *Tx) error {
		return tx.PutRoom(Room{ID: general, Name: "all-hands", Kind: wire.RoomDirect})
	})
	rooms, err := s.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rooms {
		names = append(names, fmt.Sprintf("%s:%s:%s", r.Name, r.Kind, r.Members))
	}
	if want := []string{"all-hands:direct:[ana bo cy]", "random:roomkind(0):[]"}; !slices.Equal(names, want) {
		t.Errorf("Rooms = %q, want %q", names, want)
	}
	if _, err := s.Room(ctx, testID("nowhere")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Room of unknown ID: %v, want ErrNotFound", err)
	}
}

func TestRoomKeys(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	keys := []RoomKey{
		{Room: room, KeyID: testID("k2"), Epoch: 2, Parent: testID("k1"), Key: testID("secret2"), Added: 5},
		{Room: room, KeyID: testID("k1"), Epoch: 1, Key: testID("secret1"), Added: 6},
		{Room: room, KeyID: testID("k2b"), Epoch: 2, Parent: testID("k1"), Key: testID("secret2b"), Added: 7},
		{Room: testID("other"), KeyID: testID("k9"), Epoch: 1, Key: testID("secret9")},
	}
	update(t, s, func(tx *Tx) error {
		for _, k := range keys {
			if err := tx.PutRoomKey(k); err != nil {
				return err
			}
		}
		// Same KeyID again: ignored.
		dup := keys[1]
		dup.Epoch = 7
		if err := tx.PutRoomKey(dup); err != nil {
			return err
		}
		got, ok, err := tx.RoomKey(keys[0].KeyID)
		if err != nil || !ok || got != keys[0] {
			t.Errorf("RoomKey = %+v, %v, %v; want %+v", got, ok, err, keys[0])
		}
		if _, ok, err := tx.RoomKey(testID("unknown")); ok || err != nil {
			t.Errorf("RoomKey(unknown) = %v, %v", ok, err)
		}
		return nil
	})
	got, err := s.RoomKeys(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	want := []RoomKey{keys[1], keys[0], keys[2]}
	if bytes.Compare(keys[0].KeyID[:], keys[2].KeyID[:]) > 0 {
		want[1], want[2] = want[2], want[1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("RoomKeys = %+v, want %+v", got, want)
	}
}

// TestKeyTrust: a key held untrusted becomes trusted when stored again as
// trusted or marked so, and never goes back; a room's members, once known,
// stay known until they are reset.
func TestKeyTrust(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	k1 := RoomKey{Room: room, KeyID: testID("k1"), Epoch: 1, Key: testID("s1"), Added: 1, Untrusted: true}
	k2 := RoomKey{Room: room, KeyID: testID("k2"), Epoch: 2, Parent: k1.KeyID, Key: testID("s2"), Added: 2, Untrusted: true}
	update(t, s, func(tx *Tx) error {
		for _, k := range []RoomKey{k1, k2} {
			if err := tx.PutRoomKey(k); err != nil {
				return err
			}
		}
		if got, err := tx.UntrustedKeys(room); err != nil || len(got) != 2 {
			t.Errorf("UntrustedKeys = %v, %v; want both", got, err)
		}
		trusted := k1
		trusted.Untrusted = false
		if err := tx.PutRoomKey(trusted); err != nil {
			return err
		}
		if err := tx.PutRoomKey(k1); err != nil { // untrusted again: no change
			return err
		}
		if err := tx.TrustKey(k2.KeyID); err != nil {
			return err
		}
		if got, err := tx.UntrustedKeys(room); err != nil || len(got) != 0 {
			t.Errorf("UntrustedKeys after trusting = %v, %v; want none", got, err)
		}
		if known, err := tx.MembersKnown(room); err != nil || known {
			t.Errorf("MembersKnown of a room not stored = %v, %v", known, err)
		}
		if err := tx.PutRoom(Room{ID: room, Kind: wire.RoomChannel, Members: [][]byte{[]byte("ana")}, MembersKnown: true}); err != nil {
			return err
		}
		if err := tx.PutRoom(Room{ID: room, Members: [][]byte{[]byte("bo")}}); err != nil {
			return err
		}
		if known, err := tx.MembersKnown(room); err != nil || !known {
			t.Errorf("MembersKnown after PutRoom without it = %v, %v; want true", known, err)
		}
		return nil
	})
	keys, err := s.RoomKeys(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Untrusted {
			t.Errorf("key %d untrusted after being trusted", k.Epoch)
		}
	}
	r, err := s.Room(ctx, room)
	if err != nil || !r.MembersKnown || len(r.Members) != 2 {
		t.Fatalf("Room = %+v, %v; want two members, known", r, err)
	}
	update(t, s, func(tx *Tx) error { return tx.ResetRoomMembers(room) })
	if r, err = s.Room(ctx, room); err != nil || r.MembersKnown || len(r.Members) != 0 {
		t.Fatalf("Room after reset = %+v, %v; want no members, unknown", r, err)
	}
}

func TestMembers(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	ana := Member{Peer: []byte("ana"), Name: "Ana", Recipient: "age1pq1ana", Role: wire.RoleOwner}
	bo := Member{Peer: []byte("bo"), Name: "Bo", Recipient: "age1pq1bo", Role: wire.RoleMember, Admitted: testID("admit bo")}
	update(t, s, func(tx *Tx) error {
		for _, m := range []Member{bo, ana} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		bo.Removed = true
		bo.Role = wire.RoleAdmin
		return tx.PutMember(bo)
	})
	update(t, s, func(tx *Tx) error {
		got, ok, err := tx.Member([]byte("bo"))
		if err != nil || !ok || !got.Removed || got.Role != wire.RoleAdmin || got.Admitted != bo.Admitted {
			t.Errorf("Member(bo) = %+v, %v, %v", got, ok, err)
		}
		if _, ok, err := tx.Member([]byte("cy")); ok || err != nil {
			t.Errorf("Member(cy) = %v, %v", ok, err)
		}
		return nil
	})
	ms, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "Ana" || ms[1].Name != "Bo" || ms[0].Recipient != "age1pq1ana" || ms[0].Removed {
		t.Errorf("Members = %+v", ms)
	}
}

func TestEnvelopesAfter(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 6, testID("room"), testID("key"))
	update(t, s, func(tx *Tx) error {
		for _, i := range []int{0, 1, 2, 4, 5} { // seq 4 missing
			if _, err := tx.PutEnvelope(envs[i]); err != nil {
				return err
			}
		}
		_, err := tx.PutEnvelope(chain("bo", 1, testID("room"), testID("key"))[0])
		return err
	})
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"all", 0, 100, []uint64{1, 2, 3, 5, 6}},
		{"above gap included", 3, 100, []uint64{5, 6}},
		{"limit", 1, 2, []uint64{2, 3}},
		{"past the end", 6, 100, nil},
		{"zero limit", 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.EnvelopesAfter(ctx, []byte("ana"), tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !slices.Equal(seqs, tt.want) {
				t.Errorf("seqs %v, want %v", seqs, tt.want)
			}
			// HeadersAfter lists the same, without the bytes.
			hs, err := s.HeadersAfter(ctx, []byte("ana"), tt.after, tt.limit)
			if err != nil || len(hs) != len(got) {
				t.Fatalf("HeadersAfter = %d envelopes, %v; want %d", len(hs), err, len(got))
			}
			for i, h := range hs {
				e := got[i]
				if h.Raw != nil {
					t.Errorf("HeadersAfter seq %d has its bytes", h.Seq)
				}
				h.Raw = e.Raw
				if !reflect.DeepEqual(h, e) {
					t.Errorf("HeadersAfter seq %d = %+v, want %+v", h.Seq, h, e)
				}
			}
		})
	}
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || string(heads[0].Author) != "ana" || heads[0].Seq != 3 || string(heads[1].Author) != "bo" {
		t.Errorf("Heads = %+v", heads)
	}
}

func TestRaws(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	envs := chain("ana", 6, testID("room"), testID("key"))
	tomb := envs[2] // seq 3 held as a tombstone
	tomb.Raw, tomb.Key = nil, wire.ID{}
	update(t, s, func(tx *Tx) error {
		for _, i := range []int{0, 1, 4, 5} { // seq 4 missing
			if _, err := tx.PutEnvelope(envs[i]); err != nil {
				return err
			}
		}
		if _, err := tx.PutTombstone(tomb); err != nil {
			return err
		}
		_, err := tx.PutEnvelope(chain("bo", 3, testID("room"), testID("key"))[1])
		return err
	})
	tests := []struct {
		name   string
		lo, hi uint64
		want   []uint64 // seqs with an entry; 3 is the tombstone
	}{
		{"all", 1, 6, []uint64{1, 2, 3, 5, 6}},
		{"a span", 2, 5, []uint64{2, 3, 5}},
		{"one", 6, 6, []uint64{6}},
		{"past the end", 7, 100, nil},
		{"empty span", 5, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[wire.ID][]byte{}
			if err := s.Raws(ctx, []byte("ana"), tt.lo, tt.hi, got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d entries, want %d (seqs %v)", len(got), len(tt.want), tt.want)
			}
			for _, seq := range tt.want {
				e := envs[seq-1]
				raw, ok := got[e.ID]
				switch {
				case !ok:
					t.Errorf("seq %d: no entry", seq)
				case seq == 3 && raw != nil:
					t.Errorf("the tombstone at seq 3 has bytes")
				case seq != 3 && !bytes.Equal(raw, e.Raw):
					t.Errorf("seq %d: %d bytes, want its %d", seq, len(raw), len(e.Raw))
				}
			}
		})
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	texts := []string{
		"the contract is signed",
		"lunch at the café?",
		"contracts go to legal",
		`she said "ok" -- fine`,
		"the contract, again",
	}
	envs := chain("ana", len(texts), room, testID("key"))
	update(t, s, func(tx *Tx) error {
		for i, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			if err := tx.PutMessage(messageOf(e, texts[i])); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		query string
		limit int
		want  []uint64 // seqs, newest first
	}{
		{"contract", 10, []uint64{5, 1}},
		{"contract*", 10, []uint64{5, 3, 1}},
		{"contract*", 2, []uint64{5, 3}},
		{"the contract", 10, []uint64{5, 1}},
		{"cafe", 10, []uint64{2}},
		{"CAFÉ", 10, []uint64{2}},
		{`"ok"`, 10, []uint64{4}},
		{`-- AND OR NOT ( ) : ^ "`, 10, nil},
		{"", 10, nil},
		{"   ", 10, nil},
		{"absent", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := s.Search(ctx, tt.query, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, m := range got {
				seqs = append(seqs, m.Seq)
			}
			if !slices.Equal(seqs, tt.want) {
				t.Errorf("Search(%q) = seqs %v, want %v", tt.query, seqs, tt.want)
			}
		})
	}

	// An edit replaces the text in the index too; storing the same message
	// again changes nothing.
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMessage(messageOf(envs[0], "the deal is signed")); err != nil {
			return err
		}
		return tx.PutMessage(messageOf(envs[1], texts[1]))
	})
	if got, _ := s.Search(ctx, "deal", 10); len(got) != 1 || got[0].ID != envs[0].ID {
		t.Errorf("Search(deal) after edit = %+v", got)
	}
	if got, _ := s.Search(ctx, "contract", 10); len(got) != 1 || got[0].Seq != 5 {
		t.Errorf("Search(contract) after edit = %+v, want only seq 5", got)
	}
	// rank 1 also checks the index against the content table.
	if _, err := s.w.Exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("FTS integrity check: %v", err)
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	if _, err := s.Meta(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta(nope): %v, want ErrNotFound", err)
	}
	for _, v := range [][]byte{[]byte("one"), []byte("two"), nil} {
		if err := s.SetMeta(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
		got, err := s.Meta(ctx, "k")
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("Meta after SetMeta(%q) = %q, %v", v, got, err)
		}
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.SetMeta("in tx", []byte("x")); err != nil {
			return err
		}
		got, ok, err := tx.Meta("in tx")
		if err != nil || !ok || string(got) != "x" {
			t.Errorf("tx.Meta = %q, %v, %v", got, ok, err)
		}
		return nil
	})
}

func TestUpdateDurability(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for _, tt := range []struct {
		durable bool
		want    int
	}{{true, 2}, {false, 1}, {true, 2}, {false, 1}} {
		update := func(tx *Tx) error {
			var got int
			if err := tx.q().QueryRowContext(tx.ctx, "PRAGMA synchronous").Scan(&got); err != nil {
				return err
			}
			if got != tt.want {
				t.Errorf("durable=%v: synchronous %d, want %d", tt.durable, got, tt.want)
			}
			return nil
		}
		if err := s.Update(ctx, tt.durable, update); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUpdateRollsBack(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	errStop := errors.New("stop")
	e := chain("ana", 1, testID("room"), testID("key"))[0]
	err := s.Update(ctx, true, func(tx *Tx) error {
		if _, err := tx.PutEnvelope(e); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Update returned %v, want fn's error", err)
	}
	if n, _ := s.EnvelopeCount(ctx); n != 0 {
		t.Errorf("rolled-back envelope is stored (%d)", n)
	}
	if hs, _ := s.Heads(ctx); len(hs) != 0 {
		t.Errorf("rolled-back head is stored: %+v", hs)
	}
}

func TestBook(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	put := func(e BookEntry) {
		t.Helper()
		if err := s.PutBookEntry(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	put(BookEntry{Peer: []byte("ana"), Addrs: []string{"/ip4/10.0.0.1/tcp/1", "/ip4/10.0.0.2/tcp/1"}, Via: "mdns", LastSeen: 100})
	put(BookEntry{Peer: []byte("ana"), Addrs: []string{"/ip4/10.0.0.3/tcp/1", "/ip4/10.0.0.1/tcp/1"}, Via: "static", LastSeen: 200})
	put(BookEntry{Peer: []byte("ana"), Addrs: []string{"/ip4/10.0.0.9/tcp/1"}, Via: "old", LastSeen: 50})
	put(BookEntry{Peer: []byte("bo"), Via: "mdns", LastSeen: 150})

	book, err := s.Book(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(book) != 2 {
		t.Fatalf("Book = %+v, want 2 entries", book)
	}
	ana := book[0]
	if string(ana.Peer) != "ana" || ana.Via != "static" || ana.LastSeen != 200 {
		t.Errorf("ana = %+v", ana)
	}
	want := []string{"/ip4/10.0.0.3/tcp/1", "/ip4/10.0.0.1/tcp/1", "/ip4/10.0.0.2/tcp/1", "/ip4/10.0.0.9/tcp/1"}
	if !slices.Equal(ana.Addrs, want) {
		t.Errorf("ana addrs %q, want %q", ana.Addrs, want)
	}
	if string(book[1].Peer) != "bo" || len(book[1].Addrs) != 0 {
		t.Errorf("bo = %+v", book[1])
	}

	// Bounded to the 16 newest.
	for i := range 20 {
		put(BookEntry{Peer: []byte("cy"), Addrs: []string{fmt.Sprintf("/ip4/10.1.0.%d/tcp/1", i)}, LastSeen: int64(1000 + i)})
	}
	book, err = s.Book(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cy := book[0]
	if string(cy.Peer) != "cy" || len(cy.Addrs) != maxBookAddrs || cy.Addrs[0] != "/ip4/10.1.0.19/tcp/1" ||
		cy.Addrs[maxBookAddrs-1] != "/ip4/10.1.0.4/tcp/1" {
		t.Errorf("cy = %+v", cy)
	}
}

func TestReadsDuringWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	n := 40
	if testing.Short() {
		n = 10
	}
	envs := chain("ana", n, room, testID("key"))
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				msgs, err := s.Messages(ctx, room, n)
				if err != nil {
					t.Error(err)
					return
				}
				// Each write commits one message: a read sees a prefix,
				// never less than before.
				if len(msgs) < last {
					t.Errorf("read %d messages after reading %d", len(msgs), last)
				}
				last = len(msgs)
				if _, err := s.Heads(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for _, e := range envs {
		update(t, s, func(tx *Tx) error {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
			return tx.PutMessage(messageOf(e, "hi"))
		})
	}
	close(done)
	wg.Wait()
	if msgs, _ := s.Messages(ctx, room, n); len(msgs) != n {
		t.Errorf("%d messages, want %d", len(msgs), n)
	}
}

func BenchmarkPutMessageBatch100(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	room, key := testID("room"), testID("key")
	text := strings.Repeat("a message of some ordinary length ", 4)
	raw := make([]byte, 1024)
	author := []byte("12D3KooWBenchmarkAuthorPeerIDxxxxxxxxxxxxxxxxxxxx")
	b.ReportAllocs()
	b.ResetTimer()
	var seq uint64
	var prev wire.ID
	for done := 0; done < b.N; done += 100 {
		err := s.Update(ctx, false, func(tx *Tx) error {
			for range min(100, b.N-done) {
				seq++
				e := Envelope{ID: testID("bench", seq), Author: author, Seq: seq, Prev: prev, Lamport: seq,
					Time: int64(seq), Class: wire.ClassContent, Room: room, Key: key, Raw: raw}
				prev = e.ID
				if _, err := tx.PutEnvelope(e); err != nil {
					return err
				}
				if err := tx.PutMessage(messageOf(e, text)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestRestoreBody: a disclosed envelope held as a tombstone is wanted, read
// by ID by no one until its body is put back, once, with the signed header.
func TestRestoreBody(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	envs := chain("ana", 3, room, testID("key"))
	tomb := envs[1]
	tomb.Raw, tomb.Key, tomb.Lamport = nil, wire.ID{}, 999 // a peer's word for the header
	update(t, s, func(tx *Tx) error {
		for _, e := range []Envelope{envs[0], tomb, envs[2]} {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		if err := tx.PutDisclosed(room, envs[0].ID, [16]byte{1}); err != nil {
			return err
		}
		return tx.PutDisclosed(room, envs[1].ID, [16]byte{2})
	})
	wanted, err := s.WantedBodies(ctx, 10)
	if err != nil || len(wanted) != 1 || wanted[0] != envs[1].ID {
		t.Fatalf("WantedBodies = %v, %v; want only the tombstone %s", wanted, err, envs[1].ID)
	}
	raws, err := s.RawsByID(ctx, []wire.ID{envs[0].ID, envs[1].ID, testID("absent")})
	if err != nil || len(raws) != 1 || string(raws[envs[0].ID]) != string(envs[0].Raw) {
		t.Fatalf("RawsByID = %d entries, %v; want the one body held", len(raws), err)
	}
	for i, want := range []bool{true, false} {
		update(t, s, func(tx *Tx) error {
			ok, err := tx.RestoreBody(envs[1])
			if ok != want {
				t.Errorf("RestoreBody #%d = %v, want %v", i+1, ok, want)
			}
			return err
		})
	}
	if wanted, err := s.WantedBodies(ctx, 10); err != nil || len(wanted) != 0 {
		t.Errorf("WantedBodies after the restore = %v, %v", wanted, err)
	}
	update(t, s, func(tx *Tx) error {
		got, ok, err := tx.Envelope(envs[1].ID)
		if err != nil || !ok || got.Lamport != envs[1].Lamport || got.Key != envs[1].Key || string(got.Raw) != string(envs[1].Raw) {
			t.Errorf("restored envelope = %+v, %v, %v; want the signed header and body", got, ok, err)
		}
		return nil
	})
}

// TestWantedBodiesPlan: the wanted-bodies query, run after every pull, reads
// the disclosures and looks envelopes up by ID; it never walks the content
// envelopes, whose number grows with the history.
func TestWantedBodiesPlan(t *testing.T) {
	s, _ := openTest(t)
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN `+wantedBodiesQuery, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN e") {
			t.Errorf("the wanted-bodies query scans the envelopes: %q", plan)
		}
	}
	if !slices.ContainsFunc(plan, func(s string) bool { return strings.HasPrefix(s, "SEARCH e USING") && strings.Contains(s, "(id=?)") }) {
		t.Errorf("the wanted-bodies query does not look envelopes up by ID: %q", plan)
	}
}
