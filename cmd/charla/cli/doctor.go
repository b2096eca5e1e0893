package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charla-im/charla/node"
)

func doctorCommand() *command {
	var asJSON bool
	return &command{
		name:  "doctor",
		args:  "[--json]",
		short: "check the network, multicast, the peer port and which members answer",
		long: `doctor asks the running node what stands between it and the other members:
network interfaces (and which are VPN or virtual adapters), mDNS and the
multicast route, whether the peer port accepts connections, and which members
answer. It says what to do about each problem. It takes up to about 15 seconds.

It prints the report either way and exits with status 1 when a check failed,
so that a script can tell. With --json it prints one JSON object: checks
(name, ok, detail, fix), interfaces (name, addrs, up, multicast, virtual, kind)
and members (peer_id, name, addrs, connected, answered, error). A check that
is ok but has a fix is a note.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON object")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("doctor takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rep, err := c.Doctor(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				rep.Checks, rep.Interfaces, rep.Members = nonNil(rep.Checks), nonNil(rep.Interfaces), nonNil(rep.Members)
				err = printJSON(e.stdout, rep)
			} else {
				err = printDoctor(e.stdout, rep)
			}
			if err != nil {
				return err
			}
			return doctorVerdict(rep)
		},
	}
}

// doctorVerdict is the error that makes charla exit 1 when a check failed.
func doctorVerdict(rep node.DoctorReport) error {
	failed := 0
	for _, c := range rep.Checks {
		if !c.OK {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	problems := "problems"
	if failed == 1 {
		problems = "problem"
	}
	return withHint(fmt.Errorf("doctor found %d %s", failed, problems), "each failed check says how to fix it")
}

// printDoctor writes the report as a checklist, then the members:
//
//	ok   mDNS: advertising on eth0
//	FAIL peer port: listening on TCP 4747 (the default); refused: …
//	     fix: a firewall blocks TCP 4747: allow it for charla …
func printDoctor(w io.Writer, rep node.DoctorReport) error {
	var b strings.Builder
	for _, c := range rep.Checks {
		mark := "ok"
		switch {
		case !c.OK:
			mark = "FAIL"
		case c.Fix != "":
			mark = "note"
		}
		fmt.Fprintf(&b, "%-4s %s: %s\n", mark, clean(c.Name), clean(c.Detail))
		if c.Fix != "" {
			fmt.Fprintf(&b, "     fix: %s\n", clean(c.Fix))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(rep.Members) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MEMBER\tSTATE\tPEER ID\tADDRESS OR REASON\n")
	for _, m := range rep.Members {
		state, where := "no answer", m.Error
		switch {
		case m.Connected:
			state, where = "connected", strings.Join(m.Addrs, " ")
		case m.Answered:
			state, where = "answers", strings.Join(m.Addrs, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oneLine(m.Name), state, short(m.PeerID), oneLine(where))
	}
	return tw.Flush()
}

// oneLine keeps a table cell on its line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(clean(s)), " ")
}
