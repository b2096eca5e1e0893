package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/charla-im/charla/node"
)

const defaultWorkspace = "Office"

func initCommand() *command {
	var name, workspace string
	return &command{
		name:  "init",
		args:  "[--name NAME] [--workspace NAME]",
		short: "create an identity and a new workspace",
		long: `init creates this node's identity and a new workspace with #general in
the home directory, and prints the node's peer ID. You are the workspace's
owner and, until you invite others, its only member.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "your display `NAME` (default: the OS user's name)")
			fs.StringVar(&workspace, "workspace", defaultWorkspace, "the new workspace's `NAME`")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("init takes no arguments, got %q", args)
			}
			if strings.TrimSpace(workspace) == "" {
				return e.usagef("the workspace needs a name")
			}
			peerID, err := initHome(ctx, e.home, name, workspace)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, peerID); err != nil {
				return err
			}
			return e.nextRun("workspace created")
		},
	}
}

// initHome creates an identity and a workspace in home; an empty name means
// the OS user's.
func initHome(ctx context.Context, home, name, workspace string) (peerID string, err error) {
	if node.IsInitialized(home) {
		return "", withHint(fmt.Errorf("%s already holds a charla identity", home),
			"start it with 'charla run', or choose another home with --home")
	}
	if strings.TrimSpace(name) == "" {
		name = osUserName()
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("create home: %w", err)
	}
	peerID, err = node.Init(ctx, home, node.InitOptions{Name: name, Workspace: workspace})
	if err != nil {
		return "", fmt.Errorf("init %s: %w", home, err)
	}
	return peerID, nil
}

// osUserName is the name the OS knows the user by: the full name if it has
// one, else the login name, else "me".
func osUserName() string {
	u, err := user.Current()
	if err != nil {
		return "me"
	}
	// On Unix, Name is the GECOS field: "Ana García,Room 3,,".
	if full, _, _ := strings.Cut(u.Name, ","); strings.TrimSpace(full) != "" {
		return strings.TrimSpace(full)
	}
	login := u.Username
	if i := strings.LastIndexByte(login, '\\'); i >= 0 { // Windows: DOMAIN\user
		login = login[i+1:]
	}
	if strings.TrimSpace(login) == "" {
		return "me"
	}
	return login
}
