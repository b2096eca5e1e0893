package cli

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

func versionCommand() *command {
	return &command{
		name:  "version",
		short: "print charla's version",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("version takes no arguments, got %q", args)
			}
			return printVersion(e.stdout)
		},
	}
}

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, versionString())
	return err
}

// versionString is charla's module version from the build info, with the
// commit it was built from when the build recorded one.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "charla (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + modified
	}
	return fmt.Sprintf("charla %s %s", v, bi.GoVersion)
}
