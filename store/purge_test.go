package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

// inFiles reports which of the database's files (main, -wal, -shm) hold b.
func inFiles(t *testing.T, path string, b []byte) []string {
	t.Helper()
	files, err := filepath.Glob(path + "*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files at %s: %v", path, err)
	}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	const day = 86_400_000
	now := int64(1_800_000_000_000)
	general, kept, short := testID("general"), testID("kept room"), testID("short room")
	key := testID("key")

	// ana writes in #general: seqs 1–4 old, 5 new. 3 is a file, 4 an edit
	// (an action). ben's feed has a roster op, a key share and a room op, all
	// old, and an old message this node cannot read (no key).
	ana := chain("ana", 5, general, key)
	for i := range ana[:4] {
		ana[i].Time = now - 10*day
	}
	ana[4].Time = now - day/2
	ben := chain("ben", 4, general, key)
	ben[0].Class, ben[0].Room, ben[0].Key = wire.ClassRoster, wire.ID{}, wire.ID{}
	ben[1].Class, ben[1].Key = wire.ClassKeyShare, wire.ID{}
	ben[3].Key = testID("a key this node never held")
	for i := range ben {
		ben[i].Time = now - 10*day
	}
	// cai: old by the author's clock but received recently counts as old;
	// recent by its clock but held for long counts as old too. One room keeps
	// everything (override 0); another purges after 1 day, over the default 5.
	cai := chain("cai", 4, kept, key)
	cai[0].Time = now - 10*day
	cai[1].Room, cai[1].Time, cai[1].Received = general, now+day, now-6*day
	cai[2].Room, cai[2].Time = short, now-2*day
	cai[3].Room, cai[3].Time = general, now-2*day // within the default
	canary := map[wire.ID]string{}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutRoomKey(RoomKey{Room: general, KeyID: key, Epoch: 1}); err != nil {
			return err
		}
		for _, feed := range [][]Envelope{ana, ben, cai} {
			for _, e := range feed {
				if e.Received == 0 {
					e.Received = now - day/4
				}
				if _, err := tx.PutEnvelope(e); err != nil {
					return err
				}
				if e.Class != wire.ClassContent || bytes.Equal(e.Author, []byte("ben")) {
					continue // ben's room op and unreadable message have no message
				}
				text := "canary" + e.ID.String()[:12]
				canary[e.ID] = text
				if err := tx.PutMessage(messageOf(e, text)); err != nil {
					return err
				}
			}
		}
		if err := tx.PutFile(File{ID: ana[2].ID, Room: general, Author: ana[2].Author, Key: key, Manifest: []byte("manifest of ana 3")}); err != nil {
			return err
		}
		return tx.PutAction(Action{ID: ana[3].ID, Room: general, Target: ana[0].ID, Author: ana[3].Author, Seq: 4, Lamport: 40,
			Kind: uint8(wire.KindEdit), Text: "edited canary"})
	})
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldText := canary[ana[0].ID]
	if where := inFiles(t, path, []byte(oldText)); len(where) == 0 {
		t.Fatalf("%q is in no database file before the purge: the check below proves nothing", oldText)
	}

	r := Retention{Default: now - 5*day, Rooms: map[wire.ID]int64{kept: 0, short: now - day}}
	var total Purged
	var from int64
	for calls := 0; ; calls++ {
		p, err := s.Purge(ctx, r, from, 2) // two at a time: the caller goes on from p.Next
		if err != nil {
			t.Fatal(err)
		}
		total.Envelopes += p.Envelopes
		total.Messages += p.Messages
		total.Manifests = append(total.Manifests, p.Manifests...)
		if from = p.Next; from == 0 {
			break
		}
		if calls > 10 {
			t.Fatal("Purge never runs out")
		}
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}

	purged := []Envelope{ana[0], ana[1], ana[2], ana[3], ben[3], cai[1], cai[2]}
	keptEnvs := []Envelope{ana[4], ben[0], ben[1], ben[2], cai[0], cai[3]}
	if total.Envelopes != len(purged) || total.Messages != 6 {
		t.Errorf("purged %d envelopes and %d messages, want %d and 6", total.Envelopes, total.Messages, len(purged))
	}
	if len(total.Manifests) != 1 || string(total.Manifests[0]) != "manifest of ana 3" {
		t.Errorf("manifests of purged files = %q", total.Manifests)
	}
	for _, e := range purged {
		got, err := s.Envelope(ctx, e.ID)
		if err != nil {
			t.Fatalf("the header of purged %s/%d is gone: %v", e.Author, e.Seq, err)
		}
		if got.Raw != nil || got.Seq != e.Seq || got.Prev != e.Prev || got.Time != e.Time || got.Room != e.Room {
			t.Errorf("purged %s/%d: %+v", e.Author, e.Seq, got)
		}
		if _, err := s.Message(ctx, e.ID); err == nil {
			t.Errorf("message %s/%d outlives its purge", e.Author, e.Seq)
		}
		if text, ok := canary[e.ID]; ok {
			if where := inFiles(t, path, []byte(text)); len(where) > 0 {
				t.Errorf("%q of purged %s/%d is still in %v", text, e.Author, e.Seq, where)
			}
			if got, _ := s.Search(ctx, text, 5); len(got) > 0 {
				t.Errorf("search still finds %q", text)
			}
		}
		if where := inFiles(t, path, e.Raw); len(where) > 0 {
			t.Errorf("the body of purged %s/%d is still in %v", e.Author, e.Seq, where)
		}
	}
	for _, e := range keptEnvs {
		got, err := s.Envelope(ctx, e.ID)
		if err != nil || !bytes.Equal(got.Raw, e.Raw) {
			t.Errorf("%s/%d (class %d) lost its body: %v", e.Author, e.Seq, e.Class, err)
		}
		if text, ok := canary[e.ID]; ok {
			if got, _ := s.Search(ctx, text, 5); len(got) != 1 {
				t.Errorf("search misses kept %q", text)
			}
		}
	}
	if where := inFiles(t, path, []byte("edited canary")); len(where) > 0 {
		t.Errorf("the purged edit's text is still in %v", where)
	}
	if as, _ := s.Actions(ctx, ana[0].ID); len(as) != 0 {
		t.Errorf("actions of a purged edit remain: %+v", as)
	}
	if _, err := s.File(ctx, ana[2].ID); err == nil {
		t.Error("the purged file's record remains")
	}
	after, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(heads) {
		t.Fatalf("heads %v, before %v", after, heads)
	}
	for i := range heads {
		if after[i].Seq != heads[i].Seq || after[i].ID != heads[i].ID {
			t.Errorf("head of %s moved: %+v, before %+v", heads[i].Author, after[i], heads[i])
		}
	}
	// A purged envelope is no longer waiting for a key, and a second purge
	// finds nothing.
	update(t, s, func(tx *Tx) error {
		envs, err := tx.Undecrypted(ben[3].Key)
		if err != nil || len(envs) != 0 {
			t.Errorf("Undecrypted lists %d purged envelopes, %v", len(envs), err)
		}
		return nil
	})
	if p, err := s.Purge(ctx, r, 0, 100); err != nil || p.Envelopes != 0 || p.Next != 0 {
		t.Errorf("second purge: %+v, %v", p, err)
	}
}

func TestPurgeForks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room := testID("room")
	old := (&wire.Header{Version: wire.Version, Author: []byte("ana"), Seq: 1, Time: 1000, Class: wire.ClassContent,
		Room: room, Key: testID("k")}).Marshal()
	fresh := (&wire.Header{Version: wire.Version, Author: []byte("ana"), Seq: 1, Time: 5000, Class: wire.ClassContent,
		Room: room, Key: testID("k")}).Marshal()
	roster := (&wire.Header{Version: wire.Version, Author: []byte("ana"), Seq: 1, Time: 1000, Class: wire.ClassRoster}).Marshal()
	update(t, s, func(tx *Tx) error {
		for i, signed := range [][]byte{old, fresh, roster} {
			raw := (&wire.Envelope{Signed: signed, Sig: make([]byte, 64)}).Marshal()
			if err := tx.PutFork([]byte("ana"), 1, testID("fork", i), raw); err != nil {
				return err
			}
		}
		return nil
	})
	p, err := s.Purge(ctx, Retention{Default: 2000}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := s.ForkHeaders(ctx)
	if p.Forks != 1 || len(fs) != 2 {
		t.Errorf("purged %d forks, %d left; want 1 and 2", p.Forks, len(fs))
	}
	for _, f := range fs {
		if f.ID == testID("fork", 0) {
			t.Error("the old content fork is still held")
		}
	}
}

func TestTombstoneFromPeer(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, key := testID("room"), testID("key")
	envs := chain("ana", 3, room, key)
	update(t, s, func(tx *Tx) error {
		if _, err := tx.PutEnvelope(envs[0]); err != nil {
			return err
		}
		ok, err := tx.PutTombstone(envs[1])
		if err != nil || !ok {
			t.Errorf("PutTombstone = %v, %v", ok, err)
		}
		if _, err := tx.PutEnvelope(envs[2]); err != nil {
			return err
		}
		for i, want := range []bool{false, true, false} {
			if got, err := tx.UnverifiedTombstone(envs[i].ID); err != nil || got != want {
				t.Errorf("UnverifiedTombstone(seq %d) = %v, %v; want %v", i+1, got, err, want)
			}
		}
		return nil
	})
	heads, _ := s.Heads(ctx)
	if len(heads) != 1 || heads[0].Seq != 3 {
		t.Errorf("the head does not pass the tombstone: %+v", heads)
	}
	got, _ := s.Envelope(ctx, envs[1].ID)
	if got.Raw != nil || !got.Key.IsZero() || got.Prev != envs[0].ID {
		t.Errorf("tombstone stored as %+v", got)
	}
	// A tombstone this node made keeps its key ID: it was verified.
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMessage(messageOf(envs[2], "x")); err != nil {
			return err
		}
		return nil
	})
	if _, err := s.Purge(ctx, Retention{Default: envs[2].Time + 1}, 0, 10); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) error {
		if got, err := tx.UnverifiedTombstone(envs[2].ID); err != nil || got {
			t.Errorf("a tombstone of our own purge counts as unverified: %v, %v", got, err)
		}
		return nil
	})
}

// BenchmarkPurge: a history of CHARLA_BENCH_PURGE_N messages (default
// 50,000) of which the older half is purged, then compacted. Reported per
// purged envelope, and the compaction on its own.
func BenchmarkPurge(b *testing.B) {
	n := 50_000
	if s := os.Getenv("CHARLA_BENCH_PURGE_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s, _ := openTest(b)
		room, key := testID("room"), testID("key")
		envs := chain("ana", n, room, key)
		words := strings.Fields("hola que tal la reunion de mañana a las diez en la sala grande con el cliente")
		for i := 0; i < n; i += 500 {
			update(b, s, func(tx *Tx) error {
				for j := i; j < min(i+500, n); j++ {
					e := envs[j]
					e.Raw = bytes.Repeat([]byte{byte(j)}, 1024)
					e.Time, e.Received = int64(j), int64(j)
					if _, err := tx.PutEnvelope(e); err != nil {
						return err
					}
					text := fmt.Sprintf("%s %s %d", words[j%len(words)], words[(j*7)%len(words)], j)
					if err := tx.PutMessage(messageOf(e, text)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		b.StartTimer()
		start := time.Now()
		purged := 0
		var from int64
		for {
			p, err := s.Purge(ctx, Retention{Default: int64(n / 2)}, from, 500)
			if err != nil {
				b.Fatal(err)
			}
			purged += p.Envelopes
			if from = p.Next; from == 0 {
				break
			}
		}
		purgeTime := time.Since(start)
		start = time.Now()
		if err := s.Compact(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(purgeTime.Microseconds())/float64(purged), "purge-us/envelope")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "compact-ms")
		b.ReportMetric(float64(purged), "purged")
	}
}

// TestPurgeDisclosedOtherRoom: a disclosure keeps an unreadable envelope
// from retention only as a room op of the room it was disclosed for. One
// that names an envelope of another room (a member can make a share
// disclose any ID) must not keep that room's ciphertext past its limit.
func TestPurgeDisclosedOtherRoom(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	room, key := testID("room"), testID("key")
	envs := chain("ana", 2, room, key)
	for i := range envs {
		envs[i].Time, envs[i].Received = 1000, 1000
	}
	update(t, s, func(tx *Tx) error {
		for _, e := range envs {
			if _, err := tx.PutEnvelope(e); err != nil {
				return err
			}
		}
		if err := tx.PutDisclosed(room, envs[0].ID, [16]byte{1}); err != nil {
			return err
		}
		return tx.PutDisclosed(testID("other room"), envs[1].ID, [16]byte{1})
	})
	if _, err := s.Purge(ctx, Retention{Default: 2000}, 0, 10); err != nil {
		t.Fatal(err)
	}
	raws, err := s.RawsByID(ctx, []wire.ID{envs[0].ID, envs[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	if raws[envs[0].ID] == nil {
		t.Error("a room op disclosed for its room was purged")
	}
	if raws[envs[1].ID] != nil {
		t.Error("an envelope disclosed for another room was kept past retention")
	}
}
