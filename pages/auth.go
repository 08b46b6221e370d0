package pages

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// basicAuth checks HTTP basic credentials against an htpasswd-style file
// of bcrypt hashes ("user:$2y$…"), the format `htpasswd -B` writes.
//
// bcrypt is slow on purpose (tens of milliseconds a check), which a page
// that loads in a few milliseconds cannot pay on every request: a verified
// user and password are remembered (as a SHA-256, never in clear) for
// authCacheTTL, until the file changes. At most two bcrypt comparisons run
// at once, so a flood of guesses costs two cores' worth at most. An unknown
// user is compared against a dummy hash, so the time taken does not tell
// which users exist.
type basicAuth struct {
	file string
	log  *slog.Logger
	now  func() time.Time

	mu        sync.Mutex
	users     map[string][]byte
	stamp     fileStamp
	checkedAt time.Time
	broken    error // the file became unreadable or invalid: refuse everyone
	verified  map[[32]byte]time.Time
	sem       chan struct{}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

const (
	authCacheTTL   = 5 * time.Minute
	authCacheMax   = 1024
	authStatEvery  = 2 * time.Second
	maxAuthFile    = 1 << 20
	authRealm      = `Basic realm="nsguard", charset="UTF-8"`
	maxCredentials = 1024
)

var (
	dummyOnce sync.Once
	dummyHash []byte
)

func newBasicAuth(file string, log *slog.Logger, now func() time.Time) (*basicAuth, error) {
	a := &basicAuth{file: file, log: log, now: now, verified: map[[32]byte]time.Time{}, sem: make(chan struct{}, 2)}
	users, stamp, err := readHtpasswd(file)
	if err != nil {
		return nil, err
	}
	a.users, a.stamp, a.checkedAt = users, stamp, now()
	return a, nil
}

// readHtpasswd parses the file; every problem names the file and line.
func readHtpasswd(file string) (map[string][]byte, fileStamp, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("ui.basic_auth_file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("ui.basic_auth_file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("ui.basic_auth_file: %w", err)
	}
	if len(data) > maxAuthFile {
		return nil, fileStamp{}, fmt.Errorf("ui.basic_auth_file %s: larger than %d bytes", file, maxAuthFile)
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			return nil, fileStamp{}, fmt.Errorf("%s:%d: want user:bcrypt-hash", file, n)
		case !strings.HasPrefix(hash, "$2"):
			// The line is not echoed: it holds a password hash.
			return nil, fileStamp{}, fmt.Errorf("%s:%d: the hash for %q is not bcrypt (create it with htpasswd -B)", file, n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fileStamp{}, fmt.Errorf("%s:%d: the bcrypt hash for %q is malformed", file, n, user)
		}
		if _, dup := users[user]; dup {
			return nil, fileStamp{}, fmt.Errorf("%s:%d: user %q appears twice", file, n, user)
		}
		users[user] = []byte(hash)
		if len(users) > maxCredentials {
			return nil, fileStamp{}, fmt.Errorf("%s: more than %d users", file, maxCredentials)
		}
	}
	if len(users) == 0 {
		return nil, fileStamp{}, fmt.Errorf("ui.basic_auth_file %s: no user (a file without users would lock everyone out)", file)
	}
	return users, fileStamp{mod: st.ModTime(), size: st.Size()}, nil
}

// current re-reads the file when it changed.
func (a *basicAuth) current() (map[string][]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Sub(a.checkedAt) < authStatEvery {
		return a.users, a.broken
	}
	a.checkedAt = now
	st, err := os.Stat(a.file)
	if err == nil && st.ModTime().Equal(a.stamp.mod) && st.Size() == a.stamp.size && a.broken == nil {
		return a.users, nil
	}
	users, stamp, err := readHtpasswd(a.file)
	if err != nil {
		if a.broken == nil {
			a.log.Error("pages: the password file became unusable; every request is refused until it is fixed", "err", err)
		}
		a.broken, a.users = err, nil
		clear(a.verified)
		return nil, err
	}
	if a.broken != nil {
		a.log.Info("pages: the password file is usable again", "file", a.file)
	}
	a.users, a.stamp, a.broken = users, stamp, nil
	clear(a.verified)
	return users, nil
}

// allow reports whether the request carries valid credentials.
func (a *basicAuth) allow(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || len(user) > 256 || len(pass) > 1024 {
		return false
	}
	users, err := a.current()
	if err != nil {
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	a.mu.Lock()
	until, hit := a.verified[key]
	a.mu.Unlock()
	if hit && a.now().Before(until) {
		return true
	}
	hash, known := users[user]
	if !known {
		dummyOnce.Do(func() { dummyHash, _ = bcrypt.GenerateFromPassword([]byte("nsguard dummy"), bcrypt.DefaultCost) })
		hash = dummyHash
	}
	a.sem <- struct{}{}
	err = bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-a.sem
	if err != nil || !known {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= authCacheMax {
		clear(a.verified)
	}
	a.verified[key] = a.now().Add(authCacheTTL)
	a.mu.Unlock()
	return true
}
