package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// resolveHome returns the home a command works on, absolute: --home, else
// $CHARLA_HOME, else the default under the OS user data directory.
func resolveHome(flagValue string) (string, error) {
	home := flagValue
	if home == "" {
		home = os.Getenv("CHARLA_HOME")
	}
	if home == "" {
		var err error
		home, err = defaultHome(runtime.GOOS, os.Getenv, os.UserHomeDir)
		if err != nil {
			return "", withHint(err, "name a home with --home DIR or CHARLA_HOME")
		}
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("home %s: %w", home, err)
	}
	return abs, nil
}

// defaultHome is charla's directory in the user data directory of goos:
// $XDG_DATA_HOME/charla or ~/.local/share/charla on Unix,
// ~/Library/Application Support/charla on macOS, %LocalAppData%\charla on
// Windows. It is a data directory, not a config one: it holds keys and the
// database, which must not roam or be synced as settings are.
func defaultHome(goos string, getenv func(string) string, userHome func() (string, error)) (string, error) {
	switch goos {
	case "windows":
		if dir := getenv("LocalAppData"); dir != "" {
			return filepath.Join(dir, "charla"), nil
		}
		return "", errors.New("find a home for charla: %LocalAppData% is not set")
	case "darwin", "ios":
		h, err := userHome()
		if err != nil {
			return "", fmt.Errorf("find a home for charla: %w", err)
		}
		return filepath.Join(h, "Library", "Application Support", "charla"), nil
	case "plan9":
		h, err := userHome()
		if err != nil {
			return "", fmt.Errorf("find a home for charla: %w", err)
		}
		return filepath.Join(h, "lib", "charla"), nil
	}
	// XDG Base Directory Specification: a relative $XDG_DATA_HOME is invalid
	// and must be ignored.
	if dir := getenv("XDG_DATA_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "charla"), nil
	}
	h, err := userHome()
	if err != nil {
		return "", fmt.Errorf("find a home for charla: %w", err)
	}
	return filepath.Join(h, ".local", "share", "charla"), nil
}

// nextRun tells, on standard error, how to start the node of the home just
// made: standard output keeps the peer ID alone, for scripts.
func (e *env) nextRun(what string) error {
	cmd := "charla run"
	if def, err := resolveHome(""); err != nil || def != e.home {
		cmd = "charla --home " + shellQuote(e.home) + " run"
	}
	_, err := fmt.Fprintf(e.stderr, "charla: %s; start the node with: %s\n", what, cmd)
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@%,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
