package node

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charla-im/charla/wire"
)

// TestAuditRosterOpWithoutBytes: retention never purges roster ops or key
// shares, so one held without its bytes was taken out of the store by
// hand (here a policy op, which hides it from the audit's list). The audit
// must call the chain broken there, not "purged by retention".
func TestAuditRosterOpWithoutBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("opens and reopens a node; run without -short")
	}
	ctx := context.Background()
	for _, class := range []wire.Class{wire.ClassRoster, wire.ClassKeyShare} {
		t.Run(class.String(), func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "ana")
			initHome(t, home)
			a := openNode(t, home)
			if _, err := a.SetPolicy(ctx, PolicyRetentionDays, "30", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Send(ctx, "general", "after the op"); err != nil {
				t.Fatal(err)
			}
			if rep := mustAudit(t, a, true); !rep.Verified {
				t.Fatalf("untouched store did not verify: %+v", rep.Chains)
			}
			a.Close()

			db, err := sql.Open("sqlite", filepath.Join(home, databaseFile))
			if err != nil {
				t.Fatal(err)
			}
			var seq uint64
			if err := db.QueryRow(`SELECT max(seq) FROM envelopes WHERE class = ?`, int(class)).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE envelopes SET raw = NULL WHERE class = ? AND seq = ?`, int(class), seq); err != nil {
				t.Fatal(err)
			}
			db.Close()

			a = openNode(t, home)
			rep := mustAudit(t, a, true)
			if rep.Verified {
				t.Fatalf("a store with a %s emptied by hand verified: %+v", class, rep.Chains)
			}
			ch := rep.Chains[0]
			if ch.Status != ChainBroken || ch.At != seq || !strings.Contains(ch.Problem, "never purges") {
				t.Fatalf("chain %+v, want broken at seq %d", ch, seq)
			}
		})
	}
}

// TestAuditDeletedEnvelope: an envelope row deleted from the store leaves
// a gap below the feed's head as the store records it (the highest seq held
// with none missing below). Such a gap cannot be "not yet synced": the
// audit must call the chain broken, whether the deleted row was a policy op
// in the middle of the feed (which also hides it from the list) or the
// feed's newest envelope (seen by the full check).
func TestAuditDeletedEnvelope(t *testing.T) {
	if testing.Short() {
		t.Skip("opens and reopens a node; run without -short")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		which string // SQL picking the seq to delete
		full  bool
	}{
		// The three policy ops are consecutive: max-1 is the middle one,
		// below the last, so even the default audit walks past it.
		{"policy op", `SELECT max(seq) - 1 FROM envelopes WHERE class = 1`, false},
		{"policy op, full", `SELECT max(seq) FROM envelopes WHERE class = 1`, true},
		{"newest envelope, full", `SELECT max(seq) FROM envelopes`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "ana")
			initHome(t, home)
			a := openNode(t, home)
			for _, days := range []string{"30", "60", "90"} {
				if _, err := a.SetPolicy(ctx, PolicyRetentionDays, days, ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.Send(ctx, "general", "after the ops"); err != nil {
				t.Fatal(err)
			}
			if rep := mustAudit(t, a, tc.full); !rep.Verified {
				t.Fatalf("untouched store did not verify: %+v", rep.Chains)
			}
			a.Close()

			db, err := sql.Open("sqlite", filepath.Join(home, databaseFile))
			if err != nil {
				t.Fatal(err)
			}
			var seq uint64
			if err := db.QueryRow(tc.which).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`DELETE FROM envelopes WHERE seq = ?`, seq); err != nil {
				t.Fatal(err)
			}
			db.Close()

			a = openNode(t, home)
			rep := mustAudit(t, a, tc.full)
			if rep.Verified {
				t.Fatalf("a store with seq %d deleted verified: %+v", seq, rep.Chains)
			}
			if ch := rep.Chains[0]; ch.Status != ChainBroken || ch.At != seq || !strings.Contains(ch.Problem, "altered") {
				t.Fatalf("chain %+v, want broken at seq %d", ch, seq)
			}
		})
	}
}
