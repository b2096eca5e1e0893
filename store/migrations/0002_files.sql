-- 0002: files posted in rooms this node can read (DESIGN.md "Files"). The
-- chunks themselves live content-addressed under <home>/blobs, not here.

-- One row per file message: its manifest as posted, the room key that
-- encrypts its ciphertext, and whether the user asked for it (so a download
-- resumes after a restart).
CREATE TABLE files (
    id       BLOB    NOT NULL PRIMARY KEY REFERENCES envelopes (id) ON DELETE CASCADE,
    room     BLOB    NOT NULL,
    author   BLOB    NOT NULL,
    time     INTEGER NOT NULL,
    key      BLOB    NOT NULL CHECK (length(key) = 32),
    manifest BLOB    NOT NULL,
    wanted   INTEGER NOT NULL DEFAULT 0 CHECK (wanted IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE INDEX files_room_time ON files (room, time);
