package crypto

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/charla-im/charla/wire"
)

// ErrNotForUs is wrapped by the errors of DecryptContent, DecryptContentFrom
// and OpenKeyShare when the ciphertext is well formed but not encrypted to the
// key or identity given. Members store and forward content they cannot read,
// so callers treat it differently from a malformed ciphertext.
var ErrNotForUs = errors.New("not encrypted to this key")

// RoomKey is a room's symmetric content key for one epoch.
type RoomKey [32]byte

// NewRoomKey returns a random room key.
func NewRoomKey() (RoomKey, error) {
	var k RoomKey
	if _, err := rand.Read(k[:]); err != nil {
		return RoomKey{}, fmt.Errorf("new room key: %w", err)
	}
	return k, nil
}

// roomKeyIDDomain prefixes the hash that names a room key.
const roomKeyIDDomain = "charla/room-key\x00"

// ID returns the key's public name, SHA-256("charla/room-key\0" ‖ key).
func (k RoomKey) ID() wire.ID {
	h := sha256.New()
	h.Write([]byte(roomKeyIDDomain))
	h.Write(k[:])
	var id wire.ID
	h.Sum(id[:0])
	return id
}

const (
	// roomStanzaType is the type of the one recipient stanza of room content.
	roomStanzaType = "charla-room"
	// roomKeyHintBytes of the key ID go in the stanza argument.
	roomKeyHintBytes = 8
	// roomStanzaBodyBytes is a nonce and an encrypted 16-byte age file key.
	roomStanzaBodyBytes = chacha20poly1305.NonceSizeX + 16 + chacha20poly1305.Overhead
)

// roomStanzaAD is the associated data of the file key wrap, binding the
// ciphertext to this use of the room key.
var roomStanzaAD = []byte("charla/room-stanza/v1")

// roomKeyHint is the stanza argument for k: a prefix of its ID, which names it
// publicly anyway (every content envelope carries the key ID in clear).
func roomKeyHint(k RoomKey) string {
	id := k.ID()
	return base64.RawStdEncoding.EncodeToString(id[:roomKeyHintBytes])
}

// roomRecipient wraps age's file key with a room key, in one stanza whatever
// the size of the room.
type roomRecipient struct {
	key  RoomKey
	hint string
}

var (
	_ age.Recipient           = (*roomRecipient)(nil)
	_ age.RecipientWithLabels = (*roomRecipient)(nil)
)

func newRoomRecipient(k RoomKey) *roomRecipient {
	return &roomRecipient{key: k, hint: roomKeyHint(k)}
}

func (r *roomRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, _, err := r.WrapWithLabels(fileKey)
	return s, err
}

// WrapWithLabels reports the "postquantum" label: the wrap is symmetric with
// a 256-bit key, so age lets it sit beside hybrid recipients and refuses to
// mix it with classic X25519 ones, which would undo that.
func (r *roomRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	aead, err := chacha20poly1305.NewX(r.key[:])
	if err != nil {
		return nil, nil, fmt.Errorf("charla-room wrap: %w", err)
	}
	body := make([]byte, aead.NonceSize(), roomStanzaBodyBytes)
	if _, err := rand.Read(body); err != nil {
		return nil, nil, fmt.Errorf("charla-room wrap: nonce: %w", err)
	}
	body = aead.Seal(body, body, fileKey, roomStanzaAD)
	s := &age.Stanza{Type: roomStanzaType, Args: []string{r.hint}, Body: body}
	return []*age.Stanza{s}, []string{"postquantum"}, nil
}

// roomIdentity unwraps what roomRecipient wrapped with the same room key.
//
// Unwrap returns an error wrapping age.ErrIncorrectIdentity when no stanza is
// a charla-room stanza for this key, and any other error for a charla-room
// stanza that is malformed.
type roomIdentity struct {
	key  RoomKey
	hint string
}

var _ age.Identity = (*roomIdentity)(nil)

func newRoomIdentity(k RoomKey) *roomIdentity {
	return &roomIdentity{key: k, hint: roomKeyHint(k)}
}

func (i *roomIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		fileKey, err := i.unwrap(s)
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		return fileKey, err
	}
	return nil, age.ErrIncorrectIdentity
}

func (i *roomIdentity) unwrap(s *age.Stanza) ([]byte, error) {
	if s.Type != roomStanzaType {
		return nil, age.ErrIncorrectIdentity
	}
	if len(s.Args) != 1 || len(s.Body) != roomStanzaBodyBytes {
		return nil, errors.New("malformed charla-room stanza")
	}
	if s.Args[0] != i.hint {
		return nil, age.ErrIncorrectIdentity
	}
	aead, err := chacha20poly1305.NewX(i.key[:])
	if err != nil {
		return nil, fmt.Errorf("charla-room unwrap: %w", err)
	}
	nonce, ct := s.Body[:aead.NonceSize()], s.Body[aead.NonceSize():]
	fileKey, err := aead.Open(nil, nonce, ct, roomStanzaAD)
	if err != nil {
		// Either a hint collision or a forged stanza; age's own identities
		// report a failed open the same way.
		return nil, age.ErrIncorrectIdentity
	}
	return fileKey, nil
}

// singleStanza admits only age files with exactly one recipient stanza, as
// room content must have (DESIGN.md "Identity and keys"). It sees the whole
// header, which an identity given to age.Decrypt alongside others would not.
type singleStanza struct{ age.Identity }

func (s singleStanza) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) != 1 {
		return nil, fmt.Errorf("content has %d recipient stanzas, want 1", len(stanzas))
	}
	return s.Identity.Unwrap(stanzas)
}

// maxStanzas admits only age files with at most n recipient stanzas, so that
// a crafted key share cannot make a node try thousands of ML-KEM decapsulations.
type maxStanzas struct {
	age.Identity
	n int
}

func (m maxStanzas) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) > m.n {
		return nil, fmt.Errorf("%d recipient stanzas, want at most %d", len(stanzas), m.n)
	}
	return m.Identity.Unwrap(stanzas)
}

// EncryptContent encrypts plaintext to room key k as a binary age file with
// one charla-room stanza.
func EncryptContent(k RoomKey, plaintext []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(plaintext) + 256)
	w, err := EncryptContentTo(k, &buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("encrypt content: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt content: %w", err)
	}
	return buf.Bytes(), nil
}

// EncryptContentTo returns a writer that encrypts to room key k and writes
// the age file to w. The caller must Close it to flush the last chunk.
func EncryptContentTo(k RoomKey, w io.Writer) (io.WriteCloser, error) {
	wc, err := age.Encrypt(w, newRoomRecipient(k))
	if err != nil {
		return nil, fmt.Errorf("encrypt content: %w", err)
	}
	return wc, nil
}

// DecryptContent decrypts content encrypted by EncryptContent. It refuses an
// age file that does not have exactly one recipient stanza. When that stanza
// is not for k the error wraps [ErrNotForUs].
//
// The header goes through age (parse, unwrap, header MAC); the payload is
// opened here, as age's DecryptReaderAt would open it, into one buffer of
// the plaintext's size. DecryptReaderAt allocates a 64 KiB chunk per read:
// half the cost of decrypting a 1 KiB message, paid for every message of a
// catch-up. FuzzDecryptContent holds it to age's own streaming reader.
func DecryptContent(k RoomKey, ciphertext []byte) ([]byte, error) {
	fileKey, n, err := openHeader(singleStanza{newRoomIdentity(k)}, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypt content: %w", err)
	}
	plaintext, err := openPayload(fileKey, ciphertext[n:])
	if err != nil {
		return nil, fmt.Errorf("decrypt content: %w", err)
	}
	return plaintext, nil
}

// openHeader reads and checks the age header that starts ciphertext with id
// (parse, unwrap, MAC) and returns the file key and the header's length.
func openHeader(id age.Identity, ciphertext []byte) ([]byte, int, error) {
	n := ageHeaderLen(ciphertext)
	if n < 0 {
		return nil, 0, errors.New("failed to read header: no MAC line")
	}
	fileKey, err := age.DecryptHeader(ciphertext[:n], id)
	if err != nil {
		return nil, 0, notForUs(err)
	}
	return fileKey, n, nil
}

// ContentFileKey returns the age file key of content encrypted to room key
// k: the key that opens this one envelope and nothing else, for a member to
// disclose to a newcomer (node/disclose.go).
func ContentFileKey(k RoomKey, ciphertext []byte) ([16]byte, error) {
	var fk [16]byte
	key, _, err := openHeader(singleStanza{newRoomIdentity(k)}, ciphertext)
	if err != nil {
		return fk, fmt.Errorf("content file key: %w", err)
	}
	if len(key) != len(fk) {
		return fk, fmt.Errorf("content file key: %d bytes, want %d", len(key), len(fk))
	}
	copy(fk[:], key)
	return fk, nil
}

// DecryptContentWithFileKey opens content with its disclosed file key. The
// age header's MAC is checked with that key, so a wrong key is refused
// before the payload is opened.
func DecryptContentWithFileKey(fileKey [16]byte, ciphertext []byte) ([]byte, error) {
	fk, n, err := openHeader(singleStanza{disclosedKey(fileKey)}, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypt disclosed content: %w", err)
	}
	plaintext, err := openPayload(fk, ciphertext[n:])
	if err != nil {
		return nil, fmt.Errorf("decrypt disclosed content: %w", err)
	}
	return plaintext, nil
}

// disclosedKey is an age identity that "unwraps" every stanza to a file key
// it was given; age then checks the header MAC with it.
type disclosedKey [16]byte

func (k disclosedKey) Unwrap([]*age.Stanza) ([]byte, error) {
	return append([]byte(nil), k[:]...), nil
}

// ageHeaderLen is the length of the age header that starts b: up to and
// including the line "--- MAC". The first line that starts with "--- " is
// that one in any header age parses (stanza lines start with "-> " or are
// base64); age.DecryptHeader then checks all of it.
func ageHeaderLen(b []byte) int {
	i := bytes.Index(b, []byte("\n--- "))
	if i < 0 {
		return -1
	}
	i += len("\n--- ")
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return -1
	}
	return i + j + 1
}

// The age payload (age-encryption.org/v1, "Payload"): a 16-byte nonce, then
// the plaintext in chunks of 64 KiB sealed with ChaCha20-Poly1305 under
// HKDF-SHA256(file key, nonce, "payload"), each chunk's nonce its index in
// 11 bytes big-endian and a last-chunk flag byte.
const (
	payloadNonceSize = 16
	payloadChunkSize = 64 << 10
	payloadSealed    = payloadChunkSize + chacha20poly1305.Overhead
)

// openPayload decrypts and authenticates an age payload with the same rules
// as age's DecryptReaderAt: every chunk but the last is full, and the last
// is empty only when it is the only one.
func openPayload(fileKey, payload []byte) ([]byte, error) {
	if len(payload) < payloadNonceSize {
		return nil, errors.New("failed to read nonce")
	}
	nonce, sealed := payload[:payloadNonceSize], payload[payloadNonceSize:]
	chunks := (len(sealed) + payloadSealed - 1) / payloadSealed
	size := len(sealed) - chunks*chacha20poly1305.Overhead
	want := (size + payloadChunkSize - 1) / payloadChunkSize
	if size == 0 {
		want = 1
	}
	if want != chunks {
		return nil, fmt.Errorf("invalid encrypted payload size: %d", len(sealed))
	}
	key, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	plaintext := make([]byte, 0, size)
	var cn [chacha20poly1305.NonceSize]byte
	for i := range chunks {
		c := sealed[i*payloadSealed : min((i+1)*payloadSealed, len(sealed))]
		binary.BigEndian.PutUint64(cn[3:11], uint64(i))
		if i == chunks-1 {
			cn[len(cn)-1] = 1
		}
		if plaintext, err = aead.Open(plaintext, cn[:], c, nil); err != nil {
			return nil, errors.New("failed to decrypt and authenticate payload chunk, file may be corrupted or tampered with")
		}
	}
	return plaintext, nil
}

// maxStreamHeader bounds the age header DecryptContentFrom reads: content
// carries one small stanza.
const maxStreamHeader = 16 << 10

// DecryptContentFrom reads the age header from r at once, with the same
// checks and errors as DecryptContent, and returns a reader of the plaintext.
// Reads from it fail if the payload was truncated or tampered with.
//
// The header goes through age; the payload is opened here, each 64 KiB
// chunk in place in one buffer. age's streaming reader allocates a new
// chunk buffer for every chunk and copies it: a GiB of garbage per GiB
// decrypted, which doubled a get's memory. FuzzDecryptContent holds it to
// age's reader and to DecryptContent.
func DecryptContentFrom(k RoomKey, r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 4096)
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("decrypt content: failed to read header: %w", noEOF(err))
		}
		hdr = append(hdr, line...)
		if len(hdr) > maxStreamHeader {
			return nil, errors.New("decrypt content: failed to read header: header too long")
		}
		if err == nil && bytes.HasPrefix(line, []byte("--- ")) {
			break
		}
	}
	fileKey, err := age.DecryptHeader(hdr, singleStanza{newRoomIdentity(k)})
	if err != nil {
		return nil, fmt.Errorf("decrypt content: %w", notForUs(err))
	}
	nonce := make([]byte, payloadNonceSize)
	if _, err := io.ReadFull(br, nonce); err != nil {
		return nil, fmt.Errorf("decrypt content: failed to read nonce: %w", noEOF(err))
	}
	key, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return &payloadReader{src: br, aead: aead, buf: make([]byte, payloadSealed)}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// payloadReader opens an age payload chunk by chunk, with the rules of
// openPayload: every chunk but the last is full, the last is empty only
// when it is the only one, and nothing follows it.
type payloadReader struct {
	src  *bufio.Reader
	aead interface {
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
	index  uint64
	buf    []byte
	unread []byte
	last   bool // the last chunk was opened
	err    error
}

func (r *payloadReader) Read(p []byte) (int, error) {
	for len(r.unread) == 0 {
		switch {
		case r.err != nil:
			return 0, r.err
		case r.last:
			r.err = io.EOF
		case len(p) == 0:
			return 0, nil
		default:
			r.err = r.next()
		}
	}
	n := copy(p, r.unread)
	r.unread = r.unread[n:]
	return n, nil
}

// next opens the next chunk into unread.
func (r *payloadReader) next() error {
	in := r.buf
	n, err := io.ReadFull(r.src, in)
	last := false
	switch {
	case err == io.EOF:
		return errors.New("decrypt content: payload truncated")
	case err == io.ErrUnexpectedEOF:
		if r.index > 0 && n == chacha20poly1305.Overhead {
			return errors.New("decrypt content: last payload chunk is empty")
		}
		in, last = in[:n], true
	case err != nil:
		return fmt.Errorf("decrypt content: %w", err)
	default:
		// A full chunk is the last when nothing follows it.
		if _, err := r.src.Peek(1); err == io.EOF {
			last = true
		} else if err != nil {
			return fmt.Errorf("decrypt content: %w", err)
		}
	}
	var cn [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(cn[3:11], r.index)
	if last {
		cn[len(cn)-1] = 1
	}
	out, err := r.aead.Open(in[:0], cn[:], in, nil)
	if err != nil {
		return errors.New("decrypt content: failed to decrypt and authenticate payload chunk, file may be corrupted or tampered with")
	}
	r.index++
	r.unread, r.last = out, last
	return nil
}

// notForUs maps age's "no identity matched" to ErrNotForUs.
func notForUs(err error) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return ErrNotForUs
	}
	return err
}
