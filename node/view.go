package node

import "time"

// The types below are what the node shows of itself to the API, CLI and UI.
// Their JSON names are part of charla's interface: keep them stable.

// Message is one decrypted message of a room, as a user sees it.
type Message struct {
	ID         string    `json:"id"` // envelope ID, hex
	Room       string    `json:"room"`
	RoomName   string    `json:"room_name"`
	Author     string    `json:"author"` // peer ID
	AuthorName string    `json:"author_name"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"` // text, …
	Text       string    `json:"text"`
	Lamport    uint64    `json:"lamport"`
	Seq        uint64    `json:"seq"`
	State      string    `json:"state"` // local until some peer holds it, then delivered
	// Edits, deletes, reactions and replies (node/actions.go).
	Edited      bool       `json:"edited"`
	Deleted     bool       `json:"deleted"` // its text is gone
	Reactions   []Reaction `json:"reactions"`
	ReplyTo     string     `json:"reply_to,omitempty"`     // ID of the message replied to
	ReplyAuthor string     `json:"reply_author,omitempty"` // its author's name
	ReplyText   string     `json:"reply_text,omitempty"`   // a short quote of it
	// Mentions are the peer IDs of the members the text names as
	// "@Name" (node/mentions.go).
	Mentions []string `json:"mentions,omitempty"`
}

// Room is a channel or a direct conversation this node can read.
type Room struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`    // channel, direct
	Members []string `json:"members"` // peer IDs
}

// Member is one member of the workspace roster.
type Member struct {
	PeerID  string `json:"peer_id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Removed bool   `json:"removed,omitempty"`
	// Presence is online, away (its user is idle) or offline (no
	// heartbeat heard lately); this node's own member is never offline.
	Presence string `json:"presence,omitempty"`
}

// Peer is a peer this node knows how to reach.
type Peer struct {
	PeerID    string   `json:"peer_id"`
	Name      string   `json:"name"`
	Addrs     []string `json:"addrs"`
	Via       string   `json:"via"` // mdns, static, book
	Connected bool     `json:"connected"`
}

// Status is the node's view of itself.
type Status struct {
	PeerID        string           `json:"peer_id"`
	Name          string           `json:"name"`
	Workspace     string           `json:"workspace"`
	WorkspaceName string           `json:"workspace_name"`
	Addrs         []string         `json:"addrs"` // full multiaddrs ending in /p2p/<peer ID>
	Peers         []string         `json:"peers"` // connected peer IDs
	API           string           `json:"api"`
	Rejected      map[string]int64 `json:"rejected"` // counts by reason
	Dropped       map[string]int64 `json:"dropped"`  // gossip drops by reason
	Envelopes     int64            `json:"envelopes"`
	Sync          []SyncProgress   `json:"sync"`  // catch-ups under way
	Forks         []Fork           `json:"forks"` // authors seen signing two envelopes at one seq
	// Sources counts, per peer ID, the file chunks this node fetched from
	// it since it started (and those that failed their hash).
	Sources map[string]BlobSource `json:"sources"`
	Role    string                `json:"role"`    // this member's role: member, admin, owner
	Removed bool                  `json:"removed"` // an admin removed this node; it no longer syncs
	// Retention: what the last purge did (node/retention.go).
	LastPurge    int64 `json:"last_purge"`    // unix ms when the last purge ran; 0: never
	Purged       int   `json:"purged"`        // envelopes it emptied to tombstones
	PurgedFiles  int   `json:"purged_files"`  // files among them
	PurgedChunks int   `json:"purged_chunks"` // blob chunks it deleted
	PurgedTotal  int64 `json:"purged_total"`  // envelopes every purge of this node emptied
}

// SyncProgress is one catch-up from one peer.
type SyncProgress struct {
	Peer      string `json:"peer"`
	Name      string `json:"name"`
	Received  int64  `json:"received"`
	Remaining int64  `json:"remaining"`
}

// Fork is a second envelope an author signed at a seq it had used.
type Fork struct {
	Author     string `json:"author"`
	AuthorName string `json:"author_name"`
	Seq        uint64 `json:"seq"`
	ID         string `json:"id"` // the envelope kept apart
}

// Event is pushed to subscribers when the node's history changes, and for
// ephemerals: typing, read markers and presence.
type Event struct {
	Type     string          `json:"type"` // "message", "sync", "typing", "read", "presence"
	Message  *Message        `json:"message,omitempty"`
	Sync     *SyncProgress   `json:"sync,omitempty"`
	Typing   *Typing         `json:"typing,omitempty"`
	Read     *ReadMarker     `json:"read,omitempty"`
	Presence *PresenceChange `json:"presence,omitempty"`
}
