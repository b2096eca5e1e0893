package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/charla-im/charla/node"
)

// caseHint is an error of the node's that says what to do (node.withHint).
type caseHint struct{ error }

func (caseHint) Hint() string    { return "ask an admin" }
func (c caseHint) Unwrap() error { return c.error }

// TestErrorHintFromNode: a node error that carries its own hint gets that
// hint, not the status's generic one; others keep the generic one.
func TestErrorHintFromNode(t *testing.T) {
	own := toError(caseHint{fmt.Errorf("%w: only admins remove", node.ErrForbidden)})
	if own.Status != http.StatusForbidden || own.Hint != "ask an admin" {
		t.Errorf("hinted error: %d %q, want 403 with its own hint", own.Status, own.Hint)
	}
	plain := toError(fmt.Errorf("%w: policy", node.ErrForbidden))
	if plain.Status != http.StatusForbidden || plain.Hint == "" || plain.Hint == "ask an admin" {
		t.Errorf("plain error: %d %q, want 403 with the generic hint", plain.Status, plain.Hint)
	}
}
