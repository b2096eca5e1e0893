package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/charla-im/charla/node"
)

func membersCommand() *command {
	var asJSON bool
	return &command{
		name:  "members",
		args:  "[--json] | promote|demote|remove NAME_OR_PEER",
		short: "list the workspace's members; promote, demote or remove one",
		long: `members lists the members of the workspace. With --json it prints one JSON
array of objects: peer_id, name, role.

members promote NAME_OR_PEER makes a member an admin; demote makes an admin a
member again; remove takes a member (or a lost laptop) out of the workspace:
every node refuses what it signs from then on, its connections close, and
each room it was in gets a new key at its next message. Admins only; nobody
removes or demotes someone of a higher role.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON array")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return memberChange(ctx, e, args, asJSON)
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

// memberChange runs members promote|demote|remove NAME_OR_PEER.
func memberChange(ctx context.Context, e *env, args []string, asJSON bool) error {
	if len(args) != 2 {
		return e.usagef("members %s needs one member (display name or peer ID)", args[0])
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var m node.Member
	var done string
	switch args[0] {
	case "promote":
		m, err = c.SetRole(ctx, args[1], "admin")
		done = "is now an admin"
	case "demote":
		m, err = c.SetRole(ctx, args[1], "member")
		done = "is now a member"
	case "remove":
		m, err = c.RemoveMember(ctx, args[1])
		done = "was removed from the workspace"
	default:
		return e.usagef("unknown members subcommand %q: promote, demote or remove", args[0])
	}
	if err != nil {
		return e.apiError(err)
	}
	if asJSON {
		return printJSON(e.stdout, m)
	}
	_, err = fmt.Fprintf(e.stdout, "%s (%s) %s\n", clean(m.Name), m.PeerID, done)
	return err
}
