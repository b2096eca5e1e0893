-- 0004: removal cuts (DESIGN.md "Rules that make sync correct"). A removed
-- member's feed stays valid up to cut_seq, whose envelope is cut_id; every
-- later envelope of it, and any other branch at cut_seq, is refused.
ALTER TABLE members ADD COLUMN cut_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN cut_id BLOB;
