package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Options tune a store; the zero value is right for the daemon.
type Options struct {
	Logger *slog.Logger
	// BusyTimeout is how long a write waits for another writer (a CLI
	// command beside the daemon, another replica) to finish before it
	// fails with ErrBusy. Default 10s.
	BusyTimeout time.Duration
	// ReadConns bounds concurrent readers of a SQLite file. Default 4.
	ReadConns int
	// MaxConns bounds a PostgreSQL store's connections. Default 8.
	MaxConns int
	// ApplicationName names a PostgreSQL store's sessions (default
	// "nsguard"); a cluster replica uses SessionName(holder).
	ApplicationName string
}

// SQLite is the Store backed by one SQLite file.
//
// It holds two pools: a single writer connection, so writers queue in Go
// instead of spinning on SQLITE_BUSY inside the process, and a few
// read-only connections, which WAL lets run beside the writer. Write
// transactions begin IMMEDIATE, so a transaction never fails half-way when
// it upgrades from reading to writing while another process writes.
type SQLite struct {
	queries
	path   string
	w      *sql.DB
	r      *sql.DB
	wc, rc *stmtCache
	logger *slog.Logger
}

var _ Store = (*SQLite)(nil)

// Open opens (creating if needed) the SQLite store at path and applies any
// pending migrations. The directory must exist.
func Open(ctx context.Context, path string, opts Options) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty path (set store.path)")
	}
	// modernc splits the DSN at the first '?', so such a path cannot be
	// opened faithfully; refuse it rather than open some other file.
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: path %q must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("store: directory of %s: %w", path, err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("store: %s is not a directory", dir)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	wq := url.Values{}
	wq.Add("_pragma", "busy_timeout("+busy+")")
	wq.Add("_pragma", "journal_mode(WAL)")
	// NORMAL is durable across application crashes in WAL mode; only a
	// power loss can drop the last commits, which the outbox tolerates
	// (at-least-once, re-sent from the last durable state).
	wq.Add("_pragma", "synchronous(NORMAL)")
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &SQLite{path: path, w: w, logger: opts.Logger.With("component", "store")}
	// Two processes opening a new file at once (a CLI command started with
	// the daemon) race to switch it to WAL and migrate it; SQLite answers the
	// loser SQLITE_BUSY without waiting. Try again within the busy timeout.
	err = retryBusy(ctx, opts.BusyTimeout, func() error {
		if err := w.PingContext(ctx); err != nil {
			return fmt.Errorf("store: open %s: %w", path, err)
		}
		return s.migrate(ctx)
	})
	if err != nil {
		w.Close()
		switch Classify(err) {
		case FaultCorrupt:
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		case FaultReadOnly:
			return nil, fmt.Errorf("%w (nsguard must write %s and its -wal and -shm files beside it: is the volume read-only, or the directory not writable by this user?)", err, path)
		case FaultFull:
			return nil, fmt.Errorf("%w (the file system of %s is full)", err, path)
		}
		return nil, err
	}

	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout("+busy+")")
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	s.r = r
	s.wc, s.rc = newStmtCache(w), newStmtCache(r)
	s.queries = queries{w: cachedDB{s.wc}, r: cachedDB{s.rc}, s: s}
	return s, nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Close closes both pools.
func (s *SQLite) Close() error {
	var errs []error
	if s.r != nil {
		s.rc.close()
		s.wc.close()
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// InTx runs fn in one IMMEDIATE transaction on the writer connection.
func (s *SQLite) InTx(ctx context.Context, fn func(Queries) error) error {
	return s.inTx(ctx, func(q *queries) error { return fn(q) })
}

// claimTx is inTx: SQLite has one writer at a time anyway.
func (s *SQLite) claimTx(ctx context.Context, fn func(*queries) error) error {
	return s.inTx(ctx, fn)
}

func (s *SQLite) inTx(ctx context.Context, fn func(*queries) error) error {
	var missed []string
	err := s.rawTx(ctx, func(tx *sql.Tx) error {
		c := cachedTx{tx: tx, c: s.wc, missed: &missed}
		return fn(&queries{w: c, r: c, s: s, inTx: true})
	})
	if len(missed) > 0 {
		s.wc.warm(context.WithoutCancel(ctx), missed)
	}
	return err
}

// rawTx runs fn in an IMMEDIATE transaction without the statement cache
// (migrations hold several statements in one string).
func (s *SQLite) rawTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			err = fmt.Errorf("store: commit: %w", mapErr(cerr))
		}
	}()
	return fn(tx)
}

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads one backend's migrations ("sqlite", "postgres"):
// the same numbers and names in both directories, each file the same
// schema in the backend's spelling.
func loadMigrations(backend string) ([]migration, error) {
	dir := "migrations/" + backend
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %s: want NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(dir + "/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations must be numbered 1..n without gaps; %s is out of place", m.name)
		}
	}
	return out, nil
}

// LatestSchema is the schema version this build knows.
func LatestSchema() int {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies pending migrations in one transaction, so two processes
// opening a new file at once cannot both apply them, and a failure leaves
// the previous schema intact.
func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	return s.rawTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("store: %s: create schema_migrations: %w", s.path, mapErr(err))
		}
		var cur int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("store: %s: read schema version: %w", s.path, mapErr(err))
		}
		if cur > len(ms) {
			return fmt.Errorf("store: %s has schema version %d but this nsguard knows only %d: upgrade nsguard, or point store.path at another file", s.path, cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("store: %s: migration %s: %w", s.path, m.name, mapErr(err))
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("store: %s: record migration %s: %w", s.path, m.name, mapErr(err))
			}
			s.logger.Info("applied migration", "version", m.version, "name", m.name)
		}
		return nil
	})
}

// SchemaVersion is the highest migration applied to the file.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err)
}

// retryBusy runs fn again while it fails with SQLITE_BUSY or SQLITE_LOCKED
// (ErrBusy), for up to d.
func retryBusy(ctx context.Context, d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errors.Is(mapErr(err), ErrBusy) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
