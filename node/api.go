package node

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Errors callers branch on. The API maps them to HTTP statuses.
var (
	ErrUnknownRoom = errors.New("no such room")   // 404
	ErrAmbiguous   = errors.New("ambiguous name") // 409: a name matches several members
	ErrInvalid     = errors.New("invalid input")  // 400: empty text, text over the limit, …
	ErrForbidden   = errors.New("not allowed")    // 403: the roster or policy does not let this member do it
	ErrRemoved     = errors.New("this node was removed from the workspace")
	ErrNotInit     = errors.New("no charla identity in this home")
	ErrLocked      = errors.New("home is in use by another charla")
)

// hinted is an error that says what to do about it, for the API to hand on
// (Hint); an empty hint says the message needs none.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// Hint is what the user can do about the error; "" when its message says it.
func (h *hinted) Hint() string { return h.hint }

func withHint(err error, hint string) error { return &hinted{err: err, hint: hint} }

// Config is what a node needs to start. Home is required.
type Config struct {
	Home   string
	Listen []string // multiaddrs; empty means /ip4/0.0.0.0/tcp/4747 (a free port if taken)
	Peers  []string // static peers, multiaddrs ending in /p2p/<peer ID>
	MDNS   bool
	Logger *slog.Logger
	// AutoDownload is the largest file, in plaintext bytes, that room members
	// fetch as soon as its message arrives: 0 means DefaultAutoDownload, a
	// negative value never.
	AutoDownload int64
	// MaxFileSize is the largest file this node posts; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// EventBuffer is how many events a subscriber may fall behind before it
	// misses one and its channel is closed (Subscribe); 0 or less means
	// DefaultEventBuffer.
	EventBuffer int
}

// DefaultEventBuffer is a subscriber's buffer: a catch-up's burst of
// message events fits, a stalled reader does not hold the node.
const DefaultEventBuffer = 1024

// InitOptions names what `charla init` creates.
type InitOptions struct {
	Name      string // the member's display name
	Workspace string // the new workspace's name
}

// Backend is everything the local API asks of a running node.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Rooms(ctx context.Context) ([]Room, error)
	Members(ctx context.Context) ([]Member, error)
	Peers(ctx context.Context) ([]Peer, error)
	// Send posts text to a room named by "general", "#general", its hex ID,
	// or "@Name" / "@<peer ID>" for a direct conversation.
	Send(ctx context.Context, room, text string) (Message, error)
	// Log returns the limit newest messages of a room, oldest first.
	Log(ctx context.Context, room string, limit int) ([]Message, error)
	// Subscribe delivers events until ctx is done, the node stops, or the
	// subscriber falls so far behind that an event is dropped for it; then
	// the channel is closed. After a drop, what it missed is in the history
	// (Log): read it and subscribe again.
	Subscribe(ctx context.Context) <-chan Event
	// Invite creates a one-time invite code valid for the given time.
	Invite(ctx context.Context, expires time.Duration) (string, error)
	// Doctor checks the network, multicast, the peer port and which members answer.
	Doctor(ctx context.Context) (DoctorReport, error)
}

var _ Backend = (*Node)(nil)
