// Command charla is a peer-to-peer office messenger: run with no arguments to
// start a node, or see 'charla help'.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/charla-im/charla/cmd/charla/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, let a second one kill the process at once
	// should a clean shutdown hang.
	go func() { <-ctx.Done(); stop() }()

	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "charla: error: %v\n", err)
	if hint := cli.Hint(err); hint != "" {
		fmt.Fprintf(os.Stderr, "charla: hint: %s\n", hint)
	}
	if errors.Is(err, cli.ErrUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}
