package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func filesCommand() *command {
	var asJSON bool
	return &command{
		name:  "files",
		args:  "[ROOM] [--json]",
		short: "list the files posted in the rooms you can read",
		long: `files lists the files of ROOM, or of every room you can read, newest first:
ID, name, size, author, state (complete, partial or missing) and room. With
--json it prints one JSON array of objects: id, room, room_name, name, size,
type, author, author_name, time, state, have_bytes (ciphertext bytes held),
cipher_size, chunks.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON array")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) > 1 {
				return e.usagef("files takes at most one room, got %q", args)
			}
			room := ""
			if len(args) == 1 {
				room = args[0]
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			files, err := c.Files(ctx, room)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, nonNil(files))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, f := range files {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, clean(f.Name), byteSize(f.Size),
					clean(f.AuthorName), f.State, clean(f.RoomName))
			}
			return tw.Flush()
		},
	}
}

func getCommand() *command {
	var out string
	return &command{
		name:  "get",
		args:  "FILE_ID [-o PATH]",
		short: "download a file, verified, with progress on stderr",
		long: `FILE_ID is the ID 'charla files' lists, or its first 8 or more hex digits.
get fetches the chunks of a file this node lacks from every member that has
them, checks each, decrypts the file and writes it to PATH. By default it
writes the file under its own name in the current directory, or in PATH when
PATH is a directory, if that name is plain, not hidden, and of no file there
yet: the name is the poster's choice. A file that PATH names it replaces. It
prints progress on standard error and exits 0 once the file is complete and
verified. A download cut short resumes from
the chunks already held.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "o", "", "write the file to `PATH`")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			c, f, err := e.oneFile(ctx, "get", args)
			if err != nil {
				return err
			}
			// The file's own name is used in the current directory, or in
			// the directory -o names; there it never replaces a file that
			// is already there (the name is the poster's choice, not the
			// user's). A file named with -o is replaced, as asked.
			path := out
			if st, err := os.Stat(out); out == "" || (err == nil && st.IsDir()) {
				if path, err = defaultGetPath(out, f.Name); err != nil {
					return withHint(err, "name the output with -o PATH, or move the existing file away")
				}
			}
			if path, err = filepath.Abs(path); err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.GetFile(ctx, f.ID, path)
				done <- err
			}()
			if err := e.progress(ctx, c, f, done, "complete and verified"); err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, path)
			return err
		},
	}
}

// defaultGetPath is where 'charla get' writes a file when not told a file:
// its name in dir ("" for the current directory). The name is the poster's
// word, so it is taken only as a plain, visible name of a file that does not
// exist yet: a colleague's file must not replace one of the user's, nor
// become a .bashrc or .bash_profile that a shell runs, nor put a terminal
// escape in what the command prints.
func defaultGetPath(dir, name string) (string, error) {
	base := filepath.Base(name)
	switch {
	case base != name || base == "." || base == ".." || base == string(filepath.Separator):
		return "", fmt.Errorf("file name %q cannot be used as a path", clean(name))
	case strings.HasPrefix(base, "."):
		return "", fmt.Errorf("file name %q would make a hidden file", clean(name))
	case strings.IndexFunc(base, func(r rune) bool { return unicode.IsControl(r) || unsafeRune(r) }) >= 0:
		return "", fmt.Errorf("file name %q holds control characters", clean(name))
	}
	path := filepath.Join(dir, base)
	if _, err := os.Lstat(path); err == nil {
		abs, _ := filepath.Abs(path)
		return "", fmt.Errorf("%s already exists; get does not replace it with the file posted under that name", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	return path, nil
}

// oneFile is the file named by a command's one argument, and the client
// that found it.
func (e *env) oneFile(ctx context.Context, cmd string, args []string) (*api.Client, node.File, error) {
	if len(args) != 1 {
		return nil, node.File{}, e.usagef("%s needs one file ID", cmd)
	}
	c, err := e.client()
	if err != nil {
		return nil, node.File{}, err
	}
	f, err := c.File(ctx, args[0])
	if err != nil {
		return nil, node.File{}, e.apiError(err)
	}
	return c, f, nil
}

// progress prints the share of f held on stderr every half second until
// done gives the download's outcome, then the final line ending in what.
func (e *env) progress(ctx context.Context, c *api.Client, f node.File, done <-chan error, what string) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(e.stderr)
				return e.apiError(err)
			}
			fmt.Fprintf(e.stderr, "\r%s: %s of %s, %s\n", clean(f.Name), byteSize(f.Size), byteSize(f.Size), what)
			return nil
		case <-tick.C:
			if p, err := c.File(ctx, f.ID); err == nil && p.CipherSize > 0 {
				fmt.Fprintf(e.stderr, "\r%s: %3d%% (%s of %s)", clean(f.Name), p.HaveBytes*100/p.CipherSize,
					byteSize(p.HaveBytes), byteSize(p.CipherSize))
			}
		}
	}
}

func fetchCommand() *command {
	return &command{
		name:  "fetch",
		args:  "FILE_ID",
		short: "keep a file on this node for offline use, verified, with progress on stderr",
		long: `FILE_ID is the ID 'charla files' lists, or its first 8 or more hex digits.
fetch fetches the chunks of a file this node lacks from every member that has
them, checks each and keeps it, encrypted, on this node, without writing the
file out: it can then be got or opened offline, and this node serves it to
other members. It prints progress on standard error and exits 0 once every
chunk is held. A fetch cut short resumes, after a restart too.`,
		run: func(ctx context.Context, e *env, args []string) error {
			c, f, err := e.oneFile(ctx, "fetch", args)
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.FetchFile(ctx, f.ID)
				done <- err
			}()
			return e.progress(ctx, c, f, done, "held on this node and verified")
		},
	}
}

// byteSize formats n bytes for a person: 512 B, 1.5 KiB, 12.0 MiB.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
