package node

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPurgeCompactsAfterBusyCheckpoint: a reader that keeps the write-ahead
// log busy makes a purge's Compact fail, and the purged text stays in the
// log. The next purge must compact again, though it purges nothing new,
// and the text must then leave the database files.
func TestPurgeCompactsAfterBusyCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a busy checkpoint; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	a := openNode(t, home)
	if _, err := a.SetPolicy(ctx, PolicyRetentionDays, "1", ""); err != nil {
		t.Fatal(err)
	}
	const canary = "zzcanaryqq the plan nobody may keep"
	if _, err := a.Send(ctx, "general", canary); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Search(ctx, "zzcanaryqq", 5); err != nil { // into the search index too
		t.Fatal(err)
	}
	later := time.Now().Add(3 * 24 * time.Hour)

	// Another process reading history: its snapshot keeps the log busy.
	db, err := sql.Open("sqlite", filepath.Join(home, databaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rtx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := rtx.QueryRow(`SELECT count(*) FROM envelopes`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	rep, err := a.purge(ctx, later)
	if rep.Envelopes == 0 {
		t.Fatalf("nothing purged: %+v", rep)
	}
	if err == nil {
		t.Fatal("the purge compacted although a reader kept the log busy: this test proves nothing")
	}
	rtx.Rollback()
	db.Close()

	if _, err := a.purge(ctx, later); err != nil {
		t.Fatalf("second purge: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(home, databaseFile) + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("zzcanaryqq")) {
			t.Errorf("the purged text is still in %s after the next purge", filepath.Base(f))
		}
	}
}
