package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
)

func roomsCommand() *command {
	var asJSON bool
	return &command{
		name:  "rooms",
		args:  "[--json]",
		short: "list the rooms you can read",
		long:  `rooms lists the channels and direct conversations this node can read. With --json it prints one JSON array of objects: id, name, kind, members.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON array")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("rooms takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rooms, err := c.Rooms(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, nonNil(rooms))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, r := range rooms {
				fmt.Fprintf(tw, "%s\t%s\t%d members\t%s\n", clean(r.Name), clean(r.Kind), len(r.Members), r.ID)
			}
			return tw.Flush()
		},
	}
}
