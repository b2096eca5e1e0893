package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func inviteCommand() *command {
	var expires string
	var admin bool
	return &command{
		name:  "invite",
		args:  "[--expires DURATION] [--admin]",
		short: "create a one-time invite code for a new member",
		long: `invite asks the running node for a one-time invite code and prints it.
Whoever runs 'charla join CODE' on another machine before it expires becomes
a member (an admin with --admin). DURATION is like 24h, 90m or 7d. Every
member sees the invite in 'charla invites'; an admin can revoke it. Who may
invite is the workspace's policy ('charla policy').`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&expires, "expires", "7d", "the code is valid for `DURATION`")
			fs.BoolVar(&admin, "admin", false, "the new member is an admin")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("invite takes no arguments, got %q", args)
			}
			d, err := parseDuration(expires)
			if err != nil {
				return e.usagef("--expires: %v", err)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			role := "member"
			if admin {
				role = "admin"
			}
			code, err := c.InviteAs(ctx, d, role)
			if err != nil {
				return e.apiError(err)
			}
			_, err = fmt.Fprintln(e.stdout, code)
			return err
		},
	}
}

// maxDays keeps a count of days from overflowing a time.Duration.
const maxDays = 36500

// parseDuration parses a positive Go duration, or a whole number of days
// such as "7d".
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("%q is not a duration like 24h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration like 24h or 7d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return d, nil
}
