package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// copyTables is every table of the schema but schema_migrations, parents
// before the tables whose foreign keys point at them. CopyToPostgres
// refuses a source holding a table not listed here, so a new table cannot
// be left behind silently.
var copyTables = []string{
	"observations", "observation_history", "baselines", "changes", "finding_states", "incidents",
	"outbox", "slack_threads", "silences", "failover_runs", "failover_steps", "failover_locks", "heartbeats",
}

// clusterTables are the cluster's coordination state — who leads, which
// rechecks were asked for — which belongs to the running cluster, not to
// the data moved: a single node never writes them, and the target's
// replicas elect a leader of their own.
var clusterTables = []string{"leader_lease", "recheck_requests"}

// TableCount is how many rows one table holds.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// CopyOptions tune CopyToPostgres.
type CopyOptions struct {
	// Force replaces what the target holds; without it a target with any
	// row is refused.
	Force bool
}

// CopyResult is what CopyToPostgres copied: every table's rows, counted
// in the target before the commit and equal to the source's.
type CopyResult struct {
	SchemaVersion int
	Tables        []TableCount
}

// Total is the number of rows copied.
func (r CopyResult) Total() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// CopyToPostgres copies everything a SQLite store holds into a PostgreSQL
// store at the same schema version: every table, ids as they are, in one
// transaction on the target (all or nothing), from one read snapshot of
// the source. Identity sequences continue past the highest id the source
// ever gave (SQLite's AUTOINCREMENT counter, which deleted rows do not
// lower), so a message or an incident never reuses an id. Row counts are
// compared per table before the commit. The target is locked against
// other writers meanwhile; a target holding any row is refused unless
// opts.Force, which empties it first.
func CopyToPostgres(ctx context.Context, src *SQLite, dst *Postgres, opts CopyOptions) (CopyResult, error) {
	var res CopyResult
	sv, err := src.SchemaVersion(ctx)
	if err != nil {
		return res, fmt.Errorf("store: copy: schema version of %s: %w", src.Path(), err)
	}
	dv, err := dst.SchemaVersion(ctx)
	if err != nil {
		return res, fmt.Errorf("store: copy: schema version of %s: %w", dst, err)
	}
	if sv != dv {
		return res, fmt.Errorf("store: copy: %s has schema version %d, %s has %d: open both with the same nsguard", src.Path(), sv, dst, dv)
	}
	res.SchemaVersion = sv

	// One read transaction: WAL gives it a snapshot, so a daemon still
	// writing the file cannot make the copy inconsistent.
	stx, err := src.r.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store: copy: reading %s: %w", src.Path(), mapErr(err))
	}
	defer stx.Rollback()
	if err := checkCopyTables(ctx, stx); err != nil {
		return res, err
	}
	counts := map[string]int64{}
	for _, t := range copyTables {
		var n int64
		if err := stx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
			return res, fmt.Errorf("store: copy: counting %s: %w", t, mapErr(err))
		}
		counts[t] = n
	}
	seqs := map[string]int64{}
	rows, err := stx.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return res, fmt.Errorf("store: copy: reading id counters: %w", mapErr(err))
	}
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			rows.Close()
			return res, fmt.Errorf("store: copy: reading id counters: %w", err)
		}
		seqs[name] = seq
	}
	rows.Close()

	conn, err := dst.db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("store: copy: connecting to %s: %w", dst, mapErr(err))
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return fmt.Errorf("store: copy: begin: %w", mapErr(err))
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		copied, err := copyInto(ctx, stx, tx, counts, seqs, opts)
		if err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("store: copy: commit: %w", mapErr(err))
		}
		res.Tables = copied
		return nil
	})
	return res, err
}

// checkCopyTables refuses a source with a table copyTables does not name.
func checkCopyTables(ctx context.Context, stx *sql.Tx) error {
	rows, err := stx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`)
	if err != nil {
		return fmt.Errorf("store: copy: listing tables: %w", mapErr(err))
	}
	defer rows.Close()
	known := map[string]bool{}
	for _, t := range append(append([]string(nil), copyTables...), clusterTables...) {
		known[t] = true
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		if !known[t] {
			return fmt.Errorf("store: copy: table %s is not one this nsguard knows how to copy", t)
		}
	}
	return rows.Err()
}

func copyInto(ctx context.Context, stx *sql.Tx, tx pgx.Tx, counts, seqs map[string]int64, opts CopyOptions) ([]TableCount, error) {
	// No other nsguard writes while the copy runs: writer transactions
	// wait on their advisory lock, everything else on the table locks.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, advisoryClass, advisoryWriter); err != nil {
		return nil, fmt.Errorf("store: copy: waiting for the target's writers: %w", mapErr(err))
	}
	ident := make([]string, len(copyTables))
	for i, t := range copyTables {
		ident[i] = pgx.Identifier{t}.Sanitize()
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(ident, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return nil, fmt.Errorf("store: copy: locking the target's tables: %w", mapErr(err))
	}
	var held []string
	for _, t := range copyTables {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("store: copy: counting the target's %s: %w", t, mapErr(err))
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%s (%d)", t, n))
		}
	}
	if len(held) > 0 {
		if !opts.Force {
			return nil, fmt.Errorf("store: copy: the target database is not empty: it holds rows in %s; copy into an empty database, or replace them with --force", strings.Join(held, ", "))
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(ident, ", ")+` RESTART IDENTITY`); err != nil {
			return nil, fmt.Errorf("store: copy: emptying the target: %w", mapErr(err))
		}
	}

	identity := map[string]bool{}
	rows, err := tx.Query(ctx, `SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'`)
	if err != nil {
		return nil, fmt.Errorf("store: copy: %w", mapErr(err))
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		identity[t] = true
	}
	rows.Close()

	var out []TableCount
	for _, t := range copyTables {
		cols, err := copyColumns(ctx, stx, tx, t)
		if err != nil {
			return nil, err
		}
		src, err := stx.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t)
		if err != nil {
			return nil, fmt.Errorf("store: copy: reading %s: %w", t, mapErr(err))
		}
		// COPY writes the ids it is given, identity columns included.
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t}, cols, &sqlRowSource{rows: src, table: t, cols: cols})
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("store: copy: writing %s: %w", t, mapErr(err))
		}
		var got int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&got); err != nil {
			return nil, fmt.Errorf("store: copy: counting %s: %w", t, mapErr(err))
		}
		if got != counts[t] || n != counts[t] {
			return nil, fmt.Errorf("store: copy: %s: the source holds %d rows, the target %d after copying %d: nothing was committed", t, counts[t], got, n)
		}
		if identity[t] {
			// The next id is past both the highest copied and the highest
			// SQLite ever gave (rows since deleted keep theirs retired).
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM `+pgx.Identifier{t}.Sanitize()+`), $2::bigint, 1), GREATEST((SELECT COUNT(*) FROM `+pgx.Identifier{t}.Sanitize()+`), $2::bigint) > 0)`,
				t, seqs[t]); err != nil {
				return nil, fmt.Errorf("store: copy: advancing %s's ids: %w", t, mapErr(err))
			}
		}
		out = append(out, TableCount{Table: t, Rows: got})
	}
	return out, nil
}

// copyColumns returns t's columns, which source and target must share.
func copyColumns(ctx context.Context, stx *sql.Tx, tx pgx.Tx, t string) ([]string, error) {
	rows, err := stx.QueryContext(ctx, `SELECT name FROM pragma_table_info($1) ORDER BY cid`, t)
	if err != nil {
		return nil, fmt.Errorf("store: copy: columns of %s: %w", t, mapErr(err))
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	prow, err := tx.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, t)
	if err != nil {
		return nil, fmt.Errorf("store: copy: columns of %s: %w", t, mapErr(err))
	}
	var pcols []string
	for prow.Next() {
		var c string
		if err := prow.Scan(&c); err != nil {
			prow.Close()
			return nil, err
		}
		pcols = append(pcols, c)
	}
	prow.Close()
	a, b := append([]string(nil), cols...), append([]string(nil), pcols...)
	sort.Strings(a)
	sort.Strings(b)
	if strings.Join(a, ",") != strings.Join(b, ",") || len(a) == 0 {
		return nil, fmt.Errorf("store: copy: table %s has columns %v in the source and %v in the target", t, a, b)
	}
	return cols, nil
}

// sqlRowSource feeds COPY from a SQLite query, checking each text value
// is one PostgreSQL can store.
type sqlRowSource struct {
	rows  *sql.Rows
	table string
	cols  []string
	vals  []any
	err   error
}

func (s *sqlRowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	vals := make([]any, len(s.cols))
	ptrs := make([]any, len(s.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if s.err = s.rows.Scan(ptrs...); s.err != nil {
		return false
	}
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			v = string(b)
			vals[i] = v
		}
		if str, ok := v.(string); ok && (!utf8.ValidString(str) || strings.ContainsRune(str, 0)) {
			s.err = fmt.Errorf("table %s, row %s = %v: column %s holds bytes PostgreSQL cannot store as text (invalid UTF-8 or NUL)", s.table, s.cols[0], vals[0], s.cols[i])
			return false
		}
	}
	s.vals = vals
	return true
}

func (s *sqlRowSource) Values() ([]any, error) { return s.vals, nil }

func (s *sqlRowSource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

var _ pgx.CopyFromSource = (*sqlRowSource)(nil)
