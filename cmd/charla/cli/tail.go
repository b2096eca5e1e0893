package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

func tailCommand() *command {
	var asJSON bool
	return &command{
		name:  "tail",
		args:  "[--json]",
		short: "follow new messages in every room",
		long: `tail prints new messages in every room as they arrive, until interrupted.
With --json it prints one JSON object a message, as log --json does.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("tail takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			stream, err := c.Events(ctx)
			if err != nil {
				return e.apiError(err)
			}
			defer stream.Close()
			for {
				ev, err := stream.Next()
				if ctx.Err() != nil {
					return nil // interrupted: what ends a tail
				}
				if errors.Is(err, io.EOF) {
					return withHint(errors.New("the node stopped"), "start it again with 'charla run'")
				}
				if err != nil {
					return err
				}
				if ev.Type != "message" || ev.Message == nil {
					continue
				}
				if asJSON {
					err = printJSON(e.stdout, ev.Message)
				} else {
					_, err = fmt.Fprintln(e.stdout, formatMessage(*ev.Message, true))
				}
				if err != nil {
					return err
				}
			}
		},
	}
}
