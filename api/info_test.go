package api

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestInfo(t *testing.T) {
	home := t.TempDir()
	if _, err := ReadInfo(home); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadInfo of an empty home: %v, want fs.ErrNotExist", err)
	}
	want := Info{API: "127.0.0.1:4748", Token: NewToken(), PID: 42}
	if err := WriteInfo(home, want); err != nil {
		t.Fatal(err)
	}
	if err := WriteInfo(home, want); err != nil { // over an existing one
		t.Fatal(err)
	}
	got, err := ReadInfo(home)
	if err != nil || got != want {
		t.Fatalf("ReadInfo = %+v, %v; want %+v", got, err, want)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(home, InfoFile))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("api.json has mode %o, want 600", mode)
		}
	}
	entries, _ := os.ReadDir(home)
	if len(entries) != 1 {
		t.Errorf("home holds %d files, want only api.json", len(entries))
	}
	RemoveInfo(home)
	if _, err := ReadInfo(home); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadInfo after RemoveInfo: %v", err)
	}
	RemoveInfo(home) // twice is fine

	if err := os.WriteFile(filepath.Join(home, InfoFile), []byte(`{"pid": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInfo(home); err == nil {
		t.Error("ReadInfo accepted an api.json with no address or token")
	}
}

func TestNewToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a) {
		t.Errorf("token %q is not 32 bytes of hex", a)
	}
	if a == b {
		t.Error("two tokens are equal")
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name, addr string
		wantHost   string // empty: an error
	}{
		{name: "port 0", addr: "127.0.0.1:0", wantHost: "127.0.0.1"},
		{name: "no host", addr: ":0", wantHost: "127.0.0.1"},
		{name: "localhost", addr: "localhost:0", wantHost: "127.0.0.1"},
		{name: "ipv6 loopback", addr: "[::1]:0", wantHost: "::1"},
		{name: "all interfaces", addr: "0.0.0.0:0"},
		{name: "ipv6 any", addr: "[::]:0"},
		{name: "lan address", addr: "192.168.1.10:0"},
		{name: "other loopback", addr: "127.0.0.2:0"},
		{name: "host name", addr: "example.com:0"},
		{name: "no port", addr: "127.0.0.1"},
		{name: "bad port", addr: "127.0.0.1:http"},
		{name: "port too big", addr: "127.0.0.1:70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Listen(tt.addr)
			if tt.wantHost == "" {
				if err == nil {
					l.Close()
					t.Fatalf("Listen(%q) succeeded on %s", tt.addr, l.Addr())
				}
				return
			}
			if err != nil {
				if tt.wantHost == "::1" && strings.Contains(err.Error(), "assign") {
					t.Skip("no IPv6 loopback here:", err)
				}
				t.Fatal(err)
			}
			defer l.Close()
			host, port, _ := net.SplitHostPort(l.Addr().String())
			if host != tt.wantHost || port == "0" {
				t.Errorf("listening on %s, want %s on a free port", l.Addr(), tt.wantHost)
			}
		})
	}
	if _, err := Listen("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("error %v does not say why", err)
	}
}

func TestListenNextFreePort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	first := taken.Addr().(*net.TCPAddr).Port
	l, err := listenFrom("127.0.0.1", first, 5)
	if err != nil {
		t.Skip("the next ports are taken too:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if port <= first || port >= first+5 {
		t.Errorf("listening on %d, want one of %d..%d", port, first+1, first+4)
	}
	if _, err := listenFrom("127.0.0.1", first, 1); err == nil || !strings.Contains(err.Error(), strconv.Itoa(first)) {
		t.Errorf("all taken: error %v", err)
	}
}
