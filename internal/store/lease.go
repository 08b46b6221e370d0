package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// dbNow is the database's clock in Unix milliseconds. Lease times are the
// database's, so the replicas' clocks never decide who leads.
const dbNow = `(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT`

// SessionName is the PostgreSQL application_name of every session of the
// replica holder (its pool's and its leader connection): a new leader that
// takes over from a paused or cut-off one ends exactly that replica's
// sessions. PostgreSQL keeps 63 bytes of it.
func SessionName(holder string) string {
	n := "nsguard " + holder
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// LeaderSession is one replica's dedicated connection for the leadership:
// the session-scoped advisory lock (0x6e736775, 3) held on it says who
// leads, and the leader_lease row beside it carries the epoch that fences
// the leader's writes (see Fenced). Losing the connection loses the lock,
// so a replica that cannot reach the database cannot stay leader. A
// LeaderSession is used by one goroutine at a time.
type LeaderSession struct {
	p       *Postgres
	conn    *pgx.Conn
	pid     uint32
	timeout time.Duration
}

// LeaderSession opens a dedicated connection (not from the pool) named
// SessionName(holder). Statements on it wait at most timeout for a lock.
func (p *Postgres) LeaderSession(ctx context.Context, holder string, timeout time.Duration) (*LeaderSession, error) {
	cc := p.cc.Copy()
	cc.RuntimeParams["application_name"] = SessionName(holder)
	cc.RuntimeParams["lock_timeout"] = fmt.Sprint(max(timeout, time.Millisecond).Milliseconds())
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, p.redact(fmt.Errorf("store: leader connection to %s: %w", p.desc, mapErr(err)))
	}
	return &LeaderSession{p: p, conn: conn, pid: conn.PgConn().PID(), timeout: timeout}, nil
}

func (p *Postgres) redact(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, secrets: p.secrets}
}

// PID is the session's backend process ID.
func (s *LeaderSession) PID() uint32 { return s.pid }

// Close ends the session, which releases the advisory lock if it holds it.
func (s *LeaderSession) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.conn.Close(ctx)
}

// lease reads the row with the database's clock ("", 0 when nobody ever led).
func (s *LeaderSession) lease(ctx context.Context) (LeaderLease, error) {
	var now int64
	l, err := scanLease(s.conn.QueryRow(ctx, `SELECT `+leaseCols+`, `+dbNow+` FROM leader_lease WHERE id = 1`), &now)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.conn.QueryRow(ctx, `SELECT `+dbNow).Scan(&now)
		l = LeaderLease{}
	}
	l.Now = fromMS64(now)
	return l, s.p.redact(mapErr(err))
}

// TryLead takes the leadership for holder if nobody holds it: the advisory
// lock, then the lease row with its epoch bumped, valid for lease. It
// reports false (with the lease as it stands) when another replica leads.
//
// A replica whose session still holds the lock while its lease has lapsed
// is paused (SIGSTOP, a frozen VM) or cut off mid-way: TryLead ends that
// replica's sessions (pg_terminate_backend of every session named
// SessionName(its holder); after one more lease, whichever session holds
// the lock), so the lock frees and the next try takes it. Before the bump
// the previous holder's sessions are ended too: a transaction it still has
// open cannot hold the lease row (FOR SHARE) against the new epoch, and
// whatever it tries after is refused by the fence.
func (s *LeaderSession) TryLead(ctx context.Context, holder string, lease time.Duration) (LeaderLease, bool, error) {
	if holder == "" || lease <= 0 {
		return LeaderLease{}, false, errors.New("store: try lead: need a holder and a lease")
	}
	got, err := s.tryLock(ctx)
	if err != nil {
		return LeaderLease{}, false, err
	}
	if !got {
		cur, err := s.lease(ctx)
		if err != nil {
			return cur, false, err
		}
		if cur.Holder == "" || !cur.Expired(time.Time{}) {
			return cur, false, nil
		}
		// The lock is held but the lease has lapsed.
		lapsed := cur.Now.Sub(cur.ExpiresAt)
		n, err := s.terminate(ctx, cur.Holder, lapsed > lease)
		if err != nil {
			return cur, false, err
		}
		if n == 0 {
			return cur, false, nil
		}
		s.p.logger.Warn("the leader's lease lapsed while its session still held the lock (paused or cut off): ended its sessions",
			"holder", cur.Holder, "epoch", cur.Epoch, "lapsed", lapsed.Round(time.Millisecond).String(), "sessions", n)
		// A terminated backend lets go of its locks as it exits.
		for deadline := time.Now().Add(2 * time.Second); !got && time.Now().Before(deadline); {
			select {
			case <-ctx.Done():
				return cur, false, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if got, err = s.tryLock(ctx); err != nil {
				return cur, false, err
			}
		}
		if !got {
			return cur, false, nil
		}
	}
	// This session holds the lock: no other can lead. Fence the previous
	// holder out, then bump the epoch.
	prev, err := s.lease(ctx)
	if err == nil && prev.Holder != "" && prev.Holder != holder {
		_, err = s.terminate(ctx, prev.Holder, false)
	}
	var l LeaderLease
	if err == nil {
		l, err = scanLease(s.conn.QueryRow(ctx, `INSERT INTO leader_lease (id, holder, epoch, acquired_at, renewed_at, expires_at)
			VALUES (1, $1, 1, `+dbNow+`, `+dbNow+`, `+dbNow+` + $2)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, epoch = leader_lease.epoch + 1,
				acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
			RETURNING `+leaseCols, holder, lease.Milliseconds()))
	}
	if err != nil {
		// Let go, so another replica (or the next try) can lead.
		s.unlock(context.WithoutCancel(ctx))
		return prev, false, s.p.redact(fmt.Errorf("store: taking the leadership: %w", mapErr(err)))
	}
	return l, true, nil
}

func (s *LeaderSession) tryLock(ctx context.Context) (bool, error) {
	var got bool
	if err := s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, advisoryClass, advisoryLeader).Scan(&got); err != nil {
		return false, s.p.redact(fmt.Errorf("store: trying for the leadership: %w", mapErr(err)))
	}
	return got, nil
}

func (s *LeaderSession) unlock(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, _ = s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, advisoryClass, advisoryLeader)
}

// terminate ends holder's sessions in this database, and with lockHolder
// also whichever session holds the leadership lock (one that took the lock
// and stopped before writing its lease). It returns how many it ended.
func (s *LeaderSession) terminate(ctx context.Context, holder string, lockHolder bool) (int, error) {
	q := `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1) t`
	args := []any{SessionName(holder)}
	if lockHolder {
		q = `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND (application_name = $1 OR pid IN (
				SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				  AND classid::bigint = $2 AND objid::bigint = $3 AND objsubid = 2))) t`
		args = append(args, advisoryClass, advisoryLeader)
	}
	var n int
	if err := s.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, s.p.redact(fmt.Errorf("store: ending the sessions of %s: %w", holder, mapErr(err)))
	}
	return n, nil
}

// Watch blocks until ctx ends (nil) or the session's connection is lost —
// the server ended it, restarted, or the network reset it — and returns
// why. The leader waits on it between renewals: a lost connection has
// taken the lock with it, so the leader must step down at once rather
// than at its next renewal. (A network that drops packets silently is
// seen only by the next renewal, which times out.)
func (s *LeaderSession) Watch(ctx context.Context) error {
	for {
		// Nothing is LISTENed for: this only returns when ctx ends (the
		// read's deadline, which leaves the connection usable) or the
		// connection fails.
		_, err := s.conn.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return s.p.redact(fmt.Errorf("store: the leader's connection to %s: %w", s.p.desc, mapErr(err)))
		}
	}
}

// Renew extends holder's lease at epoch by lease from now (the database's
// clock). ErrFenced when the row names another holder or epoch: someone
// took over.
func (s *LeaderSession) Renew(ctx context.Context, holder string, epoch int64, lease time.Duration) (LeaderLease, error) {
	l, err := scanLease(s.conn.QueryRow(ctx, `UPDATE leader_lease SET renewed_at = `+dbNow+`, expires_at = `+dbNow+` + $3
		WHERE id = 1 AND holder = $1 AND epoch = $2 RETURNING `+leaseCols, holder, epoch, lease.Milliseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, _ := s.lease(ctx)
		return cur, fmt.Errorf("store: renewing the lease of %s at epoch %d: %w (held by %s at epoch %d)", holder, epoch, ErrFenced, orNobody(cur.Holder), cur.Epoch)
	}
	if err != nil {
		return l, s.p.redact(fmt.Errorf("store: renewing the lease: %w", mapErr(err)))
	}
	return l, nil
}

// Resign ends holder's lease at epoch now and releases the lock, so
// another replica takes over at its next try rather than after the lease.
func (s *LeaderSession) Resign(ctx context.Context, holder string, epoch int64) error {
	_, err := s.conn.Exec(ctx, `UPDATE leader_lease SET expires_at = `+dbNow+` WHERE id = 1 AND holder = $1 AND epoch = $2`, holder, epoch)
	s.unlock(ctx)
	return s.p.redact(mapErr(err))
}

func orNobody(s string) string {
	if strings.TrimSpace(s) == "" {
		return "nobody"
	}
	return s
}

// Sessions returns the application names of the sessions connected to
// this database now: a replica killed outright drops out at once (its
// connections close with it), long before its heartbeat ages.
func (p *Postgres) Sessions(ctx context.Context) ([]string, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT DISTINCT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND application_name <> '' ORDER BY 1`)
	if err != nil {
		return nil, wrap("sessions", err)
	}
	return collect(rows, "sessions", func(sc interface{ Scan(...any) error }) (string, error) {
		var s string
		return s, sc.Scan(&s)
	})
}
