package cli

import (
	"context"
	"flag"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func logCommand() *command {
	var limit int
	var before string
	var asJSON bool
	return &command{
		name:  "log",
		args:  "ROOM [--limit N] [--before ID] [--json]",
		short: "print a room's newest messages",
		long: `log prints the newest messages of ROOM, oldest first. With --before ID it
prints the messages just before message ID instead: pass the ID of the
first one printed to page further back. With --json it prints one JSON
object a message: id, room, room_name, author, author_name, time, kind, text,
lamport, seq, state (local, or delivered once a peer holds it), edited,
deleted, reactions (emoji, count, mine), and when set reply_to, reply_author,
reply_text and mentions.`,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&limit, "limit", api.DefaultLogLimit, "print the `N` newest messages")
			fs.StringVar(&before, "before", "", "print the messages just before message `ID`")
			fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return e.usagef("log needs one room")
			}
			if limit < 1 || limit > api.MaxLogLimit {
				return e.usagef("--limit %d is not from 1 to %d", limit, api.MaxLogLimit)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			var msgs []node.Message
			if before != "" {
				msgs, err = c.LogBefore(ctx, args[0], before, limit)
			} else {
				msgs, err = c.Log(ctx, args[0], limit)
			}
			if err != nil {
				return e.apiError(err)
			}
			return printMessages(e.stdout, msgs, asJSON, false)
		},
	}
}
