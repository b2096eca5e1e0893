package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charla-im/charla/node"
)

func auditCommand() *command {
	var asJSON, full bool
	return &command{
		name:  "audit",
		args:  "[--verify] [--json]",
		short: "list who changed members, roles, policy, rooms and keys, verified",
		long: `audit lists every roster op (admit, remove, role, policy, invite, revoke,
profile), every room op (create, rename, add, remove, leave) of the rooms you
can read, and every key rotation shared with you, in the order every node
applies roster ops: when (the author's clock), who, what, the envelope's ID and
whether it took effect. An op that took no effect (its author lacked the role,
or it came after the author's removal) is marked "no effect".

Every op is a signed envelope in its author's hash chain. audit checks each
listed envelope's signature, and that its author's feed as this node stores it
links back to seq 1 with every hash matching; a signature covers the link to
the envelope before, so the feed below it is vouched for too. A chain is
"incomplete" where an envelope is not held here (not yet synced, or beyond a
removed member's cut) and "BROKEN" where a hash or a link does not match:
then the store was altered, and audit exits with status 1. --verify also checks
every author's whole feed, each signature and each link.

With --json it prints one JSON object: workspace, entries (time, author,
author_name, class, op, room, room_name, text, id, prev, seq, lamport,
effective, signature, chain), chains (author, up_to_seq, checked, signatures,
tombstones, status, at, problem) and verified.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&full, "verify", false, "also check every author's whole feed: every signature and every link")
			fs.BoolVar(&asJSON, "json", false, "print one JSON object")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("audit takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rep, err := c.Audit(ctx, full)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				err = printJSON(e.stdout, rep)
			} else {
				err = printAudit(e.stdout, rep)
			}
			if err != nil {
				return err
			}
			return auditVerdict(rep)
		},
	}
}

// auditVerdict is the error audit exits with when the store does not verify.
func auditVerdict(rep node.AuditReport) error {
	if rep.Verified {
		return nil
	}
	var what []string
	bad := 0
	for _, e := range rep.Entries {
		if e.Signature != "ok" {
			bad++
		}
	}
	if bad > 0 {
		what = append(what, fmt.Sprintf("%d %s", bad, plural(bad, "signature fails", "signatures fail")))
	}
	broken := 0
	for _, c := range rep.Chains {
		if c.Status == node.ChainBroken {
			broken++
		}
	}
	if broken > 0 {
		what = append(what, fmt.Sprintf("%d %s", broken, plural(broken, "feed is broken", "feeds are broken")))
	}
	return withHint(errors.New("audit: "+strings.Join(what, " and ")+": this node's store was altered"),
		"compare with 'charla audit' on another member's node; every member holds the same envelopes")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func printAudit(w io.Writer, rep node.AuditReport) error {
	fmt.Fprintf(w, "%s  workspace %s  founded by %s on %s\n\n", clean(rep.WorkspaceName), short(rep.Workspace),
		clean(rep.FounderName), rep.Created.Format("2006-01-02 15:04 MST"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWHO\tWHAT\tENVELOPE\tPREV\tCHECK")
	for _, e := range rep.Entries {
		what := clean(e.Text)
		if !e.Effective {
			what += " — no effect"
		}
		check := "ok"
		switch {
		case e.Signature != "ok":
			check = "BAD SIGNATURE"
		case e.Chain == node.ChainBroken:
			check = "chain BROKEN"
		case e.Chain != node.ChainOK:
			check = "chain " + e.Chain
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05 MST"),
			clean(e.AuthorName), short(e.Author), what, e.ID[:12], e.Prev[:12], check)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, c := range rep.Chains {
		who := clean(c.AuthorName) + " " + short(c.Author)
		switch c.Status {
		case node.ChainOK:
			fmt.Fprintf(w, "feed of %s: seq 1 to %d linked", who, c.UpTo)
			if c.Signatures > 0 {
				fmt.Fprintf(w, ", %d signatures checked", c.Signatures)
			}
			if c.Problem != "" {
				fmt.Fprintf(w, "; %s", c.Problem)
			}
			fmt.Fprintln(w)
		case node.ChainBroken:
			fmt.Fprintf(w, "feed of %s: BROKEN at seq %d: %s\n", who, c.At, c.Problem)
		default:
			fmt.Fprintf(w, "feed of %s: %s at seq %d: %s\n", who, c.Status, c.At, c.Problem)
		}
	}
	if rep.Verified {
		scope := "the feeds below the listed ops"
		if rep.Full {
			scope = "every feed whole"
		}
		_, err := fmt.Fprintf(w, "verified: %d %s, %s\n", len(rep.Entries), plural(len(rep.Entries), "op", "ops"), scope)
		return err
	}
	return nil
}
