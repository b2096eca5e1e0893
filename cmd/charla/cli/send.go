package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/charla-im/charla/api"
)

// maxStdinLine bounds one line of 'send ROOM -'. The node enforces the real
// text limit and says so; this only keeps a runaway line from filling memory.
const maxStdinLine = 1 << 20

func sendCommand() *command {
	var file string
	return &command{
		name:  "send",
		args:  "ROOM TEXT... | ROOM - | ROOM --file PATH",
		short: "post a message to a room",
		long: `send posts TEXT (the remaining arguments, joined by spaces) to ROOM and
prints the message's ID once the node has stored it. With "-" it posts each
non-empty line of standard input as one message and prints one ID a line.

ROOM is a channel (general or #general), a room ID, or @NAME or @PEERID for a
direct conversation. Put "--" before text that starts with "-".

With --file it posts the file at PATH instead, encrypted to the room, and
prints the file's ID; members fetch it from every peer that has it ('charla
get ID').`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&file, "file", "", "post the file at `PATH`")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if file != "" {
				return sendFile(ctx, e, args, file)
			}
			if len(args) < 2 {
				return e.usagef("send needs a room and the text")
			}
			room := args[0]
			if len(args) == 2 && args[1] == "-" {
				return sendLines(ctx, e, room)
			}
			text := strings.Join(args[1:], " ")
			if strings.TrimSpace(text) == "" {
				return withHint(errors.New("empty message"), "write the text after the room: charla send general hola")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			msg, err := c.Send(ctx, room, text)
			if err != nil {
				return e.apiError(err)
			}
			_, err = fmt.Fprintln(e.stdout, msg.ID)
			return err
		},
	}
}

func sendFile(ctx context.Context, e *env, args []string, file string) error {
	if len(args) != 1 {
		return e.usagef("send --file needs exactly one room and no text")
	}
	path, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	f, err := c.SendFile(ctx, args[0], path)
	if err != nil {
		return e.apiError(err)
	}
	_, err = fmt.Fprintln(e.stdout, f.ID)
	return err
}

func sendLines(ctx context.Context, e *env, room string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxStdinLine)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		msg, err := c.Send(ctx, room, text)
		if errors.Is(err, api.ErrNoNode) {
			return e.noNode()
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if _, err := fmt.Fprintln(e.stdout, msg.ID); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	return nil
}
