package wire

var contentFields = []string{1: "kind", 2: "text", 3: "target", 4: "room_name", 5: "room_kind", 6: "file",
	7: "room_op", 8: "peer", 9: "private", 10: "members"}

// Marshal returns the canonical encoding of c, the plaintext a content envelope
// encrypts.
func (c *Content) Marshal() []byte {
	b := make([]byte, 0, len(c.Text)+len(c.RoomName)+len(ID{})+16)
	b = appendUint(b, 1, uint64(c.Kind))
	b = appendString(b, 2, c.Text)
	b = appendBytes(b, 3, c.Target[:])
	b = appendString(b, 4, c.RoomName)
	b = appendUint(b, 5, uint64(c.RoomKind))
	var file []byte
	if c.File != nil {
		file = c.File.Marshal()
	}
	b = appendBytes(b, 6, file)
	b = appendUint(b, 7, uint64(c.RoomOp))
	b = appendBytes(b, 8, c.Peer)
	var private uint64
	if c.Private {
		private = 1
	}
	b = appendUint(b, 9, private)
	// Repeated and empty for every other content, so content without
	// members keeps the encoding it had before the field existed.
	for _, m := range c.Members {
		b = appendBytes(b, 10, m)
	}
	return b
}

// DecodeContent decodes the canonical encoding of a content plaintext and checks
// its bounds. Which fields a kind uses is for the caller to judge.
func DecodeContent(b []byte) (*Content, error) {
	if len(b) > MaxBodyBytes {
		return nil, tooLarge("content", len(b), MaxBodyBytes)
	}
	d := newDecoder("content", contentFields, b)
	c := new(Content)
	c.Kind = ContentKind(d.enum(1, uint64(KindText), uint64(KindRoomOp)))
	c.Text = d.text(2, MaxTextBytes)
	c.Target = d.id(3)
	c.RoomName = d.text(4, MaxNameBytes)
	c.RoomKind = RoomKind(d.enum(5, 0, uint64(RoomDirect)))
	// An empty field is no manifest; a manifest is never empty (it has a name).
	if file := d.raw(6); d.err == nil && len(file) > 0 {
		m, err := DecodeFileManifest(file)
		d.nested(6, err)
		c.File = m
	}
	c.RoomOp = RoomOpKind(d.enum(7, uint64(RoomOpName), uint64(RoomOpLeave)))
	c.Peer = d.bytes(8, 0, MaxAuthorBytes)
	c.Private = d.enum(9, 0, 1) == 1
	c.Members = d.peers(10, MaxRecipients)
	if err := d.end(b, c.Marshal); err != nil {
		return nil, err
	}
	return c, nil
}
