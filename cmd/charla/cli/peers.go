package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
)

func peersCommand() *command {
	var asJSON bool
	return &command{
		name:  "peers",
		args:  "[--json]",
		short: "list the peers the node knows how to reach",
		long: `peers lists the peers this node knows how to reach, and whether it is
connected to them. With --json it prints one JSON array of objects: peer_id,
name, addrs, via (mdns, static, book, …), connected.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON array")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("peers takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			peers, err := c.Peers(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, nonNil(peers))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, p := range peers {
				state := "-"
				if p.Connected {
					state = "connected"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(p.Name), state, clean(p.Via), p.PeerID, clean(strings.Join(p.Addrs, " ")))
			}
			return tw.Flush()
		},
	}
}
