package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSend: one node alone, 1 KiB texts into #general: the local cost
// of a durable send (sign, encrypt, store with synchronous=FULL, publish).
func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	n := benchNode(b)
	text := strings.Repeat("x", 1024)
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.Send(ctx, "general", text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendConcurrent: the same with 16 senders at once (tabs, the CLI,
// a file and its message): their sends share durable commits
// (node/groupcommit.go). Compare ns/op with BenchmarkSend.
func BenchmarkSendConcurrent(b *testing.B) {
	ctx := context.Background()
	n := benchNode(b)
	text := strings.Repeat("x", 1024)
	if _, err := n.Send(ctx, "general", text); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8) // × GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Send(ctx, "general", text); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	n.hist.group.mu.Lock()
	b.ReportMetric(float64(b.N)/float64(n.hist.group.commits), "sends/commit")
	n.hist.group.mu.Unlock()
}

// benchNode is a founder's node alone, closed when b ends.
func benchNode(b *testing.B) *Node {
	home := filepath.Join(b.TempDir(), "a")
	initHome(b, home)
	n, err := Open(context.Background(), Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}
