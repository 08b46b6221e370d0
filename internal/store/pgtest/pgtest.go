// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// server binaries, a cluster initialised into a temporary directory as an
// unprivileged user, listening on 127.0.0.1 on a free port, tuned for speed
// over durability. One server serves a whole test binary (started on first
// use, stopped by Main); each test gets a database of its own.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.Database(t) // postgres://nsguard:…@127.0.0.1:PORT/t_1?sslmode=disable
//	}
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names a directory holding initdb and postgres, for machines
// without Debian's layout (/usr/lib/postgresql/VERSION/bin).
const BinEnv = "NSGUARD_PGTEST_BIN"

// InstallHint is how to get the server binaries on Debian or Ubuntu.
const InstallHint = "apt-get install postgresql (scripts/deps.sh installs it), or set " + BinEnv + " to a directory holding initdb and postgres"

// superuser is the cluster's superuser; its password is random per server.
const superuser = "nsguard"

// Server is one running PostgreSQL cluster.
type Server struct {
	// Version is the server's major version ("15").
	Version string
	// Started is how long initdb and the server's start took.
	Started time.Duration

	bin      string
	dir      string
	data     string
	cred     *syscall.Credential
	port     int
	password string
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *bytes.Buffer
	logMu    *sync.Mutex
	seq      atomic.Int64

	tmplMu sync.Mutex
	tmpls  map[string]*template
}

type template struct {
	once sync.Once
	err  error
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
	mainUsed  bool
)

// Main runs the package's tests, then stops the shared server (if a test
// started one) and removes its files. Call it from TestMain.
func Main(m *testing.M) {
	sharedMu.Lock()
	mainUsed = true
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
		shared = nil
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Shared returns the test binary's server, starting it on first use. It
// fails tb when PostgreSQL is not installed (tests never skip for a missing
// dependency) or when the package's TestMain does not call Main (the
// server would outlive the tests).
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !mainUsed {
		tb.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops the server after the tests")
	}
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(context.Background())
		if sharedErr == nil {
			tb.Logf("pgtest: PostgreSQL %s started in %s", shared.Version, shared.Started.Round(time.Millisecond))
		}
	}
	if sharedErr != nil {
		tb.Fatalf("pgtest: %v", sharedErr)
	}
	return shared
}

// Database creates an empty database on the shared server for tb and
// returns its URL; the database is dropped when tb ends.
func Database(tb testing.TB) string {
	tb.Helper()
	return Shared(tb).Database(tb)
}

// DatabaseFrom is Database, the new database a copy of template, which
// prepare fills once per test binary (its URL is the template's). Copying
// a prepared database is faster than preparing each one.
func DatabaseFrom(tb testing.TB, template string, prepare func(ctx context.Context, url string) error) string {
	tb.Helper()
	return Shared(tb).DatabaseFrom(tb, template, prepare)
}

// FindBin returns the directory of the newest PostgreSQL server binaries:
// $NSGUARD_PGTEST_BIN, else /usr/lib/postgresql/*/bin (Debian, Ubuntu).
func FindBin() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			return "", fmt.Errorf("%s=%s holds no postgres binary: %w", BinEnv, d, err)
		}
		return d, nil
	}
	return newestBin("/usr/lib/postgresql")
}

// newestBin returns root/VERSION/bin of the highest VERSION holding both
// postgres and initdb.
func newestBin(root string) (string, error) {
	found, _ := filepath.Glob(filepath.Join(root, "*", "bin", "postgres"))
	type cand struct {
		dir string
		ver []int
	}
	var cs []cand
	for _, f := range found {
		dir := filepath.Dir(f)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		var ver []int
		for _, part := range strings.Split(filepath.Base(filepath.Dir(dir)), ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				break
			}
			ver = append(ver, n)
		}
		cs = append(cs, cand{dir, ver})
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("no PostgreSQL server binaries under %s/*/bin: install them with: %s", root, InstallHint)
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i].ver, cs[j].ver
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
	return cs[0].dir, nil
}

// runAs is who runs the server: initdb and postgres refuse root, so as root
// they run as the "postgres" system user (the Debian package creates it)
// or else "nobody"; as anyone else, as themselves.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, and neither the postgres nor the nobody user exists to run the server as")
}

// Start initialises a new cluster in a temporary directory and starts it.
// Stop it with Stop.
func Start(ctx context.Context) (*Server, error) {
	begin := time.Now()
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nsguard-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, tmpls: map[string]*template{},
		Version: filepath.Base(filepath.Dir(bin))}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("giving %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	s.password = hex.EncodeToString(pw)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	// Password authentication on, so tests exercise URLs with a password
	// as production has them; --no-sync: a test cluster need not survive
	// a power cut.
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--pwfile", pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)

	s.data, s.cred = data, cred
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		err = s.start(ctx, cred, data, port)
		if err == nil {
			break
		}
		// Another process may take the free port between our probe and
		// the server's bind: try another.
		if attempt < 3 && strings.Contains(s.logText(), "could not bind") {
			continue
		}
		return nil, err
	}
	s.Started = time.Since(begin)
	ok = true
	return s, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *Server) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

func (s *Server) start(ctx context.Context, cred *syscall.Credential, data string, port int) error {
	s.port = port
	s.logMu.Lock()
	s.log.Reset()
	s.logMu.Unlock()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		// Speed over durability: the cluster is thrown away.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "wal_level=minimal",
		"-c", "max_wal_senders=0",
		"-c", "checkpoint_timeout=1h",
		"-c", "max_wal_size=1GB",
		"-c", "autovacuum=off",
		"-c", "shared_buffers=64MB",
		"-c", "max_connections=300",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic",
	)
	cmd.Dir = s.dir
	cmd.Stdout = lockedWriter{s.logMu, s.log}
	cmd.Stderr = lockedWriter{s.logMu, s.log}
	// Pdeathsig: if the test binary dies (a timeout panic, a kill), the
	// postmaster goes with it, and its backends notice and exit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited at start:\n%s", s.logText())
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("postgres did not accept connections on 127.0.0.1:%d within a minute: %v\n%s", port, err, s.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// Stop shuts the server down (fast shutdown: sessions are ended) and
// removes its files.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.kill()
		}
	}
	return os.RemoveAll(s.dir)
}

// Restart stops the server (a fast shutdown: every session ends, as when
// a database restarts under its clients), waits down, and starts it again
// on the same port and data, as a fault test's database restart. Only a
// test's own server should be restarted (Start), not the shared one.
func (s *Server) Restart(ctx context.Context, down time.Duration) error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.kill()
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		// The old postmaster's socket may linger a moment.
		if err = s.start(ctx, s.cred, s.data, s.port); err == nil || !strings.Contains(s.logText(), "could not bind") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// PID is the postmaster's process ID (its backends are in its process
// group): a benchmark reads the server's CPU time from it.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Port is the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Password is the superuser's password (tests check it never leaks).
func (s *Server) Password() string { return s.password }

func (s *Server) url(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(superuser, s.password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// URL is the URL of database db on the server, with the superuser's
// password.
func (s *Server) URL(db string) string { return s.url(db) }

// Admin runs fn on a connection to the server's maintenance database.
func (s *Server) Admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// Database creates an empty database for tb and returns its URL.
func (s *Server) Database(tb testing.TB) string {
	tb.Helper()
	return s.create(tb, "template1")
}

// DatabaseFrom creates a copy of template (prepared once by prepare) for tb
// and returns its URL.
func (s *Server) DatabaseFrom(tb testing.TB, name string, prepare func(ctx context.Context, url string) error) string {
	tb.Helper()
	s.tmplMu.Lock()
	t, ok := s.tmpls[name]
	if !ok {
		t = &template{}
		s.tmpls[name] = t
	}
	s.tmplMu.Unlock()
	t.once.Do(func() {
		ctx := context.Background()
		t.err = s.Admin(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
			return err
		})
		if t.err == nil {
			t.err = prepare(ctx, s.url(name))
		}
	})
	if t.err != nil {
		tb.Fatalf("pgtest: preparing template %s: %v", name, t.err)
	}
	return s.create(tb, name)
}

func (s *Server) create(tb testing.TB, template string) string {
	tb.Helper()
	ctx := context.Background()
	name := "t_" + strconv.FormatInt(s.seq.Add(1), 10)
	err := s.Admin(ctx, func(c *pgx.Conn) error {
		var err error
		// A template's last session may still be closing (a store just
		// closed its pool): PostgreSQL refuses to copy a database in use,
		// so wait a moment for it.
		for range 100 {
			_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
			if err == nil || !strings.Contains(err.Error(), "being accessed by other users") {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		_ = s.Admin(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			return err
		})
	})
	return s.url(name)
}
