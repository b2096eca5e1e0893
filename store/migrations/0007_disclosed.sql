-- 0007: disclosed file keys (node/disclose.go). A member who joins a room
-- created with --no-history gets the age file key of each of the room's
-- room-op envelopes from the member who added it, so it can read who is in
-- the room (and judge key shares by their authors) without reading any
-- message from before it joined. One row per envelope; each key opens that
-- envelope alone.
CREATE TABLE disclosed (
	envelope BLOB PRIMARY KEY CHECK (length(envelope) = 32),
	room     BLOB NOT NULL CHECK (length(room) = 32),
	file_key BLOB NOT NULL CHECK (length(file_key) = 16)
) WITHOUT ROWID;
CREATE INDEX disclosed_room ON disclosed (room);
