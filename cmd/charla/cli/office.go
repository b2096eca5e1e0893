package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/charla-im/charla/node"
)

func invitesCommand() *command {
	var asJSON, all bool
	return &command{
		name:  "invites",
		args:  "[--all] [--json] | revoke ID",
		short: "list the workspace's pending invites, or revoke one",
		long: `invites lists every pending invite of the workspace, whoever issued it, with
its issuer, role and expiry; --all adds used, revoked and expired ones. With
--json it prints one JSON array of objects: id, issuer, issuer_name, role,
issued, expires, state.

invites revoke ID revokes an invite (ID: its first 8 or more hex digits). The
issuer's node closes that invite's door as soon as it holds the revocation.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "list used, revoked and expired invites too")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if len(args) > 0 {
				if args[0] != "revoke" || len(args) != 2 {
					return e.usagef("invites takes 'revoke ID' or nothing, got %q", args)
				}
				v, err := c.RevokeInvite(ctx, args[1])
				if err != nil {
					return e.apiError(err)
				}
				if asJSON {
					return printJSON(e.stdout, v)
				}
				_, err = fmt.Fprintf(e.stdout, "invite %s revoked\n", v.ID[:16])
				return err
			}
			vs, err := c.Invites(ctx, all)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, nonNil(vs))
			}
			if len(vs) == 0 {
				_, err := fmt.Fprintln(e.stdout, "no pending invites ('charla invite' makes one)")
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tISSUER\tROLE\tEXPIRES\tSTATE")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID[:16], clean(v.IssuerName), v.Role,
					time.UnixMilli(v.Expires).Format("2006-01-02 15:04"), v.State)
			}
			return tw.Flush()
		},
	}
}

func policyCommand() *command {
	var asJSON bool
	var room string
	return &command{
		name:  "policy",
		args:  "[--json] | set KEY VALUE [--room ROOM]",
		short: "show the workspace's policy, or set one setting (admins)",
		long: `policy prints the workspace's policy, which an admin signs and every node
enforces:

  retention-days  days history is kept; 0 keeps it forever (--room: one room)
  files           on or off: whether files may be shared
  max-file-size   the largest file, e.g. 20MB or 2GiB; 0 is no limit
  invite          who may invite: admins or members

policy set KEY VALUE changes one setting; an empty VALUE ("") resets it.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON object")
			fs.StringVar(&room, "room", "", "set retention-days for `ROOM` only")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var p node.Policy
			switch {
			case len(args) == 0:
				if room != "" {
					return e.usagef("--room goes with 'policy set retention-days DAYS'")
				}
				p, err = c.Policy(ctx)
			case args[0] == "set" && len(args) == 3:
				p, err = c.SetPolicy(ctx, args[1], args[2], room)
			default:
				return e.usagef("policy takes 'set KEY VALUE' or nothing, got %q", args)
			}
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, p)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, k := range node.PolicyKeys {
				fmt.Fprintf(tw, "%s\t%s\n", k, policyValue(p, k))
			}
			for id, d := range p.RoomRetention {
				fmt.Fprintf(tw, "%s\t%s\t(room %s)\n", node.PolicyRetentionDays, retention(d), id)
			}
			return tw.Flush()
		},
	}
}

// policyValue is a policy setting as a person reads it: the value 'policy
// set' takes, and what it means where a number alone would not say.
func policyValue(p node.Policy, key string) string {
	switch key {
	case node.PolicyRetentionDays:
		return retention(p.RetentionDays)
	case node.PolicyMaxFileSize:
		if p.MaxFileSize <= 0 {
			return "0 (no limit)"
		}
		return fmt.Sprintf("%d (%s)", p.MaxFileSize, byteSize(uint64(p.MaxFileSize)))
	}
	return p.Value(key)
}

func retention(days int) string {
	if days <= 0 {
		return "0 (history kept forever)"
	}
	return fmt.Sprintf("%d (history older than %d days deleted)", days, days)
}

func renameCommand() *command {
	return &command{
		name:  "rename",
		args:  "NAME",
		short: "change your display name",
		long:  `rename changes this member's display name in the roster, with its own signed record.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return e.usagef("rename needs one name")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			m, err := c.Rename(ctx, args[0])
			if err != nil {
				return e.apiError(err)
			}
			_, err = fmt.Fprintf(e.stdout, "you are now %s\n", clean(m.Name))
			return err
		},
	}
}
