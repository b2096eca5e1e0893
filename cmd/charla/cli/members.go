package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
)

func membersCommand() *command {
	var asJSON bool
	return &command{
		name:  "members",
		args:  "[--json]",
		short: "list the workspace's members",
		long:  `members lists the members of the workspace. With --json it prints one JSON array of objects: peer_id, name, role.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON array")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("members takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			members, err := c.Members(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, nonNil(members))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, m := range members {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", clean(m.Name), clean(m.Role), m.PeerID)
			}
			return tw.Flush()
		},
	}
}
