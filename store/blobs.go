package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/charla-im/charla/wire"
)

// File is a file message this node can read: its encoded manifest and the
// room key that encrypts the file.
type File struct {
	ID       wire.ID // the file message's envelope ID
	Room     wire.ID
	Author   []byte
	Time     int64   // author's clock, unix ms
	Key      wire.ID // ID of the room key of the ciphertext
	Manifest []byte  // an encoded wire.FileManifest
	Wanted   bool    // the user asked for it: fetch it until complete
}

const fileCols = `id, room, author, time, key, manifest, wanted`

func scanFile(sc interface{ Scan(...any) error }, f *File) error {
	return sc.Scan(idCol{&f.ID}, idCol{&f.Room}, &f.Author, &f.Time, idCol{&f.Key}, &f.Manifest, &f.Wanted)
}

// PutFile records a file message; a file already recorded is left as it is.
func (tx *Tx) PutFile(f File) error {
	if len(f.Manifest) == 0 {
		return fmt.Errorf("put file %s: empty manifest", f.ID)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO files (`+fileCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		f.ID[:], f.Room[:], f.Author, f.Time, f.Key[:], f.Manifest, f.Wanted); err != nil {
		return fmt.Errorf("put file %s: %w", f.ID, err)
	}
	return nil
}

// File returns file id, or an error wrapping ErrNotFound.
func (s *Store) File(ctx context.Context, id wire.ID) (File, error) {
	var f File
	err := scanFile(s.r.QueryRowContext(ctx, `SELECT `+fileCols+` FROM files WHERE id = ?`, id[:]), &f)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", id, err)
	}
	return f, nil
}

// FilesFrom returns up to limit files whose IDs lie between lo and hi,
// both included, in ID order: the files whose hex ID starts with a prefix,
// when lo and hi are the prefix filled out with zeros and with f's.
func (s *Store) FilesFrom(ctx context.Context, lo, hi wire.ID, limit int) ([]File, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+fileCols+` FROM files WHERE id BETWEEN ? AND ? ORDER BY id LIMIT ?`, lo[:], hi[:], limit)
	if err != nil {
		return nil, fmt.Errorf("files by ID: %w", err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := scanFile(rows, &f); err != nil {
			return nil, fmt.Errorf("files by ID: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("files by ID: %w", err)
	}
	return out, nil
}

// Files returns the files of room, or of every room when room is zero,
// newest first.
func (s *Store) Files(ctx context.Context, room wire.ID) ([]File, error) {
	q, args := `SELECT `+fileCols+` FROM files ORDER BY time DESC, id`, []any(nil)
	if !room.IsZero() {
		q, args = `SELECT `+fileCols+` FROM files WHERE room = ? ORDER BY time DESC, id`, []any{room[:]}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := scanFile(rows, &f); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	return out, nil
}

// SetFileWanted records whether the user wants file id downloaded.
func (s *Store) SetFileWanted(ctx context.Context, id wire.ID, wanted bool) error {
	return s.Update(ctx, false, func(tx *Tx) error {
		res, err := tx.q().ExecContext(tx.ctx, `UPDATE files SET wanted = ? WHERE id = ?`, wanted, id[:])
		if err != nil {
			return fmt.Errorf("set file %s wanted: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("file %s: %w", id, ErrNotFound)
		}
		return nil
	})
}
