package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/notify"
)

// Advisory lock keys, in PostgreSQL's two-int4 form (class, object): the
// class is "nsgu" in ASCII, so nsguard's locks are told apart from any
// other application's sharing the database. Advisory locks are per
// database, so two installs in two databases never contend.
const (
	advisoryClass = 0x6e736775
	// advisoryMigrate is held (transaction-scoped) while migrations are
	// applied: replicas starting together migrate one at a time.
	advisoryMigrate = 1
	// advisoryWriter is held (transaction-scoped) by every writer
	// transaction: the PostgreSQL counterpart of SQLite's BEGIN IMMEDIATE.
	advisoryWriter = 2
	// advisoryLeader is held (session-scoped) by the leader's dedicated
	// connection: at most one replica leads (see LeaderSession).
	advisoryLeader = 3
)

// migrateLockTimeout bounds how long a replica waits for another one's
// migration before giving up with a clear error.
const migrateLockTimeout = 5 * time.Minute

// Postgres is the Store backed by a PostgreSQL database, through pgx's
// database/sql driver, so it runs the very queries the SQLite backend
// runs.
//
// Transactions: every writer transaction (InTx, and the read-then-write
// methods such as PutObservation and ApproveBaseline) runs at READ
// COMMITTED and first takes one transaction-scoped advisory lock, so
// writer transactions run one at a time across every process sharing the
// database, exactly as on SQLite, where BEGIN IMMEDIATE does the same.
// Each statement then reads everything committed before the transaction
// got the lock, so a read-then-write (the incident engine reading a
// domain's open incidents and finding states, then writing them) can
// neither lose an update nor open a second incident for one problem, and
// no transaction ever fails with a serialization error: fn runs exactly
// once. ClaimDue does not take that lock: it claims with row locks
// (FOR UPDATE SKIP LOCKED), so senders claim in parallel and never block
// each other. Reads outside a transaction take no lock.
type Postgres struct {
	queries
	db     *sql.DB
	desc   string // the URL without its password
	logger *slog.Logger
	// cc is the parsed URL, for the leader's dedicated connection.
	cc      *pgx.ConnConfig
	secrets []string
	// suspect counts the sessions the server ended (FATAL); checked holds,
	// per connection, the count when it was last pinged (shouldPing).
	suspect atomic.Int64
	checkMu sync.Mutex
	checked map[*pgx.Conn]int64
}

// shouldPing says whether a pooled connection is pinged before use: after
// a second idle (pgx's own rule), and whenever the server ended some
// session since this one was last checked.
func (p *Postgres) shouldPing(_ context.Context, sp stdlib.ShouldPingParams) bool {
	n := p.suspect.Load()
	p.checkMu.Lock()
	if p.checked == nil || len(p.checked) > 1000 {
		// Connections are replaced (ConnMaxLifetime); forget the old ones
		// now and then: each is at most pinged once more.
		p.checked = map[*pgx.Conn]int64{}
	}
	last, seen := p.checked[sp.Conn]
	p.checked[sp.Conn] = n
	p.checkMu.Unlock()
	return (seen && last != n) || sp.IdleDuration > time.Second
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the PostgreSQL database at rawURL
// (postgres://user:password@host:port/database?sslmode=...) and applies
// any pending migrations, one process at a time. Errors never contain the
// URL's password.
func OpenPostgres(ctx context.Context, rawURL string, opts Options) (*Postgres, error) {
	secrets := urlSecrets(rawURL)
	desc := redactURL(rawURL)
	fail := func(format string, args ...any) error {
		return &redactedError{err: fmt.Errorf(format, args...), secrets: secrets}
	}
	if err := config.CheckPostgresURL(rawURL); err != nil {
		return nil, fail("store: %w", err)
	}
	cc, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fail("store: %s: %w", desc, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	switch {
	case opts.ApplicationName != "":
		// A replica's sessions carry its name: a new leader taking over
		// from a paused one ends exactly that one's sessions.
		cc.RuntimeParams["application_name"] = opts.ApplicationName
	case cc.RuntimeParams["application_name"] == "":
		cc.RuntimeParams["application_name"] = "nsguard"
	}
	// A writer waits for another at most BusyTimeout (SQLite's
	// busy_timeout), then fails with ErrBusy instead of hanging.
	cc.RuntimeParams["lock_timeout"] = strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	p := &Postgres{desc: desc, logger: opts.Logger.With("component", "store"), secrets: secrets}
	// A database restart (or a failover) ends every session: each idle
	// pooled connection then holds the server's FATAL, and would fail its
	// next statement once, one after the other — the daemon's health
	// flapping down and up per connection. The first FATAL marks the pool
	// suspect; every connection checked out after that is pinged first,
	// and a dead one is dropped for a new one before any statement fails.
	onErr := cc.OnPgError
	cc.OnPgError = func(pc *pgconn.PgConn, pe *pgconn.PgError) bool {
		if strings.EqualFold(pe.Severity, "FATAL") {
			p.suspect.Add(1)
		}
		if onErr != nil {
			return onErr(pc, pe)
		}
		return !strings.EqualFold(pe.Severity, "FATAL")
	}
	db := stdlib.OpenDB(*cc, stdlib.OptionShouldPing(p.shouldPing))
	db.SetMaxOpenConns(opts.MaxConns)
	// Keep the connections: each one holds its prepared statements.
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Reconnect now and then, so a pool follows a database failover.
	db.SetConnMaxLifetime(30 * time.Minute)

	p.db, p.cc = db, cc.Copy()
	p.queries = queries{w: db, r: db, s: p, claimLock: "FOR UPDATE OF o SKIP LOCKED", rowLock: "FOR UPDATE"}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail("store: connecting to %s: %w", desc, err)
	}
	if err := p.migrate(ctx); err != nil {
		db.Close()
		return nil, fail("%w", err)
	}
	return p, nil
}

// String is the database's URL without its password.
func (p *Postgres) String() string { return p.desc }

// Close closes the connection pool.
func (p *Postgres) Close() error { return p.db.Close() }

// InTx runs fn in one writer transaction (see Postgres).
func (p *Postgres) InTx(ctx context.Context, fn func(Queries) error) error {
	return p.inTx(ctx, func(q *queries) error { return fn(q) })
}

func (p *Postgres) inTx(ctx context.Context, fn func(*queries) error) error {
	return p.tx(ctx, true, fn)
}

func (p *Postgres) claimTx(ctx context.Context, fn func(*queries) error) error {
	return p.tx(ctx, false, fn)
}

func (p *Postgres) tx(ctx context.Context, writer bool, fn func(*queries) error) (err error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	defer func() {
		if r := recover(); r != nil {
			_ = tx.Rollback()
			panic(r)
		}
		if err != nil {
			_ = tx.Rollback()
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			err = fmt.Errorf("store: commit: %w", mapErr(cerr))
		}
	}()
	if writer {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, advisoryClass, advisoryWriter); err != nil {
			return fmt.Errorf("store: waiting for the other writers: %w", mapErr(err))
		}
	}
	return fn(&queries{w: tx, r: tx, s: p, inTx: true, claimLock: p.claimLock, rowLock: p.rowLock})
}

// migrate applies pending migrations in one transaction under an advisory
// lock: replicas starting together apply them once, the others wait and
// find them applied; a failure leaves the previous schema intact
// (PostgreSQL's DDL is transactional).
func (p *Postgres) migrate(ctx context.Context) error {
	ms, err := loadMigrations("postgres")
	if err != nil {
		return err
	}
	return p.tx(ctx, false, func(q *queries) error {
		tx := q.w
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = `+strconv.FormatInt(migrateLockTimeout.Milliseconds(), 10)); err != nil {
			return fmt.Errorf("store: %s: %w", p.desc, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, advisoryClass, advisoryMigrate); err != nil {
			return fmt.Errorf("store: %s: waiting for another nsguard's migration: %w", p.desc, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("store: %s: create schema_migrations: %w", p.desc, mapErr(err))
		}
		var cur int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("store: %s: read schema version: %w", p.desc, mapErr(err))
		}
		if cur > len(ms) {
			return fmt.Errorf("store: %s has schema version %d but this nsguard knows only %d: upgrade nsguard, or point the store at another database", p.desc, cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("store: %s: migration %s: %w", p.desc, m.name, mapErr(err))
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("store: %s: record migration %s: %w", p.desc, m.name, mapErr(err))
			}
			p.logger.Info("applied migration", "version", m.version, "name", m.name, "database", p.desc)
		}
		return nil
	})
}

// SchemaVersion is the highest migration applied to the database.
func (p *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := p.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err)
}

// redactURL returns rawURL with its password replaced, for messages; a
// string that does not parse as a URL is not repeated at all.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "the PostgreSQL URL"
	}
	return u.Redacted()
}

// urlSecrets lists the forms in which rawURL's password could appear in a
// message: the URL itself, and the password raw and escaped.
func urlSecrets(rawURL string) []string {
	out := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return out
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	return out
}

// redactedError is err with every secret removed from its text; errors.Is
// and errors.As still see the sentinels and driver errors inside.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	// The whole URL first (its password may be shorter than Redact's
	// minimum), then the password alone.
	if len(e.secrets) > 0 && e.secrets[0] != "" {
		msg = strings.ReplaceAll(msg, e.secrets[0], redactURL(e.secrets[0]))
	}
	return notify.Redact(msg, e.secrets[min(1, len(e.secrets)):]...)
}

func (e *redactedError) Unwrap() error { return e.err }
