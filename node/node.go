package node

import (
	"context"
	"errors"
	"time"
)

// Node is one running charla node.
type Node struct{}

// Init creates a new identity and workspace in home. It refuses a home that has one.
func Init(ctx context.Context, home string, opts InitOptions) (peerID string, err error) {
	return "", errors.New("not yet")
}

// IsInitialized reports whether home holds an identity.
func IsInitialized(home string) bool { return false }

// Open starts a node from its home: store, libp2p host, gossip.
func Open(ctx context.Context, cfg Config) (*Node, error) { return nil, errors.New("not yet") }

// Close stops the node and waits for its goroutines. Safe to call twice.
func (n *Node) Close() error { return nil }

func (n *Node) Status(ctx context.Context) (Status, error)   { return Status{}, nil }
func (n *Node) Rooms(ctx context.Context) ([]Room, error)     { return nil, nil }
func (n *Node) Members(ctx context.Context) ([]Member, error) { return nil, nil }
func (n *Node) Peers(ctx context.Context) ([]Peer, error)     { return nil, nil }
func (n *Node) Send(ctx context.Context, room, text string) (Message, error) {
	return Message{}, nil
}
func (n *Node) Log(ctx context.Context, room string, limit int) ([]Message, error) {
	return nil, nil
}
func (n *Node) Subscribe(ctx context.Context) <-chan Event { return nil }
func (n *Node) Invite(ctx context.Context, expires time.Duration) (string, error) {
	return "", errors.New("not yet")
}
