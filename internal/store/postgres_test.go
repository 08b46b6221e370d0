package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/store/pgtest"
)

// The PostgreSQL migrations are the SQLite ones, statement for statement,
// with only the documented spellings changed: the schema cannot drift
// between backends.
func TestPostgresMigrationsMirrorSQLite(t *testing.T) {
	lite, err := loadMigrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(lite), len(pg))
	}
	text := regexp.MustCompile(`\bTEXT\b`)
	for i := range lite {
		if lite[i].name != pg[i].name {
			t.Errorf("migration %d: %s (SQLite) vs %s (PostgreSQL)", i+1, lite[i].name, pg[i].name)
			continue
		}
		want := statements(text.ReplaceAllString(strings.ReplaceAll(lite[i].sql,
			"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"), `TEXT COLLATE "C"`))
		if got := statements(pg[i].sql); got != want {
			t.Errorf("%s: the PostgreSQL statements are not the SQLite ones respelled:\n got: %s\nwant: %s", pg[i].name, got, want)
		}
	}
}

// statements drops comments and collapses white space.
func statements(sql string) string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + " ")
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// column is what both backends must agree on for each column.
type column struct {
	name    string
	notNull bool
	integer bool // an integer type (INTEGER, BIGINT); text otherwise
}

// Both migrated schemas hold the same tables, columns, nullability and
// indexes.
func TestPostgresSchemaMatchesSQLite(t *testing.T) {
	ctx := context.Background()
	lite, err := Open(ctx, filepath.Join(t.TempDir(), "nsguard.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := OpenPostgres(ctx, pgtest.Database(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	liteTables, pgTables := map[string][]column{}, map[string][]column{}
	rows, err := lite.w.QueryContext(ctx, `SELECT m.name, p.name, p."notnull" OR p.pk, p.type FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, typ string
		var c column
		if err := rows.Scan(&table, &c.name, &c.notNull, &typ); err != nil {
			t.Fatal(err)
		}
		c.integer = strings.Contains(typ, "INT")
		liteTables[table] = append(liteTables[table], c)
	}
	rows.Close()
	rows, err = pg.db.QueryContext(ctx, `SELECT table_name, column_name, is_nullable = 'NO', data_type FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, column_name COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, typ string
		var c column
		if err := rows.Scan(&table, &c.name, &c.notNull, &typ); err != nil {
			t.Fatal(err)
		}
		c.integer = typ == "integer" || typ == "bigint"
		pgTables[table] = append(pgTables[table], c)
	}
	rows.Close()
	if len(liteTables) < 12 {
		t.Fatalf("SQLite has only %d tables: %v", len(liteTables), liteTables)
	}
	if got, want := fmt.Sprint(pgTables), fmt.Sprint(liteTables); got != want {
		t.Errorf("columns differ:\nPostgreSQL %s\nSQLite     %s", got, want)
	}

	var liteIdx, pgIdx []string
	rows, err = lite.w.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		liteIdx = append(liteIdx, n)
	}
	rows.Close()
	rows, err = pg.db.QueryContext(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey' ORDER BY indexname COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		pgIdx = append(pgIdx, n)
	}
	rows.Close()
	if fmt.Sprint(pgIdx) != fmt.Sprint(liteIdx) {
		t.Errorf("indexes differ:\nPostgreSQL %v\nSQLite     %v", pgIdx, liteIdx)
	}
}

// A bad URL, a wrong password, a closed port or a missing database: each
// error says what is wrong and never holds the password, nor do the logs.
func TestPostgresOpenErrorsHideThePassword(t *testing.T) {
	srv := pgtest.Shared(t)
	good := pgtest.Database(t)
	const secret = "s3cret-Pa55word"
	withPassword := func(raw, pw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), pw)
		return u.String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct{ name, url, want string }{
		{"wrong password", withPassword(good, secret), "password authentication failed"},
		{"closed port", strings.Replace(withPassword(good, secret), fmt.Sprintf("127.0.0.1:%d", srv.Port()), closed, 1), "connecting to postgres://nsguard:xxxxx@" + closed},
		{"missing database", strings.Replace(good, "/t_", "/nope_", 1), "does not exist"},
		{"bad port", "postgres://nsguard:" + secret + "@127.0.0.1:notaport/nsguard", "not a valid URL"},
		{"bad sslmode", withPassword(good, secret) + "x&sslmode=sometimes", "sslmode"},
		{"not postgres", "mysql://nsguard:" + secret + "@127.0.0.1/nsguard", `want a postgres:// URL, got scheme "mysql"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := OpenPostgres(ctx, tc.url, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				t.Fatal("opened")
			}
			for _, pw := range []string{secret, srv.Password()} {
				if strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw) {
					t.Fatalf("the password is in the error or the logs:\n%v\n%s", err, logs.String())
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	var logs bytes.Buffer
	s, err := OpenPostgres(context.Background(), good, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(logs.String(), "applied migration") || strings.Contains(logs.String(), srv.Password()) || strings.Contains(s.String(), srv.Password()) {
		t.Fatalf("logs of a successful open:\n%s\nString() %s", logs.String(), s)
	}
}

// Senders claim in parallel: one holding row locks in an open transaction
// does not make another wait; the other takes the next thread's message.
func TestPostgresClaimersDoNotWaitForEachOther(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	a, err := OpenPostgres(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenPostgres(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, thread := range []string{"t1", "t2"} {
		if _, err := a.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: thread, Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	held := &queries{w: tx, r: tx, s: a, inTx: true, claimLock: a.claimLock, rowLock: a.rowLock}
	got, err := held.ClaimDue(ctx, Claim{Owner: "a", Now: t0, Until: t0.Add(time.Minute), Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("a's claim = %+v, %v", got, err)
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	other, err := b.ClaimDue(qctx, Claim{Owner: "b", Now: t0, Until: t0.Add(time.Minute)})
	if err != nil || len(other) != 1 || other[0].ID == got[0].ID {
		t.Fatalf("b's claim beside a's open transaction = %+v, %v; want the other thread's message at once", other, err)
	}
}

// Lists sort bytewise, as on SQLite, even in a database whose default
// collation is a natural-language one (ICU en-US puts "A_B" before "AB"
// and "a" before "B").
func TestPostgresOrderIsBytewise(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Shared(t)
	name := fmt.Sprintf("icu_%d", time.Now().UnixNano())
	err := srv.Admin(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Admin(ctx, func(c *pgx.Conn) error { _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); return err })
	})
	s, err := OpenPostgres(ctx, srv.URL(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var icuOrder []string
	rows, err := s.db.QueryContext(ctx, `SELECT x FROM (VALUES ('AB'), ('A_B'), ('a'), ('B')) v(x) ORDER BY x`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var x string
		rows.Scan(&x)
		icuOrder = append(icuOrder, x)
	}
	rows.Close()
	keys := []string{"AB", "A_B", "a", "B"}
	bytewise := append([]string(nil), keys...)
	sort.Strings(bytewise)
	if fmt.Sprint(icuOrder) == fmt.Sprint(bytewise) {
		t.Fatalf("the database's own collation sorts bytewise already (%v): the test proves nothing", icuOrder)
	}
	for _, k := range keys {
		if err := s.PutFindingState(ctx, FindingState{Domain: "d.com", Class: "dns", Key: k, Severity: "warning", Streak: 1, FirstSeen: t0, LastSeen: t0, Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	states, err := s.FindingStates(ctx, "d.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range states {
		got = append(got, st.Key)
	}
	if fmt.Sprint(got) != fmt.Sprint(bytewise) {
		t.Fatalf("finding states in order %v, want bytewise %v (the database's collation gives %v)", got, bytewise, icuOrder)
	}
}

// OpenConfig opens what the config names; a URL with a password comes from
// a file or the environment, and a missing one is a clear error.
func TestOpenConfig(t *testing.T) {
	ctx := context.Background()
	pgURL := pgtest.Database(t)
	urlFile := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(urlFile, []byte(pgURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NSGUARD_TEST_DB_URL", pgURL)
	for _, tc := range []struct {
		name    string
		cfg     config.Store
		want    string // the type opened, or the error
		wantErr bool
	}{
		{"path", config.Store{Path: filepath.Join(t.TempDir(), "nsguard.db")}, "*store.SQLite", false},
		{"url_file", config.Store{URLFile: urlFile}, "*store.Postgres", false},
		{"url_env", config.Store{URLEnv: "NSGUARD_TEST_DB_URL"}, "*store.Postgres", false},
		{"missing url_file", config.Store{URLFile: urlFile + ".nope"}, "store: the PostgreSQL URL: read secret file " + urlFile + ".nope: no such file or directory", true},
		{"unset url_env", config.Store{URLEnv: "NSGUARD_TEST_UNSET"}, "environment variable NSGUARD_TEST_UNSET is empty or unset", true},
		{"nothing", config.Store{}, "no store configured", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenConfig(ctx, tc.cfg, Options{})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				if s != nil {
					t.Fatalf("a failed open returned %#v, want a nil Store", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := fmt.Sprintf("%T", s); got != tc.want {
				t.Fatalf("opened %s, want %s", got, tc.want)
			}
			if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchema() {
				t.Fatalf("schema %d, %v", v, err)
			}
		})
	}
	// A failed PostgreSQL open through the config is nil too, not a typed nil.
	s, err := OpenConfig(ctx, config.Store{URL: strings.Replace(pgURL, "/t_", "/nope_", 1)}, Options{})
	if err == nil || s != nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("open of a missing database = %#v, %v", s, err)
	}
}

// A database that takes no writes (a standby, or one set read-only) is
// refused at open with PostgreSQL's reason, classified for the daemon's
// health as read-only, as a read-only SQLite file is.
func TestPostgresReadOnlyIsClassified(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	s, err := OpenPostgres(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = OpenPostgres(ctx, url+"&default_transaction_read_only=on", Options{})
	if err == nil || Classify(err) != FaultReadOnly || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("open of a read-only database: %v (classified %q), want %q", err, Classify(err), FaultReadOnly)
	}
}
