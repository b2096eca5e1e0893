package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/charla-im/charla/node"
)

func statusCommand() *command {
	var asJSON bool
	return &command{
		name:  "status",
		args:  "[--json]",
		short: "show the running node's identity, addresses and peers",
		long: `status shows the running node. With --json it prints one JSON object:
peer_id, name, workspace, workspace_name, addrs, peers, api, rejected
(envelopes refused, by reason), dropped, envelopes, sync (catch-ups under
way), forks, sources (file chunks fetched per peer), role, removed (true once
an admin removed this node), and what the last retention purge did:
last_purge (unix ms, 0 never), purged, purged_files, purged_chunks,
purged_total.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print one JSON object")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return e.usagef("status takes no arguments, got %q", args)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			st, err := c.Status(ctx)
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, st)
			}
			return printStatus(e.stdout, e.home, st)
		},
	}
}

func printStatus(w io.Writer, home string, st node.Status) error {
	var b strings.Builder
	line := func(label, value string) { fmt.Fprintf(&b, "%-11s%s\n", label, value) }
	list := func(label string, values []string) {
		if len(values) == 0 {
			line(label, "none")
		}
		for i, v := range values {
			if i > 0 {
				label = ""
			}
			line(label, clean(v))
		}
	}
	line("peer ID", st.PeerID)
	line("name", clean(st.Name))
	if st.Role != "" {
		line("role", st.Role)
	}
	if st.Removed {
		line("removed", "an admin removed this node from the workspace: it no longer sends or syncs; join again with a new invite and a new --home")
	}
	ws := clean(st.WorkspaceName)
	if st.Workspace != "" {
		ws += " (" + st.Workspace + ")"
	}
	line("workspace", ws)
	line("home", home)
	line("API", "http://"+st.API)
	list("addresses", st.Addrs)
	line("peers", fmt.Sprintf("%d connected", len(st.Peers)))
	line("envelopes", fmt.Sprint(st.Envelopes))
	line("rejected", counts(st.Rejected))
	line("dropped", counts(st.Dropped))
	line("last purge", purgeLine(st))
	_, err := io.WriteString(w, b.String())
	return err
}

// purgeLine says when retention last ran and what it removed.
func purgeLine(st node.Status) string {
	if st.LastPurge == 0 {
		return "never"
	}
	return fmt.Sprintf("%s: %d envelopes emptied (%d files, %d chunks); %d in all",
		time.UnixMilli(st.LastPurge).Format(time.DateTime), st.Purged, st.PurgedFiles, st.PurgedChunks, st.PurgedTotal)
}

// counts renders counts by reason: "forged 2, malformed 1", or "none".
func counts(m map[string]int64) string {
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(m)) {
		if m[reason] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", clean(reason), m[reason]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
