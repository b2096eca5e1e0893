-- 0005: the full-text index is brought up to date after the write that
-- stores a message, not in it (DESIGN.md "FTS5 index, updated off the hot
-- path"). Every message with rowid <= text_index.indexed is in messages_fts;
-- those above are waiting. New messages always get a rowid above the mark
-- (PutMessage assigns it), so a waiting message is never mistaken for an
-- indexed one, even after the newest indexed rows were deleted.
CREATE TABLE text_index (
    one     INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    indexed INTEGER NOT NULL
) STRICT;

-- Everything stored so far was indexed in its own transaction.
INSERT INTO text_index (one, indexed) VALUES (1, (SELECT coalesce(max(rowid), 0) FROM messages));

-- External-content FTS5 must only be told to delete what it holds: a
-- 'delete' of a row it never indexed corrupts the index.
DROP TRIGGER messages_fts_delete;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.rowid <= (SELECT indexed FROM text_index) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
