package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestHasDesktop(t *testing.T) {
	tests := []struct {
		name string
		goos string
		env  map[string]string
		want bool
	}{
		{"macOS", "darwin", nil, true},
		{"Windows", "windows", nil, true},
		{"Linux under X11", "linux", map[string]string{"DISPLAY": ":0"}, true},
		{"Linux under Wayland", "linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, true},
		{"Linux over ssh", "linux", nil, false},
		{"FreeBSD under X11", "freebsd", map[string]string{"DISPLAY": ":0"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasDesktop(tt.goos, func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("hasDesktop = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOpenUIOnStartNeedsATerminal(t *testing.T) {
	desktop := func(k string) string { return map[string]string{"DISPLAY": ":0"}[k] }
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{&bytes.Buffer{}, f} {
		if openUIOnStart(w, "darwin", desktop) {
			t.Errorf("opens the browser with output to %T", w)
		}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !openUIOnStart(tty, "darwin", desktop) {
			t.Error("does not open the browser from a terminal")
		}
		noBrowser := func(k string) string { return map[string]string{"DISPLAY": ":0", "CHARLA_NO_BROWSER": "1"}[k] }
		if openUIOnStart(tty, "linux", noBrowser) {
			t.Error("opens the browser with CHARLA_NO_BROWSER=1")
		}
	}
}
