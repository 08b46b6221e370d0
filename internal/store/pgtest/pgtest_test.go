package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewestBin(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "13", "15", "16", "17"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"postgres", "initdb"} {
			// 17 is a half-installed client-only leftover: no initdb.
			if v == "17" && f == "initdb" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := newestBin(root)
	if want := filepath.Join(root, "16", "bin"); err != nil || got != want {
		t.Fatalf("newestBin = %q, %v; want %q (the newest with both binaries)", got, err, want)
	}
	_, err = newestBin(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("no binaries: err = %v, want the install command", err)
	}
}

// The shared server: an unprivileged owner, loopback only, a password
// required, durability off, and one database per test.
func TestSharedServer(t *testing.T) {
	ctx := context.Background()
	s := Shared(t)
	a, b := Database(t), Database(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	settings := map[string]string{}
	for _, name := range []string{"listen_addresses", "fsync", "data_directory", "server_encoding"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		settings[name] = v
	}
	if settings["listen_addresses"] != "127.0.0.1" || settings["fsync"] != "off" || settings["server_encoding"] != "UTF8" {
		t.Fatalf("settings = %v", settings)
	}
	fi, err := os.Stat(settings["data_directory"])
	if err != nil {
		t.Fatal(err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; owner == 0 || owner != uint32(os.Geteuid()) && os.Geteuid() != 0 {
		t.Fatalf("data directory owned by uid %d (we are %d): want an unprivileged owner", owner, os.Geteuid())
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	connB, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer connB.Close(ctx)
	var n int
	if err := connB.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("database b sees a's table: %d, %v", n, err)
	}
	wrong := strings.Replace(a, s.Password(), "wrong-password", 1)
	if c, err := pgx.Connect(ctx, wrong); err == nil {
		c.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
}

func TestDatabaseFromTemplate(t *testing.T) {
	ctx := context.Background()
	prepared := 0
	prepare := func(ctx context.Context, url string) error {
		prepared++
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE seeded (x int); INSERT INTO seeded VALUES (42)")
		return err
	}
	for range 3 {
		u := DatabaseFrom(t, "seeded_tmpl", prepare)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var x int
		err = conn.QueryRow(ctx, "SELECT x FROM seeded").Scan(&x)
		conn.Close(ctx)
		if err != nil || x != 42 {
			t.Fatalf("copy of the template: x = %d, %v", x, err)
		}
	}
	if prepared != 1 {
		t.Fatalf("template prepared %d times, want once", prepared)
	}
}

// A restarted server ends its sessions and comes back on the same port
// with its databases: what clients see of a database restart.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	url := s.Database(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	port := s.Port()
	if err := s.Restart(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("a session survived the restart")
	}
	again, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("reconnecting after the restart: %v", err)
	}
	defer again.Close(ctx)
	var n int
	if err := again.QueryRow(ctx, `SELECT n FROM kept`).Scan(&n); err != nil || n != 7 || s.Port() != port {
		t.Fatalf("after the restart: n = %d, %v, port %d (was %d)", n, err, s.Port(), port)
	}
}
