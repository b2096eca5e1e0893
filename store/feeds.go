package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// feed is one author's feed as a transaction sees it: read from the store
// once, at the transaction's first look at the author, and then kept in step
// with what the transaction stores, so that ingesting a run of an author's
// envelopes costs no feed lookup per envelope (a sync batch holds hundreds).
type feed struct {
	head  Head // Seq 0: seq 1 is not held
	above bool // envelopes of the author are stored above head (a gap below them)
	dirty bool // head moved in this transaction; its feeds row is written at commit
}

// feed returns author's feed in this transaction, reading it on first use.
func (tx *Tx) feed(author []byte) (*feed, error) {
	if f, ok := tx.feeds[string(author)]; ok {
		return f, nil
	}
	f := &feed{}
	err := tx.stmt(tx.s.ws.head).QueryRowContext(tx.short, author).Scan(uintCol[uint64]{&f.head.Seq}, idCol{&f.head.ID})
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("feed head: %w", err)
	}
	if f.above, err = tx.storedAbove(author, f.head.Seq); err != nil {
		return nil, err
	}
	if tx.feeds == nil {
		tx.feeds = map[string]*feed{}
	}
	tx.feeds[string(author)] = f
	return f, nil
}

// storedAbove reports whether an envelope of author is stored above seq.
func (tx *Tx) storedAbove(author []byte, seq uint64) (bool, error) {
	if seq >= math.MaxInt64 {
		return false, nil
	}
	var one int
	err := tx.stmt(tx.s.ws.aboveHead).QueryRowContext(tx.short, author, int64(seq)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("feed above seq %d: %w", seq, err)
	}
	return true, nil
}

// flushFeed writes author's head if it moved in this transaction.
func (tx *Tx) flushFeed(author string) error {
	f, ok := tx.feeds[author]
	if !ok || !f.dirty {
		return nil
	}
	if _, err := tx.stmt(tx.s.ws.putHead).ExecContext(tx.short, []byte(author), int64(f.head.Seq), f.head.ID[:]); err != nil {
		return fmt.Errorf("advance head to %d: %w", f.head.Seq, err)
	}
	f.dirty = false
	return nil
}

// flushFeeds writes every head that moved; called before commit.
func (tx *Tx) flushFeeds() error {
	for a := range tx.feeds {
		if err := tx.flushFeed(a); err != nil {
			return err
		}
	}
	return nil
}

// forgetFeed writes author's head if it moved and drops the transaction's
// view of the feed: for code about to change the feed's rows directly.
func (tx *Tx) forgetFeed(author []byte) error {
	if err := tx.flushFeed(string(author)); err != nil {
		return err
	}
	delete(tx.feeds, string(author))
	return nil
}
