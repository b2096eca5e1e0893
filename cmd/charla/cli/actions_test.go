package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/charla-im/charla/node"
)

// The fake node acts on its messages as a node would, enough for the CLI.

var _ node.Actor = (*fakeNode)(nil)

func (f *fakeNode) find(room, id string) (*node.Message, error) {
	if room != "general" && room != "#general" {
		return nil, fmt.Errorf("%w: %s", node.ErrUnknownRoom, room)
	}
	for i := range f.messages {
		if f.messages[i].ID == id {
			return &f.messages[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %s", node.ErrUnknownMessage, id)
}

func (f *fakeNode) Edit(ctx context.Context, room, id, text string) (node.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.find(room, id)
	if err != nil {
		return node.Message{}, err
	}
	m.Text, m.Edited = text, true
	return *m, nil
}

func (f *fakeNode) Delete(ctx context.Context, room, id string) (node.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.find(room, id)
	if err != nil {
		return node.Message{}, err
	}
	m.Text, m.Deleted = "", true
	return *m, nil
}

func (f *fakeNode) React(ctx context.Context, room, id, emoji string) (node.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.find(room, id)
	if err != nil {
		return node.Message{}, err
	}
	m.Reactions = append(m.Reactions, node.Reaction{Emoji: emoji, Count: 1, Mine: true})
	return *m, nil
}

func (f *fakeNode) Reply(ctx context.Context, room, id, text string) (node.Message, error) {
	f.mu.Lock()
	_, err := f.find(room, id)
	f.mu.Unlock()
	if err != nil {
		return node.Message{}, err
	}
	m, err := f.Send(ctx, room, text)
	m.ReplyTo = id
	return m, err
}

func TestMessageActions(t *testing.T) {
	home, f := startNode(t)
	out, _, err := charla(t, "", "send", "general", "hola", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	for _, args := range [][]string{
		{"edit", "general", id, "hola", "a", "todos"},
		{"react", "general", id, "👍"},
		{"reply", "general", id, "buenas"},
		{"delete", "general", id},
	} {
		out, errOut, err := charla(t, "", append(args, "--home", home)...)
		if err != nil || !messageID.MatchString(strings.TrimSpace(out)) {
			t.Fatalf("%v: %q %q %v", args, out, errOut, err)
		}
	}
	if got := f.texts(); strings.Join(got, ",") != ",buenas" {
		t.Fatalf("after edit, reply and delete: %q", got)
	}
	out, _, err = charla(t, "", "log", "general", "--home", home)
	if err != nil || !strings.Contains(out, "Ana: (deleted)") {
		t.Fatalf("log shows the deleted message as: %q %v", out, err)
	}
	if _, _, err := charla(t, "", "delete", "general", strings.Repeat("0", 64), "--home", home); err == nil || !strings.Contains(err.Error(), "no such message") {
		t.Fatalf("delete of an unknown message: %v", err)
	}
	if _, _, err := charla(t, "", "react", "general", id, "--home", home); err == nil {
		t.Fatal("react without an emoji succeeded")
	}
}
