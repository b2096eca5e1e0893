package wire

import (
	"encoding/hex"
	"fmt"
)

// Version is the envelope version this code writes and interprets.
const Version = 1

// Limits on untrusted input. Every bound on network input lives here.
const (
	MaxEnvelopeBytes   = 512 << 10 // a whole encoded envelope
	MaxBodyBytes       = 480 << 10 // the body inside it
	MaxTextBytes       = 64 << 10  // text of one message
	MaxAuthorBytes     = 64        // an encoded peer ID
	MaxNameBytes       = 256       // display, workspace and room names
	MaxPolicyKeyBytes  = 64        // a policy setting's name
	MaxPolicyValBytes  = 256       // a policy setting's value
	MaxRecipients      = 32        // recipients of one key share
	MaxKeyRecipients   = 4096      // recipients of one key across the shares it went out in: a workspace's members, as many as a vector holds
	MaxDisclosed       = 4096      // disclosures of one key share (52 bytes each encoded)
	MaxRecipientBytes  = 2048      // one age recipient string
	MaxSigBytes        = 64        // an Ed25519 signature
	MaxBatchEnvelopes  = 256       // envelopes in one sync batch
	MaxBatchTombstones = 4096      // tombstones in one sync batch (each under 250 bytes)
	MaxVectorAuthors   = 4096      // authors in one vector
	MaxPendingEnvelope = 1024      // envelopes waiting for their author to be known

	MaxBatchBytes   = 4 << 20   // one encoded sync batch; senders cut batches by count and bytes
	MaxPendingBytes = 32 << 20  // bytes of the envelopes waiting for their author to be known
	MaxVectorBytes  = 512 << 10 // one encoded vector; MaxVectorAuthors entries of the largest size fit
	MaxLamport      = 1<<53 - 1 // largest Lamport clock; exact in a float64 and a JavaScript number
	MaxEpoch        = 1<<53 - 1 // largest room key epoch a node takes; the store holds up to 2^63-1

	GenesisNonceBytes = 16 // Genesis.Nonce, exactly
)

// ID names an envelope, a workspace, a room or a room key: a SHA-256 digest.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros (no previous envelope, no room).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the 64-hex-digit form that String returns.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("parse id %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// Class says what an envelope carries. The numbers go on the wire and into SQLite.
type Class uint8

const (
	ClassRoster   Class = 1 // a roster op, in clear
	ClassKeyShare Class = 2 // a room key, age-encrypted to members' hybrid recipients
	ClassContent  Class = 3 // room content, age-encrypted to the room key
)

func (c Class) String() string {
	switch c {
	case ClassRoster:
		return "roster"
	case ClassKeyShare:
		return "keyshare"
	case ClassContent:
		return "content"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Header is the signed part of an envelope (DESIGN.md "Envelope").
type Header struct {
	Version   uint64
	Workspace ID
	Author    []byte // binary peer ID; the verify key is inside it
	Seq       uint64 // 1, 2, 3 … per author per workspace
	Prev      ID     // ID of the author's envelope Seq-1; zero for Seq 1
	Lamport   uint64 // < 2^53
	Time      int64  // author's wall clock, unix milliseconds; display only
	Class     Class
	Room      ID // zero for roster ops
	Key       ID // room key ID; content only
	Body      []byte
}

// Envelope is the replicated unit: the canonical encoding of a Header and its signature.
type Envelope struct {
	Signed []byte
	Sig    []byte
}

// ContentKind says what a content envelope's plaintext is. Inside the ciphertext.
type ContentKind uint8

const (
	KindText     ContentKind = 1
	KindFile     ContentKind = 2
	KindEdit     ContentKind = 3
	KindDelete   ContentKind = 4
	KindReaction ContentKind = 5
	KindRoomOp   ContentKind = 6
)

func (k ContentKind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindFile:
		return "file"
	case KindEdit:
		return "edit"
	case KindDelete:
		return "delete"
	case KindReaction:
		return "reaction"
	case KindRoomOp:
		return "room"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// RoomKind distinguishes channels from direct conversations.
type RoomKind uint8

const (
	RoomChannel RoomKind = 1
	RoomDirect  RoomKind = 2
)

func (k RoomKind) String() string {
	switch k {
	case RoomChannel:
		return "channel"
	case RoomDirect:
		return "direct"
	}
	return fmt.Sprintf("roomkind(%d)", uint8(k))
}

// Content is the plaintext of a content envelope.
type Content struct {
	Kind     ContentKind
	Text     string        // text, edit (new text), reaction (the emoji)
	Target   ID            // edit, delete, reaction: the message acted on
	RoomName string        // room op: the room's name
	RoomKind RoomKind      // room op
	File     *FileManifest // file: what was posted; nil for other kinds
	RoomOp   RoomOpKind    // room op: what it does; 0 is RoomOpName
	Peer     []byte        // room op add, remove: the member concerned
	Private  bool          // room op name: only invited members, with no history for later ones
	// Members: room op name by the room's creator: the room's first
	// members, sorted, at most MaxRecipients. A member added later reads
	// them to learn who may share the room's keys.
	Members [][]byte
}

// RoomOpKind names a room op. The numbers go on the wire.
type RoomOpKind uint8

const (
	RoomOpName   RoomOpKind = 0 // create or rename
	RoomOpAdd    RoomOpKind = 1 // Peer was given the room's keys
	RoomOpRemove RoomOpKind = 2 // Peer is out; the next sender rotates the key
	RoomOpLeave  RoomOpKind = 3 // the author left; the next sender rotates the key
)

func (k RoomOpKind) String() string {
	switch k {
	case RoomOpName:
		return "name"
	case RoomOpAdd:
		return "add"
	case RoomOpRemove:
		return "remove"
	case RoomOpLeave:
		return "leave"
	}
	return fmt.Sprintf("roomop(%d)", uint8(k))
}

// Role is a member's standing in the workspace. Higher is more.
type Role uint8

const (
	RoleMember Role = 1
	RoleAdmin  Role = 2
	RoleOwner  Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleMember:
		return "member"
	case RoleAdmin:
		return "admin"
	case RoleOwner:
		return "owner"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Member is a member's self-signed record: who it is and where key shares go.
// Sig = Ed25519("charla/member/v1\0" ‖ canonical encoding of the other fields).
type Member struct {
	Peer      []byte // binary peer ID
	Name      string
	Recipient string // age hybrid recipient, "age1pq1…"
	Sig       []byte
}

// Genesis founds a workspace; the workspace ID is the SHA-256 of its encoding.
type Genesis struct {
	Name    string
	Founder Member // the owner
	Created int64  // unix milliseconds
	Nonce   []byte // 16 random bytes, so two offices of one name differ
}

// RosterKind names a roster op. The numbers go on the wire.
type RosterKind uint8

const (
	RosterAdmit   RosterKind = 1
	RosterRemove  RosterKind = 2
	RosterRole    RosterKind = 3
	RosterPolicy  RosterKind = 4 // set one policy key, workspace-wide or for a room
	RosterInvite  RosterKind = 5 // an invite was issued (its ID and expiry, never its token)
	RosterRevoke  RosterKind = 6 // an invite is revoked
	RosterProfile RosterKind = 7 // a member's own new self-signed record (a rename)
)

func (k RosterKind) String() string {
	switch k {
	case RosterAdmit:
		return "admit"
	case RosterRemove:
		return "remove"
	case RosterRole:
		return "role"
	case RosterPolicy:
		return "policy"
	case RosterInvite:
		return "invite"
	case RosterRevoke:
		return "revoke"
	case RosterProfile:
		return "profile"
	}
	return fmt.Sprintf("roster(%d)", uint8(k))
}

// RosterOp is the body of a roster envelope, in clear.
type RosterOp struct {
	Kind      RosterKind
	Member    Member // admit: the joiner's self-signed record; profile: the author's new one
	Role      Role   // admit, role, invite (the role the invite admits to)
	Target    []byte // remove, role: binary peer ID
	TargetSeq uint64 // remove: the last valid seq of the target
	TargetID  ID     // remove: the ID of that envelope
	Key       string // policy: which setting (see node's policy keys)
	Value     string // policy: its new value; empty resets it to the default
	Room      ID     // policy: the room it applies to; zero for workspace-wide
	Invite    ID     // invite, revoke: the invite's ID
	Expires   int64  // invite: unix milliseconds
}

// KeyCause says why a room key was shared.
type KeyCause uint8

const (
	CauseCreate  KeyCause = 1 // a new room's first key
	CauseRotate  KeyCause = 2 // a new epoch after a member left
	CauseReshare KeyCause = 3 // an existing key handed to a new member
)

// KeyShare is the plaintext of a key-share envelope (DESIGN.md "Identity and keys").
type KeyShare struct {
	Workspace  ID
	Room       ID
	RoomKind   RoomKind
	Epoch      uint64 // parent's epoch + 1; 1 for a room's first key
	Parent     ID     // key ID of the previous epoch; zero for epoch 1
	Cause      KeyCause
	Recipients [][]byte // binary peer IDs, sorted, at most MaxRecipients
	Key        [32]byte
	// Disclosed opens the room's room ops for a member who joins a room
	// without its history: the age file key of each room-op envelope, so
	// it reads who is in the room, and nothing else of what came before.
	Disclosed []Disclosure // sorted by Envelope, at most MaxDisclosed
	// AllRecipients is everyone the key went to when it went out in several
	// shares at once (a rotation of a room of more than MaxRecipients
	// members): the recipients of all of them, this share's included.
	// Each member opens only its own share, and must still learn whether
	// the key reached someone it may not reach. Empty when this share was
	// the only one: then Recipients is everyone.
	AllRecipients [][]byte // sorted, a proper superset of Recipients, at most MaxKeyRecipients
}

// Holders returns everyone the shared key went to: AllRecipients when the
// key went out in several shares, Recipients otherwise.
func (k *KeyShare) Holders() [][]byte {
	if len(k.AllRecipients) > 0 {
		return k.AllRecipients
	}
	return k.Recipients
}

// Disclosure is the age file key of one content envelope: it opens that
// envelope alone (node/disclose.go).
type Disclosure struct {
	Envelope ID
	FileKey  [16]byte
}
