package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// TestInvitesAllParam: GET /api/invites takes all as a boolean, as
// GET /api/audit takes full: all=false lists the pending invites only, and
// a value that is not a boolean is 400, not taken as true.
func TestInvitesAllParam(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx := context.Background()
	ln := workspace(t, "Ana")[0]
	if _, err := ln.node.Invite(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	vs, err := ln.node.Invites(ctx, false)
	if err != nil || len(vs) != 1 {
		t.Fatalf("invites: %+v %v", vs, err)
	}
	if _, err := ln.node.RevokeInvite(ctx, vs[0].ID); err != nil {
		t.Fatal(err)
	}
	session := ln.session(t)
	for _, tt := range []struct {
		query string
		code  int
		n     int
	}{
		{"", http.StatusOK, 0},
		{"?all=1", http.StatusOK, 1},
		{"?all=true", http.StatusOK, 1},
		{"?all=false", http.StatusOK, 0},
		{"?all=0", http.StatusOK, 0},
		{"?all=maybe", http.StatusBadRequest, 0},
	} {
		var got []node.InviteView
		if code := ln.call(t, session, http.MethodGet, "/api/invites"+tt.query, "", &got); code != tt.code || len(got) != tt.n {
			t.Errorf("GET /api/invites%s: %d with %d invites, want %d with %d", tt.query, code, len(got), tt.code, tt.n)
		}
	}
}
