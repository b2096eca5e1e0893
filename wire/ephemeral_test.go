package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestEphemeralRoundTrip(t *testing.T) {
	for _, e := range []*Ephemeral{
		{Kind: EphemeralPresence, Presence: testPresence()},
		{Kind: EphemeralSignal, Signal: testSignal()},
	} {
		got, err := DecodeEphemeral(e.Marshal())
		if err != nil {
			t.Fatalf("%v: %v", e.Kind, err)
		}
		if got.Kind != e.Kind || (got.Presence == nil) != (e.Presence == nil) || (got.Signal == nil) != (e.Signal == nil) {
			t.Fatalf("%v decodes as %+v", e.Kind, got)
		}
	}
	p, err := DecodePresence(testPresence().Marshal())
	if err != nil || p.State != StateAway || p.Envelopes != 1234 || len(p.Heads) != 1 {
		t.Fatalf("presence round trip: %+v, %v", p, err)
	}
	s, err := DecodeSignal(testSignal().Marshal())
	if err != nil || s.Room != fill(0x33) || s.Key != fill(0x44) || string(s.Sealed) != string(testSignal().Sealed) {
		t.Fatalf("signal round trip: %+v, %v", s, err)
	}
	b, err := DecodeSignalBody(testSignalBody().Marshal())
	if err != nil || *b != *testSignalBody() {
		t.Fatalf("signal body round trip: %+v, %v", b, err)
	}
	typing := &SignalBody{Kind: SignalTyping, Room: fill(0x33), Time: 1767225600456}
	if len(typing.Marshal()) != len(testSignalBody().Marshal()) {
		t.Errorf("a typing body is %d bytes, a read marker %d: the ciphertext's length tells them apart",
			len(typing.Marshal()), len(testSignalBody().Marshal()))
	}
}

func TestEphemeralReject(t *testing.T) {
	sig := testSignal().Marshal()
	sf := fields(sig)
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		want     string
		tooLarge bool
	}{
		{"kind 0", decodeEphemeralAny, join(varintField(1, 0), bytesField(2, sig)), "field 1 (kind) is 0, want 1 to 2", false},
		{"signal as presence", decodeEphemeralAny, join(varintField(1, 1), bytesField(2, sig)), "field 2 (body): decode presence", false},
		{"presence as signal", decodeEphemeralAny, join(varintField(1, 2), bytesField(2, testPresence().Marshal())), "field 2 (body): decode signal", false},
		{"trailing field", decodeEphemeralAny, join(varintField(1, 2), bytesField(2, sig), varintField(3, 0)), "unknown field 3", false},
		{"over the bound", decodeEphemeralAny, make([]byte, MaxEphemeralBytes+1), "over the limit", true},
		{"zero room", decodeSignalAny, join(pick(sf, 0, 1, 2), bytesField(4, make([]byte, 32)), pick(sf, 4, 5, 6)), "field 4 (room) is zero", false},
		{"zero key", decodeSignalAny, join(pick(sf, 0, 1, 2, 3), bytesField(5, make([]byte, 32)), pick(sf, 5, 6)), "field 5 (key) is zero", false},
		{"sealed too large", decodeSignalAny, join(pick(sf, 0, 1, 2, 3, 4), bytesField(6, make([]byte, MaxSignalSealedBytes+1)), pick(sf, 6)), "over the limit", true},
		{"no signature", decodeSignalAny, pick(sf, 0, 1, 2, 3, 4, 5), "field 7 (sig) missing", false},
		{"presence state 0", decodePresenceAny, join(pick(fields(testPresence().Marshal()), 0, 1, 2, 3, 4, 5), varintField(7, 0), bytesField(8, []byte{1})), "field 7 (state) is 0, want 1 to 2", false},
		{"typing names a message", decodeSignalBodyAny, (&SignalBody{Kind: SignalTyping, Room: fill(1), Message: fill(2)}).Marshal(), "set on a typing signal", false},
		{"read names none", decodeSignalBodyAny, (&SignalBody{Kind: SignalRead, Room: fill(1)}).Marshal(), "zero on a read marker", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) != tt.tooLarge {
				t.Errorf("error %q: ErrMalformed %v, ErrTooLarge %v (want %v)", err, errors.Is(err, ErrMalformed), errors.Is(err, ErrTooLarge), tt.tooLarge)
			}
		})
	}
}

func decodeEphemeralAny(b []byte) error  { _, err := DecodeEphemeral(b); return err }
func decodeSignalAny(b []byte) error     { _, err := DecodeSignal(b); return err }
func decodeSignalBodyAny(b []byte) error { _, err := DecodeSignalBody(b); return err }
func decodePresenceAny(b []byte) error   { _, err := DecodePresence(b); return err }

func FuzzDecodeEphemeral(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := DecodeEphemeral(b); err == nil && !bytes.Equal(e.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, e.Marshal())
		}
	})
}

func FuzzDecodeSignal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeSignal(b); err == nil && !bytes.Equal(s.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, s.Marshal())
		}
	})
}

func FuzzDecodeSignalBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeSignalBody(b); err == nil && !bytes.Equal(s.Marshal(), b) {
			t.Fatalf("re-encodes differently:\n in %x\nout %x", b, s.Marshal())
		}
	})
}

// TestEphemeralSeeds checks that the named seeds of the ephemeral targets
// are what their names say: valid ones decode, invalid ones do not.
func TestEphemeralSeeds(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"FuzzDecodeEphemeral":  decodeEphemeralAny,
		"FuzzDecodePresence":   decodePresenceAny,
		"FuzzDecodeSignal":     decodeSignalAny,
		"FuzzDecodeSignalBody": decodeSignalBodyAny,
	}
	seeds := fuzzSeeds()
	for target, decode := range decoders {
		if len(seeds[target]) == 0 {
			t.Errorf("%s has no seeds", target)
		}
		for name, b := range seeds[target] {
			err := decode(b)
			if valid := strings.HasPrefix(name, "valid"); valid != (err == nil) {
				t.Errorf("%s/%s: decode error %v", target, name, err)
			}
		}
	}
}
