package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla-im/charla/internal/netns"
	"github.com/charla-im/charla/node"
)

// lanHost is one machine of the namespace LAN with its charla home.
type lanHost struct {
	*netns.Host
	name string
	home string
	run  *background
}

func (h *lanHost) charla(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := h.Command(ctx, bin, append(args, "--home", h.home)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: charla %s: %v: %s", h.name, strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func (h *lanHost) mustCharla(ctx context.Context, t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := h.charla(ctx, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// start runs the node inside the host's namespace, on the default port and
// with mDNS on: no --peer anywhere.
func (h *lanHost) start(t *testing.T, bin string) {
	t.Helper()
	cmd := h.Command(context.Background(), bin, "run", "--home", h.home, "--api", "127.0.0.1:0")
	h.run = &background{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = h.run.stdout, h.run.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.run.done <- cmd.Wait() }()
	t.Cleanup(func() {
		h.run.interrupt()
		cmd.Process.Kill()
	})
	eventually(t, 30*time.Second, func() bool {
		return strings.Contains(h.run.stdout.String(), "running; API on")
	}, func() string { return h.name + " never became ready:\n" + h.run.stderr.String() })
}

func (h *lanHost) texts(ctx context.Context, bin, room string) []string {
	out, err := h.charla(ctx, bin, "log", room, "--json")
	if err != nil {
		return nil
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m node.Message
		if json.Unmarshal([]byte(line), &m) == nil {
			texts = append(texts, m.Text)
		}
	}
	return texts
}

func (h *lanHost) peers(ctx context.Context, bin string) []node.Peer {
	out, err := h.charla(ctx, bin, "peers", "--json")
	if err != nil {
		return nil
	}
	var ps []node.Peer
	json.Unmarshal([]byte(out), &ps)
	return ps
}

// TestOfficeLAN: three workstations on one LAN made of network namespaces.
// Ben and Cai join Ana's workspace by invite across the LAN; then the
// nodes run with no --peer, and Ben and Cai find each other by mDNS alone;
// #general and a direct room carry messages both ways.
func TestOfficeLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped in -short mode")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("LAN test needs network namespaces: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("LAN test needs iproute2's ip")
	}
	bin := buildCharla(t)
	lan, err := netns.NewLAN(t, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var hosts []*lanHost
	for i, name := range []string{"Ana", "Ben", "Cai"} {
		hosts = append(hosts, &lanHost{Host: lan.Host(i), name: name, home: filepath.Join(dir, name)})
	}
	ana, ben, cai := hosts[0], hosts[1], hosts[2]

	ana.mustCharla(ctx, t, bin, "init", "--name", "Ana", "--workspace", "Acme")
	ana.start(t, bin)
	for _, h := range []*lanHost{ben, cai} {
		code := strings.TrimSpace(ana.mustCharla(ctx, t, bin, "invite", "--expires", "1h"))
		h.mustCharla(ctx, t, bin, "join", code, "--name", h.name)
		// A used code admits nobody.
		eve := &lanHost{Host: h.Host, name: "Eve", home: filepath.Join(dir, "eve-"+h.name)}
		if _, err := eve.charla(ctx, bin, "join", code, "--name", "Eve"); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("second join with one code: %v", err)
		}
	}

	started := time.Now()
	ben.start(t, bin)
	cai.start(t, bin)
	// Ben and Cai were told only of Ana; they find each other by mDNS.
	eventually(t, 60*time.Second, func() bool {
		for _, pair := range [][2]*lanHost{{ben, cai}, {cai, ben}} {
			found := false
			for _, p := range pair[0].peers(ctx, bin) {
				found = found || (p.Name == pair[1].name && p.Connected && p.Via == "mdns")
			}
			if !found {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("ben and cai did not find each other by mDNS\nben peers: %+v\ncai peers: %+v\nben stderr:\n%s",
			ben.peers(ctx, bin), cai.peers(ctx, bin), ben.run.stderr.String())
	})
	discovered := time.Since(started)

	ben.mustCharla(ctx, t, bin, "send", "general", "hola desde Ben")
	eventually(t, 30*time.Second, func() bool {
		return strings.Join(cai.texts(ctx, bin, "general"), "|") == "hola desde Ben" &&
			strings.Join(ana.texts(ctx, bin, "general"), "|") == "hola desde Ben"
	}, func() string { return "#general did not reach everyone" })
	firstMessage := time.Since(started)

	cai.mustCharla(ctx, t, bin, "send", "@Ben", "hola Ben, soy Cai")
	eventually(t, 30*time.Second, func() bool {
		return strings.Join(ben.texts(ctx, bin, "@Cai"), "|") == "hola Ben, soy Cai"
	}, func() string { return "the direct message did not reach Ben" })
	ben.mustCharla(ctx, t, bin, "send", "@Cai", "recibido")
	eventually(t, 30*time.Second, func() bool {
		return strings.Join(cai.texts(ctx, bin, "@Ben"), "|") == "hola Ben, soy Cai|recibido"
	}, func() string { return "the answer did not reach Cai" })
	t.Logf("on the namespace LAN: start to mDNS discovery %v, start to first message delivered %v",
		discovered.Round(time.Millisecond), firstMessage.Round(time.Millisecond))
}

// TestTwoNodesOneMachine: two nodes of two offices run on one workstation,
// both on the default port. The second must take another port: were both
// bound to 4747 (SO_REUSEPORT), the kernel would hand each incoming
// connection to either node, and half of them would fail the handshake.
func TestTwoNodesOneMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces; skipped in -short mode")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("LAN test needs network namespaces: %v", err)
	}
	bin := buildCharla(t)
	lan, err := netns.NewLAN(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ports := map[string]string{}
	for _, name := range []string{"Ana", "Dora"} {
		h := &lanHost{Host: lan.Host(0), name: name, home: filepath.Join(dir, name)}
		h.mustCharla(ctx, t, bin, "init", "--name", name, "--workspace", name+"'s office")
		h.start(t, bin)
		eventually(t, 10*time.Second, func() bool {
			return strings.Contains(h.run.stderr.String(), "advertising on mdns")
		}, func() string { return name + " never advertised on mDNS:\n" + h.run.stderr.String() })
		for _, line := range strings.Split(h.run.stderr.String(), "\n") {
			if strings.Count(line, "component=") > 1 {
				t.Errorf("a log line names its component more than once: %s", line)
			}
		}
		var st node.Status
		decode(t, h.mustCharla(ctx, t, bin, "status", "--json"), &st)
		for _, a := range st.Addrs {
			if !strings.Contains(a, "/ip4/"+lan.Host(0).IP+"/tcp/") {
				continue
			}
			port := strings.Split(strings.SplitAfter(a, "/tcp/")[1], "/")[0]
			if other, ok := ports[port]; ok {
				t.Fatalf("%s and %s both listen on TCP %s", other, name, port)
			}
			ports[port] = name
		}
	}
	if len(ports) != 2 {
		t.Fatalf("want one LAN port per node, got %v", ports)
	}
	if ports["4747"] != "Ana" {
		t.Errorf("the first node should have the default port 4747: %v", ports)
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", lan.Host(0).Name, "ss", "-Htln", "sport", "= :4747").Output()
	if err != nil {
		t.Logf("ss: %v (listeners not counted)", err)
	} else if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); n != 1 {
		t.Errorf("%d sockets listen on TCP 4747, want 1:\n%s", n, out)
	}
}
