package cli

import (
	"io"
	"os"
)

// openUIOnStart reports whether plain 'charla' should open the web UI in
// the desktop's browser: only for a person at a terminal on a machine with
// a desktop, and never when CHARLA_NO_BROWSER is set (tests, scripts, and
// whoever prefers 'charla ui --open'). Issue 7: "bare charla prints its URL
// and opens the desktop browser when there is one".
func openUIOnStart(stdout io.Writer, goos string, getenv func(string) string) bool {
	if getenv("CHARLA_NO_BROWSER") != "" {
		return false
	}
	return isTerminal(stdout) && hasDesktop(goos, getenv)
}

// hasDesktop reports whether a browser could show itself: always on macOS
// and Windows; elsewhere only under an X11 or Wayland session, so that a
// server reached by ssh does not start a text browser or fail noisily.
func hasDesktop(goos string, getenv func(string) string) bool {
	switch goos {
	case "darwin", "windows":
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}

// isTerminal reports whether w is a character device: a terminal, not a
// pipe, a file or a test's buffer.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
