package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

func TestLogBefore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; run without -short")
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "a")
	initHome(t, home)
	n := openNode(t, home)
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("m%d", i)
		if _, err := n.Send(ctx, "general", text); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	newest, err := n.Log(ctx, "general", 2)
	if err != nil {
		t.Fatal(err)
	}
	page, err := n.LogBefore(ctx, "#general", newest[0].ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range append(page, newest...) {
		got = append(got, m.Text)
	}
	if !slices.Equal(got, want[1:]) {
		t.Errorf("LogBefore page + Log = %q, want %q", got, want[1:])
	}
	if page[0].RoomName != "general" || page[0].AuthorName != "Ana" {
		t.Errorf("page[0] = %+v, want room general, author Ana", page[0])
	}

	for _, tt := range []struct {
		name, room, before string
		want               error
	}{
		{"not an ID", "general", "nope", ErrInvalid},
		{"unknown message", "general", fmt.Sprintf("%064x", 7), ErrInvalid},
		{"unknown room", "nowhere", newest[0].ID, ErrUnknownRoom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := n.LogBefore(ctx, tt.room, tt.before, 2); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
