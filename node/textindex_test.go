package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestTextIndexedInBackground: messages a node stores reach the search
// index by themselves once writes are quiet, with no search to pull them in.
func TestTextIndexedInBackground(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "ana")
	initHome(t, home)
	n := openNode(t, home)
	eventually(t, 5*time.Second, "#general readable", func() bool {
		_, err := n.Log(ctx, "general", 1)
		return err == nil
	})
	for _, text := range []string{"quarterly numbers", "numbers are in"} {
		if _, err := n.Send(ctx, "general", text); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*textIdle, "the sent messages indexed with no search asking", func() bool {
		return !n.st.TextWaiting()
	})
	if got, err := n.Search(ctx, "numbers", 10); err != nil || len(got) != 2 {
		t.Errorf("Search(numbers) = %d messages, %v; want 2", len(got), err)
	}
}
