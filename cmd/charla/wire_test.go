package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/internal/netns"
	"github.com/charla-im/charla/store"
	"github.com/charla-im/charla/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSecurityWireCanary: two workstations on a namespace LAN, with tcpdump
// capturing every byte on one of their cables from before the invite to the
// end. Ana founds a workspace, Ben joins it by invite across the LAN, they
// find each other by mDNS, and canaries go into #general, a direct
// conversation and a file. None of them is anywhere in the capture; nor is
// the network key, the invite's token, a member's or the workspace's name,
// or either peer ID. The capture did see the traffic: the node port's TCP
// segments and the mDNS service name are in it.
func TestSecurityWireCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces and captures traffic; skipped in -short mode")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("wire capture test needs network namespaces: %v", err)
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("wire capture test needs tcpdump (apt-get install tcpdump; .ci/run installs it)")
	}
	bin := buildCharla(t)
	lan, err := netns.NewLAN(t, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	tag := strings.ToLower(rand.Text()[:10])
	names := []string{"Zorrilla" + tag, "Benedetti" + tag}
	workspace := "Oficina" + tag
	ana := &lanHost{Host: lan.Host(0), name: names[0], home: filepath.Join(dir, "ana")}
	ben := &lanHost{Host: lan.Host(1), name: names[1], home: filepath.Join(dir, "ben")}

	// Capture Ana's cable: everything between the two machines crosses it.
	// Local API calls stay on each machine's loopback, as they should; a
	// second capture there is the control: the CLI's canary, sent to the
	// local API in plain HTTP, is found in it.
	pcap, loPcap := filepath.Join(dir, "wire.pcap"), filepath.Join(dir, "lo.pcap")
	stopCapture := startCapture(t, ana, tcpdump, "eth0", pcap)
	stopLoCapture := startCapture(t, ana, tcpdump, "lo", loPcap)

	ana.mustCharla(ctx, t, bin, "init", "--name", names[0], "--workspace", workspace)
	ana.start(t, bin)
	code := strings.TrimSpace(ana.mustCharla(ctx, t, bin, "invite", "--expires", "1h"))
	inv, err := wire.ParseInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	ben.mustCharla(ctx, t, bin, "join", code, "--name", names[1])
	ben.start(t, bin)
	eventually(t, 60*time.Second, func() bool {
		for _, p := range ben.peers(ctx, bin) {
			if p.Name == names[0] && p.Connected {
				return true
			}
		}
		return false
	}, func() string { return "ben never connected to ana:\n" + ben.run.stderr.String() })

	canaries := []string{"canary-general-" + tag, "canary-direct-" + tag, "canary-file-" + tag}
	ana.mustCharla(ctx, t, bin, "send", "general", canaries[0])
	ben.mustCharla(ctx, t, bin, "send", "@"+names[0], canaries[1])
	doc := filepath.Join(dir, "contract.txt")
	if err := os.WriteFile(doc, []byte(strings.Repeat(canaries[2]+"\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	fileID := strings.TrimSpace(ana.mustCharla(ctx, t, bin, "send", "general", "--file", doc))
	eventually(t, 60*time.Second, func() bool {
		got := strings.Join(ben.texts(ctx, bin, "general"), "|")
		if !strings.Contains(got, canaries[0]) || !strings.Contains(strings.Join(ana.texts(ctx, bin, "@"+names[1]), "|"), canaries[1]) {
			return false
		}
		out, err := ben.charla(ctx, bin, "files", "--json")
		var files []struct{ ID, State string }
		return err == nil && json.Unmarshal([]byte(out), &files) == nil && len(files) == 1 && files[0].ID == fileID && files[0].State == "complete"
	}, func() string { return "the canaries did not all arrive:\n" + ben.run.stderr.String() })

	// Stop the nodes, then the capture; read what a network key and peer
	// IDs would look like on the wire.
	for _, h := range []*lanHost{ana, ben} {
		if err := h.run.interrupt(); err != nil {
			t.Errorf("%s: %v", h.name, err)
		}
	}
	stopCapture()
	stopLoCapture()
	st, err := store.Open(ctx, filepath.Join(ana.home, "charla.db"))
	if err != nil {
		t.Fatal(err)
	}
	netKey, err := st.Meta(ctx, "network-key") // node's metaNetKey
	st.Close()
	if err != nil || len(netKey) != 32 {
		t.Fatalf("network key: %d bytes, %v", len(netKey), err)
	}
	issuer, _ := peer.IDFromBytes(inv.Issuer)
	benIdentity, err := crypto.LoadIdentity(filepath.Join(ben.home, "identity"))
	if err != nil {
		t.Fatal(err)
	}
	benID := benIdentity.PeerID()

	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// The capture saw the traffic: a workspace's worth of TCP on the node
	// port, and the mDNS answers.
	out, err := exec.CommandContext(ctx, tcpdump, "-r", pcap, "-n", "tcp port 4747").Output()
	if err != nil {
		t.Fatalf("read the capture: %v", err)
	}
	segments := bytes.Count(out, []byte("\n"))
	t.Logf("capture: %d bytes, %d TCP segments on port 4747", len(raw), segments)
	if segments < 20 || len(raw) < 20<<10 {
		t.Fatalf("the capture holds %d bytes and %d segments on the node port: it did not see the traffic", len(raw), segments)
	}
	if !bytes.Contains(raw, []byte("_charla")) {
		t.Fatal("the capture holds no mDNS query for _charla._tcp: it did not see the LAN")
	}
	lo, err := os.ReadFile(loPcap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(lo, []byte(canaries[0])) {
		t.Fatal("the control failed: canary 1 is not in the capture of the local API's loopback either")
	}
	secrets := map[string][]byte{
		"network key":   netKey,
		"invite token":  inv.Token,
		"ana's name":    []byte(names[0]),
		"ben's name":    []byte(names[1]),
		"workspace":     []byte(workspace),
		"ana's peer ID": []byte(issuer),
		"ben's peer ID": []byte(benID),
	}
	for i, c := range canaries {
		secrets[fmt.Sprintf("canary %d", i+1)] = []byte(c)
	}
	for what, b := range secrets {
		if len(b) == 0 {
			t.Fatalf("%s is empty", what)
		}
		if bytes.Contains(raw, b) {
			t.Errorf("%s is on the wire", what)
		}
	}
}

// startCapture runs tcpdump on iface in h's namespace, writing to path, and
// returns once it is capturing. The returned func stops it and waits until
// the file is complete; the test's cleanup does too.
func startCapture(t *testing.T, h *lanHost, tcpdump, iface, path string) (stop func()) {
	t.Helper()
	var stderr syncBuffer
	cmd := h.Command(context.Background(), tcpdump, "-i", iface, "-s", "0", "-U", "-n", "-w", path)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	eventually(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "listening on "+iface) },
		func() string { return "tcpdump did not start on " + iface + ": " + stderr.String() })
	return stop
}
