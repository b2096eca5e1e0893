package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/charla-im/charla/node"
)

func tailCommand() *command {
	var asJSON bool
	return &command{
		name:  "tail",
		args:  "[--json]",
		short: "follow new messages in every room",
		long: `tail prints new messages in every room as they arrive, until interrupted.
With --json it prints one JSON object a message, as log --json does.
While the node catches up on many messages from a peer, tail says how far
it has got on standard error, with or without --json.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("tail takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			stream, err := c.Events(ctx)
			if err != nil {
				return e.apiError(err)
			}
			defer func() { stream.Close() }()
			progress := newSyncReporter(e.stderr, time.Now)
			for {
				ev, err := stream.Next()
				if ctx.Err() != nil {
					return nil // interrupted: what ends a tail
				}
				if errors.Is(err, io.EOF) {
					// The node ends the stream when it stops, and when this
					// tail fell behind and missed events: a new stream tells
					// which.
					stream.Close()
					next, err := c.Events(ctx)
					if ctx.Err() != nil {
						return nil
					}
					if err != nil {
						return withHint(errors.New("the node stopped"), "start it again with 'charla run'")
					}
					stream = next
					fmt.Fprintln(e.stderr, "charla: tail fell behind and missed messages; 'charla log ROOM' shows them")
					continue
				}
				if err != nil {
					return err
				}
				switch {
				case ev.Type == "sync" && ev.Sync != nil:
					// stdout carries messages alone, even with --json:
					// scripts read it line by line as message objects.
					progress.report(*ev.Sync)
				case ev.Type == "message" && ev.Message != nil:
					if asJSON {
						err = printJSON(e.stdout, ev.Message)
					} else {
						_, err = fmt.Fprintln(e.stdout, formatMessage(*ev.Message, true))
					}
					if err != nil {
						return err
					}
				}
			}
		},
	}
}

const (
	// progressEvery is the least time between two progress lines about one
	// peer: the node sends an event per batch, many a second.
	progressEvery = time.Second
	// minProgress is the smallest catch-up worth a line: a few missed
	// messages arrive before anyone could read one.
	minProgress = 100
)

// syncReporter turns the node's sync events into progress lines for people.
type syncReporter struct {
	w     io.Writer
	now   func() time.Time
	peers map[string]*peerProgress // by peer ID
}

type peerProgress struct {
	last  time.Time // when the last line about the peer was printed
	shown bool      // a line about the current catch-up was printed
}

func newSyncReporter(w io.Writer, now func() time.Time) *syncReporter {
	return &syncReporter{w: w, now: now, peers: map[string]*peerProgress{}}
}

// report prints "charla: receiving 1,234 messages from Ana (1,000 left)"
// for a catch-up of at least minProgress messages, at most once every
// progressEvery per peer, and a last line when a reported catch-up ends, so
// that no "left" count stays on screen for work that is done. A failed write
// is ignored: progress must not end a tail.
func (r *syncReporter) report(sp node.SyncProgress) {
	p := r.peers[sp.Peer]
	if p == nil {
		p = &peerProgress{}
		r.peers[sp.Peer] = p
	}
	from := sp.Name
	if from == "" {
		from = short(sp.Peer)
	}
	from = strings.ReplaceAll(clean(from), "\n", " ") // one line a report
	now := r.now()
	if sp.Remaining <= 0 {
		if p.shown {
			fmt.Fprintf(r.w, "charla: received %s messages from %s\n", thousands(sp.Received), from)
			p.last, p.shown = now, false
		}
		return
	}
	if sp.Received+sp.Remaining < minProgress || (!p.last.IsZero() && now.Sub(p.last) < progressEvery) {
		return
	}
	fmt.Fprintf(r.w, "charla: receiving %s messages from %s (%s left)\n",
		thousands(sp.Received+sp.Remaining), from, thousands(sp.Remaining))
	p.last, p.shown = now, true
}

// thousands writes n with commas between groups of three digits: 1,234.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return neg + string(out)
}
