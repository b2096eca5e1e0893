package cli

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/charla-im/charla/node"
)

// fakeDoctor is what fakeNode's Doctor answers: one note, one failure.
func fakeDoctor() node.DoctorReport {
	return node.DoctorReport{
		Checks: []node.DoctorCheck{
			{Name: "interfaces", OK: true, Detail: "LAN on eth0 192.168.1.20/24"},
			{Name: "mDNS", OK: true, Detail: "mDNS is off (--no-mdns)", Fix: "run without --no-mdns"},
			{Name: "peer port", Detail: "listening on TCP 4747 (the default); refused: 192.168.1.20:4747 (connection refused)",
				Fix: "a firewall blocks TCP 4747: allow it for charla"},
		},
		Interfaces: []node.DoctorInterface{{Name: "eth0", Addrs: []string{"192.168.1.20/24"}, Up: true, Multicast: true, Kind: "ethernet"}},
		Members: []node.DoctorMember{
			{PeerID: "12D3KooWBenBenBenBen", Name: "Ben", Addrs: []string{"/ip4/192.168.1.21/tcp/4747"}, Connected: true, Answered: true},
			{PeerID: "12D3KooWCarlaCarla", Name: "Carla\tX", Addrs: []string{"/ip4/192.168.1.22/tcp/4747"},
				Error: "/ip4/192.168.1.22/tcp/4747: connection refused"},
		},
	}
}

// Doctor completes fakeNode, which cli_test.go defines.
func (f *fakeNode) Doctor(ctx context.Context) (node.DoctorReport, error) {
	return fakeDoctor(), nil
}

func TestDoctor(t *testing.T) {
	home, _ := startNode(t)

	out, _, err := charla(t, "", "doctor", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "doctor found 1 problem") || Hint(err) == "" {
		t.Errorf("doctor with a failed check returned %v (hint %q), want one problem and a hint", err, Hint(err))
	}
	if errors.Is(err, ErrUsage) {
		t.Errorf("a failed check is not a usage error")
	}
	for _, want := range []string{
		"ok   interfaces: LAN on eth0 192.168.1.20/24\n",
		"note mDNS: mDNS is off (--no-mdns)\n     fix: run without --no-mdns\n",
		"FAIL peer port: listening on TCP 4747 (the default); refused: 192.168.1.20:4747 (connection refused)\n" +
			"     fix: a firewall blocks TCP 4747: allow it for charla\n",
		"Ben      connected  12D3KooWBenB…  /ip4/192.168.1.21/tcp/4747\n",
		"Carla X  no answer  12D3KooWCarl…  /ip4/192.168.1.22/tcp/4747: connection refused\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor printed\n%s\nwant it to contain\n%s", out, want)
		}
	}

	out, _, err = charla(t, "", "doctor", "--json", "--home", home)
	if err == nil {
		t.Error("doctor --json with a failed check returned no error")
	}
	var rep node.DoctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out, err)
	}
	if !reflect.DeepEqual(rep, fakeDoctor()) {
		t.Errorf("doctor --json printed %+v, want %+v", rep, fakeDoctor())
	}

	if _, _, err := charla(t, "", "doctor", "extra", "--home", home); !errors.Is(err, ErrUsage) {
		t.Errorf("doctor with an argument returned %v, want a usage error", err)
	}
}

func TestDoctorVerdict(t *testing.T) {
	tests := []struct {
		name   string
		checks []node.DoctorCheck
		want   string // the error, "" for none
	}{
		{name: "all ok", checks: []node.DoctorCheck{{Name: "a", OK: true}, {Name: "b", OK: true}}},
		{name: "a note is not a problem", checks: []node.DoctorCheck{{Name: "a", OK: true, Fix: "do this"}}},
		{name: "no checks"},
		{name: "one failed", checks: []node.DoctorCheck{{Name: "a"}, {Name: "b", OK: true}}, want: "doctor found 1 problem"},
		{name: "two failed", checks: []node.DoctorCheck{{Name: "a"}, {Name: "b"}}, want: "doctor found 2 problems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := doctorVerdict(node.DoctorReport{Checks: tt.checks})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrintDoctorNoMembers(t *testing.T) {
	var b strings.Builder
	rep := node.DoctorReport{Checks: []node.DoctorCheck{{Name: "members", OK: true, Detail: "no other members yet"}}}
	if err := printDoctor(&b, rep); err != nil {
		t.Fatal(err)
	}
	if want := "ok   members: no other members yet\n"; b.String() != want {
		t.Errorf("printed %q, want %q", b.String(), want)
	}
}
