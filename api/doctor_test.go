package api

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/charla-im/charla/node"
)

// doctorReport is what fakeBackend's Doctor answers.
var doctorReport = node.DoctorReport{
	Checks: []node.DoctorCheck{
		{Name: "interfaces", OK: true, Detail: "LAN on eth0 192.168.1.20/24"},
		{Name: "peer port", Detail: "listening on TCP 4747 (the default); refused: 192.168.1.20:4747 (connection refused)",
			Fix: "a firewall blocks TCP 4747: allow it for charla"},
	},
	Interfaces: []node.DoctorInterface{
		{Name: "eth0", Addrs: []string{"192.168.1.20/24"}, Up: true, Multicast: true, Kind: "ethernet"},
	},
	Members: []node.DoctorMember{
		{PeerID: "12D3KooWBen", Name: "Ben", Addrs: []string{"/ip4/192.168.1.21/tcp/4747"}, Connected: true, Answered: true},
	},
}

// Doctor completes fakeBackend, which server_test.go defines.
func (f *fakeBackend) Doctor(ctx context.Context) (node.DoctorReport, error) {
	return doctorReport, nil
}

func TestDoctorEndpoint(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		name string
		req  request
		want int
	}{
		{name: "doctor", req: request{path: "/api/doctor"}, want: 200},
		{name: "no token", req: request{path: "/api/doctor", header: map[string]string{"Authorization": ""}}, want: 401},
		{name: "wrong token", req: request{path: "/api/doctor", header: map[string]string{"Authorization": "Bearer nope"}}, want: 401},
		{name: "foreign host", req: request{path: "/api/doctor", host: "evil.com"}, want: 403},
		{name: "foreign origin", req: request{path: "/api/doctor", header: map[string]string{"Origin": "http://evil.com"}}, want: 403},
		{name: "POST", req: request{method: "POST", path: "/api/doctor", body: `{}`}, want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.want, body)
			}
			if tt.want != 200 {
				return
			}
			var got node.DoctorReport
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if !reflect.DeepEqual(got, doctorReport) {
				t.Errorf("got %+v, want %+v", got, doctorReport)
			}
		})
	}

	rep, err := NewClient(ts.info).Doctor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, doctorReport) {
		t.Errorf("client got %+v, want %+v", rep, doctorReport)
	}
}
