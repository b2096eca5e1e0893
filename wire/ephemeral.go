package wire

import "fmt"

// Ephemerals: what a workspace's ephemeral topic carries. Each message is one
// Ephemeral, a heartbeat or a room signal (a typing indicator or a read
// marker). None is ever stored as history.

// EphemeralKind says what an Ephemeral carries. The numbers go on the wire.
type EphemeralKind uint8

const (
	EphemeralPresence EphemeralKind = 1
	EphemeralSignal   EphemeralKind = 2
)

func (k EphemeralKind) String() string {
	switch k {
	case EphemeralPresence:
		return "presence"
	case EphemeralSignal:
		return "signal"
	}
	return fmt.Sprintf("ephemeral(%d)", uint8(k))
}

// Ephemeral is one message of the ephemeral topic: exactly one of Presence
// and Signal, as Kind says.
type Ephemeral struct {
	Kind     EphemeralKind
	Presence *Presence
	Signal   *Signal
}

// Bounds of ephemerals.
const (
	MaxSignalSealedBytes = 1 << 10 // a signal's sealed body: one age header and a SignalBody
	MaxSignalBytes       = MaxSignalSealedBytes + 512
	MaxEphemeralBytes    = MaxPresenceBytes + 16
)

var ephemeralFields = []string{1: "kind", 2: "body"}

// Marshal returns the canonical encoding of e.
func (e *Ephemeral) Marshal() []byte {
	var body []byte
	switch {
	case e.Kind == EphemeralPresence && e.Presence != nil:
		body = e.Presence.Marshal()
	case e.Kind == EphemeralSignal && e.Signal != nil:
		body = e.Signal.Marshal()
	}
	b := appendUint(nil, 1, uint64(e.Kind))
	return appendBytes(b, 2, body)
}

// DecodeEphemeral decodes the canonical encoding of an ephemeral and the
// heartbeat or signal inside it. It does not verify signatures.
func DecodeEphemeral(b []byte) (*Ephemeral, error) {
	if len(b) > MaxEphemeralBytes {
		return nil, tooLarge("ephemeral", len(b), MaxEphemeralBytes)
	}
	d := newDecoder("ephemeral", ephemeralFields, b)
	e := &Ephemeral{Kind: EphemeralKind(d.enum(1, uint64(EphemeralPresence), uint64(EphemeralSignal)))}
	body := d.raw(2)
	if d.err == nil {
		var err error
		switch e.Kind {
		case EphemeralPresence:
			e.Presence, err = DecodePresence(body)
		case EphemeralSignal:
			e.Signal, err = DecodeSignal(body)
		}
		d.nested(2, err)
	}
	if err := d.end(b, e.Marshal); err != nil {
		return nil, err
	}
	return e, nil
}

// Signal is a typing indicator or a read marker about one room. Its sender
// and room are in clear, as they are on a content envelope; what it says is
// sealed with the room key, so only the room's members learn who reads or
// writes what. It is signed with the ephemeral domain, like a heartbeat.
type Signal struct {
	Workspace ID
	Peer      []byte // binary peer ID of the sender
	Time      int64  // sender's unix ms; only ever increases per sender
	Room      ID     // not zero
	Key       ID     // ID of the room key Sealed is encrypted with; not zero
	Sealed    []byte // age ciphertext, to the room key, of an encoded SignalBody
	Sig       []byte
}

var signalFields = []string{1: "workspace", 2: "peer", 3: "time", 4: "room", 5: "key", 6: "sealed", 7: "sig"}

// SignedBytes is the canonical encoding of s without its signature.
func (s *Signal) SignedBytes() []byte {
	b := make([]byte, 0, 128+len(s.Peer)+len(s.Sealed))
	b = appendBytes(b, 1, s.Workspace[:])
	b = appendBytes(b, 2, s.Peer)
	b = appendInt(b, 3, s.Time)
	b = appendBytes(b, 4, s.Room[:])
	b = appendBytes(b, 5, s.Key[:])
	return appendBytes(b, 6, s.Sealed)
}

// Marshal returns the canonical encoding of s with its signature.
func (s *Signal) Marshal() []byte { return appendBytes(s.SignedBytes(), 7, s.Sig) }

// DecodeSignal decodes the canonical encoding of a signal. It neither
// verifies the signature nor opens the sealed body.
func DecodeSignal(b []byte) (*Signal, error) {
	if len(b) > MaxSignalBytes {
		return nil, tooLarge("signal", len(b), MaxSignalBytes)
	}
	d := newDecoder("signal", signalFields, b)
	s := new(Signal)
	s.Workspace = d.id(1)
	s.Peer = d.bytes(2, 1, MaxAuthorBytes)
	s.Time = d.sint64(3)
	s.Room = d.id(4)
	d.check(!s.Room.IsZero(), "field 4 (room) is zero")
	s.Key = d.id(5)
	d.check(!s.Key.IsZero(), "field 5 (key) is zero")
	s.Sealed = d.bytes(6, 1, MaxSignalSealedBytes)
	s.Sig = d.bytes(7, 1, MaxSigBytes)
	if err := d.end(b, s.Marshal); err != nil {
		return nil, err
	}
	return s, nil
}

// SignalKind says what a signal's sealed body means. The numbers go on the wire.
type SignalKind uint8

const (
	SignalTyping SignalKind = 1 // the sender is writing in the room
	SignalRead   SignalKind = 2 // the sender has read the room up to Message
)

func (k SignalKind) String() string {
	switch k {
	case SignalTyping:
		return "typing"
	case SignalRead:
		return "read"
	}
	return fmt.Sprintf("signal(%d)", uint8(k))
}

// SignalBody is the plaintext sealed in a Signal. It repeats the signal's
// room and time, so that a member cannot lift another's sealed body into a
// signal about another room or moment.
type SignalBody struct {
	Kind    SignalKind
	Room    ID    // the Signal's Room
	Time    int64 // the Signal's Time
	Message ID    // read: the newest message read; zero for typing
}

var signalBodyFields = []string{1: "kind", 2: "room", 3: "time", 4: "message"}

// Marshal returns the canonical encoding of s. Every kind has the same
// length, so the ciphertext does not tell a typing signal from a read marker.
func (s *SignalBody) Marshal() []byte {
	b := make([]byte, 0, 96)
	b = appendUint(b, 1, uint64(s.Kind))
	b = appendBytes(b, 2, s.Room[:])
	b = appendInt(b, 3, s.Time)
	return appendBytes(b, 4, s.Message[:])
}

// DecodeSignalBody decodes the canonical encoding of a signal's plaintext:
// a read marker must name a message, a typing signal must not.
func DecodeSignalBody(b []byte) (*SignalBody, error) {
	d := newDecoder("signal body", signalBodyFields, b)
	s := new(SignalBody)
	s.Kind = SignalKind(d.enum(1, uint64(SignalTyping), uint64(SignalRead)))
	s.Room = d.id(2)
	s.Time = d.sint64(3)
	s.Message = d.id(4)
	d.check(s.Kind == SignalRead || s.Message.IsZero(), "field 4 (message) is set on a typing signal")
	d.check(s.Kind == SignalTyping || !s.Message.IsZero(), "field 4 (message) is zero on a read marker")
	if err := d.end(b, s.Marshal); err != nil {
		return nil, err
	}
	return s, nil
}
