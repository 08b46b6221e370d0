package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// dbtx is what *sql.DB and *sql.Tx share.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements Queries on the writer (w) and reader (r) handles; in a
// transaction both are the transaction. Both backends run this same code
// through database/sql: the SQL is written to mean the same on SQLite and
// PostgreSQL, and the few differences are the fields below.
type queries struct {
	w, r dbtx
	s    txRunner
	inTx bool
	// claimLock ends ClaimDue's select: "" on SQLite (one writer at a
	// time already), "FOR UPDATE OF o SKIP LOCKED" on PostgreSQL, so
	// concurrent senders pass over each other's rows instead of waiting.
	claimLock string
	// rowLock ends a select that reads a row it will then update: "" on
	// SQLite (its one writer at a time), "FOR UPDATE" on PostgreSQL.
	rowLock string
}

// txRunner opens the transactions the queries need outside InTx.
type txRunner interface {
	// inTx runs fn in a writer transaction: serialised with every other
	// writer transaction, like SQLite's BEGIN IMMEDIATE.
	inTx(ctx context.Context, fn func(*queries) error) error
	// claimTx runs fn in a transaction that relies on row locks alone
	// (ClaimDue), so senders claim in parallel where the database can.
	claimTx(ctx context.Context, fn func(*queries) error) error
}

// stmtCache prepares each query once per pool. SQLite spends a third of a
// small transaction parsing SQL; the engine runs the same dozen statements
// for every domain, every cycle.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}} }

func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.stmts[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	// Prepare without the lock: it waits for a pool connection, which a
	// transaction may hold while it looks up the cache.
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.stmts[query]; ok {
		st.Close()
		return old, nil
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = map[string]*sql.Stmt{}
}

// cachedDB runs queries on a pool through the cache.
type cachedDB struct{ c *stmtCache }

func (d cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := d.c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (d cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (d cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.c.prepare(ctx, query)
	if err != nil {
		// *sql.Row cannot be built with an error; the uncached call
		// reports the same preparation error through Scan.
		return d.c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// cachedTx runs queries in a transaction with the writer's statements:
// on the single writer connection Tx.StmtContext reuses them as they are.
// A statement not cached yet cannot be prepared on the pool now (the
// transaction holds its only connection), so it runs uncached and is
// noted for preparing after the transaction.
type cachedTx struct {
	tx     *sql.Tx
	c      *stmtCache
	missed *[]string
}

func (t cachedTx) stmt(query string) *sql.Stmt {
	t.c.mu.Lock()
	st, ok := t.c.stmts[query]
	t.c.mu.Unlock()
	if !ok {
		*t.missed = append(*t.missed, query)
	}
	return st
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// warm prepares queries a transaction ran uncached. Failures are ignored:
// the query then simply runs uncached again.
func (c *stmtCache) warm(ctx context.Context, queries []string) {
	for _, q := range queries {
		_, _ = c.prepare(ctx, q)
	}
}

// atomic runs fn in the current transaction, or in a new one.
func (q *queries) atomic(ctx context.Context, fn func(*queries) error) error {
	if q.inTx {
		return fn(q)
	}
	return q.s.inTx(ctx, fn)
}

// Times are Unix milliseconds; NULL is the zero time.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func fromMS64(v int64) time.Time { return time.UnixMilli(v).UTC() }

// text stores JSON as TEXT rather than BLOB, so the sqlite3 shell and a
// future PostgreSQL backend read it as text.
func text(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

// cleanText makes free text from outside (an HTTP error body, a DNS
// server's answer) storable in a PostgreSQL TEXT column, which refuses NUL
// bytes and invalid UTF-8; both backends store the same string.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	err = mapErr(err)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// ---- observations ---------------------------------------------------------

func hashData(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

func (q *queries) PutObservation(ctx context.Context, o Observation) (bool, error) {
	if o.Domain == "" || o.Class == "" {
		return false, errors.New("store: put observation: domain and class are required")
	}
	h := hashData(o.Data)
	var changed bool
	// Each vantage writes only its own rows, so a put needs no writer
	// transaction: on PostgreSQL a row lock on the vantage's row is
	// enough, and replicas writing their observations never wait for each
	// other nor for the leader's incident transactions (claimTx; on SQLite
	// it is the one writer anyway).
	run := q.atomic
	if !q.inTx {
		run = q.s.claimTx
	}
	err := run(ctx, func(q *queries) error {
		var prev string
		err := q.w.QueryRowContext(ctx, `SELECT hash FROM observations WHERE domain = $1 AND class = $2 AND vantage = $3 `+q.rowLock,
			o.Domain, o.Class, o.Vantage).Scan(&prev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			changed = true
		case err != nil:
			return err
		default:
			changed = prev != h
		}
		at := o.ObservedAt.UnixMilli()
		if _, err := q.w.ExecContext(ctx, `INSERT INTO observations (domain, class, vantage, observed_at, changed_at, hash, data, report)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7)
			ON CONFLICT (domain, class, vantage) DO UPDATE SET observed_at = excluded.observed_at, data = excluded.data, report = excluded.report,
				changed_at = CASE WHEN observations.hash = excluded.hash THEN observations.changed_at ELSE excluded.changed_at END,
				hash = excluded.hash`,
			o.Domain, o.Class, o.Vantage, at, h, text(o.Data), string(o.Report)); err != nil {
			return err
		}
		if changed {
			if _, err := q.w.ExecContext(ctx, `INSERT INTO observation_history (domain, class, vantage, observed_at, hash, data) VALUES ($1, $2, $3, $4, $5, $6)`,
				o.Domain, o.Class, o.Vantage, at, h, text(o.Data)); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, wrap("put observation "+o.Domain+"/"+o.Class, err)
}

const observationCols = `domain, class, vantage, observed_at, changed_at, data, report`

func scanObservation(sc interface{ Scan(...any) error }) (Observation, error) {
	var o Observation
	var obs, chg int64
	var data, report string
	if err := sc.Scan(&o.Domain, &o.Class, &o.Vantage, &obs, &chg, &data, &report); err != nil {
		return o, err
	}
	o.ObservedAt, o.ChangedAt = fromMS64(obs), fromMS64(chg)
	if data != "" {
		o.Data = json.RawMessage(data)
	}
	if report != "" {
		o.Report = json.RawMessage(report)
	}
	return o, nil
}

func (q *queries) LatestObservation(ctx context.Context, domain, class string) (Observation, error) {
	o, err := scanObservation(q.r.QueryRowContext(ctx, `SELECT `+observationCols+` FROM observations WHERE domain = $1 AND class = $2
		ORDER BY observed_at DESC, vantage LIMIT 1`, domain, class))
	return o, wrap("observation "+domain+"/"+class, err)
}

func (q *queries) LatestObservations(ctx context.Context, class string) ([]Observation, error) {
	// The newest row of each domain: with one vantage (a single node) the
	// NOT EXISTS probes the primary key once per row and finds nothing.
	rows, err := q.r.QueryContext(ctx, `SELECT `+observationCols+` FROM observations o WHERE o.class = $1
		AND NOT EXISTS (SELECT 1 FROM observations n WHERE n.domain = o.domain AND n.class = o.class
			AND (n.observed_at > o.observed_at OR (n.observed_at = o.observed_at AND n.vantage < o.vantage)))
		ORDER BY o.domain`, class)
	if err != nil {
		return nil, wrap("observations "+class, err)
	}
	return collect(rows, "observations "+class, scanObservation)
}

func (q *queries) VantageObservations(ctx context.Context, domain, class string, since time.Time) ([]Observation, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT domain, class, vantage, observed_at, changed_at, '', report FROM observations
		WHERE domain = $1 AND class = $2 AND observed_at >= $3 ORDER BY vantage`, domain, class, since.UnixMilli())
	if err != nil {
		return nil, wrap("vantage observations "+domain, err)
	}
	return collect(rows, "vantage observations "+domain, scanObservation)
}

func (q *queries) ObservationHistory(ctx context.Context, domain, class string, limit int) ([]Observation, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT domain, class, vantage, observed_at, observed_at, data, '' FROM observation_history
		WHERE domain = $1 AND class = $2 ORDER BY id DESC LIMIT $3`, domain, class, limitOr(limit, 100))
	if err != nil {
		return nil, wrap("observation history "+domain, err)
	}
	return collect(rows, "observation history "+domain, scanObservation)
}

func (q *queries) PruneVantages(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM observations WHERE vantage <> '' AND vantage IN (
			SELECT vantage FROM observations GROUP BY vantage HAVING MAX(observed_at) < $1)`, before.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = q.w.ExecContext(ctx, `DELETE FROM recheck_requests WHERE due_at < $1`, before.UnixMilli())
		return err
	})
	return n, wrap("prune vantages", err)
}

// ---- cluster coordination ---------------------------------------------------

func (q *queries) RequestRechecks(ctx context.Context, class string, domains []string, at time.Time) error {
	if len(domains) == 0 {
		return nil
	}
	run := q.atomic
	if !q.inTx {
		run = q.s.claimTx // one row each, written by the leader alone
	}
	err := run(ctx, func(q *queries) error {
		for _, d := range domains {
			if _, err := q.w.ExecContext(ctx, `INSERT INTO recheck_requests (domain, class, due_at) VALUES ($1, $2, $3)
				ON CONFLICT (domain, class) DO UPDATE SET due_at = excluded.due_at`, d, class, at.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("request rechecks", err)
}

func (q *queries) Rechecks(ctx context.Context, class string, after time.Time) ([]Recheck, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT domain, class, due_at FROM recheck_requests WHERE class = $1 AND due_at > $2
		ORDER BY due_at, domain`, class, after.UnixMilli())
	if err != nil {
		return nil, wrap("rechecks", err)
	}
	return collect(rows, "rechecks", func(sc interface{ Scan(...any) error }) (Recheck, error) {
		var r Recheck
		var at int64
		err := sc.Scan(&r.Domain, &r.Class, &at)
		r.DueAt = fromMS64(at)
		return r, err
	})
}

func (q *queries) LastObserved(ctx context.Context, class string) (time.Time, error) {
	var at sql.NullInt64
	err := q.r.QueryRowContext(ctx, `SELECT MAX(observed_at) FROM observations WHERE class = $1`, class).Scan(&at)
	return fromMS(at), wrap("last observed "+class, err)
}

const leaseCols = `holder, epoch, acquired_at, renewed_at, expires_at`

func scanLease(sc interface{ Scan(...any) error }, extra ...any) (LeaderLease, error) {
	var l LeaderLease
	var acq, ren, exp int64
	err := sc.Scan(append([]any{&l.Holder, &l.Epoch, &acq, &ren, &exp}, extra...)...)
	l.AcquiredAt, l.RenewedAt, l.ExpiresAt = fromMS64(acq), fromMS64(ren), fromMS64(exp)
	return l, err
}

func (q *queries) LeaderLease(ctx context.Context) (LeaderLease, error) {
	l, err := scanLease(q.r.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM leader_lease WHERE id = 1`))
	return l, wrap("leader lease", err)
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, op string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, v)
	}
	return out, wrap(op, rows.Err())
}

// ---- baselines and changes -------------------------------------------------

func (q *queries) ApproveBaseline(ctx context.Context, b Baseline) (Baseline, error) {
	if b.Domain == "" {
		return b, errors.New("store: approve baseline: empty domain")
	}
	err := q.atomic(ctx, func(q *queries) error {
		if err := q.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM baselines WHERE domain = $1`, b.Domain).Scan(&b.Version); err != nil {
			return err
		}
		_, err := q.w.ExecContext(ctx, `INSERT INTO baselines (domain, version, data, approved_by, approved_at, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
			b.Domain, b.Version, text(b.Data), b.ApprovedBy, b.ApprovedAt.UnixMilli(), b.Reason)
		return err
	})
	return b, wrap("approve baseline "+b.Domain, err)
}

func scanBaseline(sc interface{ Scan(...any) error }) (Baseline, error) {
	var b Baseline
	var at int64
	var data string
	err := sc.Scan(&b.Domain, &b.Version, &data, &b.ApprovedBy, &at, &b.Reason)
	b.ApprovedAt, b.Data = fromMS64(at), json.RawMessage(data)
	return b, err
}

func (q *queries) LatestBaseline(ctx context.Context, domain string) (Baseline, error) {
	b, err := scanBaseline(q.r.QueryRowContext(ctx, `SELECT domain, version, data, approved_by, approved_at, reason FROM baselines
		WHERE domain = $1 ORDER BY version DESC LIMIT 1`, domain))
	return b, wrap("baseline "+domain, err)
}

func (q *queries) LatestBaselines(ctx context.Context) ([]Baseline, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT b.domain, b.version, b.data, b.approved_by, b.approved_at, b.reason FROM baselines b
		JOIN (SELECT domain, MAX(version) AS version FROM baselines GROUP BY domain) m
		ON b.domain = m.domain AND b.version = m.version ORDER BY b.domain`)
	if err != nil {
		return nil, wrap("latest baselines", err)
	}
	return collect(rows, "latest baselines", scanBaseline)
}

func (q *queries) UnconfirmedDomains(ctx context.Context, class string, confirmations int, severities []string) ([]string, error) {
	// Severities are few and fixed: inline them as parameters 3…n.
	args := []any{class, confirmations}
	var marks []string
	for i, sev := range severities {
		args = append(args, sev)
		marks = append(marks, fmt.Sprintf("$%d", i+3))
	}
	if len(marks) == 0 {
		return nil, nil
	}
	rows, err := q.w.QueryContext(ctx, `SELECT DISTINCT domain FROM finding_states
		WHERE class = $1 AND ((streak > 0 AND streak < $2 AND severity IN (`+strings.Join(marks, ", ")+`))
			OR (streak = 0 AND absent > 0 AND absent < $2)) ORDER BY domain`, args...)
	if err != nil {
		return nil, wrap("unconfirmed domains", err)
	}
	return collect(rows, "unconfirmed domains", func(sc interface{ Scan(...any) error }) (string, error) {
		var d string
		return d, sc.Scan(&d)
	})
}

func (q *queries) Baselines(ctx context.Context, domain string) ([]Baseline, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT domain, version, data, approved_by, approved_at, reason FROM baselines
		WHERE domain = $1 ORDER BY version DESC`, domain)
	if err != nil {
		return nil, wrap("baselines "+domain, err)
	}
	return collect(rows, "baselines "+domain, scanBaseline)
}

func (q *queries) AddChange(ctx context.Context, c Change) (int64, error) {
	var id int64
	err := q.w.QueryRowContext(ctx, `INSERT INTO changes (domain, class, detected_at, baseline_version, data) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		c.Domain, c.Class, c.DetectedAt.UnixMilli(), c.BaselineVersion, text(c.Data)).Scan(&id)
	return id, wrap("add change "+c.Domain, err)
}

func (q *queries) Changes(ctx context.Context, domain string, limit int) ([]Change, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT id, domain, class, detected_at, baseline_version, data FROM changes
		WHERE ($1 = '' OR domain = $1) ORDER BY id DESC LIMIT $2`, domain, limitOr(limit, 100))
	if err != nil {
		return nil, wrap("changes", err)
	}
	return collect(rows, "changes", func(sc interface{ Scan(...any) error }) (Change, error) {
		var c Change
		var at int64
		var data string
		err := sc.Scan(&c.ID, &c.Domain, &c.Class, &at, &c.BaselineVersion, &data)
		c.DetectedAt, c.Data = fromMS64(at), json.RawMessage(data)
		return c, err
	})
}

// ---- finding states ---------------------------------------------------------

func (q *queries) FindingStates(ctx context.Context, domain string) ([]FindingState, error) {
	// Read on the writer handle: the engine reads and then updates these in
	// one transaction, and outside one the freshest state is what it wants.
	rows, err := q.w.QueryContext(ctx, `SELECT domain, class, fkey, severity, streak, absent, first_seen, last_seen, data
		FROM finding_states WHERE domain = $1 ORDER BY class, fkey`, domain)
	if err != nil {
		return nil, wrap("finding states "+domain, err)
	}
	return collect(rows, "finding states "+domain, func(sc interface{ Scan(...any) error }) (FindingState, error) {
		var s FindingState
		var first, last int64
		var data string
		err := sc.Scan(&s.Domain, &s.Class, &s.Key, &s.Severity, &s.Streak, &s.Absent, &first, &last, &data)
		s.FirstSeen, s.LastSeen, s.Data = fromMS64(first), fromMS64(last), json.RawMessage(data)
		return s, err
	})
}

func (q *queries) PutFindingState(ctx context.Context, s FindingState) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO finding_states (domain, class, fkey, severity, streak, absent, first_seen, last_seen, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (domain, class, fkey) DO UPDATE SET severity = excluded.severity, streak = excluded.streak, absent = excluded.absent,
			first_seen = excluded.first_seen, last_seen = excluded.last_seen, data = excluded.data`,
		s.Domain, s.Class, s.Key, s.Severity, s.Streak, s.Absent, s.FirstSeen.UnixMilli(), s.LastSeen.UnixMilli(), text(s.Data))
	return wrap("put finding state "+s.Key, err)
}

func (q *queries) DeleteFindingState(ctx context.Context, domain, class, key string) error {
	_, err := q.w.ExecContext(ctx, `DELETE FROM finding_states WHERE domain = $1 AND class = $2 AND fkey = $3`, domain, class, key)
	return wrap("delete finding state "+key, err)
}

// ---- incidents ----------------------------------------------------------------

const incidentCols = `id, domain, status, severity, title, thread_key, channel, opened_at, updated_at, resolved_at, paged_at, last_notified_at, notifications, acked_at, acked_by, ack_reason, data`

func scanIncident(sc interface{ Scan(...any) error }) (Incident, error) {
	var i Incident
	var opened, updated int64
	var resolved, paged, notified, acked sql.NullInt64
	var data string
	err := sc.Scan(&i.ID, &i.Domain, &i.Status, &i.Severity, &i.Title, &i.ThreadKey, &i.Channel, &opened, &updated, &resolved, &paged, &notified,
		&i.Notifications, &acked, &i.AckedBy, &i.AckReason, &data)
	i.OpenedAt, i.UpdatedAt = fromMS64(opened), fromMS64(updated)
	i.ResolvedAt, i.PagedAt, i.LastNotifiedAt, i.AckedAt = fromMS(resolved), fromMS(paged), fromMS(notified), fromMS(acked)
	i.Data = json.RawMessage(data)
	return i, err
}

func (q *queries) CreateIncident(ctx context.Context, i Incident) (int64, error) {
	var id int64
	err := q.w.QueryRowContext(ctx, `INSERT INTO incidents (domain, status, severity, title, thread_key, channel, opened_at, updated_at, resolved_at, paged_at,
			last_notified_at, notifications, acked_at, acked_by, ack_reason, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id`,
		i.Domain, i.Status, i.Severity, i.Title, i.ThreadKey, i.Channel, i.OpenedAt.UnixMilli(), i.UpdatedAt.UnixMilli(),
		ms(i.ResolvedAt), ms(i.PagedAt), ms(i.LastNotifiedAt), i.Notifications, ms(i.AckedAt), i.AckedBy, i.AckReason, text(i.Data)).Scan(&id)
	return id, wrap("create incident for "+i.Domain, err)
}

func (q *queries) UpdateIncident(ctx context.Context, i Incident) error {
	res, err := q.w.ExecContext(ctx, `UPDATE incidents SET status = $2, severity = $3, title = $4, thread_key = $5, channel = $6, updated_at = $7,
		resolved_at = $8, paged_at = $9, last_notified_at = $10, notifications = $11, acked_at = $12, acked_by = $13, ack_reason = $14, data = $15
		WHERE id = $1`,
		i.ID, i.Status, i.Severity, i.Title, i.ThreadKey, i.Channel, i.UpdatedAt.UnixMilli(),
		ms(i.ResolvedAt), ms(i.PagedAt), ms(i.LastNotifiedAt), i.Notifications, ms(i.AckedAt), i.AckedBy, i.AckReason, text(i.Data))
	if err != nil {
		return wrap(fmt.Sprintf("update incident %d", i.ID), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: update incident %d: %w", i.ID, ErrNotFound)
	}
	return nil
}

func (q *queries) Incident(ctx context.Context, id int64) (Incident, error) {
	// On the writer inside a transaction: ack reads, then updates.
	h := q.r
	if q.inTx {
		h = q.w
	}
	i, err := scanIncident(h.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = $1`, id))
	return i, wrap(fmt.Sprintf("incident %d", id), err)
}

func (q *queries) OpenIncidents(ctx context.Context, domain string) ([]Incident, error) {
	// The engine reads these and then updates them in one transaction: read
	// on the writer handle.
	// Two spellings rather than "$1 = '' OR domain = $1", which keeps the
	// planner from using the (domain, id) index: the engine runs this for
	// every domain with findings, every cycle.
	query, args := `SELECT `+incidentCols+` FROM incidents WHERE status = 'open' ORDER BY id`, []any{}
	if domain != "" {
		query, args = `SELECT `+incidentCols+` FROM incidents WHERE domain = $1 AND status = 'open' ORDER BY id`, []any{domain}
	}
	rows, err := q.w.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("open incidents", err)
	}
	return collect(rows, "open incidents", scanIncident)
}

func (q *queries) Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+incidentCols+` FROM incidents
		WHERE ($1 = '' OR domain = $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3`,
		f.Domain, f.Status, limitOr(f.Limit, 1<<30))
	if err != nil {
		return nil, wrap("incidents", err)
	}
	return collect(rows, "incidents", scanIncident)
}

func (q *queries) CountOpenIncidents(ctx context.Context) (int, error) {
	var n int
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents WHERE status = 'open'`).Scan(&n)
	return n, wrap("count open incidents", err)
}

func (q *queries) OpenIncidentCounts(ctx context.Context) ([]IncidentCount, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT severity, CASE WHEN acked_at IS NULL THEN 0 ELSE 1 END AS acked, COUNT(*) FROM incidents
		WHERE status = 'open' GROUP BY severity, CASE WHEN acked_at IS NULL THEN 0 ELSE 1 END ORDER BY severity`)
	if err != nil {
		return nil, wrap("count open incidents", err)
	}
	return collect(rows, "count open incidents", func(sc interface{ Scan(...any) error }) (IncidentCount, error) {
		var c IncidentCount
		var acked int
		err := sc.Scan(&c.Severity, &acked, &c.N)
		c.Acked = acked == 1
		return c, err
	})
}

// ---- outbox --------------------------------------------------------------------

const outboxCols = `id, created_at, kind, channel, thread_key, payload, incident_id, attempts, next_attempt_at, delivered_at, dead_at, last_error,
	claim_owner, claim_until, claim_epoch`

func scanOutbox(sc interface{ Scan(...any) error }) (OutboxMessage, error) {
	var m OutboxMessage
	var created, next int64
	var delivered, dead, until sql.NullInt64
	var payload string
	err := sc.Scan(&m.ID, &created, &m.Kind, &m.Channel, &m.ThreadKey, &payload, &m.IncidentID, &m.Attempts, &next, &delivered, &dead, &m.LastError,
		&m.ClaimOwner, &until, &m.ClaimEpoch)
	m.CreatedAt, m.NextAttemptAt = fromMS64(created), fromMS64(next)
	m.DeliveredAt, m.DeadAt, m.ClaimUntil = fromMS(delivered), fromMS(dead), fromMS(until)
	m.Payload = json.RawMessage(payload)
	return m, err
}

func (q *queries) Enqueue(ctx context.Context, m OutboxMessage) (int64, error) {
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	var id int64
	err := q.w.QueryRowContext(ctx, `INSERT INTO outbox (created_at, kind, channel, thread_key, payload, incident_id, attempts, next_attempt_at, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $7, '') RETURNING id`,
		m.CreatedAt.UnixMilli(), m.Kind, m.Channel, m.ThreadKey, text(m.Payload), m.IncidentID, m.NextAttemptAt.UnixMilli()).Scan(&id)
	return id, wrap("enqueue", err)
}

func (q *queries) ClaimDue(ctx context.Context, c Claim) ([]OutboxMessage, error) {
	if c.Owner == "" || !c.Until.After(c.Now) {
		return nil, errors.New("store: claim due messages: need an owner and a claim that ends after now")
	}
	var out []OutboxMessage
	claim := q.atomic
	if !q.inTx {
		claim = q.s.claimTx
	}
	err := claim(ctx, func(q *queries) error {
		// A message is first in line when no earlier pending message shares
		// its thread key; one in back-off, or claimed by another sender,
		// keeps the rest of its thread waiting, so a reply can never
		// overtake the message that creates the thread.
		rows, err := q.w.QueryContext(ctx, `SELECT `+outboxCols+` FROM outbox o
			WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= $1
			  AND (o.claim_owner = '' OR o.claim_owner = $2 OR o.claim_until <= $1)
			  AND (o.thread_key = '' OR NOT EXISTS (
				SELECT 1 FROM outbox p WHERE p.thread_key = o.thread_key AND p.id < o.id
				  AND p.delivered_at IS NULL AND p.dead_at IS NULL))
			ORDER BY o.id LIMIT $3 `+q.claimLock, c.Now.UnixMilli(), c.Owner, limitOr(c.Limit, 100))
		if err != nil {
			return wrap("due messages", err)
		}
		due, err := collect(rows, "due messages", scanOutbox)
		if err != nil {
			return err
		}
		for _, m := range due {
			// The same condition again, row by row: on a database where
			// readers do not block writers this is what makes the claim
			// exclusive (PostgreSQL's row locks already do; this keeps
			// the rule in one place for both).
			res, err := q.w.ExecContext(ctx, `UPDATE outbox SET claim_owner = $2, claim_until = $3, claim_epoch = $4
				WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL AND (claim_owner = '' OR claim_owner = $2 OR claim_until <= $5)`,
				m.ID, c.Owner, c.Until.UnixMilli(), c.Epoch, c.Now.UnixMilli())
			if err != nil {
				return wrap(fmt.Sprintf("claim outbox message %d", m.ID), err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if m.ClaimOwner != "" && m.ClaimOwner != c.Owner {
					m.TakenOverFrom = m.ClaimOwner
				}
				m.ClaimOwner, m.ClaimUntil, m.ClaimEpoch = c.Owner, c.Until, c.Epoch
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

func (q *queries) OutboxMessage(ctx context.Context, id int64) (OutboxMessage, error) {
	m, err := scanOutbox(q.r.QueryRowContext(ctx, `SELECT `+outboxCols+` FROM outbox WHERE id = $1`, id))
	return m, wrap(fmt.Sprintf("outbox message %d", id), err)
}

func (q *queries) OutboxMessages(ctx context.Context, afterID int64, limit int) ([]OutboxMessage, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+outboxCols+` FROM outbox WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limitOr(limit, 1000))
	if err != nil {
		return nil, wrap("outbox messages", err)
	}
	return collect(rows, "outbox messages", scanOutbox)
}

func (q *queries) LastOutboxID(ctx context.Context) (int64, error) {
	var id int64
	err := q.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM outbox`).Scan(&id)
	return id, wrap("last outbox id", err)
}

func (q *queries) IncidentMessages(ctx context.Context, incidentID int64) ([]OutboxMessage, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+outboxCols+` FROM outbox WHERE incident_id = $1 AND incident_id <> 0 ORDER BY id`, incidentID)
	if err != nil {
		return nil, wrap(fmt.Sprintf("messages of incident %d", incidentID), err)
	}
	return collect(rows, fmt.Sprintf("messages of incident %d", incidentID), scanOutbox)
}

// settle records an attempt's outcome for the claim's owner and releases
// the claim. Zero rows changed means the claim is gone: taken over after
// it lapsed, or the message was settled already.
func (q *queries) settle(ctx context.Context, op string, id int64, owner string, set string, args ...any) error {
	if owner == "" {
		return fmt.Errorf("store: %s %d: no claim owner", op, id)
	}
	res, err := q.w.ExecContext(ctx, `UPDATE outbox SET `+set+`, claim_owner = '', claim_until = NULL
		WHERE id = $1 AND claim_owner = $2 AND delivered_at IS NULL AND dead_at IS NULL`, append([]any{id, owner}, args...)...)
	if err != nil {
		return wrap(fmt.Sprintf("%s %d", op, id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: %s %d: %w", op, id, ErrClaimLost)
	}
	return nil
}

func (q *queries) MarkDelivered(ctx context.Context, id int64, owner string, attempts int, at time.Time) error {
	return q.settle(ctx, "mark delivered", id, owner, `delivered_at = $3, attempts = $4, last_error = ''`, at.UnixMilli(), attempts)
}

func (q *queries) MarkRetry(ctx context.Context, id int64, owner string, attempts int, next time.Time, lastErr string) error {
	return q.settle(ctx, "mark retry", id, owner, `attempts = $3, next_attempt_at = $4, last_error = $5`, attempts, next.UnixMilli(), cleanText(lastErr))
}

func (q *queries) MarkDead(ctx context.Context, id int64, owner string, attempts int, at time.Time, lastErr string) error {
	return q.settle(ctx, "mark dead", id, owner, `attempts = $3, dead_at = $4, last_error = $5`, attempts, at.UnixMilli(), cleanText(lastErr))
}

func (q *queries) Requeue(ctx context.Context, id int64, at time.Time) error {
	res, err := q.w.ExecContext(ctx, `UPDATE outbox SET dead_at = NULL, next_attempt_at = $2, claim_owner = '', claim_until = NULL
		WHERE id = $1 AND dead_at IS NOT NULL`, id, at.UnixMilli())
	if err != nil {
		return wrap(fmt.Sprintf("requeue %d", id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: requeue %d: %w", id, ErrNotFound)
	}
	return nil
}

func (q *queries) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest, next sql.NullInt64
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at), MIN(next_attempt_at) FROM outbox
		WHERE delivered_at IS NULL AND dead_at IS NULL`).Scan(&st.Pending, &oldest, &next)
	if err != nil {
		return st, wrap("outbox stats", err)
	}
	st.OldestPending, st.NextAttempt = fromMS(oldest), fromMS(next)
	err = q.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE dead_at IS NOT NULL`).Scan(&st.Dead)
	return st, wrap("outbox stats", err)
}

// ---- slack threads ---------------------------------------------------------

func (q *queries) SlackThread(ctx context.Context, key string) (SlackThread, error) {
	t := SlackThread{Key: key}
	var at int64
	err := q.w.QueryRowContext(ctx, `SELECT channel, ts, created_at FROM slack_threads WHERE thread_key = $1`, key).Scan(&t.Channel, &t.TS, &at)
	t.CreatedAt = fromMS64(at)
	return t, wrap("slack thread "+key, err)
}

func (q *queries) PutSlackThread(ctx context.Context, t SlackThread) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO slack_threads (thread_key, channel, ts, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (thread_key) DO UPDATE SET channel = excluded.channel, ts = excluded.ts, created_at = excluded.created_at`,
		t.Key, t.Channel, t.TS, t.CreatedAt.UnixMilli())
	return wrap("put slack thread "+t.Key, err)
}

// ---- heartbeats ----------------------------------------------------------

func (q *queries) Heartbeat(ctx context.Context, owner string, at time.Time, info string) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO heartbeats (owner, at, info) VALUES ($1, $2, $3)
		ON CONFLICT (owner) DO UPDATE SET at = excluded.at, info = excluded.info`, owner, at.UnixMilli(), info)
	return wrap("heartbeat", err)
}

func (q *queries) Heartbeats(ctx context.Context) ([]HeartbeatRow, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT owner, at, info FROM heartbeats ORDER BY owner`)
	if err != nil {
		return nil, wrap("heartbeats", err)
	}
	return collect(rows, "heartbeats", func(sc interface{ Scan(...any) error }) (HeartbeatRow, error) {
		var h HeartbeatRow
		var at int64
		err := sc.Scan(&h.Owner, &at, &h.Info)
		h.At = fromMS64(at)
		return h, err
	})
}

// ---- silences ----------------------------------------------------------------

const silenceCols = `id, domain, created_by, reason, created_at, starts_at, ends_at, expired_at`

func scanSilence(sc interface{ Scan(...any) error }) (Silence, error) {
	var s Silence
	var created, starts, ends int64
	var expired sql.NullInt64
	err := sc.Scan(&s.ID, &s.Domain, &s.CreatedBy, &s.Reason, &created, &starts, &ends, &expired)
	s.CreatedAt, s.StartsAt, s.EndsAt, s.ExpiredAt = fromMS64(created), fromMS64(starts), fromMS64(ends), fromMS(expired)
	return s, err
}

func (q *queries) AddSilence(ctx context.Context, s Silence) (int64, error) {
	if s.Domain == "" || strings.TrimSpace(s.Reason) == "" || !s.EndsAt.After(s.StartsAt) {
		return 0, errors.New("store: add silence: need a domain, a reason and an end after the start")
	}
	var id int64
	err := q.w.QueryRowContext(ctx, `INSERT INTO silences (domain, created_by, reason, created_at, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		s.Domain, s.CreatedBy, s.Reason, s.CreatedAt.UnixMilli(), s.StartsAt.UnixMilli(), s.EndsAt.UnixMilli()).Scan(&id)
	return id, wrap("add silence", err)
}

func (q *queries) Silence(ctx context.Context, id int64) (Silence, error) {
	s, err := scanSilence(q.r.QueryRowContext(ctx, `SELECT `+silenceCols+` FROM silences WHERE id = $1`, id))
	return s, wrap(fmt.Sprintf("silence %d", id), err)
}

func (q *queries) Silences(ctx context.Context, f SilenceFilter) ([]Silence, error) {
	// Conditions are added in Go rather than with "$1 IS NULL" tricks,
	// which PostgreSQL cannot type.
	query := `SELECT ` + silenceCols + ` FROM silences WHERE 1 = 1`
	var args []any
	if !f.ActiveAt.IsZero() {
		args = append(args, f.ActiveAt.UnixMilli())
		n := fmt.Sprintf("$%d", len(args))
		query += ` AND expired_at IS NULL AND starts_at <= ` + n + ` AND ends_at > ` + n
	}
	if f.Domain != "" {
		args = append(args, f.Domain)
		query += fmt.Sprintf(` AND (domain = $%d OR domain = '*')`, len(args))
	}
	query += ` ORDER BY id DESC`
	// Inside a transaction read on it (the engine decides pages with this);
	// the reader pool otherwise.
	h := q.r
	if q.inTx {
		h = q.w
	}
	rows, err := h.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("silences", err)
	}
	return collect(rows, "silences", scanSilence)
}

// DomainActive reports whether domain has any finding state or an open
// incident; the engine skips the write transaction for a healthy domain
// that has neither.
func (q *queries) DomainActive(ctx context.Context, domain string) (bool, error) {
	var n int
	err := q.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM finding_states WHERE domain = $1)
		+ (SELECT COUNT(*) FROM incidents WHERE domain = $1 AND status = 'open')`, domain).Scan(&n)
	return n > 0, wrap("domain state "+domain, err)
}

// ErrSilenceEnded is returned by ExpireSilence for a silence already over.
var ErrSilenceEnded = errors.New("silence already ended")

func (q *queries) ExpireSilence(ctx context.Context, id int64, at time.Time) error {
	return q.atomic(ctx, func(q *queries) error {
		s, err := scanSilence(q.w.QueryRowContext(ctx, `SELECT `+silenceCols+` FROM silences WHERE id = $1`, id))
		if err != nil {
			return wrap(fmt.Sprintf("silence %d", id), err)
		}
		if !s.ExpiredAt.IsZero() || !at.Before(s.EndsAt) {
			return fmt.Errorf("store: expire silence %d: %w at %s", id, ErrSilenceEnded, s.End().Format(time.RFC3339))
		}
		_, err = q.w.ExecContext(ctx, `UPDATE silences SET expired_at = $2 WHERE id = $1`, id, at.UnixMilli())
		return wrap(fmt.Sprintf("expire silence %d", id), err)
	})
}

// ---- failover --------------------------------------------------------------

const runCols = `id, playbook, started_by, started_at, finished_at, dry_run, plan, checksum, status, error`

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanRun(sc interface{ Scan(...any) error }) (FailoverRun, error) {
	var r FailoverRun
	var started int64
	var finished sql.NullInt64
	var dry int
	var plan string
	err := sc.Scan(&r.ID, &r.Playbook, &r.StartedBy, &started, &finished, &dry, &plan, &r.Checksum, &r.Status, &r.Error)
	r.StartedAt, r.FinishedAt, r.DryRun, r.Plan = fromMS64(started), fromMS(finished), dry != 0, json.RawMessage(plan)
	return r, err
}

func (q *queries) CreateFailoverRun(ctx context.Context, r FailoverRun) (int64, error) {
	var id int64
	err := q.w.QueryRowContext(ctx, `INSERT INTO failover_runs (playbook, started_by, started_at, finished_at, dry_run, plan, checksum, status, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		r.Playbook, r.StartedBy, r.StartedAt.UnixMilli(), ms(r.FinishedAt), boolInt(r.DryRun), text(r.Plan), r.Checksum, r.Status, cleanText(r.Error)).Scan(&id)
	return id, wrap("create failover run "+r.Playbook, err)
}

func (q *queries) UpdateFailoverRun(ctx context.Context, r FailoverRun) error {
	res, err := q.w.ExecContext(ctx, `UPDATE failover_runs SET finished_at = $2, status = $3, error = $4 WHERE id = $1`,
		r.ID, ms(r.FinishedAt), r.Status, cleanText(r.Error))
	if err != nil {
		return wrap(fmt.Sprintf("update failover run %d", r.ID), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: update failover run %d: %w", r.ID, ErrNotFound)
	}
	return nil
}

func (q *queries) FailoverRun(ctx context.Context, id int64) (FailoverRun, error) {
	r, err := scanRun(q.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM failover_runs WHERE id = $1`, id))
	return r, wrap(fmt.Sprintf("failover run %d", id), err)
}

func (q *queries) FailoverRuns(ctx context.Context, playbook string, limit int) ([]FailoverRun, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+runCols+` FROM failover_runs WHERE ($1 = '' OR playbook = $1) ORDER BY id DESC LIMIT $2`,
		playbook, limitOr(limit, 100))
	if err != nil {
		return nil, wrap("failover runs", err)
	}
	return collect(rows, "failover runs", scanRun)
}

func (q *queries) PutFailoverStep(ctx context.Context, s FailoverStep) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO failover_steps (run_id, step_index, name, kind, request, response, status, error, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (run_id, step_index) DO UPDATE SET name = excluded.name, kind = excluded.kind, request = excluded.request,
			response = excluded.response, status = excluded.status, error = excluded.error,
			started_at = excluded.started_at, finished_at = excluded.finished_at`,
		s.RunID, s.Index, s.Name, s.Kind, cleanText(s.Request), cleanText(s.Response), s.Status, cleanText(s.Error), ms(s.StartedAt), ms(s.FinishedAt))
	return wrap(fmt.Sprintf("put failover step %d/%d", s.RunID, s.Index), err)
}

func (q *queries) FailoverSteps(ctx context.Context, runID int64) ([]FailoverStep, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT run_id, step_index, name, kind, request, response, status, error, started_at, finished_at
		FROM failover_steps WHERE run_id = $1 ORDER BY step_index`, runID)
	if err != nil {
		return nil, wrap("failover steps", err)
	}
	return collect(rows, "failover steps", func(sc interface{ Scan(...any) error }) (FailoverStep, error) {
		var s FailoverStep
		var started, finished sql.NullInt64
		err := sc.Scan(&s.RunID, &s.Index, &s.Name, &s.Kind, &s.Request, &s.Response, &s.Status, &s.Error, &started, &finished)
		s.StartedAt, s.FinishedAt = fromMS(started), fromMS(finished)
		return s, err
	})
}

const lockCols = `playbook, holder, pid, host, run_id, acquired_at, heartbeat_at`

func scanLock(sc interface{ Scan(...any) error }) (FailoverLock, error) {
	var l FailoverLock
	var acq, hb int64
	err := sc.Scan(&l.Playbook, &l.Holder, &l.PID, &l.Host, &l.RunID, &acq, &hb)
	l.AcquiredAt, l.HeartbeatAt = fromMS64(acq), fromMS64(hb)
	return l, err
}

func (q *queries) AcquireFailoverLock(ctx context.Context, l FailoverLock, staleBefore time.Time) (FailoverLock, error) {
	if l.Playbook == "" || l.Holder == "" {
		return l, errors.New("store: acquire failover lock: playbook and holder are required")
	}
	if l.HeartbeatAt.IsZero() {
		l.HeartbeatAt = l.AcquiredAt
	}
	var got FailoverLock
	err := q.atomic(ctx, func(q *queries) error {
		// One statement decides: insert when free, take over when stale or
		// already ours. RETURNING yields no row when the holder is live.
		rows, err := q.w.QueryContext(ctx, `INSERT INTO failover_locks (`+lockCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (playbook) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,
				run_id = excluded.run_id, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at
			WHERE failover_locks.heartbeat_at < $8 OR failover_locks.holder = excluded.holder
			RETURNING `+lockCols,
			l.Playbook, l.Holder, l.PID, l.Host, l.RunID, l.AcquiredAt.UnixMilli(), l.HeartbeatAt.UnixMilli(), staleBefore.UnixMilli())
		if err != nil {
			return err
		}
		ls, err := collect(rows, "acquire failover lock", scanLock)
		if err != nil {
			return err
		}
		if len(ls) == 1 {
			got = ls[0]
			return nil
		}
		cur, err := scanLock(q.w.QueryRowContext(ctx, `SELECT `+lockCols+` FROM failover_locks WHERE playbook = $1`, l.Playbook))
		if err != nil {
			return err
		}
		got = cur
		return fmt.Errorf("playbook %s is locked by %s (pid %d on %s, run %d) since %s, last heartbeat %s: %w",
			cur.Playbook, cur.Holder, cur.PID, cur.Host, cur.RunID, cur.AcquiredAt.Format(time.RFC3339), cur.HeartbeatAt.Format(time.RFC3339), ErrLocked)
	})
	if err != nil && !errors.Is(err, ErrLocked) {
		return got, wrap("acquire failover lock "+l.Playbook, err)
	}
	return got, err
}

func (q *queries) HeartbeatFailoverLock(ctx context.Context, playbook, holder string, at time.Time) error {
	res, err := q.w.ExecContext(ctx, `UPDATE failover_locks SET heartbeat_at = $3 WHERE playbook = $1 AND holder = $2`, playbook, holder, at.UnixMilli())
	if err != nil {
		return wrap("heartbeat failover lock "+playbook, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: heartbeat failover lock %s: not held by %s: %w", playbook, holder, ErrLocked)
	}
	return nil
}

func (q *queries) ReleaseFailoverLock(ctx context.Context, playbook, holder string) error {
	res, err := q.w.ExecContext(ctx, `DELETE FROM failover_locks WHERE playbook = $1 AND holder = $2`, playbook, holder)
	if err != nil {
		return wrap("release failover lock "+playbook, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: release failover lock %s: not held by %s: %w", playbook, holder, ErrNotFound)
	}
	return nil
}

func (q *queries) FailoverLock(ctx context.Context, playbook string) (FailoverLock, error) {
	l, err := scanLock(q.r.QueryRowContext(ctx, `SELECT `+lockCols+` FROM failover_locks WHERE playbook = $1`, playbook))
	return l, wrap("failover lock "+playbook, err)
}

// ---- maintenance --------------------------------------------------------------

func (q *queries) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	var r PruneResult
	err := q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1`, before.UnixMilli())
		if err != nil {
			return err
		}
		r.Outbox, _ = res.RowsAffected()
		res, err = q.w.ExecContext(ctx, `DELETE FROM observation_history WHERE observed_at < $1`, before.UnixMilli())
		if err != nil {
			return err
		}
		r.History, _ = res.RowsAffected()
		return nil
	})
	return r, wrap("prune", err)
}
