package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func runCommand() *command {
	var listen, peers stringsFlag
	var apiAddr string
	var noMDNS bool
	return &command{
		name:  "run",
		args:  "[--listen MULTIADDR]... [--peer MULTIADDR]... [--api HOST:PORT] [--no-mdns]",
		short: "run the node in the foreground",
		long: `run starts the node: it connects to the workspace's other members and
serves the local API that the other commands use. It runs until interrupted
(Ctrl-C), then stops cleanly.`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&listen, "listen", "listen for peers on `MULTIADDR`; repeatable (default /ip4/0.0.0.0/tcp/4747, a free port if taken)")
			fs.Var(&peers, "peer", "connect to the static peer `MULTIADDR`, ending in /p2p/<peer ID>; repeatable")
			fs.StringVar(&apiAddr, "api", "", "serve the local API on loopback `HOST:PORT`; :0 picks a free port (default 127.0.0.1:4748, the next free port if taken)")
			fs.BoolVar(&noMDNS, "no-mdns", false, "do not look for peers on the LAN")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("run takes no arguments, got %q", args)
			}
			return runNode(ctx, e, runOptions{listen: listen, peers: peers, api: apiAddr, mdns: !noMDNS})
		},
	}
}

type runOptions struct {
	listen, peers []string
	api           string
	mdns          bool
	openUI        bool // open the web UI in the desktop's browser, if openUIOnStart allows
}

// runNode runs the node of e.home and its API until ctx is done.
func runNode(ctx context.Context, e *env, opts runOptions) error {
	if err := e.checkNotRunning(ctx); err != nil {
		return err
	}
	level := slog.LevelInfo
	if os.Getenv("CHARLA_DEBUG") != "" {
		level = slog.LevelDebug // troubleshooting: every dial, probe and sync
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	n, err := node.Open(ctx, node.Config{
		Home:   e.home,
		Listen: opts.listen,
		Peers:  opts.peers,
		MDNS:   opts.mdns,
		Logger: logger,
	})
	if err != nil {
		return e.openError(err)
	}
	closeNode := func() {
		if err := n.Close(); err != nil {
			logger.Error("stop the node", "err", err)
		}
	}

	l, err := api.Listen(opts.api)
	if err != nil {
		closeNode()
		return withHint(err, "choose another address with --api, e.g. --api 127.0.0.1:0")
	}
	token := api.NewToken()
	srv := api.NewServer(n, token, logger.With("component", "api"))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	info := api.Info{API: l.Addr().String(), Token: token, PID: os.Getpid()}
	// Stop in the reverse order: first tell clients there is no node, then
	// stop answering them, then stop the node.
	shutdown := func() {
		api.RemoveInfo(e.home)
		if err := srv.Close(); err != nil {
			logger.Error("stop the API", "err", err)
		}
		<-served
		closeNode()
	}
	if err := api.WriteInfo(e.home, info); err != nil {
		shutdown()
		return err
	}

	st, err := n.Status(ctx)
	if err != nil {
		logger.Warn("read the node's status", "err", err)
	}
	fmt.Fprintf(e.stdout, "charla: node %s running; API on http://%s\n", st.PeerID, info.API)
	fmt.Fprintf(e.stdout, "charla: web UI at %s\n", srv.NewLoginURL(info.API))
	if opts.openUI && openUIOnStart(e.stdout, runtime.GOOS, os.Getenv) {
		// A login URL works once: the browser gets its own, and the one
		// printed stays good for another tab.
		if err := openBrowser(srv.NewLoginURL(info.API)); err != nil {
			logger.Info("could not open a browser; open the address above yourself", "err", err)
		} else {
			fmt.Fprintln(e.stdout, "charla: opened the web UI in your browser")
		}
	}

	select {
	case <-ctx.Done():
		logger.Info("stopping")
		shutdown()
		return nil
	case err := <-served:
		served <- err // for shutdown
		shutdown()
		return fmt.Errorf("the API stopped: %w", err)
	}
}

// checkNotRunning fails if a node already answers at the API address that
// e.home's api.json names. The node's own lock on its home is what really
// keeps two nodes apart; this only makes the error clearer.
func (e *env) checkNotRunning(ctx context.Context) error {
	info, err := api.ReadInfo(e.home)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := api.NewClient(info).Status(ctx); err != nil {
		return nil // a stale api.json: its node is gone
	}
	return withHint(fmt.Errorf("a charla node is already running in %s (pid %d, API on %s)", e.home, info.PID, info.API),
		"stop it first, or choose another home with --home")
}

// openError explains why node.Open failed.
func (e *env) openError(err error) error {
	switch {
	case errors.Is(err, node.ErrNotInit):
		return withHint(fmt.Errorf("no charla identity in %s", e.home),
			"create one with 'charla init --name NAME --workspace NAME', or start with plain 'charla'")
	case errors.Is(err, node.ErrLocked):
		if info, rerr := api.ReadInfo(e.home); rerr == nil && info.PID > 0 && !strings.Contains(err.Error(), strconv.Itoa(info.PID)) {
			err = fmt.Errorf("%w (pid %d)", err, info.PID)
		}
		return withHint(err, "stop the other node first, or choose another home with --home")
	}
	return fmt.Errorf("start the node: %w", err)
}
