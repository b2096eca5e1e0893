// Package store owns charla's local history: one SQLite database holding the
// envelopes a node has, the feed heads that make its vector, forks, decrypted
// messages and their full-text index, rooms, room keys, the roster, node
// metadata and the address book.
//
// The database is opened through the pure-Go modernc.org/sqlite driver in WAL
// mode with foreign keys on. Numbered migrations (migrations/NNNN_*.sql) are
// embedded in the binary and applied at Open; schema_version records which
// ones a file has.
//
// There is one writer. Every write runs in a transaction of Update (or of a
// small method built on it), serialised by a mutex, on a *sql.DB of exactly one
// connection. Reads run on a second *sql.DB of a few query_only connections,
// so a long batch of writes during catch-up never makes the UI or a sync peer
// wait for a read, and WAL gives each read a consistent snapshot of the last
// commit. One pool limited to one connection would queue every read behind
// the writer; one larger pool would let any connection write, and a durable
// Update's synchronous=FULL, set on the connection around the transaction,
// needs the write to be on a connection the store controls.
//
// Search uses an FTS5 index with external content (the text is stored once,
// in messages). The index is written after the transactions that store
// messages, not in them: IndexText adds a run of waiting messages in one
// statement and moves a mark (migrations/0005_text_index_lag.sql), and Search
// indexes whatever waits before it queries. An edit of an indexed message is
// re-indexed by PutMessage at once.
//
// A transaction keeps its own view of the feeds it touches (feeds.go): the
// head and whether anything lies above it, read once per author and kept in
// step with PutEnvelope, the head row written at commit.
//
// Ordering: messages are ordered by (lamport, author, seq) everywhere, author
// compared as bytes, which is how SQLite compares blobs.
//
// The store does not log, and no error it returns holds message text or key
// material.
package store
