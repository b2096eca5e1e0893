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
	home := filepath.Join(b.TempDir(), "a")
	initHome(b, home)
	n, err := Open(ctx, Config{Home: home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	text := strings.Repeat("x", 1024)
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.Send(ctx, "general", text); err != nil {
			b.Fatal(err)
		}
	}
}
