-- 0001: the first schema. IDs (envelope, room, key) are 32-byte blobs, the zero
-- ID included; peer IDs are binary blobs; enums from package wire are integers.

-- Every envelope this node holds, canonical ones only (forks live apart), with
-- its header in columns and its whole encoding in raw. raw is nullable because
-- retention will purge bodies and keep the header as a tombstone.
CREATE TABLE envelopes (
    id       BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    author   BLOB    NOT NULL,
    seq      INTEGER NOT NULL CHECK (seq > 0),
    prev     BLOB    NOT NULL,
    lamport  INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    class    INTEGER NOT NULL,
    room     BLOB    NOT NULL,
    key      BLOB    NOT NULL,
    raw      BLOB,
    received INTEGER NOT NULL
) STRICT;

-- One canonical envelope per (author, seq): a second one is a fork.
CREATE UNIQUE INDEX envelopes_author_seq ON envelopes (author, seq);
CREATE INDEX envelopes_room_lamport ON envelopes (room, lamport);
-- Content waiting for its room key is found by key. Partial: only content
-- carries a key, so roster ops and key shares cost nothing here.
CREATE INDEX envelopes_content_key ON envelopes (key) WHERE class = 3;

-- Per author, the highest seq held with no gap below it, and that envelope's
-- ID: one entry of the vector. No row until seq 1 is held.
CREATE TABLE feeds (
    author   BLOB    NOT NULL PRIMARY KEY,
    head_seq INTEGER NOT NULL CHECK (head_seq > 0),
    head_id  BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

-- Second and later envelopes at one (author, seq), kept apart from history.
CREATE TABLE forks (
    id       BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    author   BLOB    NOT NULL,
    seq      INTEGER NOT NULL CHECK (seq > 0),
    raw      BLOB    NOT NULL,
    received INTEGER NOT NULL
) STRICT;

CREATE INDEX forks_author_seq ON forks (author, seq);

-- The decrypted view of content envelopes. rowid is explicit so the FTS5
-- index can name rows by it, and stays the same when a message is replaced.
CREATE TABLE messages (
    rowid   INTEGER PRIMARY KEY,
    id      BLOB    NOT NULL UNIQUE REFERENCES envelopes (id) ON DELETE CASCADE,
    room    BLOB    NOT NULL,
    author  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    time    INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    text    TEXT    NOT NULL
) STRICT;

-- Display order, the same on every node: (lamport, author, seq) within a room.
CREATE INDEX messages_room_order ON messages (room, lamport, author, seq);

-- Full-text index over messages.text, external content: the text is stored
-- once, in messages. remove_diacritics 2 lets "cafe" find "café".
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- PutMessage writes messages_fts itself, in the same transaction. Insert and
-- update triggers would cost twice as much on the ingest path: a statement
-- that fires a trigger opens a statement savepoint, and FTS5 flushes its
-- pending terms to disk at every savepoint, so a batch of 100 messages wrote
-- 100 tiny index segments instead of one. Deletes (retention, a cascade from
-- envelopes) are rare and bulk, and keep the index right by trigger.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

-- Rooms this node knows of. name '' and kind 0 mean not known yet.
CREATE TABLE rooms (
    id   BLOB    NOT NULL PRIMARY KEY,
    name TEXT    NOT NULL DEFAULT '',
    kind INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE room_members (
    room BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    peer BLOB NOT NULL,
    PRIMARY KEY (room, peer)
) STRICT, WITHOUT ROWID;

-- Every room key this node has held; readers keep them all so history stays
-- readable. Not tied to rooms by a foreign key: a key share may be stored
-- before anything else about its room.
CREATE TABLE room_keys (
    key_id BLOB    NOT NULL PRIMARY KEY CHECK (length(key_id) = 32),
    room   BLOB    NOT NULL,
    epoch  INTEGER NOT NULL,
    parent BLOB    NOT NULL,
    key    BLOB    NOT NULL CHECK (length(key) = 32),
    added  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX room_keys_room ON room_keys (room, epoch, key_id);

-- The roster as this node last computed it. admitted is the ID of the
-- envelope that admitted the member, zero for the founder.
CREATE TABLE members (
    peer      BLOB    NOT NULL PRIMARY KEY,
    name      TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    role      INTEGER NOT NULL,
    admitted  BLOB    NOT NULL,
    removed   INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1))
) STRICT, WITHOUT ROWID;

-- Small named values of the node (workspace ID, own feed state, …).
CREATE TABLE meta (
    key TEXT NOT NULL PRIMARY KEY,
    val BLOB NOT NULL
) STRICT, WITHOUT ROWID;

-- The address book: every member seen, and where.
CREATE TABLE book (
    peer      BLOB    NOT NULL PRIMARY KEY,
    via       TEXT    NOT NULL,
    last_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Addresses of a book entry. pos is the address's place in the entry that
-- last reported it, so addresses seen at one moment keep their given order.
CREATE TABLE book_addrs (
    peer BLOB    NOT NULL REFERENCES book (peer) ON DELETE CASCADE,
    addr TEXT    NOT NULL,
    seen INTEGER NOT NULL,
    pos  INTEGER NOT NULL,
    PRIMARY KEY (peer, addr)
) STRICT, WITHOUT ROWID;
