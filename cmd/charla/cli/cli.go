package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/charla-im/charla/api"
)

// ErrUsage is matched by errors in how charla was called (unknown command or
// flag, missing argument); main exits with status 2 for them.
var ErrUsage = errors.New("usage error")

// env is what a subcommand runs with.
type env struct {
	cmd    *command // nil for bare charla
	home   string   // absolute
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand.
type command struct {
	name  string
	args  string // what follows the name in its usage line
	short string // its line in the command list
	long  string // more, for 'charla help NAME'
	flags func(fs *flag.FlagSet)
	run   func(ctx context.Context, e *env, args []string) error
}

func (c *command) usage() string { return "charla " + c.name + " " + c.args }

func commands() []*command {
	return []*command{
		initCommand(),
		runCommand(),
		sendCommand(),
		editCommand(), deleteCommand(), reactCommand(), replyCommand(),
		filesCommand(),
		getCommand(),
		fetchCommand(),
		logCommand(),
		searchCommand(),
		tailCommand(),
		roomsCommand(),
		roomCommand(),
		statusCommand(),
		membersCommand(),
		auditCommand(),
		exportCommand(),
		peersCommand(),
		doctorCommand(),
		inviteCommand(),
		invitesCommand(),
		policyCommand(),
		renameCommand(),
		joinCommand(),
		uiCommand(),
		demoCommand(),
		versionCommand(),
		helpCommand(),
	}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Run runs charla with args (without the program name). Output goes to
// stdout and stderr; standard input is read by 'send ROOM -'. It returns
// when the command is done, or, for run and tail, once ctx is done.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, os.Stdin, stdout, stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var home string
	var version bool
	top := newFlagSet("charla")
	homeFlag(top, &home)
	top.BoolVar(&version, "version", false, "print charla's version")
	rest, err := parseToCommand(top, args)
	if errors.Is(err, flag.ErrHelp) {
		return printUsage(stdout)
	}
	if err != nil {
		return usageError(err, "'charla help' lists the commands and flags")
	}
	if version {
		return printVersion(stdout)
	}

	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(rest) == 0 {
		if e.home, err = resolveHome(home); err != nil {
			return err
		}
		return start(ctx, e)
	}
	cmd := findCommand(rest[0])
	if cmd == nil {
		return usageError(fmt.Errorf("unknown command %q", rest[0]), "'charla help' lists the commands")
	}
	e.cmd = cmd
	fs := newFlagSet("charla " + cmd.name)
	homeFlag(fs, &home)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	pos, err := parseArgs(fs, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		return printCommandHelp(stdout, cmd)
	}
	if err != nil {
		return cmd.usageError(err)
	}
	if e.home, err = resolveHome(home); err != nil {
		return err
	}
	return cmd.run(ctx, e, pos)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are ours to print
	fs.Usage = func() {}
	return fs
}

// homeFlag adds the global --home flag to fs; every flag set has it, so that
// it may stand anywhere on the command line.
func homeFlag(fs *flag.FlagSet, home *string) {
	fs.StringVar(home, "home", *home, "the `DIR` of this node's identity, database and api.json")
}

// stringsFlag is a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// userError is an error for a person to read, with a hint on what to do.
type userError struct {
	err   error
	hint  string
	usage bool // the command line was wrong
}

func (e *userError) Error() string    { return e.err.Error() }
func (e *userError) Unwrap() error    { return e.err }
func (e *userError) HintText() string { return e.hint }

func (e *userError) Is(target error) bool { return e.usage && target == ErrUsage }

func withHint(err error, hint string) error { return &userError{err: err, hint: hint} }

func usageError(err error, hint string) error {
	return &userError{err: err, hint: hint, usage: true}
}

func (c *command) usageError(err error) error {
	return usageError(err, "usage: "+c.usage())
}

// usagef reports a wrong command line of the command being run.
func (e *env) usagef(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if e.cmd == nil {
		return usageError(err, "'charla help' lists the commands")
	}
	return e.cmd.usageError(err)
}

// Hint returns the hint a user should see with err, or "". Errors carry one
// with a HintText method: those of the CLI and those the API answers.
func Hint(err error) string {
	switch e := err.(type) {
	case nil:
		return ""
	case interface{ HintText() string }:
		if h := e.HintText(); h != "" {
			return h
		}
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return Hint(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, err := range e.Unwrap() {
			if h := Hint(err); h != "" {
				return h
			}
		}
	}
	return ""
}

// client returns a client of the node running in e.home.
func (e *env) client() (*api.Client, error) {
	info, err := api.ReadInfo(e.home)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, e.noNode()
	}
	if err != nil {
		return nil, err
	}
	return api.NewClient(info), nil
}

func (e *env) noNode() error {
	return withHint(fmt.Errorf("no running node in %s", e.home), "start it with 'charla run'")
}

// apiError turns a client's failure to reach the node into the error a user
// understands.
func (e *env) apiError(err error) error {
	if errors.Is(err, api.ErrNoNode) {
		return e.noNode()
	}
	return err
}
