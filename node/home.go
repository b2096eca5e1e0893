package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// Files inside a node's home.
const (
	identityFile = "identity"
	databaseFile = "charla.db"
	lockFile     = "lock"
)

// homeLock is the exclusive claim of one process on one home.
type homeLock struct{ f *os.File }

// lockHome claims home for this process, or says which process holds it.
func lockHome(home string) (*homeLock, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home %s: %w", home, err)
	}
	path := filepath.Join(home, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if _, perr := strconv.Atoi(pid); perr != nil {
			pid = "unknown"
		}
		return nil, fmt.Errorf("open history: %w: %s is locked by another charla (pid %s); stop it or use --home", ErrLocked, home, pid)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Sync()
	}
	return &homeLock{f: f}, nil
}

func (l *homeLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	l.f.Close() // closing drops the lock
	l.f = nil
}

// claimNewHome locks an uninitialised home for this process and makes the
// identity and self-signed member record of the node that will live there.
// verb names the command in the error for a home that is taken.
func claimNewHome(home, name, verb string) (*homeLock, *crypto.Identity, wire.Member, error) {
	lock, err := lockHome(home)
	if err != nil {
		return nil, nil, wire.Member{}, err
	}
	if IsInitialized(home) {
		lock.release()
		return nil, nil, wire.Member{}, fmt.Errorf("%s: %s already holds a charla identity; use another --home", verb, home)
	}
	id, err := crypto.GenerateIdentity()
	if err == nil {
		var self wire.Member
		if self, err = id.MemberRecord(name); err == nil {
			return lock, id, self, nil
		}
	}
	lock.release()
	return nil, nil, wire.Member{}, err
}

// IsInitialized reports whether home holds an identity.
func IsInitialized(home string) bool {
	_, err := os.Stat(filepath.Join(home, identityFile))
	return err == nil
}
