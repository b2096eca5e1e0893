package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/charla-im/charla/wire"
)

// Action is an edit, delete, reaction or reply: a content envelope that
// names a target message. It is stored whether or not the target is held.
type Action struct {
	ID      wire.ID // the action's envelope
	Room    wire.ID
	Target  wire.ID // the message acted on (replied to)
	Author  []byte
	Seq     uint64
	Lamport uint64
	Kind    uint8 // wire.ContentKind
	Text    string
}

const actionCols = `id, room, target, author, seq, lamport, kind, text`

// actionsQuery lists the actions on one target, oldest first.
const actionsQuery = `SELECT ` + actionCols + ` FROM actions WHERE target = ? ORDER BY lamport, author, seq`

func scanActions(rows *sql.Rows) ([]Action, error) {
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		if err := rows.Scan(idCol{&a.ID}, idCol{&a.Room}, idCol{&a.Target}, &a.Author,
			uintCol[uint64]{&a.Seq}, uintCol[uint64]{&a.Lamport}, uintCol[uint8]{&a.Kind}, &a.Text); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// PutAction stores a; storing one twice changes nothing. Its envelope must
// already be stored.
func (tx *Tx) PutAction(a Action) error {
	seq, err := sqlInt("seq", a.Seq)
	if err != nil {
		return err
	}
	lamport, err := sqlInt("lamport", a.Lamport)
	if err != nil {
		return err
	}
	if _, err := tx.stmt(tx.s.ws.putAction).ExecContext(tx.short,
		a.ID[:], a.Room[:], a.Target[:], a.Author, seq, lamport, int64(a.Kind), a.Text); err != nil {
		return fmt.Errorf("put action %s: %w", a.ID, err)
	}
	return nil
}

// Actions returns the actions naming target, oldest first by (lamport,
// author, seq), as this transaction sees them.
func (tx *Tx) Actions(target wire.ID) ([]Action, error) {
	rows, err := tx.stmt(tx.s.ws.actions).QueryContext(tx.short, target[:])
	if err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	as, err := scanActions(rows)
	if err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	return as, nil
}

// Message returns the message with envelope ID id as this transaction sees
// it; ok is false if it is not stored.
func (tx *Tx) Message(id wire.ID) (m Message, ok bool, err error) {
	err = scanMessage(tx.q().QueryRowContext(tx.ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id[:]), &m)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("message %s: %w", id, err)
	}
	return m, true, nil
}

// Actions returns the actions naming target, oldest first by (lamport,
// author, seq).
func (s *Store) Actions(ctx context.Context, target wire.ID) ([]Action, error) {
	rows, err := s.rs.actions.QueryContext(ctx, target[:])
	if err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	as, err := scanActions(rows)
	if err != nil {
		return nil, fmt.Errorf("actions on %s: %w", target, err)
	}
	return as, nil
}

// Action returns the action stored with envelope ID id; ok is false if there
// is none.
func (s *Store) Action(ctx context.Context, id wire.ID) (a Action, ok bool, err error) {
	rows, err := s.rs.action.QueryContext(ctx, id[:])
	if err != nil {
		return Action{}, false, fmt.Errorf("action %s: %w", id, err)
	}
	as, err := scanActions(rows)
	if err != nil || len(as) == 0 {
		return Action{}, false, err
	}
	return as[0], true, nil
}

// ActionTargets calls fn with the target and the kind of every action
// stored, and its own ID, in no particular order.
func (s *Store) ActionTargets(ctx context.Context, fn func(id, target wire.ID, kind uint8)) error {
	rows, err := s.r.QueryContext(ctx, `SELECT id, target, kind FROM actions`)
	if err != nil {
		return fmt.Errorf("action targets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, target wire.ID
		var kind uint8
		if err := rows.Scan(idCol{&id}, idCol{&target}, &kind); err != nil {
			return fmt.Errorf("action targets: %w", err)
		}
		fn(id, target, kind)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("action targets: %w", err)
	}
	return nil
}

// DeletedBy returns the messages held that author deleted and another member
// wrote: such a delete counts by its author's role at its place in the
// roster's order, so they are judged again when that role changes.
func (tx *Tx) DeletedBy(author []byte) ([]wire.ID, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT DISTINCT a.target FROM actions a
		JOIN messages m ON m.id = a.target
		WHERE a.author = ? AND a.kind = ? AND m.author != a.author`, author, int64(wire.KindDelete))
	if err != nil {
		return nil, fmt.Errorf("deletes by %x: %w", author, err)
	}
	defer rows.Close()
	var out []wire.ID
	for rows.Next() {
		var id wire.ID
		if err := rows.Scan(idCol{&id}); err != nil {
			return nil, fmt.Errorf("deletes by %x: %w", author, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deletes by %x: %w", author, err)
	}
	return out, nil
}
