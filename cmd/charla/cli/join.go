package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/charla-im/charla/node"
)

func joinCommand() *command {
	var name string
	return &command{
		name:  "join",
		args:  "CODE [--name NAME]",
		short: "join a workspace with an invite code",
		long: `join creates this node's identity, redeems the invite code with the
member who issued it (their charla must be running and reachable), and
stores the workspace it is handed. Then start the node with 'charla run'.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "your display `NAME` (default: the OS user's name)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return e.usagef("join takes one invite code")
			}
			if node.IsInitialized(e.home) {
				return withHint(fmt.Errorf("%s already holds a charla identity", e.home),
					"join with another home: charla join CODE --home DIR")
			}
			if strings.TrimSpace(name) == "" {
				name = osUserName()
			}
			if err := os.MkdirAll(e.home, 0o700); err != nil {
				return fmt.Errorf("create home: %w", err)
			}
			peerID, err := node.Join(ctx, e.home, args[0], name)
			switch {
			case errors.Is(err, node.ErrIssuerUnreachable):
				return withHint(err, "check that the issuer's 'charla run' is up and that both machines are on the same network")
			case errors.Is(err, node.ErrInviteExpired), errors.Is(err, node.ErrInviteUsed), errors.Is(err, node.ErrInviteRevoked):
				return withHint(err, "ask a member for a new code: charla invite")
			case errors.Is(err, node.ErrInviteForged):
				return withHint(err, "copy the whole code again; it starts with charla-invite-")
			case err != nil:
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, peerID); err != nil {
				return err
			}
			return e.nextRun("joined")
		},
	}
}
