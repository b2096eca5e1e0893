package cli

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that a running command writes to while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDemo runs 'charla demo' until it prints three login URLs, then
// interrupts it and checks that it removed its homes.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--home", t.TempDir()}, nil, &stdout, &stderr) }()

	urls := regexp.MustCompile(`(?m)^  (Ana|Bruno|Carmen) +http://127\.0\.0\.1:\d+/#login=[0-9a-f]+$`)
	deadline := time.Now().Add(90 * time.Second)
	for len(urls.FindAllString(stdout.String(), -1)) < 3 {
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three URLs printed\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
	root := regexp.MustCompile(`starting three nodes in (\S+)`).FindStringSubmatch(stdout.String())
	if root == nil {
		t.Fatalf("the demo does not say where its homes are:\n%s", stdout.String())
	}
	if _, err := os.Stat(root[1]); err != nil {
		t.Fatalf("demo homes: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
	if _, err := os.Stat(root[1]); !os.IsNotExist(err) {
		t.Errorf("demo homes left behind in %s: %v", root[1], err)
	}
	if !strings.Contains(stdout.String(), "stopping the demo") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}
