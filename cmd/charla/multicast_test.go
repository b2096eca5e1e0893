package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/internal/netns"
	"github.com/charla-im/charla/node"
)

// TestNoMulticastReachesEveryone: a laptop whose interface has multicast
// off (a Wi-Fi that blocks it) knows one member's address, from its join,
// and reaches every member through that one's peer exchange (issue 4,
// "Reconnection"). Messages cross both ways; one written with the cable
// out shows as local until a peer holds it.
func TestNoMulticastReachesEveryone(t *testing.T) {
	skipUnlessLAN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := &office{bin: buildCharla(t)}
	var err error
	if o.lan, err = netns.NewLAN(t, 4); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, name := range []string{"Ana", "Ben", "Cai", "Lap"} {
		o.hosts = append(o.hosts, &lanHost{Host: o.lan.Host(i), name: name, home: filepath.Join(dir, name)})
	}
	ana, ben, cai, lap := o.hosts[0], o.hosts[1], o.hosts[2], o.hosts[3]

	ana.mustCharla(ctx, t, o.bin, "init", "--name", "Ana", "--workspace", "Acme")
	o.launch(t, ana)
	// Everyone joins while Ana alone runs: Lap's address book holds Ana
	// and no one else.
	for _, h := range o.hosts[1:] {
		code := strings.TrimSpace(ana.mustCharla(ctx, t, o.bin, "invite", "--expires", "1h"))
		h.mustCharla(ctx, t, o.bin, "join", code, "--name", h.name)
	}
	if out, err := lap.Command(ctx, "ip", "link", "set", "dev", "eth0", "multicast", "off").CombinedOutput(); err != nil {
		t.Fatalf("multicast off on Lap: %v: %s", err, out)
	}
	o.launch(t, ben)
	o.launch(t, cai)
	o.waitConnected(ctx, t, ana, ben, cai)

	start := time.Now()
	o.launch(t, lap)
	var lapPeers []node.Peer
	eventually(t, 45*time.Second, func() bool {
		lapPeers = lap.peers(ctx, o.bin)
		connected := 0
		for _, p := range lapPeers {
			if p.Connected {
				connected++
			}
		}
		return connected == 3
	}, func() string { return fmt.Sprintf("Lap is not connected to all three: %+v", lap.peers(ctx, o.bin)) })
	reached := time.Since(start)

	exchanged := 0
	for _, p := range lapPeers {
		if p.Name != "Ana" && p.Via == "exchange" {
			exchanged++
		}
	}
	if exchanged == 0 {
		t.Errorf("neither Ben nor Cai came to Lap by peer exchange: %+v", lapPeers)
	}

	// #general both ways.
	if _, err := o.send(ctx, lap, "general", []string{"hola desde el portátil"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.send(ctx, cai, "general", []string{"hola Lap"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range o.hosts {
		eventually(t, 30*time.Second, func() bool {
			got := strings.Join(h.texts(ctx, o.bin, "general"), "|")
			return strings.Contains(got, "hola desde el portátil") && strings.Contains(got, "hola Lap")
		}, func() string { return fmt.Sprintf("%s's #general: %q", h.name, h.texts(ctx, o.bin, "general")) })
	}
	talked := time.Since(start)

	// Written with the cable out: local, then delivered once it is back.
	if err := lap.Disconnect(); err != nil {
		t.Fatal(err)
	}
	ids, err := o.send(ctx, lap, "general", []string{"escrito sin cable"})
	if err != nil {
		t.Fatal(err)
	}
	offline := ids[0]
	state := func() string {
		msgs, err := o.messages(ctx, lap, "general")
		if err != nil {
			return err.Error()
		}
		for _, m := range msgs {
			if m.ID == offline {
				return m.State
			}
		}
		return "missing"
	}
	if s := state(); s != "local" {
		t.Errorf("the message Lap wrote offline is %q on Lap, want local", s)
	}
	if err := lap.Reconnect(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	eventually(t, 45*time.Second, func() bool { return state() == "delivered" },
		func() string {
			return fmt.Sprintf("the offline message is still %q on Lap\n%s", state(), o.describe(ctx, o.hosts...))
		})
	delivered := time.Since(back)
	for _, h := range []*lanHost{ana, ben, cai} {
		eventually(t, 30*time.Second, func() bool {
			return strings.Contains(strings.Join(h.texts(ctx, o.bin, "general"), "|"), "escrito sin cable")
		}, func() string { return h.name + " never got the message Lap wrote offline" })
	}

	// The premise, checked last when mDNS has had seconds to find anyone:
	// Lap's mDNS had no interface to work on, and nobody was found by it
	// on either side of Lap's links. (An mDNS find overrides how a peer
	// was first found, in what peers shows.)
	if log := lap.run.stderr.String(); !strings.Contains(log, "not advertising on mdns") || strings.Contains(log, "found on mdns") {
		t.Errorf("Lap's mDNS does not seem to fail with multicast off; its log:\n%s", logTail(log, 40))
	}
	for _, p := range lap.peers(ctx, o.bin) {
		if p.Via == "mdns" {
			t.Errorf("Lap, with multicast off, found %s by mDNS", p.Name)
		}
	}
	for _, h := range []*lanHost{ana, ben, cai} {
		for _, p := range h.peers(ctx, o.bin) {
			if p.Name == "Lap" && p.Via == "mdns" {
				t.Errorf("%s found Lap by mDNS", h.name)
			}
		}
	}
	t.Logf("Lap, multicast off: connected to all three %v after start, #general both ways by %v; "+
		"offline message delivered %v after the cable came back",
		reached.Round(time.Millisecond), talked.Round(time.Millisecond), delivered.Round(time.Millisecond))
}
