package store

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints copy the WAL's pages into the database file. SQLite runs one
// inside the commit that takes the WAL past wal_autocheckpoint pages, so
// that commit waits for the copy and two fsyncs: ~30% of the writer's wall
// time when it writes fast (BenchmarkCatchUp's store alone: 8,600 → 14,900
// messages a second with them moved off). A checkpointer runs them on a
// connection of its own, after writes, while the writer goes on; the
// writer's own automatic checkpoint stays as a backstop at
// walBackstopPages, should this one fall behind (a reader holding an old
// snapshot keeps a passive checkpoint from finishing).
const (
	walBackstopPages = 16384                  // 64 MiB of 4 KiB pages
	checkpointEvery  = 100 * time.Millisecond // at most one passive checkpoint per this
)

type checkpointer struct {
	db   *sql.DB
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// startCheckpointer opens its connection to dsn and starts it; it sleeps
// until poke is called.
func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

// poke says a transaction committed: a checkpoint is due soon.
func (c *checkpointer) poke() {
	if c == nil {
		return // the store is still opening
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		// PASSIVE: copies what no reader still needs and never waits for
		// the writer or a reader. A failure (busy, say) is left to the next
		// poke, or to the writer's backstop.
		_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// close stops the loop and closes the connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
