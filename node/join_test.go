package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/wire"
)

func TestInviteJoinAndDirectMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	homes := []string{filepath.Join(dir, "ana"), filepath.Join(dir, "ben"), filepath.Join(dir, "cai")}
	initHome(t, homes[0])
	ana := openNode(t, homes[0])
	rostered := func() int { ms, _ := ana.Members(ctx); return len(ms) }

	var nodes []*Node
	for i, name := range []string{"Ben", "Cai"} {
		code, err := ana.Invite(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(code, string(ana.netKey)) {
			t.Fatal("invite code carries the network key")
		}
		if _, err := Join(ctx, homes[i+1], code, name); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		// A second use of one code admits nobody, with a clear error.
		_, err = Join(ctx, filepath.Join(dir, "again"+name), code, "Eve")
		if !errors.Is(err, ErrInviteUsed) {
			t.Fatalf("second join with one code: %v, want ErrInviteUsed", err)
		}
		nodes = append(nodes, openNode(t, homes[i+1])) // no --peer: the address book from join
	}
	if got := rostered(); got != 3 {
		t.Fatalf("roster has %d members, want 3", got)
	}
	ben, cai := nodes[0], nodes[1]
	eventually(t, 60*time.Second, "ben and cai know each other and read #general", func() bool {
		for _, n := range []*Node{ben, cai} {
			ms, _ := n.Members(ctx)
			if _, _, err := n.resolveRoom(ctx, "general"); err != nil || len(ms) != 3 {
				return false
			}
		}
		return true
	})
	if _, err := ben.Send(ctx, "general", "hola a todos"); err != nil {
		t.Fatal(err)
	}
	const secret = "only-for-ana-7c1f"
	m, err := ben.Send(ctx, "@Ana", secret)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ana reads ben's direct message", func() bool {
		ms, err := ana.Log(ctx, "@Ben", 10)
		return err == nil && len(ms) == 1 && ms[0].Text == secret && ms[0].RoomName == "@Ben"
	})
	if _, err := ana.Send(ctx, "@Ben", "recibido"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ben reads ana's answer; cai reads #general", func() bool {
		ms, _ := ben.Log(ctx, "@Ana", 10)
		g, _ := cai.Log(ctx, "general", 10)
		return len(ms) == 2 && len(g) == 1
	})
	id, _ := wire.ParseID(m.ID)
	eventually(t, 60*time.Second, "cai stores the direct message it cannot read", func() bool {
		_, err := cai.st.Envelope(ctx, id)
		return err == nil
	})
	if _, err := cai.Log(ctx, "@Ben", 10); err == nil {
		ms, _ := cai.Log(ctx, "@Ben", 10)
		if len(ms) > 0 {
			t.Fatal("cai reads a direct message between ana and ben")
		}
	}
	files, _ := filepath.Glob(filepath.Join(homes[2], "*.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("direct message text found in %s", f)
		}
	}
}

func TestJoinRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	initHome(t, filepath.Join(dir, "ana"))
	ana := openNode(t, filepath.Join(dir, "ana"))
	code, err := ana.Invite(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := wire.ParseInviteCode(code)
	wrongToken := *inv
	wrongToken.Token = bytes.Repeat([]byte{1}, wire.TokenBytes)
	expired := *inv
	expired.Expires = time.Now().Add(-time.Minute).UnixMilli()
	tests := []struct {
		name string
		code string
		want error
	}{
		{"mistyped", code[:len(code)-4] + "aaaa", ErrInviteForged},
		{"not a code", "hello", ErrInviteForged},
		{"expired", expired.Code(), ErrInviteExpired},
		{"wrong token cannot connect", wrongToken.Code(), ErrIssuerUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			_, err := Join(ctx, home, tt.code, "Eve")
			if !errors.Is(err, tt.want) {
				t.Fatalf("join: %v, want %v", err, tt.want)
			}
			if IsInitialized(home) {
				t.Fatal("a refused join left an identity behind")
			}
		})
	}
	if ms, _ := ana.Members(ctx); len(ms) != 1 {
		t.Fatalf("roster changed by refused joins: %d members", len(ms))
	}
	// The code is still good after all that.
	if _, err := Join(ctx, filepath.Join(dir, "ben"), code, "Ben"); err != nil {
		t.Fatalf("good join after refusals: %v", err)
	}
}

// TestRestartReconnectsFromBook: a restarted node with no static peers and
// no mDNS finds members again from its address book, though it only ever
// learnt their addresses from their connections to it.
func TestRestartReconnectsFromBook(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	anaHome := filepath.Join(dir, "ana")
	initHome(t, anaHome)
	ana := openNode(t, anaHome)
	var others []*Node
	for _, name := range []string{"Ben", "Cai"} {
		code, err := ana.Invite(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		home := filepath.Join(dir, name)
		if _, err := Join(ctx, home, code, name); err != nil {
			t.Fatal(err)
		}
		others = append(others, openNode(t, home))
	}
	eventually(t, 60*time.Second, "ana connected to both and knows their listen addresses", func() bool {
		if len(ana.connectedMembers()) != 2 {
			return false
		}
		for _, p := range ana.connectedMembers() {
			if len(ana.host.Peerstore().Addrs(p)) == 0 {
				return false // identify has not run yet
			}
		}
		return true
	})
	if err := ana.Close(); err != nil {
		t.Fatal(err)
	}
	ana = openNode(t, anaHome)
	eventually(t, 60*time.Second, "restarted ana reconnects to both from its book", func() bool {
		return len(ana.connectedMembers()) == 2
	})
	ps, err := ana.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Via != viaBook && p.Via != viaInbound {
			t.Errorf("peer %s via %q", p.Name, p.Via)
		}
	}
	if _, err := ana.Send(ctx, "general", "back"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "both read it", func() bool {
		for _, n := range others {
			if len(texts(t, n, "general")) != 1 {
				return false
			}
		}
		return true
	})
}
