package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

func TestThousands(t *testing.T) {
	tests := []struct {
		name string
		n    int64
		want string
	}{
		{"zero", 0, "0"},
		{"three digits", 999, "999"},
		{"four digits", 1234, "1,234"},
		{"six digits", 100000, "100,000"},
		{"seven digits", 1234567, "1,234,567"},
		{"negative", -1234, "-1,234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := thousands(tt.n); got != tt.want {
				t.Errorf("thousands(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

// syncStep is one sync event, at an offset from the start of a test.
type syncStep struct {
	at        time.Duration
	peer      string
	name      string
	received  int64
	remaining int64
}

func TestSyncReporter(t *testing.T) {
	const ana, ben = "12D3KooWAnaAnaAnaAna", "12D3KooWBenBenBenBen"
	tests := []struct {
		name  string
		steps []syncStep
		want  []string
	}{
		{
			name: "a long catch-up, throttled to a line a second",
			steps: []syncStep{
				{0, ana, "Ana", 100, 1134},
				{300 * time.Millisecond, ana, "Ana", 300, 934},
				{999 * time.Millisecond, ana, "Ana", 500, 734},
				{time.Second, ana, "Ana", 600, 634},
				{1500 * time.Millisecond, ana, "Ana", 1000, 234},
				{2100 * time.Millisecond, ana, "Ana", 1234, 0},
			},
			want: []string{
				"charla: receiving 1,234 messages from Ana (1,134 left)",
				"charla: receiving 1,234 messages from Ana (634 left)",
				"charla: received 1,234 messages from Ana",
			},
		},
		{
			name: "a short catch-up says nothing",
			steps: []syncStep{
				{0, ana, "Ana", 20, 79},
				{2 * time.Second, ana, "Ana", 60, 39},
				{4 * time.Second, ana, "Ana", 99, 0},
			},
		},
		{
			name: "a catch-up done in one batch says nothing",
			steps: []syncStep{
				{0, ana, "Ana", 250, 0},
			},
		},
		{
			name: "exactly the threshold is reported",
			steps: []syncStep{
				{0, ana, "Ana", 0, 100},
				{100 * time.Millisecond, ana, "Ana", 100, 0},
			},
			want: []string{
				"charla: receiving 100 messages from Ana (100 left)",
				"charla: received 100 messages from Ana",
			},
		},
		{
			name: "each peer has its own second",
			steps: []syncStep{
				{0, ana, "Ana", 50, 2000},
				{100 * time.Millisecond, ben, "Ben", 50, 500},
				{200 * time.Millisecond, ana, "Ana", 100, 1950},
				{300 * time.Millisecond, ben, "Ben", 100, 450},
				{1100 * time.Millisecond, ben, "Ben", 400, 150},
			},
			want: []string{
				"charla: receiving 2,050 messages from Ana (2,000 left)",
				"charla: receiving 550 messages from Ben (500 left)",
				"charla: receiving 550 messages from Ben (150 left)",
			},
		},
		{
			name: "an unnamed peer is shown by its ID, shortened",
			steps: []syncStep{
				{0, ana, "", 0, 500},
			},
			want: []string{"charla: receiving 500 messages from 12D3KooWAnaA… (500 left)"},
		},
		{
			name: "a name cannot break the line or drive the terminal",
			steps: []syncStep{
				{0, ana, "Ana\n\x1b[2Jcharla: error", 0, 500},
			},
			want: []string{"charla: receiving 500 messages from Ana \ufffd[2Jcharla: error (500 left)"},
		},
		{
			name: "a second catch-up from a peer starts a new report",
			steps: []syncStep{
				{0, ana, "Ana", 100, 400},
				{500 * time.Millisecond, ana, "Ana", 500, 0},
				{1600 * time.Millisecond, ana, "Ana", 100, 200},
			},
			want: []string{
				"charla: receiving 500 messages from Ana (400 left)",
				"charla: received 500 messages from Ana",
				"charla: receiving 300 messages from Ana (200 left)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 11, 26, 14, 3, 0, 0, time.UTC)
			now := start
			var out bytes.Buffer
			r := newSyncReporter(&out, func() time.Time { return now })
			for _, s := range tt.steps {
				now = start.Add(s.at)
				r.report(node.SyncProgress{Peer: s.peer, Name: s.name, Received: s.received, Remaining: s.remaining})
			}
			var got []string
			if s := strings.TrimSuffix(out.String(), "\n"); s != "" {
				got = strings.Split(s, "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("printed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestTailSyncProgress: sync events from the node become progress lines on
// standard error, and tail --json keeps standard output to messages.
func TestTailSyncProgress(t *testing.T) {
	home, f := startNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--json", "--home", home}, strings.NewReader(""), stdout, stderr)
	}()
	select {
	case <-f.subscribed:
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("tail never subscribed")
	}

	f.events <- node.Event{Type: "sync", Sync: &node.SyncProgress{Peer: "12D3KooWAna", Name: "Ana", Received: 234, Remaining: 1000}}
	f.events <- node.Event{Type: "sync", Sync: &node.SyncProgress{Peer: "12D3KooWAna", Name: "Ana", Received: 734, Remaining: 500}}
	f.events <- node.Event{Type: "sync"} // no progress in it: ignored
	m := node.Message{ID: "ab", RoomName: "#general", AuthorName: "Ana", Text: "hola", Kind: "text", State: "delivered"}
	f.events <- node.Event{Type: "message", Message: &m}
	eventually(t, 5*time.Second, func() bool { return stdout.String() != "" })

	if got, want := stderr.String(), "charla: receiving 1,234 messages from Ana (1,000 left)\n"; got != want {
		t.Errorf("stderr = %q, want %q (the second event came within a second)", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want the message alone:\n%s", len(lines), stdout.String())
	}
	var got node.Message
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil || got.Text != "hola" || got.State != "delivered" {
		t.Errorf("stdout line %q: %+v, %v; want the message", lines[0], got, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interrupted tail: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail goes on after its context is done")
	}
}
