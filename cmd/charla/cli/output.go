package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/charla-im/charla/node"
)

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

const timeLayout = "2006-01-02 15:04"

// printMessages writes messages one per line: JSON objects, or lines for a
// person (with their room when withRoom is set).
func printMessages(w io.Writer, msgs []node.Message, asJSON, withRoom bool) error {
	for _, m := range msgs {
		var err error
		if asJSON {
			err = printJSON(w, m)
		} else {
			_, err = fmt.Fprintln(w, formatMessage(m, withRoom))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// formatMessage renders a message for a person: "2026-11-26 14:03  Ana: hola",
// with the room before the author when withRoom is set. Lines after the first
// are indented under the text.
func formatMessage(m node.Message, withRoom bool) string {
	var b strings.Builder
	b.WriteString(m.Time.Local().Format(timeLayout))
	b.WriteString("  ")
	if withRoom {
		b.WriteString(clean(roomLabel(m)))
		b.WriteString("  ")
	}
	author := m.AuthorName
	if author == "" {
		author = short(m.Author)
	}
	b.WriteString(clean(author))
	b.WriteString(": ")
	text := m.Text
	switch {
	case m.Deleted:
		text = "(deleted)"
	case m.Kind == "file":
		// What get needs is on the line: a file's ID is its message's.
		text = fmt.Sprintf("[file] %s  (charla get %s)", text, m.ID[:min(len(m.ID), 8)])
	case m.Kind != "" && m.Kind != "text" && text == "":
		text = "(" + m.Kind + ")"
	}
	if m.Edited && !m.Deleted {
		text += " (edited)"
	}
	if m.ReplyTo != "" {
		quote := m.ReplyText
		if r := []rune(quote); len(r) > 40 {
			quote = string(r[:40]) + "…"
		}
		text = fmt.Sprintf("(reply to %s: %q) %s", m.ReplyAuthor, quote, text)
	}
	if len(m.Reactions) > 0 {
		var rs []string
		for _, r := range m.Reactions {
			rs = append(rs, fmt.Sprintf("%s %d", r.Emoji, r.Count))
		}
		text += "  [" + strings.Join(rs, ", ") + "]"
	}
	b.WriteString(strings.ReplaceAll(clean(text), "\n", "\n"+strings.Repeat(" ", len(timeLayout)+2)))
	return b.String()
}

func roomLabel(m node.Message) string {
	if m.RoomName != "" {
		return m.RoomName
	}
	return short(m.Room)
}

// short abbreviates a peer or room ID for people.
func short(id string) string {
	const n = 12
	if len(id) <= n {
		return id
	}
	return id[:n] + "…"
}

// clean makes text from other members safe to print on a terminal: control
// characters (which could move the cursor, retitle the window or worse) and
// the bidirectional overrides that can make text read as something else are
// replaced. Newlines and tabs stay.
func clean(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' {
			return -1
		}
		if unsafeRune(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case unicode.IsControl(r):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}
