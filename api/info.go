package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// InfoFile is the name of the file in a node's home that tells clients where
// its API is and how to authenticate.
const InfoFile = "api.json"

// Info is what a running node publishes in <home>/api.json.
type Info struct {
	API   string `json:"api"`   // host:port of the API
	Token string `json:"token"` // the bearer token
	PID   int    `json:"pid"`   // the node's process
}

// NewToken returns a fresh random API token: 32 random bytes, hex.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// WriteInfo writes info to <home>/api.json with mode 0600. It writes a
// temporary file and renames it, so a client never reads half a file.
func WriteInfo(home string, info Info) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", InfoFile, err)
	}
	path := filepath.Join(home, InfoFile)
	f, err := os.CreateTemp(home, InfoFile+".*.tmp") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadInfo reads <home>/api.json. When there is none the error wraps
// fs.ErrNotExist.
func ReadInfo(home string) (Info, error) {
	path := filepath.Join(home, InfoFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Info{}, fmt.Errorf("read API info: %w", err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	if info.API == "" || info.Token == "" {
		return Info{}, fmt.Errorf("read %s: no API address or token in it", path)
	}
	return info, nil
}

// RemoveInfo removes <home>/api.json, as a node does when it stops.
func RemoveInfo(home string) {
	_ = os.Remove(filepath.Join(home, InfoFile))
}
