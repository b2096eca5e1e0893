package store

import (
	"fmt"
	"strings"

	"github.com/charla-im/charla/wire"
)

// Held rows: a run of new envelopes and their messages goes into SQLite a
// few dozen rows per INSERT rather than one statement per row.
//
// In a catch-up the writer, which runs alone and sets the pace of the pull,
// ran two statements per envelope, and each paid ~8 µs in database/sql and
// the driver (arguments checked and converted, a result, locks) besides
// SQLite's own work. PutEnvelope and PutMessage therefore hold back the rows
// they know to be new, and the transaction inserts them together before any
// other statement runs (q, stmt) and before its commit (finish): every
// statement still sees every write before it, in the order made.
//
// An envelope is known to be new when it extends its author's feed: its seq
// is the head's + 1 and nothing is stored above the head (the feed view of
// feeds.go), so no row holds its (author, seq); its ID is the hash of what
// it signed, author and seq included, so no row holds its ID either,
// except a tombstone a peer sent, whose ID is only that peer's word: an
// envelope with the ID of one (Store.weakIDs) is not held back, nor is a
// tombstone. A
// message is known to be new when its envelope is one of those. Held rows
// are inserted with plain INSERTs, so were either ever untrue, the insert
// fails and the transaction with it, rather than report a row stored that
// is not.

// heldRowsMax is the most rows one INSERT carries: the largest of
// rowsPerInsert. SQLite allows 32,766 parameters.
const heldRowsMax = 32

// heldEnvelopesMax bounds the envelopes held at once: a transaction of a
// whole catch-up batch inserts them in a few runs.
const heldEnvelopesMax = 256

// rowsPerInsert are the sizes of the prepared multi-row INSERTs, largest
// first; a run is inserted with as many of the largest as fit, then the next.
var rowsPerInsert = [...]int{heldRowsMax, 8, 1}

const (
	envelopeInsertCols = `id, author, seq, prev, lamport, time, class, room, key, raw, received`
	envelopeInsertArgs = 11
	messageInsertCols  = `rowid, id, room, author, seq, lamport, time, kind, text`
	messageInsertArgs  = 9
)

// insertRows is an INSERT of n rows of the given columns.
func insertRows(table, cols string, args, n int) string {
	row := "(" + strings.Repeat("?, ", args-1) + "?)"
	return "INSERT OR FAIL INTO " + table + " (" + cols + ") VALUES " + strings.Repeat(row+", ", n-1) + row
}

// heldRows are the rows a transaction holds back.
type heldRows struct {
	envs []Envelope
	ids  map[wire.ID]bool // the IDs of envs: their messages are new too
	msgs []heldMessage
	next int64 // the rowid of the next held message; -1: read it first
	args []any // reused for the INSERTs' arguments
}

type heldMessage struct {
	Message
	rowid, seq, lamport int64
}

// holdEnvelope holds e back; the caller knows it to be new.
func (tx *Tx) holdEnvelope(e Envelope) {
	if tx.rows.ids == nil {
		tx.rows.ids = make(map[wire.ID]bool)
	}
	if len(tx.rows.envs) >= heldEnvelopesMax {
		// Before e, so that its message can still be held.
		tx.insertHeld()
	}
	tx.rows.ids[e.ID] = true
	tx.rows.envs = append(tx.rows.envs, e)
}

// holdMessage holds m back if its envelope is held, reporting whether it did.
func (tx *Tx) holdMessage(m Message, seq, lamport int64) (bool, error) {
	if !tx.rows.ids[m.ID] {
		return false, nil
	}
	if tx.rows.next < 0 {
		// The rowid is above both every row and the text index's mark, so a
		// new message is always one the indexer has yet to take (see the
		// putMessage statement); held messages take the next ones in turn.
		if err := tx.stmt(tx.s.ws.nextRowid).QueryRowContext(tx.short).Scan(&tx.rows.next); err != nil {
			return false, fmt.Errorf("next message rowid: %w", err)
		}
	}
	tx.rows.msgs = append(tx.rows.msgs, heldMessage{Message: m, rowid: tx.rows.next, seq: seq, lamport: lamport})
	tx.rows.next++
	// A second PutMessage of this ID (an edit in the same transaction)
	// replaces the row: it takes the path that looks for one.
	delete(tx.rows.ids, m.ID)
	return true, nil
}

// insertHeld inserts the held rows, envelopes first (messages refer to
// them). A failure is kept in tx.err: the transaction cannot commit.
func (tx *Tx) insertHeld() {
	r := &tx.rows
	if tx.err != nil || len(r.envs)+len(r.msgs) == 0 {
		return
	}
	a := r.args[:0]
	for i := 0; i < len(r.envs); {
		n := insertSize(len(r.envs) - i)
		a = a[:0]
		for _, e := range r.envs[i : i+n] {
			a = append(a, e.ID[:], e.Author, int64(e.Seq), e.Prev[:], int64(e.Lamport), e.Time,
				int64(e.Class), e.Room[:], e.Key[:], e.Raw, e.Received)
		}
		if _, err := tx.bound(tx.s.ws.putEnvelopes[n]).ExecContext(tx.short, a...); err != nil {
			tx.err = fmt.Errorf("put envelopes from %s: %w", r.envs[i].ID, err)
			return
		}
		i += n
	}
	for i := 0; i < len(r.msgs); {
		n := insertSize(len(r.msgs) - i)
		a = a[:0]
		for _, m := range r.msgs[i : i+n] {
			a = append(a, m.rowid, m.ID[:], m.Room[:], m.Author, m.seq, m.lamport, m.Time, int64(m.Kind), m.Text)
		}
		if _, err := tx.bound(tx.s.ws.putMessages[n]).ExecContext(tx.short, a...); err != nil {
			tx.err = fmt.Errorf("put messages from %s: %w", r.msgs[i].ID, err)
			return
		}
		i += n
	}
	clear(a)
	r.args = a[:0]
	clear(r.envs)
	clear(r.msgs)
	r.envs, r.msgs = r.envs[:0], r.msgs[:0]
	clear(r.ids)
}

// insertSize is the size of the largest prepared INSERT that n rows fill.
func insertSize(n int) int {
	for _, k := range rowsPerInsert {
		if n >= k {
			return k
		}
	}
	return 1
}
