package cli

import (
	"context"
	"flag"
	"strings"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func searchCommand() *command {
	var limit int
	var asJSON bool
	return &command{
		name:  "search",
		args:  "QUERY... [--limit N] [--json]",
		short: "find messages in every room's history",
		long: `search prints the messages of every room you can read that hold all the
words of QUERY, newest first. A word ending in * matches as a prefix:
'charla search proj*' finds "project" and "projector". With --json it prints
one JSON object a message, as 'charla log --json' does.`,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&limit, "limit", api.DefaultSearchLimit, "print at most `N` messages")
			fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			query := strings.TrimSpace(strings.Join(args, " "))
			if query == "" {
				return e.usagef("search needs words to look for")
			}
			if limit < 1 || limit > node.MaxSearchLimit {
				return e.usagef("--limit %d is not from 1 to %d", limit, node.MaxSearchLimit)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			msgs, err := c.Search(ctx, query, limit)
			if err != nil {
				return e.apiError(err)
			}
			return printMessages(e.stdout, msgs, asJSON, true)
		},
	}
}
