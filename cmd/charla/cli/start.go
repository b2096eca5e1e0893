package cli

import (
	"context"
	"fmt"

	"github.com/charla-im/charla/node"
)

// start is plain 'charla': what a new user wants. The first time, it creates
// an identity named after the OS user and a workspace "Office"; then, and
// every time after, it runs the node with the defaults and, for a person at
// a desktop, opens the web UI in the browser.
func start(ctx context.Context, e *env) error {
	if !node.IsInitialized(e.home) {
		peerID, err := initHome(ctx, e.home, "", defaultWorkspace)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "charla: created identity %s and workspace %q in %s\n", peerID, defaultWorkspace, e.home)
	}
	return runNode(ctx, e, runOptions{mdns: true, openUI: true})
}
