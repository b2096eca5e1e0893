-- 0004: removal cuts (DESIGN.md "Rules that make sync correct"). A removed
-- member's feed stays valid up to cut_seq, whose envelope is cut_id; every
-- later envelope of it, and any other branch at cut_seq, is refused.
ALTER TABLE members ADD COLUMN cut_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN cut_id BLOB;

-- Who a room key was shared with, as far as this node read the shares: a
-- key that reached a removed member, or one who left the room, is never a
-- send key again (the next sender rotates the room first).
CREATE TABLE key_recipients (
    key_id BLOB NOT NULL,
    peer   BLOB NOT NULL,
    PRIMARY KEY (key_id, peer)
) STRICT, WITHOUT ROWID;

-- A room created with --no-history: a member added later gets a new key
-- epoch, not the keys from before it joined.
ALTER TABLE rooms ADD COLUMN no_history INTEGER NOT NULL DEFAULT 0;
