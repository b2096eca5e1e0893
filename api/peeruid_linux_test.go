package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	little := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 8080)
	tests := []struct {
		in   string
		want netip.AddrPort
	}{
		{"0100007F:1F90", little},
		{"00000000000000000000000001000000:1F90", netip.MustParseAddrPort("[::1]:8080")},
		{"0000000000000000FFFF00000100007F:1F90", little}, // ::ffff:127.0.0.1
	}
	if !littleEndian() {
		t.Skip("the table holds this machine's byte order; the cases are a little-endian machine's")
	}
	for _, tt := range tests {
		got, err := parseProcAddr(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007:1F90", "0100007F:XYZ", "01000:1F90"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q): no error", bad)
		}
	}
}

func littleEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}

// TestLoginFromAnotherUser: a login token sent by another local user's
// program is refused and not spent; the same token then logs in from this
// user's. Needs root, to open a socket as another user.
func TestLoginFromAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to open a socket as another user")
	}
	ts := startServer(t)
	login := ts.loginToken(t)
	const nobody = 65534
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// The socket's owner is the thread's filesystem user when it is
			// made: set it for this thread alone, and back.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if _, _, errno := syscall.RawSyscall(syscall.SYS_SETFSUID, nobody, 0, 0); errno != 0 {
				return nil, errno
			}
			defer syscall.RawSyscall(syscall.SYS_SETFSUID, 0, 0, 0)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	body, _ := json.Marshal(LoginRequest{Login: login})
	req, err := http.NewRequest("POST", "http://"+ts.info.API+"/api/session", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a login from user %d's socket: %d, want 403", nobody, resp.StatusCode)
	}
	if status, _ := ts.redeem(t, login, nil); status != http.StatusCreated {
		t.Errorf("the same login from this user's socket after: %d, want 201", status)
	}
}
