package cli

import (
	"flag"
	"strings"
)

// The flag package stops at the first positional argument. charla lets flags
// stand before or after positionals (charla log general --json), so these
// split the command line first, using fs to know which flags take a value,
// and hand fs only the flags. "--" ends the flags: everything after it is
// positional, for text that starts with "-".

// parseArgs parses the flags in args, wherever they stand, and returns the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	flags, pos := splitArgs(fs, args, false)
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(fs.Args(), pos...), nil
}

// parseToCommand parses the flags before the first positional argument, the
// command's name, and returns that argument and all after it.
func parseToCommand(fs *flag.FlagSet, args []string) ([]string, error) {
	flags, rest := splitArgs(fs, args, true)
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(fs.Args(), rest...), nil
}

func splitArgs(fs *flag.FlagSet, args []string, stopAtPositional bool) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(pos, args[i+1:]...)
		case len(a) < 2 || a[0] != '-': // "-" alone is positional: standard input
			if stopAtPositional {
				return flags, args[i:]
			}
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			if takesValue(fs, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return flags, pos
}

// takesValue reports whether arg is a flag of fs that takes its value from
// the next argument: a known, non-boolean flag written without "=".
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimPrefix(arg[1:], "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
