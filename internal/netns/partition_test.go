package netns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// TestPartition splits four hosts 2|2: each pair still talks, nothing
// crosses, and Heal puts everyone back on one switch.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped with -short")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lan, err := NewLAN(t, 4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		groups  [][]int
		wantErr bool
	}{
		{name: "no such host", groups: [][]int{{0, 4}}, wantErr: true},
		{name: "host in two groups", groups: [][]int{{0, 1}, {1, 2}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := lan.Partition(tt.groups...); (err != nil) != tt.wantErr {
				t.Errorf("Partition(%v): %v", tt.groups, err)
			}
		})
	}

	// A listener on one host of each side.
	addrs := make(map[int]string)
	for _, i := range []int{0, 2} {
		addrs[i] = net.JoinHostPort(lan.Host(i).IP, "4747")
		if line := startHelper(t, lan.Host(i), "listen "+addrs[i]).next(t, 10*time.Second); line != "listening" {
			t.Fatalf("listener on host %d said %q", i, line)
		}
	}
	if err := lan.Partition([]int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	reach := func(from, to int) error {
		out, err := runHelper(ctx, lan.Host(from), "dial "+addrs[to])
		if err != nil {
			return fmt.Errorf("host %d → host %d: %v: %s", from, to, err, out)
		}
		return nil
	}
	for _, pair := range [][2]int{{1, 0}, {3, 2}} {
		if err := reach(pair[0], pair[1]); err != nil {
			t.Errorf("same side: %v", err)
		}
	}
	for _, pair := range [][2]int{{2, 0}, {1, 2}} {
		if err := reach(pair[0], pair[1]); err == nil {
			t.Errorf("host %d reached host %d across the partition", pair[0], pair[1])
		}
	}

	if err := lan.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := lan.Heal(); err != nil {
		t.Errorf("second Heal: %v", err)
	}
	names, err := lan.bridges()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{bridge}) {
		t.Errorf("bridges after Heal: %q, want only %s", names, bridge)
	}
	for _, pair := range [][2]int{{2, 0}, {1, 2}, {3, 0}} {
		var err error
		eventually(t, 10*time.Second, func() bool {
			err = reach(pair[0], pair[1])
			return err == nil
		}, func() string { return fmt.Sprintf("after Heal: %v", err) })
	}
}
