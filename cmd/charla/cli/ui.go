package cli

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/charla-im/charla/api"
)

func uiCommand() *command {
	var open, asJSON bool
	return &command{
		name:  "ui",
		args:  "[--open] [--json]",
		short: "print a login address of the web UI",
		long: fmt.Sprintf(`ui asks the running node for a fresh address of its web UI and prints it.
The address carries a one-time login token: it works in one browser tab,
once, within %v. Run 'charla ui' again for another tab or browser.
With --open it also opens the desktop's browser, when there is one.`, api.LoginExpiry),
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&open, "open", false, "open the address in the desktop's browser")
			fs.BoolVar(&asJSON, "json", false, `print {"url": "..."}`)
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("ui takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			url, err := c.LoginURL(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				err = printJSON(e.stdout, api.LoginURLResponse{URL: url})
			} else {
				_, err = fmt.Fprintln(e.stdout, url)
			}
			if err != nil || !open {
				return err
			}
			if err := openBrowser(url); err != nil {
				fmt.Fprintf(e.stderr, "charla: could not open a browser (%v); open the address above yourself\n", err)
			}
			return nil
		},
	}
}

// openBrowser hands url to the desktop's opener and does not wait for the
// browser: best effort, as a machine without a desktop has none.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it; its exit status says nothing reliable about the browser
	return nil
}
