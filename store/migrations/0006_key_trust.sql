-- 0006: key trust (SECURITY.md "Content and files"). A key share is taken
-- as trusted only when this node can tell that its author is a member of
-- the room. A member added to a channel later cannot tell at first: it
-- keeps such keys untrusted (they decrypt, so it can read the room's ops
-- and learn who is in it, but they name no members and are not sent with
-- while a trusted key exists) and judges them again once it knows.
ALTER TABLE room_keys ADD COLUMN trusted INTEGER NOT NULL DEFAULT 1 CHECK (trusted IN (0, 1));

-- members_known: the room's members come from something its creator signed
-- (the creation share, or the name op that lists the first members), so
-- key shares and adds can be judged by their authors. Rooms that already
-- have members were judged by the rules before this migration.
ALTER TABLE rooms ADD COLUMN members_known INTEGER NOT NULL DEFAULT 0 CHECK (members_known IN (0, 1));
UPDATE rooms SET members_known = 1 WHERE id IN (SELECT room FROM room_members);
