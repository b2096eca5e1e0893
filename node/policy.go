package node

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/charla-im/charla/wire"
)

// Policy settings an admin signs into the roster (issue "Office control").
// Every node enforces them; the values travel as text in a roster op.
const (
	PolicyRetentionDays = "retention-days" // 0 keeps history forever; may be set per room
	PolicyFiles         = "files"          // "on" or "off"
	PolicyMaxFileSize   = "max-file-size"  // bytes; 0 is no limit
	PolicyInvite        = "invite"         // who may invite: "admins" or "members"
)

// PolicyKeys lists the settings in the order `charla policy` shows them.
var PolicyKeys = []string{PolicyRetentionDays, PolicyFiles, PolicyMaxFileSize, PolicyInvite}

// Policy is the workspace's policy as the roster sets it.
type Policy struct {
	RetentionDays int            `json:"retention_days"`           // 0: keep forever
	RoomRetention map[string]int `json:"room_retention,omitempty"` // room ID → days, overriding RetentionDays
	Files         bool           `json:"files"`
	MaxFileSize   int64          `json:"max_file_size"` // 0: no limit
	Invite        string         `json:"invite"`        // "admins" or "members"
}

func defaultPolicy() Policy {
	return Policy{Files: true, Invite: "admins"}
}

func (p Policy) clone() Policy {
	q := p
	q.RoomRetention = nil
	for k, v := range p.RoomRetention {
		if q.RoomRetention == nil {
			q.RoomRetention = map[string]int{}
		}
		q.RoomRetention[k] = v
	}
	return q
}

// Retention is how many days history in room is kept; 0 is forever.
func (p Policy) Retention(room wire.ID) int {
	if d, ok := p.RoomRetention[room.String()]; ok {
		return d
	}
	return p.RetentionDays
}

// normalPolicyValue checks value for key and returns it in the one spelling
// the roster op carries ("" resets the default). room is only for retention.
func normalPolicyValue(key, value string, room wire.ID) (string, error) {
	value = strings.TrimSpace(strings.ToLower(value))
	if !room.IsZero() && key != PolicyRetentionDays {
		return "", fmt.Errorf("%w: only %s can be set per room", ErrInvalid, PolicyRetentionDays)
	}
	if value == "" {
		return "", nil
	}
	switch key {
	case PolicyRetentionDays:
		d, err := strconv.Atoi(value)
		if err != nil || d < 0 || d > 100*365 {
			return "", fmt.Errorf("%w: %s is a whole number of days from 0 (keep forever) to 36500, not %q", ErrInvalid, key, value)
		}
		return strconv.Itoa(d), nil
	case PolicyFiles:
		switch value {
		case "on", "true", "yes":
			return "on", nil
		case "off", "false", "no":
			return "off", nil
		}
		return "", fmt.Errorf("%w: %s is on or off, not %q", ErrInvalid, key, value)
	case PolicyMaxFileSize:
		n, err := parseSize(value)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrInvalid, key, err)
		}
		return strconv.FormatInt(n, 10), nil
	case PolicyInvite:
		switch value {
		case "admins", "members":
			return value, nil
		}
		return "", fmt.Errorf("%w: %s is admins or members, not %q", ErrInvalid, key, value)
	}
	return "", fmt.Errorf("%w: no policy setting %q; the settings are %s", ErrInvalid, key, strings.Join(PolicyKeys, ", "))
}

// parseSize reads a byte count with an optional unit: 500, 20MB, 2GiB, 1.5G.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*mult > 1<<50 {
		return 0, fmt.Errorf("a size in bytes, e.g. 500000, 20MB or 2GiB, not %q", s)
	}
	return int64(f * mult), nil
}

// set applies one valid setting to p; a value "" resets the default.
func (p *Policy) set(key, value string, room wire.ID) {
	def := defaultPolicy()
	switch key {
	case PolicyRetentionDays:
		if !room.IsZero() {
			if value == "" {
				delete(p.RoomRetention, room.String())
				return
			}
			if p.RoomRetention == nil {
				p.RoomRetention = map[string]int{}
			}
			p.RoomRetention[room.String()], _ = strconv.Atoi(value)
			return
		}
		p.RetentionDays = def.RetentionDays
		if value != "" {
			p.RetentionDays, _ = strconv.Atoi(value)
		}
	case PolicyFiles:
		p.Files = value != "off"
	case PolicyMaxFileSize:
		p.MaxFileSize = def.MaxFileSize
		if value != "" {
			p.MaxFileSize, _ = strconv.ParseInt(value, 10, 64)
		}
	case PolicyInvite:
		p.Invite = def.Invite
		if value != "" {
			p.Invite = value
		}
	}
}

// Value is the text of one setting, as `charla policy` prints it.
func (p Policy) Value(key string) string {
	switch key {
	case PolicyRetentionDays:
		return strconv.Itoa(p.RetentionDays)
	case PolicyFiles:
		if p.Files {
			return "on"
		}
		return "off"
	case PolicyMaxFileSize:
		return strconv.FormatInt(p.MaxFileSize, 10)
	case PolicyInvite:
		return p.Invite
	}
	return ""
}

// roomRetentionIDs lists the rooms with their own retention, sorted.
func (p Policy) roomRetentionIDs() []string {
	var ids []string
	for id := range p.RoomRetention {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// checkFile says why policy refuses a file of size bytes, or nil.
func (p Policy) checkFile(size int64) error {
	if !p.Files {
		return withHint(fmt.Errorf("%w: file sharing is off in this workspace (policy %s)", ErrForbidden, PolicyFiles),
			"an admin can turn it on: charla policy set files on")
	}
	if p.MaxFileSize > 0 && size > p.MaxFileSize {
		return withHint(fmt.Errorf("%w: the file is %d bytes; this workspace allows at most %d (policy %s)", ErrForbidden, size, p.MaxFileSize, PolicyMaxFileSize),
			"share a smaller file, or ask an admin to raise the limit: charla policy set max-file-size BYTES")
	}
	return nil
}

// checkManifest says why policy refuses the file manifest m describes, or
// nil. Its plaintext size is only the author's word until the file is
// decrypted, while its ciphertext is what members store and serve: a
// ciphertext longer than age makes of that size is refused, so the limit
// bounds what is stored (as fetchesOnArrival does for automatic downloads).
func (p Policy) checkManifest(m *wire.FileManifest) error {
	if err := p.checkFile(int64(m.Size)); err != nil {
		return err
	}
	if m.CipherSize > m.Size+ageOverhead(m.Size) {
		return fmt.Errorf("%w: the file claims %d bytes but its encrypted form is %d bytes, more than encryption adds; its author's manifest is wrong", ErrForbidden, m.Size, m.CipherSize)
	}
	return nil
}
