package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/charla-im/charla/api"
)

func logCommand() *command {
	var limit int
	var asJSON bool
	return &command{
		name:  "log",
		args:  "ROOM [--limit N] [--json]",
		short: "print a room's newest messages",
		long: `log prints the newest messages of ROOM, oldest first. With --json it prints
one JSON object a message: id, room, room_name, author, author_name, time,
kind, text.`,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&limit, "limit", api.DefaultLogLimit, "print the `N` newest messages")
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
			msgs, err := c.Log(ctx, args[0], limit)
			if err != nil {
				return e.apiError(err)
			}
			for _, m := range msgs {
				if asJSON {
					err = printJSON(e.stdout, m)
				} else {
					_, err = fmt.Fprintln(e.stdout, formatMessage(m, false))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
}
