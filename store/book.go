package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// maxBookAddrs bounds the addresses kept per book entry: the newest win.
const maxBookAddrs = 16

// BookEntry is what the address book holds about one peer.
type BookEntry struct {
	Peer     []byte   // binary peer ID
	Addrs    []string // newest first
	Via      string   // how it was last found: mdns, static, …
	LastSeen int64    // unix ms
}

// PutBookEntry records that e.Peer was seen at e.Addrs at e.LastSeen (zero
// means now). Addresses are added to those known, and only the 16 seen most
// recently are kept; addresses seen at the same moment keep the order given.
// Via replaces the stored one unless e is older than what is stored.
func (s *Store) PutBookEntry(ctx context.Context, e BookEntry) error {
	if len(e.Peer) == 0 {
		return errors.New("put book entry: empty peer ID")
	}
	if e.LastSeen == 0 {
		e.LastSeen = now()
	}
	// Addresses beyond the 16th of one report could never be kept.
	addrs := make([]string, 0, min(len(e.Addrs), maxBookAddrs))
	for _, a := range e.Addrs {
		if len(addrs) == maxBookAddrs {
			break
		}
		if a != "" && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	err := s.Update(ctx, false, func(tx *Tx) error {
		if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO book (peer, via, last_seen) VALUES (?, ?, ?)
			ON CONFLICT (peer) DO UPDATE SET
				via = CASE WHEN excluded.via <> '' AND excluded.last_seen >= book.last_seen
					THEN excluded.via ELSE book.via END,
				last_seen = max(book.last_seen, excluded.last_seen)`,
			e.Peer, e.Via, e.LastSeen); err != nil {
			return err
		}
		if len(addrs) == 0 {
			return nil
		}
		for i, a := range addrs {
			if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO book_addrs (peer, addr, seen, pos) VALUES (?, ?, ?, ?)
				ON CONFLICT (peer, addr) DO UPDATE SET
					pos = CASE WHEN excluded.seen >= book_addrs.seen THEN excluded.pos ELSE book_addrs.pos END,
					seen = max(book_addrs.seen, excluded.seen)`,
				e.Peer, a, e.LastSeen, i); err != nil {
				return err
			}
		}
		_, err := tx.q().ExecContext(tx.ctx, `DELETE FROM book_addrs WHERE peer = ?1 AND addr NOT IN (
				SELECT addr FROM book_addrs WHERE peer = ?1 ORDER BY seen DESC, pos, addr LIMIT ?2)`,
			e.Peer, maxBookAddrs)
		return err
	})
	if err != nil {
		return fmt.Errorf("put book entry: %w", err)
	}
	return nil
}

// Book returns every entry of the address book, most recently seen first.
func (s *Store) Book(ctx context.Context) ([]BookEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT b.peer, b.via, b.last_seen, a.addr
		FROM book b LEFT JOIN book_addrs a ON a.peer = b.peer
		ORDER BY b.last_seen DESC, b.peer, a.seen DESC, a.pos, a.addr`)
	if err != nil {
		return nil, fmt.Errorf("book: %w", err)
	}
	defer rows.Close()
	var book []BookEntry
	for rows.Next() {
		var e BookEntry
		var addr *string
		if err := rows.Scan(&e.Peer, &e.Via, &e.LastSeen, &addr); err != nil {
			return nil, fmt.Errorf("book: %w", err)
		}
		if n := len(book); n == 0 || string(book[n-1].Peer) != string(e.Peer) {
			book = append(book, e)
		}
		if addr != nil {
			last := &book[len(book)-1]
			last.Addrs = append(last.Addrs, *addr)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("book: %w", err)
	}
	return book, nil
}
