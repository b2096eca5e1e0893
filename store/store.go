package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/charla-im/charla/wire"
)

// ErrNotFound is returned (wrapped) by lookups of a single row that does not exist.
var ErrNotFound = errors.New("not found")

var errClosed = errors.New("store is closed")

//go:embed migrations/*.sql
var migrationFiles embed.FS

const (
	// busyTimeout bounds how long a connection waits for a lock another
	// connection holds (in practice: another process, or a WAL checkpoint).
	busyTimeout = 5 * time.Second

	// readConns is the size of the read pool. modernc's SQLite is pure Go, so
	// reads are CPU work; a few connections let a slow search run beside sync
	// and UI reads without letting reads swamp a two-core machine.
	readConns = 4
)

// Store is one open history database. Its methods are safe for concurrent use.
type Store struct {
	path string
	ck   *checkpointer // checkpoint.go

	mu     sync.Mutex // guards closed; held for the whole of each write transaction
	closed bool
	// weakIDs are the IDs of tombstones a peer sent (a superset: one whose
	// transaction rolled back, or that was replaced since, may stay). Such
	// an ID is that peer's word, so an envelope with one of them is never
	// held back (rows.go). Guarded by mu.
	weakIDs map[wire.ID]struct{}

	// textWaiting is set when a message is stored and cleared, under mu,
	// once the full-text index holds every message (textindex.go).
	textWaiting atomic.Bool

	w *sql.DB // one connection, every write
	r *sql.DB // query_only connections, every read outside Update

	ws    writeStmts
	rs    readStmts
	stmts []*sql.Stmt // all of the above, closed by Close
}

// writeStmts are prepared on the writer once and used inside transactions on
// the hot path of ingest.
type writeStmts struct {
	putEnvelope  *sql.Stmt
	putEnvelopes map[int]*sql.Stmt // by rows per INSERT (rows.go)
	putMessages  map[int]*sql.Stmt // by rows per INSERT (rows.go)
	nextRowid    *sql.Stmt
	envelopeAt   *sql.Stmt
	head         *sql.Stmt
	putHead      *sql.Stmt
	message      *sql.Stmt
	putMessage   *sql.Stmt
	setMessage   *sql.Stmt
	indexText    *sql.Stmt
	unindexText  *sql.Stmt
	actions      *sql.Stmt
	putAction    *sql.Stmt
	aboveHead    *sql.Stmt
	textMark     *sql.Stmt
}

// readStmts are prepared on the read pool for the reads that sync and the UI
// repeat most.
type readStmts struct {
	messages       *sql.Stmt
	message        *sql.Stmt
	envelope       *sql.Stmt
	hasEnvelope    *sql.Stmt
	hasVouched     *sql.Stmt
	envelopesAfter *sql.Stmt
	headersAfter   *sql.Stmt
	raws           *sql.Stmt
	forksOf        *sql.Stmt
	forkRaw        *sql.Stmt
	actions        *sql.Stmt
	action         *sql.Stmt
}

// Open opens the history database at path, creating the file (mode 0600) if
// it does not exist, and applies any migrations it lacks. The directory must
// exist.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string) (_ *Store, err error) {
	// SQLite creates new files 0644 less umask; history and room keys are
	// nobody else's business. SQLite gives -wal and -shm the main file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	uri, err := fileURI(path)
	if err != nil {
		return nil, err
	}
	busy := strconv.FormatInt(busyTimeout.Milliseconds(), 10)

	s := &Store{path: path}
	s.textWaiting.Store(true) // a crash may have left some: the first IndexText finds out
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	s.w, err = sql.Open("sqlite", uri+"?"+url.Values{
		"_pragma": {
			"busy_timeout(" + busy + ")",
			"foreign_keys(1)",
			// Retention must take purged text out of the files for real.
			// Turned on for the purge alone, it came too late: everyday
			// writes (page splits, search segments merged, an edit's text
			// replaced) had already left older copies of a message in free
			// space that the purge's own deletes never touch
			// (TestPurgeLeavesNoTextAfterEverydayWrites). On for every write
			// it cost nothing measurable (BenchmarkPutMessageBatch100).
			"secure_delete(1)",
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			// 16 MiB of page cache for the writer, not SQLite's 2 MiB: a
			// catch-up's transaction of up to 1,024 envelopes dirties
			// several MiB of pages, and a full cache spills them to the WAL
			// before the commit, to be written again (~6 µs per envelope in
			// profiles of the catch-up).
			"cache_size(-16384)",
			// A multi-row INSERT (rows.go) into a table with a foreign key
			// keeps a statement journal, so that a failed row can undo
			// the rows before it. In a temporary file that was a write
			// syscall per page it touched; in memory it is a copy.
			"temp_store(MEMORY)",
			// Checkpoints run beside the writer (checkpoint.go); its own
			// are a backstop.
			"wal_autocheckpoint(" + strconv.Itoa(walBackstopPages) + ")",
		},
		// BEGIN IMMEDIATE: take the write lock at the start, so a
		// transaction never fails half way to upgrade from reader to
		// writer if another process holds the lock.
		"_txlock": {"immediate"},
	}.Encode())
	if err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("journal mode is %q, not wal (is the file on a network file system?)", mode)
	}
	if err := migrate(ctx, s.w); err != nil {
		return nil, err
	}

	s.r, err = sql.Open("sqlite", uri+"?"+url.Values{
		"_pragma": {
			"busy_timeout(" + busy + ")",
			"query_only(1)",
		},
	}.Encode())
	if err != nil {
		return nil, err
	}
	s.r.SetMaxOpenConns(readConns)
	s.r.SetMaxIdleConns(readConns)

	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	if err := s.loadWeakIDs(ctx); err != nil {
		return nil, err
	}
	if s.ck, err = startCheckpointer(uri + "?" + url.Values{"_pragma": {"busy_timeout(" + busy + ")"}}.Encode()); err != nil {
		return nil, err
	}
	return s, nil
}

// loadWeakIDs reads the IDs of the tombstones peers sent: content with no
// body and a zero key ID (by the partial index envelopes_content_key).
func (s *Store) loadWeakIDs(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT id FROM envelopes WHERE class = 3 AND key = zeroblob(32) AND raw IS NULL`)
	if err != nil {
		return fmt.Errorf("open history %s: read tombstones from peers: %w", s.path, err)
	}
	defer rows.Close()
	s.weakIDs = map[wire.ID]struct{}{}
	for rows.Next() {
		var id wire.ID
		if err := rows.Scan(idCol{&id}); err != nil {
			return fmt.Errorf("open history %s: read tombstones from peers: %w", s.path, err)
		}
		s.weakIDs[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("open history %s: read tombstones from peers: %w", s.path, err)
	}
	return nil
}

// fileURI turns a path into a file: URI, so that characters SQLite or the
// driver would read as URI syntax ('?', '#', '%') stay part of the name.
func fileURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/…
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

func (s *Store) prepare(ctx context.Context) error {
	prep := func(db *sql.DB, dst **sql.Stmt, query string) error {
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		*dst = st
		s.stmts = append(s.stmts, st)
		return nil
	}
	for _, p := range []struct {
		db    *sql.DB
		dst   **sql.Stmt
		query string
	}{
		{s.w, &s.ws.putEnvelope, `INSERT INTO envelopes (id, author, seq, prev, lamport, time, class, room, key, raw, received)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{s.w, &s.ws.nextRowid, `SELECT max(coalesce((SELECT max(rowid) FROM messages), 0), (SELECT indexed FROM text_index)) + 1`},
		{s.w, &s.ws.envelopeAt, `SELECT id FROM envelopes WHERE author = ? AND seq = ?`},
		{s.w, &s.ws.head, `SELECT head_seq, head_id FROM feeds WHERE author = ?`},
		{s.w, &s.ws.putHead, `INSERT INTO feeds (author, head_seq, head_id) VALUES (?, ?, ?)
			ON CONFLICT (author) DO UPDATE SET head_seq = excluded.head_seq, head_id = excluded.head_id`},
		{s.w, &s.ws.message, `SELECT rowid, text FROM messages WHERE id = ?`},
		// The rowid is above both every row and the text index's mark, so
		// a new message is always one the indexer has yet to take.
		{s.w, &s.ws.putMessage, `INSERT INTO messages (rowid, id, room, author, seq, lamport, time, kind, text)
			VALUES (max(coalesce((SELECT max(rowid) FROM messages), 0), (SELECT indexed FROM text_index)) + 1,
				?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`},
		{s.w, &s.ws.setMessage, `UPDATE messages SET room = ?, author = ?, seq = ?, lamport = ?, time = ?, kind = ?, text = ?
			WHERE rowid = ?`},
		{s.w, &s.ws.indexText, `INSERT INTO messages_fts (rowid, text) VALUES (?, ?)`},
		{s.w, &s.ws.unindexText, `INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', ?, ?)`},
		{s.w, &s.ws.aboveHead, `SELECT 1 FROM envelopes WHERE author = ? AND seq > ? LIMIT 1`},
		{s.w, &s.ws.textMark, `SELECT indexed FROM text_index`},
		{s.w, &s.ws.actions, actionsQuery},
		{s.w, &s.ws.putAction, `INSERT INTO actions (` + actionCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{s.r, &s.rs.headersAfter, `SELECT id, author, seq, prev, lamport, time, class, room, key, NULL, received
			FROM envelopes WHERE author = ? AND seq > ? ORDER BY seq LIMIT ?`},
		{s.r, &s.rs.raws, `SELECT id, raw FROM envelopes WHERE author = ? AND seq BETWEEN ? AND ?`},
		{s.r, &s.rs.forksOf, `SELECT seq, id FROM forks WHERE author = ? ORDER BY seq, id`},
		{s.r, &s.rs.forkRaw, `SELECT raw FROM forks WHERE id = ?`},
		{s.r, &s.rs.actions, actionsQuery},
		{s.r, &s.rs.action, `SELECT ` + actionCols + ` FROM actions WHERE id = ?`},
		{s.r, &s.rs.messages, `SELECT ` + messageCols + ` FROM messages WHERE room = ?
			ORDER BY lamport DESC, author DESC, seq DESC LIMIT ?`},
		{s.r, &s.rs.message, `SELECT ` + messageCols + ` FROM messages WHERE id = ?`},
		{s.r, &s.rs.envelope, `SELECT ` + envelopeCols + ` FROM envelopes WHERE id = ?`},
		{s.r, &s.rs.hasEnvelope, `SELECT 1 FROM envelopes WHERE id = ?`},
		{s.r, &s.rs.hasVouched, `SELECT 1 FROM envelopes WHERE id = ? AND (raw IS NOT NULL OR key <> zeroblob(32))`},
		{s.r, &s.rs.envelopesAfter, `SELECT ` + envelopeCols + ` FROM envelopes WHERE author = ? AND seq > ?
			ORDER BY seq LIMIT ?`},
	} {
		if err := prep(p.db, p.dst, p.query); err != nil {
			return err
		}
	}
	s.ws.putEnvelopes = make(map[int]*sql.Stmt, len(rowsPerInsert))
	s.ws.putMessages = make(map[int]*sql.Stmt, len(rowsPerInsert))
	for _, n := range rowsPerInsert {
		var env, msg *sql.Stmt
		if err := prep(s.w, &env, insertRows("envelopes", envelopeInsertCols, envelopeInsertArgs, n)); err != nil {
			return err
		}
		if err := prep(s.w, &msg, insertRows("messages", messageInsertCols, messageInsertArgs, n)); err != nil {
			return err
		}
		s.ws.putEnvelopes[n], s.ws.putMessages[n] = env, msg
	}
	return nil
}

// Close waits for a write in progress, then closes the prepared statements
// and the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Let SQLite refresh the statistics its planner uses; cheap when nothing
	// changed (https://sqlite.org/lang_analyze.html#pragopt).
	_, err := s.w.ExecContext(context.Background(), "PRAGMA optimize")
	if err = errors.Join(err, s.closeAll()); err != nil {
		return fmt.Errorf("close history %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) closeAll() error {
	var errs []error
	if s.ck != nil {
		errs = append(errs, s.ck.close()) // before the writer: its close checkpoints the rest
	}
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// Update runs fn in one write transaction and commits it if fn returns nil;
// otherwise it rolls back and returns fn's error as is. Writes are
// serialised: fn runs while no other write does, and must not call Update or
// another writing method of s (it would wait for itself). Reads through s
// inside fn see the last commit, not fn's own writes; use the Tx methods for
// those.
//
// durable=true runs the transaction with synchronous=FULL, so the commit is
// on disk when Update returns: a local send is durable before it is
// acknowledged. durable=false uses NORMAL: a commit may be lost by a power
// cut (never corrupted), which is fine for anything a peer can send again.
func (s *Store) Update(ctx context.Context, durable bool, fn func(tx *Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("update history %s: %w", s.path, errClosed)
	}
	return s.update(ctx, durable, fn)
}

func (s *Store) update(ctx context.Context, durable bool, fn func(tx *Tx) error) (err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer conn.Close()

	// SQLite refuses to change synchronous inside a transaction, so it is
	// set on the connection around it.
	if durable {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			return fmt.Errorf("begin durable write: %w", err)
		}
		defer func() {
			if _, rerr := conn.ExecContext(context.Background(), "PRAGMA synchronous = NORMAL"); rerr != nil {
				// The commit stands; drop the connection rather than
				// leave every later write on FULL. The pool opens a
				// fresh one with the DSN's NORMAL.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}

	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer sqlTx.Rollback() // a no-op once committed

	tx := newTx(ctx, sqlTx, s)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.finish(); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.ck.poke()
	return nil
}

// Meta returns the value stored under key, or an error wrapping ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var val []byte
	err := s.r.QueryRowContext(ctx, `SELECT val FROM meta WHERE key = ?`, key).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("meta %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("meta %q: %w", key, err)
	}
	return val, nil
}

// SetMeta stores val under key in a transaction of its own.
func (s *Store) SetMeta(ctx context.Context, key string, val []byte) error {
	return s.Update(ctx, false, func(tx *Tx) error { return tx.SetMeta(key, val) })
}

// migrate applies the embedded migrations the database lacks, each in its
// own transaction together with its schema_version row.
func migrate(ctx context.Context, db *sql.DB) error {
	migs, err := migrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER NOT NULL PRIMARY KEY,
		applied INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migs) {
		return fmt.Errorf("schema version %d is newer than this charla knows (%d)", have, len(migs))
	}
	for i, m := range migs[have:] {
		version := have + i + 1
		if err := applyMigration(ctx, db, version, m); err != nil {
			return fmt.Errorf("migration %d (%s): %w", version, m.name, err)
		}
	}
	return nil
}

type migration struct {
	name string
	sql  string
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3 … with no gap or duplicate.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	migs := make([]migration, 0, len(names))
	for i, name := range names {
		base := filepath.Base(name)
		num, _, ok := strings.Cut(base, "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n != i+1 {
			return nil, fmt.Errorf("migration %s: want number %04d", base, i+1)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		migs = append(migs, migration{name: base, sql: string(b)})
	}
	return migs, nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied) VALUES (?, ?)`,
		version, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// Conversions between Go and SQLite columns. SQLite integers are int64, so
// every uint64 is checked on the way in.

func sqlInt(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%s %d out of range", what, v)
	}
	return int64(v), nil
}

// idCol scans a 32-byte blob into a wire.ID.
type idCol struct{ p *wire.ID }

func (c idCol) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok || len(b) != len(c.p) {
		return fmt.Errorf("id column: want a %d-byte blob, got %T of length %d", len(c.p), src, len(b))
	}
	copy(c.p[:], b)
	return nil
}

// uintCol scans a non-negative integer into an unsigned type, checking range.
type uintCol[T ~uint8 | ~uint64] struct{ p *T }

func (c uintCol[T]) Scan(src any) error {
	v, ok := src.(int64)
	if !ok || v < 0 || int64(T(v)) != v {
		return fmt.Errorf("integer column: %v (%T) out of range", src, src)
	}
	*c.p = T(v)
	return nil
}

// now is the clock for received and added times left zero by the caller.
func now() int64 { return time.Now().UnixMilli() }
