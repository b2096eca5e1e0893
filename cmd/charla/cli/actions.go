package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charla-im/charla/node"
)

// The commands that act on one message: edit, delete, react, reply. Each
// names the room and the message's ID ('charla log ROOM --json' shows IDs).

func editCommand() *command {
	return &command{
		name:  "edit",
		args:  "ROOM ID TEXT...",
		short: "replace the text of one of your messages",
		long: `edit replaces the text of your message ID in ROOM with TEXT (the remaining
arguments, joined by spaces). Every member sees the new text, marked as
edited; only a message's author edits it. 'charla log ROOM --json' shows the
messages' IDs.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) < 3 {
				return e.usagef("edit needs a room, a message ID and the new text")
			}
			text := strings.Join(args[2:], " ")
			if strings.TrimSpace(text) == "" {
				return withHint(errors.New("empty message"), "write the new text after the ID")
			}
			return actOn(ctx, e, func(c actor) (node.Message, error) { return c.Edit(ctx, args[0], args[1], text) })
		},
	}
}

func deleteCommand() *command {
	return &command{
		name:  "delete",
		args:  "ROOM ID",
		short: "delete a message for everyone",
		long: `delete deletes message ID in ROOM on every node: its text is removed and
it shows as deleted. You delete your own messages; admins and the owner delete
anyone's.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 {
				return e.usagef("delete needs a room and a message ID")
			}
			return actOn(ctx, e, func(c actor) (node.Message, error) { return c.Delete(ctx, args[0], args[1]) })
		},
	}
}

func reactCommand() *command {
	return &command{
		name:  "react",
		args:  "ROOM ID EMOJI",
		short: "react to a message with an emoji, or take it back",
		long: `react puts your reaction EMOJI on message ID in ROOM; reacting with the
same emoji again takes it back.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 3 {
				return e.usagef("react needs a room, a message ID and one emoji")
			}
			return actOn(ctx, e, func(c actor) (node.Message, error) { return c.React(ctx, args[0], args[1], args[2]) })
		},
	}
}

func replyCommand() *command {
	return &command{
		name:  "reply",
		args:  "ROOM ID TEXT...",
		short: "post a reply to a message",
		long: `reply posts TEXT to ROOM as a reply to message ID and prints the reply's
ID once the node has stored it.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) < 3 {
				return e.usagef("reply needs a room, a message ID and the text")
			}
			text := strings.Join(args[2:], " ")
			if strings.TrimSpace(text) == "" {
				return withHint(errors.New("empty message"), "write the text after the ID")
			}
			return actOn(ctx, e, func(c actor) (node.Message, error) { return c.Reply(ctx, args[0], args[1], text) })
		},
	}
}

type actor = node.Actor

// actOn runs one action through the API and prints the message it changed
// (or the reply it posted) as 'charla log' would, after its ID.
func actOn(ctx context.Context, e *env, do func(actor) (node.Message, error)) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	m, err := do(c)
	if err != nil {
		return e.apiError(err)
	}
	_, err = fmt.Fprintln(e.stdout, m.ID)
	return err
}
