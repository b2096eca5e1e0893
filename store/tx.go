package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/charla-im/charla/wire"
)

// Envelope is one stored envelope: its header in columns and its whole
// encoding in Raw.
type Envelope struct {
	ID       wire.ID
	Author   []byte // binary peer ID
	Seq      uint64
	Prev     wire.ID
	Lamport  uint64
	Time     int64 // author's clock, unix ms
	Class    wire.Class
	Room     wire.ID
	Key      wire.ID
	Raw      []byte // the whole encoded envelope
	Received int64  // unix ms when this node first held it
	Fork     bool   // a fork (Store.ForkHeaders), not the canonical envelope at its (author, seq): its bytes are read by ID with ForkRaws
}

// Message is the decrypted view of one content envelope.
type Message struct {
	ID      wire.ID
	Room    wire.ID
	Author  []byte
	Seq     uint64
	Lamport uint64
	Time    int64
	Kind    uint8
	Text    string
}

// Room is a channel or a direct conversation.
type Room struct {
	ID      wire.ID
	Name    string
	Kind    wire.RoomKind
	Members [][]byte // binary peer IDs, sorted
	// NoHistory: later members get only keys from their joining on. Once
	// set, it stays set.
	NoHistory bool
	// MembersKnown: Members were learnt from what the room's creator
	// signed, so authors of key shares and adds can be judged against
	// them. Once set, it stays set (ResetRoomMembers clears it).
	MembersKnown bool
}

// RoomKey is one epoch's key of a room.
type RoomKey struct {
	Room   wire.ID
	KeyID  wire.ID
	Epoch  uint64
	Parent wire.ID
	Key    [32]byte
	Added  int64 // unix ms when this node stored it
	// Untrusted: no share of it held so far came from someone this node
	// knows to be a member of the room. It decrypts, but it is not a send
	// key while a trusted one exists, and its recipients are no members.
	Untrusted bool
}

// Member is one entry of the roster as the node last computed it.
type Member struct {
	Peer      []byte
	Name      string
	Recipient string
	Role      wire.Role
	Admitted  wire.ID // the envelope that admitted it; zero for the founder
	Removed   bool
	CutSeq    uint64  // removed: the last seq of its feed that stays valid
	CutID     wire.ID // removed: the ID of that envelope
}

// Head is one author's entry of the vector: the highest seq held with no gap
// below it, and the ID of that envelope.
type Head struct {
	Author []byte
	Seq    uint64
	ID     wire.ID
}

// Tx is one write transaction, valid only inside the function given to
// Update. Its reads see its own writes.
type Tx struct {
	ctx context.Context
	// short is ctx without its cancellation, for the prepared statements of
	// the ingest path (see stmt), each a lookup or write of a row or a few
	// by key. modernc's driver starts a goroutine per statement to watch a
	// context that can end, ~8 µs, a fifth of such a statement; a
	// cancelled ctx still ends the transaction: database/sql rolls it back,
	// and PutEnvelope and PutMessage check it first.
	short context.Context
	sqlTx *sql.Tx // run statements through q or stmt, which insert held rows first
	s     *Store
	stmts map[*sql.Stmt]*sql.Stmt // the store's prepared statements bound to tx
	rows  heldRows                // rows PutEnvelope and PutMessage hold back (rows.go)
	err   error                   // a failed insert of held rows: the transaction rolls back

	// feeds are the feeds this transaction has looked at, by author, kept
	// in step with its writes (see feed). Code of this package that writes
	// the envelopes or feeds tables other than through PutEnvelope must
	// flush and forget the author's entry first, as DemoteFrom does.
	feeds map[string]*feed
	// textMark is text_index.indexed as this transaction read it; -1 until read.
	textMark int64
}

// newTx starts the Tx of sqlTx.
func newTx(ctx context.Context, sqlTx *sql.Tx, s *Store) *Tx {
	return &Tx{ctx: ctx, short: context.WithoutCancel(ctx), sqlTx: sqlTx, s: s,
		stmts: make(map[*sql.Stmt]*sql.Stmt, 8), textMark: -1, rows: heldRows{next: -1}}
}

// q returns the transaction for a statement, after inserting the rows held
// back, so that every statement sees every write before it. If that insert
// fails, the error is kept and ends the transaction (finish).
func (tx *Tx) q() *sql.Tx {
	tx.insertHeld()
	return tx.sqlTx
}

// stmt returns the store's prepared statement st bound to this transaction,
// after inserting the rows held back (see q). Binding reuses the statement
// already prepared on the writer connection. Run it with tx.short.
func (tx *Tx) stmt(st *sql.Stmt) *sql.Stmt {
	tx.insertHeld()
	return tx.bound(st)
}

// bound is stmt without inserting the held rows: for inserting them.
func (tx *Tx) bound(st *sql.Stmt) *sql.Stmt {
	if t, ok := tx.stmts[st]; ok {
		return t
	}
	t := tx.sqlTx.StmtContext(tx.ctx, st)
	tx.stmts[st] = t
	return t
}

// finish writes what the transaction holds back (held rows, moved heads)
// before its commit.
func (tx *Tx) finish() error {
	if tx.insertHeld(); tx.err != nil {
		return tx.err
	}
	return tx.flushFeeds()
}

// PutEnvelope stores e unless an envelope with its ID is already stored, in
// which case it changes nothing and reports false. Received zero means now.
//
// It keeps the author's head: if e.Seq is the head's seq + 1, the head moves
// to e and on through any following seqs already stored above the gap e
// filled. It checks neither signature nor prev links; the ingest pipeline
// does that before storing. A different envelope at an (author, seq) that is
// already taken is an error: the caller decides which is canonical and keeps
// the other with PutFork.
//
// An envelope that extends its author's feed may be held back and inserted
// with others before the next statement of the transaction (rows.go): e's
// byte slices must not change until the transaction ends.
func (tx *Tx) PutEnvelope(e Envelope) (inserted bool, err error) {
	return tx.putEnvelope(e, false)
}

// putEnvelope is PutEnvelope; a tombstone is never held back, as its ID is
// not the hash of anything it holds and may be stored already.
func (tx *Tx) putEnvelope(e Envelope, tombstone bool) (inserted bool, err error) {
	if err := e.check(); err != nil {
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	if err := tx.ctx.Err(); err != nil {
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	if e.Received == 0 {
		e.Received = now()
	}
	// An envelope that extends its author's feed is new: it is held back
	// and inserted with others (rows.go).
	f, err := tx.feed(e.Author)
	if err == nil {
		err = tx.err
	}
	if err != nil {
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	// Not a tombstone, nor an envelope whose ID a tombstone from a peer
	// may have taken: their IDs are a peer's word.
	_, weak := tx.s.weakIDs[e.ID]
	if !f.above && e.Seq == f.head.Seq+1 && !tombstone && !weak {
		tx.holdEnvelope(e)
		f.head.Seq, f.head.ID = e.Seq, e.ID
		f.dirty = true
		return true, nil
	}
	res, err := tx.stmt(tx.s.ws.putEnvelope).ExecContext(tx.short,
		e.ID[:], e.Author, int64(e.Seq), e.Prev[:], int64(e.Lamport), e.Time,
		int64(e.Class), e.Room[:], e.Key[:], e.Raw, e.Received)
	if err != nil {
		if se := (*sqlite.Error)(nil); errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
			return false, fmt.Errorf("put envelope %s: another envelope is stored at seq %d of its author (a fork)", e.ID, e.Seq)
		}
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	if n == 0 {
		return false, nil
	}
	if err := tx.advanceHead(e.Author, e.Seq, e.ID); err != nil {
		return false, fmt.Errorf("put envelope %s: %w", e.ID, err)
	}
	return true, nil
}

func (e *Envelope) check() error {
	switch {
	case len(e.Author) == 0:
		return errors.New("no author")
	case e.Seq == 0:
		return errors.New("seq 0")
	}
	if _, err := sqlInt("seq", e.Seq); err != nil {
		return err
	}
	if _, err := sqlInt("lamport", e.Lamport); err != nil {
		return err
	}
	return nil
}

// advanceHead moves author's head to (seq, id) if seq extends it, then on
// through the seqs already stored after it. The feeds row is written at
// commit.
func (tx *Tx) advanceHead(author []byte, seq uint64, id wire.ID) error {
	f, err := tx.feed(author)
	if err != nil {
		return err
	}
	if seq != f.head.Seq+1 {
		if seq > f.head.Seq {
			f.above = true // above a gap: the head waits for it to fill
		}
		return nil
	}
	if f.above {
		for {
			next, ok, err := tx.storedAt(author, seq+1)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			seq, id = seq+1, next
		}
		if f.above, err = tx.storedAbove(author, seq); err != nil {
			return err
		}
	}
	f.head.Seq, f.head.ID = seq, id
	f.dirty = true
	return nil
}

// EnvelopeAt returns the ID of the canonical envelope at (author, seq).
func (tx *Tx) EnvelopeAt(author []byte, seq uint64) (wire.ID, bool, error) {
	f, err := tx.feed(author)
	if err != nil {
		return wire.ID{}, false, err
	}
	if !f.above {
		// Nothing is stored above the head: the feed is 1…head.
		switch {
		case seq > f.head.Seq:
			return wire.ID{}, false, nil
		case seq == f.head.Seq:
			return f.head.ID, true, nil
		}
	}
	return tx.storedAt(author, seq)
}

// storedAt reads the ID at (author, seq) from the envelopes table.
func (tx *Tx) storedAt(author []byte, seq uint64) (wire.ID, bool, error) {
	var id wire.ID
	s, err := sqlInt("seq", seq)
	if err != nil {
		return id, false, nil // nothing is stored that high
	}
	err = tx.stmt(tx.s.ws.envelopeAt).QueryRowContext(tx.short, author, s).Scan(idCol{&id})
	if errors.Is(err, sql.ErrNoRows) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("envelope at seq %d: %w", seq, err)
	}
	return id, true, nil
}

// Head returns author's head, or false if the author's seq 1 is not held.
func (tx *Tx) Head(author []byte) (Head, bool, error) {
	f, err := tx.feed(author)
	if err != nil {
		return Head{}, false, err
	}
	h := f.head
	h.Author = bytes.Clone(author)
	return h, h.Seq > 0, nil
}

// PutFork keeps raw, a second envelope id at (author, seq), apart from
// history. Storing the same fork twice changes nothing.
func (tx *Tx) PutFork(author []byte, seq uint64, id wire.ID, raw []byte) error {
	s, err := sqlInt("seq", seq)
	if err != nil || len(author) == 0 || seq == 0 || raw == nil {
		return fmt.Errorf("put fork %s: need an author, a seq in range and the envelope", id)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO forks (id, author, seq, raw, received)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id[:], author, s, raw, now()); err != nil {
		return fmt.Errorf("put fork %s: %w", id, err)
	}
	return nil
}

// PutMessage stores m, replacing the message with its ID if there is one
// (an edit lands this way). A new message reaches the search index after
// the transaction (IndexText; Search indexes what waits first); a replaced
// one that was indexed already is re-indexed here. The envelope m.ID must
// already be stored, in this transaction or an earlier one.
func (tx *Tx) PutMessage(m Message) error {
	if err := tx.putMessage(m); err != nil {
		return fmt.Errorf("put message %s: %w", m.ID, err)
	}
	return nil
}

func (tx *Tx) putMessage(m Message) error {
	if len(m.Author) == 0 || m.Seq == 0 {
		return errors.New("need an author and a seq")
	}
	if err := tx.ctx.Err(); err != nil {
		return err
	}
	seq, err := sqlInt("seq", m.Seq)
	if err != nil {
		return err
	}
	lamport, err := sqlInt("lamport", m.Lamport)
	if err != nil {
		return err
	}

	held, err := tx.holdMessage(m, seq, lamport)
	switch {
	case err != nil:
		return err
	case held:
		// New: the indexer takes it after this transaction (textindex.go).
		tx.s.textWaiting.Store(true)
		return nil
	case tx.err != nil:
		return tx.err
	}
	// This rowid comes from the table: held messages read the next again.
	tx.rows.next = -1
	res, err := tx.stmt(tx.s.ws.putMessage).ExecContext(tx.short,
		m.ID[:], m.Room[:], m.Author, seq, lamport, m.Time, int64(m.Kind), m.Text)
	if se := (*sqlite.Error)(nil); errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return errors.New("its envelope is not stored")
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		// New: the indexer takes it after this transaction (textindex.go).
		tx.s.textWaiting.Store(true)
		return nil
	}

	// Stored already: replace it, and its search entry if it has one.
	var rowid int64
	var old string
	if err := tx.stmt(tx.s.ws.message).QueryRowContext(tx.short, m.ID[:]).Scan(&rowid, &old); err != nil {
		return err
	}
	if _, err := tx.stmt(tx.s.ws.setMessage).ExecContext(tx.short,
		m.Room[:], m.Author, seq, lamport, m.Time, int64(m.Kind), m.Text, rowid); err != nil {
		return err
	}
	if old == m.Text {
		return nil
	}
	mark, err := tx.indexedUpTo()
	if err != nil {
		return err
	}
	if rowid > mark {
		return nil // not indexed yet: the indexer reads the text as it is then
	}
	// External-content FTS5 deletes by the old values, which must be
	// exactly what was indexed.
	if _, err := tx.stmt(tx.s.ws.unindexText).ExecContext(tx.short, rowid, old); err != nil {
		return fmt.Errorf("unindex: %w", err)
	}
	if _, err := tx.stmt(tx.s.ws.indexText).ExecContext(tx.short, rowid, m.Text); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// indexedUpTo is the text index's mark: messages with a rowid up to it are
// indexed, those above wait for the indexer.
func (tx *Tx) indexedUpTo() (int64, error) {
	if tx.textMark < 0 {
		if err := tx.stmt(tx.s.ws.textMark).QueryRowContext(tx.short).Scan(&tx.textMark); err != nil {
			tx.textMark = -1
			return 0, fmt.Errorf("text index mark: %w", err)
		}
	}
	return tx.textMark, nil
}

// PutRoom creates or updates room r: a non-empty Name and a non-zero Kind
// overwrite what is stored; Members are added to those stored, never removed.
func (tx *Tx) PutRoom(r Room) error {
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO rooms (id, name, kind, no_history, members_known) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE rooms.name END,
			kind = CASE WHEN excluded.kind <> 0 THEN excluded.kind ELSE rooms.kind END,
			no_history = max(rooms.no_history, excluded.no_history),
			members_known = max(rooms.members_known, excluded.members_known)`,
		r.ID[:], r.Name, int64(r.Kind), r.NoHistory, r.MembersKnown); err != nil {
		return fmt.Errorf("put room %s: %w", r.ID, err)
	}
	if len(r.Members) == 0 {
		return nil
	}
	st, err := tx.q().PrepareContext(tx.ctx, `INSERT INTO room_members (room, peer) VALUES (?, ?)
		ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("put room %s: %w", r.ID, err)
	}
	defer st.Close()
	for _, p := range r.Members {
		if len(p) == 0 {
			return fmt.Errorf("put room %s: empty member peer ID", r.ID)
		}
		if _, err := st.ExecContext(tx.ctx, r.ID[:], p); err != nil {
			return fmt.Errorf("put room %s member: %w", r.ID, err)
		}
	}
	return nil
}

// PutRoomKey stores k unless a key with its KeyID is stored already; a
// trusted k makes a stored untrusted one trusted. Added zero means now.
func (tx *Tx) PutRoomKey(k RoomKey) error {
	epoch, err := sqlInt("epoch", k.Epoch)
	if err != nil {
		return fmt.Errorf("put room key %s: %w", k.KeyID, err)
	}
	if k.Added == 0 {
		k.Added = now()
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO room_keys (key_id, room, epoch, parent, key, added, trusted)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET trusted = max(room_keys.trusted, excluded.trusted)`,
		k.KeyID[:], k.Room[:], epoch, k.Parent[:], k.Key[:], k.Added, !k.Untrusted); err != nil {
		return fmt.Errorf("put room key %s: %w", k.KeyID, err)
	}
	return nil
}

const roomKeyCols = `room, key_id, epoch, parent, key, added, trusted`

func scanRoomKey(sc interface{ Scan(...any) error }, k *RoomKey) error {
	var key []byte
	var trusted bool
	if err := sc.Scan(idCol{&k.Room}, idCol{&k.KeyID}, uintCol[uint64]{&k.Epoch}, idCol{&k.Parent}, &key, &k.Added, &trusted); err != nil {
		return err
	}
	k.Untrusted = !trusted
	if len(key) != len(k.Key) {
		return fmt.Errorf("room key %s: stored key has %d bytes", k.KeyID, len(key))
	}
	copy(k.Key[:], key)
	clear(key)
	return nil
}

// RoomKey returns the room key with ID keyID, or false if none is stored.
func (tx *Tx) RoomKey(keyID wire.ID) (RoomKey, bool, error) {
	var k RoomKey
	err := scanRoomKey(tx.q().QueryRowContext(tx.ctx,
		`SELECT `+roomKeyCols+` FROM room_keys WHERE key_id = ?`, keyID[:]), &k)
	if errors.Is(err, sql.ErrNoRows) {
		return RoomKey{}, false, nil
	}
	if err != nil {
		return RoomKey{}, false, fmt.Errorf("room key %s: %w", keyID, err)
	}
	return k, true, nil
}

// TopEpoch returns the highest epoch of room's keys held, 0 for none.
func (tx *Tx) TopEpoch(room wire.ID) (uint64, error) {
	var top sql.NullInt64
	if err := tx.q().QueryRowContext(tx.ctx, `SELECT max(epoch) FROM room_keys WHERE room = ?`, room[:]).Scan(&top); err != nil {
		return 0, fmt.Errorf("top epoch of room %s: %w", room, err)
	}
	return uint64(top.Int64), nil
}

// PutMember creates or replaces the roster entry of m.Peer.
func (tx *Tx) PutMember(m Member) error {
	if len(m.Peer) == 0 {
		return errors.New("put member: empty peer ID")
	}
	removed := 0
	if m.Removed {
		removed = 1
	}
	cut, err := sqlInt("cut seq", m.CutSeq)
	if err != nil {
		return err
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO members (peer, name, recipient, role, admitted, removed, cut_seq, cut_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (peer) DO UPDATE SET name = excluded.name, recipient = excluded.recipient,
			role = excluded.role, admitted = excluded.admitted, removed = excluded.removed,
			cut_seq = excluded.cut_seq, cut_id = excluded.cut_id`,
		m.Peer, m.Name, m.Recipient, int64(m.Role), m.Admitted[:], removed, cut, m.CutID[:]); err != nil {
		return fmt.Errorf("put member: %w", err)
	}
	return nil
}

const memberCols = `peer, name, recipient, role, admitted, removed, cut_seq, coalesce(cut_id, zeroblob(32))`

func scanMember(sc interface{ Scan(...any) error }, m *Member) error {
	return sc.Scan(&m.Peer, &m.Name, &m.Recipient, uintCol[wire.Role]{&m.Role}, idCol{&m.Admitted}, &m.Removed,
		uintCol[uint64]{&m.CutSeq}, idCol{&m.CutID})
}

// Member returns the roster entry of peer, or false if there is none.
func (tx *Tx) Member(peer []byte) (Member, bool, error) {
	var m Member
	err := scanMember(tx.q().QueryRowContext(tx.ctx, `SELECT `+memberCols+` FROM members WHERE peer = ?`, peer), &m)
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, false, nil
	}
	if err != nil {
		return Member{}, false, fmt.Errorf("member: %w", err)
	}
	return m, true, nil
}

// Undecrypted returns the content envelopes encrypted with keyID that have
// no message yet, in display order, for decryption now that the key is here.
// A content envelope leaves this set once PutMessage stores its ID, whatever
// its kind, or once retention empties it.
func (tx *Tx) Undecrypted(keyID wire.ID) ([]Envelope, error) {
	// class = 3 is written out (wire.ClassContent) so that the planner can
	// use the partial index envelopes_content_key.
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+envelopeCols+` FROM envelopes e
		WHERE e.key = ? AND e.class = 3 AND e.raw IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.id)
		ORDER BY e.lamport, e.author, e.seq`, keyID[:])
	if err != nil {
		return nil, fmt.Errorf("undecrypted for key %s: %w", keyID, err)
	}
	envs, err := scanEnvelopes(rows)
	if err != nil {
		return nil, fmt.Errorf("undecrypted for key %s: %w", keyID, err)
	}
	return envs, nil
}

// Meta returns the value stored under key, or false.
func (tx *Tx) Meta(key string) ([]byte, bool, error) {
	var val []byte
	err := tx.q().QueryRowContext(tx.ctx, `SELECT val FROM meta WHERE key = ?`, key).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("meta %q: %w", key, err)
	}
	return val, true, nil
}

// SetMeta stores val under key, in this transaction.
func (tx *Tx) SetMeta(key string, val []byte) error {
	if val == nil {
		val = []byte{} // nil would bind as NULL
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO meta (key, val) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET val = excluded.val`, key, val); err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}
