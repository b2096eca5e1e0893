package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

// startRealNode runs a real node with its API in a new home, as 'charla
// run' would, and publishes the API in api.json.
func startRealNode(t *testing.T) (home string, n *node.Node) {
	t.Helper()
	ctx := context.Background()
	home = filepath.Join(t.TempDir(), "home")
	if _, err := node.Init(ctx, home, node.InitOptions{Name: "Ana", Workspace: "Acme"}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, MDNS: false})
	if err != nil {
		t.Fatal(err)
	}
	l, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := api.NewToken()
	srv := api.NewServer(n, token, nil)
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done; n.Close() })
	if err := api.WriteInfo(home, api.Info{API: l.Addr().String(), Token: token, PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	return home, n
}

// TestGetDefaultNameIsSafe: without -o, 'charla get' writes the file under
// the name its poster gave it, in the current directory. That name is a
// member's word: it must not replace a file there, nor make a hidden one
// such as .bashrc or .bash_profile, which a shell would run. With -o the
// user chose the path, and gets what they asked for.
func TestGetDefaultNameIsSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	home, n := startRealNode(t)
	post := func(name, content string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := n.SendFile(ctx, "general", path)
		if err != nil {
			t.Fatal(err)
		}
		return f.ID
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	const mine = "my own notes\n"
	if err := os.WriteFile(filepath.Join(cwd, "notes.txt"), []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string // the poster's name for the file
		path string // -o, if any
		ok   bool
	}{
		{name: "report.txt", ok: true},
		{name: "notes.txt", ok: false}, // a file of the user's of that name
		{name: ".bashrc", ok: false},   // hidden: a shell runs some of these
		{name: "a\x1b[2Jb", ok: false}, // a terminal escape in the name
		{name: "two\nlines", ok: false},
		{name: "notes.txt", path: filepath.Join(cwd, "notes.txt"), ok: true},
	}
	for _, tt := range tests {
		id := post(tt.name, "posted as "+tt.name+"\n")
		args := []string{"get", id, "--home", home}
		if tt.path != "" {
			args = append(args, "-o", tt.path)
		}
		stdout, stderr, err := charla(t, "", args...)
		if tt.ok != (err == nil) {
			t.Errorf("get %q (-o %q): %v, want ok %v\nstdout %s\nstderr %s", tt.name, tt.path, err, tt.ok, stdout, stderr)
		}
		if err != nil && !strings.Contains(Hint(err), "-o") {
			t.Errorf("get %q: hint %q does not point to -o", tt.name, Hint(err))
		}
	}
	if got, _ := os.ReadFile(filepath.Join(cwd, "notes.txt")); string(got) != "posted as notes.txt\n" {
		t.Errorf("notes.txt after get -o: %q", got) // the last case did overwrite it, as asked
	}
	entries, _ := os.ReadDir(cwd)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "notes.txt,report.txt" {
		t.Errorf("the directory holds %q, want notes.txt and report.txt", names)
	}
}
