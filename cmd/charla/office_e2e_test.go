package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/node"
)

// TestOfficeControlEndToEnd drives office control with the built binary:
// Ana invites Ben as an admin and Eve as a member; Ben lists the invites;
// Ana sets and reads policy; Ben (admin) removes Eve, whose node then says
// it was removed and refuses to send; a revoked invite cannot join.
func TestOfficeControlEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three charla nodes; skipped in -short mode")
	}
	bin := buildCharla(t)
	dir := t.TempDir()
	ana, ben, eve := filepath.Join(dir, "ana"), filepath.Join(dir, "ben"), filepath.Join(dir, "eve")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustRun(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme", "--home", ana)
	runNode(ctx, t, bin, ana)
	benCode := strings.TrimSpace(mustRun(ctx, t, bin, "invite", "--admin", "--expires", "1h", "--home", ana))
	eveCode := strings.TrimSpace(mustRun(ctx, t, bin, "invite", "--expires", "1h", "--home", ana))
	spare := strings.TrimSpace(mustRun(ctx, t, bin, "invite", "--expires", "1h", "--home", ana))
	mustRun(ctx, t, bin, "join", benCode, "--name", "Ben", "--home", ben)
	mustRun(ctx, t, bin, "join", eveCode, "--name", "Eve", "--home", eve)
	runNode(ctx, t, bin, ben)
	runNode(ctx, t, bin, eve)

	members := func(home string) map[string]string {
		var ms []node.Member
		decode(t, mustRun(ctx, t, bin, "members", "--json", "--home", home), &ms)
		out := map[string]string{}
		for _, m := range ms {
			out[m.Name] = m.Role
		}
		return out
	}
	eventually(t, 60*time.Second, func() bool {
		m := members(eve)
		return m["Ben"] == "admin" && m["Eve"] == "member" && m["Ana"] == "owner"
	}, func() string { return "eve's members: " + mustRun(ctx, t, bin, "members", "--home", eve) })

	// Every member lists the one pending invite; Ben revokes it.
	var invs []node.InviteView
	eventually(t, 60*time.Second, func() bool {
		invs = nil
		decode(t, mustRun(ctx, t, bin, "invites", "--json", "--home", ben), &invs)
		return len(invs) == 1 && invs[0].IssuerName == "Ana"
	}, func() string { return "ben's invites: " + mustRun(ctx, t, bin, "invites", "--all", "--home", ben) })
	mustRun(ctx, t, bin, "invites", "revoke", invs[0].ID[:12], "--home", ben)
	eventually(t, 60*time.Second, func() bool {
		return strings.Contains(mustRun(ctx, t, bin, "invites", "--all", "--home", ana), "revoked")
	}, func() string { return "ana never held the revocation" })
	if _, stderr, err := runCharla(ctx, bin, "join", spare, "--name", "Mallory", "--home", filepath.Join(dir, "mallory")); err == nil {
		t.Fatal("a revoked invite joined")
	} else if !strings.Contains(stderr, "revoked") && !strings.Contains(stderr, "could not reach") {
		t.Fatalf("join with a revoked invite said: %s", stderr)
	}

	// Policy: Eve may not set it; Ana may; everyone reads it.
	if _, stderr, err := runCharla(ctx, bin, "policy", "set", "files", "off", "--home", eve); err == nil || !strings.Contains(stderr, "not allowed") {
		t.Fatalf("a member set policy: err=%v stderr=%s", err, stderr)
	}
	mustRun(ctx, t, bin, "policy", "set", "max-file-size", "20MB", "--home", ana)
	eventually(t, 60*time.Second, func() bool {
		var p node.Policy
		decode(t, mustRun(ctx, t, bin, "policy", "--json", "--home", eve), &p)
		return p.MaxFileSize == 20_000_000
	}, func() string { return "eve's policy: " + mustRun(ctx, t, bin, "policy", "--home", eve) })

	// Ben, an admin, removes Eve.
	mustRun(ctx, t, bin, "members", "remove", "Eve", "--home", ben)
	eventually(t, 60*time.Second, func() bool {
		var st node.Status
		decode(t, mustRun(ctx, t, bin, "status", "--json", "--home", eve), &st)
		return st.Removed
	}, func() string { return "eve's status never said removed" })
	if out := mustRun(ctx, t, bin, "status", "--home", eve); !strings.Contains(out, "an admin removed this node") {
		t.Fatalf("eve's status does not say she was removed:\n%s", out)
	}
	if _, stderr, err := runCharla(ctx, bin, "send", "general", "still here", "--home", eve); err == nil || !strings.Contains(stderr, "removed") {
		t.Fatalf("a removed node sent: err=%v stderr=%s", err, stderr)
	}
	if _, ok := members(ana)["Eve"]; ok {
		t.Fatal("ana still lists Eve among the members")
	}
	mustRun(ctx, t, bin, "rename", "Ana María", "--home", ana)
	eventually(t, 60*time.Second, func() bool { return members(ben)["Ana María"] == "owner" },
		func() string { return "ben never saw the rename" })
}
