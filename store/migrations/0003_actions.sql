-- 0003: edits, deletes, reactions and replies. Each is a content envelope
-- that names a target message; it is stored here by target whether or not
-- the target is held yet, so the effect is computed from the set of rows and
-- never depends on the order they arrived in. kind is wire.ContentKind:
-- 1 text (a reply: id is the reply, target the message replied to),
-- 3 edit, 4 delete, 5 reaction (text is the emoji, "-" prefixed to take it
-- back). Validity (author, room, role) is judged when the view is computed.
CREATE TABLE actions (
    id      BLOB    NOT NULL PRIMARY KEY REFERENCES envelopes (id) ON DELETE CASCADE,
    room    BLOB    NOT NULL,
    target  BLOB    NOT NULL,
    author  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    text    TEXT    NOT NULL
) STRICT;

CREATE INDEX actions_target ON actions (target, lamport, author, seq);
