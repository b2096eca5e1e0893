package node

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Mentions. A message mentions a member when its text holds "@" and the
// member's display name, in any case, with no letter, digit or underscore
// right before the "@" (so "ana@acme.example" mentions nobody) or right
// after the name. Of several names that match at one "@" the longest wins,
// so "@Ana María" mentions Ana María and not Ana; members who share a name
// are all mentioned. Names are matched as they are now: the text is what
// was signed, and a rename changes what old messages are shown to mention.
// The web UI highlights mentions by the same rule.

// mentionsIn returns the peer IDs of the members text mentions, sorted.
func (n *Node) mentionsIn(text string) []string {
	if !strings.Contains(text, "@") {
		return nil
	}
	type named struct {
		name string
		peer peer.ID
	}
	var members []named
	n.hist.mu.Lock()
	for p, m := range n.hist.members {
		if !m.removed && m.name != "" {
			members = append(members, named{m.name, peer.ID(p)})
		}
	}
	n.hist.mu.Unlock()
	found := map[peer.ID]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		if r, _ := utf8.DecodeLastRuneInString(text[:i]); i > 0 && wordRune(r) {
			continue
		}
		rest := text[i+1:]
		best := 0
		var who []peer.ID
		for _, m := range members {
			l := len(m.name)
			if l < best || l > len(rest) || !strings.EqualFold(rest[:l], m.name) {
				continue
			}
			if r, _ := utf8.DecodeRuneInString(rest[l:]); l < len(rest) && wordRune(r) {
				continue
			}
			if l > best {
				best, who = l, who[:0]
			}
			who = append(who, m.peer)
		}
		for _, p := range who {
			found[p] = true
		}
		i += best
	}
	if len(found) == 0 {
		return nil
	}
	out := make([]string, 0, len(found))
	for p := range found {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

func wordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
