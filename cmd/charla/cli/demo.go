package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func demoCommand() *command {
	return &command{
		name:  "demo",
		args:  "",
		short: "start three nodes on this machine to try charla",
		long: `demo starts three nodes in this process, Ana, Bruno and Carmen, each in a
temporary home, joined in one workspace with a short conversation and a file,
and prints the address of each one's web UI: open them side by side and
chat with yourself, with no server anywhere. Ctrl-C stops them and removes
everything the demo made. It needs no identity of your own and leaves the
home of your node alone.`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("demo takes no arguments, got %q", args)
			}
			return runDemo(ctx, e.stdout, e.stderr)
		},
	}
}

// demoWait bounds each step of setting the demo up.
const demoWait = 30 * time.Second

// demoNode is one running node of the demo, with its API.
type demoNode struct {
	name   string
	node   *node.Node
	srv    *api.Server
	addr   string
	served chan error
}

func (d *demoNode) close() {
	if d.srv != nil {
		d.srv.Close()
		<-d.served
	}
	d.node.Close()
}

// runDemo runs the demo until ctx is done.
func runDemo(ctx context.Context, stdout, stderr io.Writer) (err error) {
	root, err := os.MkdirTemp("", "charla-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = nil // interrupted while starting: not a failure
		}
		if rerr := os.RemoveAll(root); rerr != nil && err == nil {
			err = fmt.Errorf("demo: remove %s: %w", root, rerr)
		}
	}()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var nodes []*demoNode
	defer func() {
		// The newest first, so the owner, which the others dial, goes last.
		for _, d := range slices.Backward(nodes) {
			d.close()
		}
	}()

	fmt.Fprintf(stdout, "charla: starting three nodes in %s\n", root)
	names := []string{"Ana", "Bruno", "Carmen"}
	for i, name := range names {
		home := filepath.Join(root, strings.ToLower(name))
		if i == 0 {
			if _, err := node.Init(ctx, home, node.InitOptions{Name: name, Workspace: "Demo office"}); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		} else if _, err := nodes[0].node.Provision(ctx, home, name); err != nil {
			return fmt.Errorf("demo: add %s: %w", name, err)
		}
		cfg := node.Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: logger.With("node", name)}
		if i > 0 {
			cfg.Peers = nodes[0].node.Addrs()
		}
		n, err := node.Open(ctx, cfg)
		if err != nil {
			return fmt.Errorf("demo: start %s: %w", name, err)
		}
		nodes = append(nodes, &demoNode{name: name, node: n})
	}
	for _, d := range nodes[1:] {
		if err := waitDemo(ctx, d.name+" joins #general", func() bool {
			rooms, _ := d.node.Rooms(ctx)
			return slices.ContainsFunc(rooms, func(r node.Room) bool { return r.Name == "general" })
		}); err != nil {
			return err
		}
	}
	if err := demoConversation(ctx, root, nodes); err != nil {
		return err
	}

	for _, d := range nodes {
		l, err := api.Listen("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		d.srv = api.NewServer(d.node, api.NewToken(), logger.With("component", "api", "node", d.name))
		d.addr = l.Addr().String()
		d.served = make(chan error, 1)
		go func(l net.Listener) { d.served <- d.srv.Serve(l) }(l)
	}
	fmt.Fprintln(stdout, "charla: open each colleague's web UI, side by side:")
	for _, d := range nodes {
		fmt.Fprintf(stdout, "  %-7s %s\n", d.name, d.srv.NewLoginURL(d.addr))
	}
	fmt.Fprintln(stdout, "charla: each link logs in once; press Ctrl-C to stop the demo and remove its files")
	<-ctx.Done()
	fmt.Fprintln(stdout, "charla: stopping the demo")
	return nil
}

// demoConversation posts a few messages in #general from each node, a
// direct message and a file, each once every node has the one before, so
// that the conversation reads in order everywhere.
func demoConversation(ctx context.Context, root string, nodes []*demoNode) error {
	ana, bruno, carmen := nodes[0], nodes[1], nodes[2]
	lines := []struct {
		from *demoNode
		text string
	}{
		{ana, "Good morning! Welcome to charla: this chat runs on our own computers, no server involved."},
		{bruno, "Morning! So if the internet goes down we can still talk in the office?"},
		{carmen, "Exactly, it works on the **LAN** alone. I've put the lunch menu below."},
	}
	for _, l := range lines {
		m, err := l.from.node.Send(ctx, "general", l.text)
		if err != nil {
			return fmt.Errorf("demo: %s sends: %w", l.from.name, err)
		}
		if err := waitEverywhere(ctx, nodes, "general", m.ID); err != nil {
			return err
		}
	}
	menu := filepath.Join(root, "lunch-menu.txt")
	if err := os.WriteFile(menu, []byte("Monday: lentil soup\nTuesday: paella\nWednesday: gazpacho\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	f, err := carmen.node.SendFile(ctx, "general", menu)
	if err != nil {
		return fmt.Errorf("demo: %s sends a file: %w", carmen.name, err)
	}
	if err := waitEverywhere(ctx, nodes, "general", f.ID); err != nil {
		return err
	}
	if _, err := ana.node.Send(ctx, "general", "Thanks Carmen! Try searching for *paella* or sending a file by dropping it here."); err != nil {
		return fmt.Errorf("demo: %s sends: %w", ana.name, err)
	}
	if _, err := bruno.node.Send(ctx, "@"+ana.name, "Ana, a direct message: only you and I can read this one."); err != nil {
		return fmt.Errorf("demo: %s sends a direct message: %w", bruno.name, err)
	}
	return nil
}

func waitEverywhere(ctx context.Context, nodes []*demoNode, room, id string) error {
	for _, d := range nodes {
		err := waitDemo(ctx, d.name+" receives the conversation", func() bool {
			log, _ := d.node.Log(ctx, room, 20)
			return slices.ContainsFunc(log, func(m node.Message) bool { return m.ID == id })
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitDemo polls cond until it holds, ctx is done or demoWait passes.
func waitDemo(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(demoWait)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s: timed out after %s", what, demoWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
