package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
)

func helpCommand() *command {
	return &command{
		name:  "help",
		args:  "[COMMAND]",
		short: "explain charla or one command",
		run: func(ctx context.Context, e *env, args []string) error {
			switch len(args) {
			case 0:
				return printUsage(e.stdout)
			case 1:
				cmd := findCommand(args[0])
				if cmd == nil {
					return usageError(fmt.Errorf("unknown command %q", args[0]), "'charla help' lists the commands")
				}
				return printCommandHelp(e.stdout, cmd)
			}
			return e.usagef("help takes at most one command")
		},
	}
}

func printUsage(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`charla is a peer-to-peer office messenger.

usage:
  charla [--home DIR]                  first time: create an identity and a
                                       workspace; then run the node and open
                                       the web UI (not if CHARLA_NO_BROWSER=1)
  charla [--home DIR] COMMAND [ARGS]
  charla --version

commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s%s\n", c.name, c.short)
	}
	fmt.Fprintf(&b, `
--home DIR holds a node's identity, database and api.json
  (env CHARLA_HOME; default %s).
Flags may stand before or after arguments; "--" ends them.
Run 'charla help COMMAND' for more about a command.
`, defaultHomeForHelp())
	_, err := io.WriteString(w, b.String())
	return err
}

func defaultHomeForHelp() string {
	switch runtime.GOOS {
	case "windows":
		return `%LocalAppData%\charla`
	case "darwin", "ios":
		return "~/Library/Application Support/charla"
	case "plan9":
		return "$home/lib/charla"
	}
	return "$XDG_DATA_HOME/charla or ~/.local/share/charla"
}

func printCommandHelp(w io.Writer, cmd *command) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n", strings.TrimSpace(cmd.usage()))
	if cmd.long != "" {
		fmt.Fprintf(&b, "\n%s\n", cmd.long)
	}
	fs := newFlagSet("charla " + cmd.name)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	var home string
	homeFlag(fs, &home)
	b.WriteString("\nflags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-" // as usage lines write them: get FILE_ID [-o PATH]
		}
		fmt.Fprintf(&b, "  %s\n        %s", strings.TrimSpace(dash+f.Name+" "+name), usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && !strings.Contains(usage, "(default") {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	_, err := io.WriteString(w, b.String())
	return err
}
