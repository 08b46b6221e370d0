package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
	"github.com/nsguard/nsguard/internal/store/storetest"
)

func runStore(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// nsguard store migrate, end to end: a single-node SQLite install written
// through the store API reads back identically from PostgreSQL, the CLI
// then works against PostgreSQL through the config, and the URL's
// password is printed nowhere.
func TestStoreMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nsguard.db")
	lite, err := store.Open(ctx, dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Fill(t, lite)
	want := storetest.Dump(t, lite)
	lite.Close()

	pgURL := pgtest.Database(t)
	password := pgtest.Shared(t).Password()
	urlFile := filepath.Join(dir, "db-url")
	if err := os.WriteFile(urlFile, []byte(pgURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noSecret := func(what, s string) {
		t.Helper()
		if strings.Contains(s, password) {
			t.Fatalf("%s holds the database password:\n%s", what, s)
		}
	}

	code, out, errOut := runStore(t, nil, "store", "migrate", "--from", "sqlite:"+dbPath, "--to-file", urlFile)
	noSecret("stdout", out)
	noSecret("stderr", errOut)
	if code != 0 {
		t.Fatalf("migrate: code %d\n%s%s", code, out, errOut)
	}
	for _, line := range []string{"copied sqlite:" + dbPath + " to postgres://nsguard:xxxxx@", fmt.Sprintf("(schema version %d); row counts verified:", store.LatestSchema()),
		"\nTABLE                ROWS\n", "\nobservation_history    15\n", "\noutbox                  4\n", "\nfailover_locks          1\n", "\nheartbeats              2\n", "\ntotal                  57\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	checkDocExample(t, out, dbPath)

	pg, err := store.OpenPostgres(ctx, pgURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Equal(t, want, storetest.Dump(t, pg))
	pg.Close()

	// The CLI reads the copy through a config naming the URL's file.
	cfgPath := filepath.Join(dir, "nsguard.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: {url_file: db-url}\ndomains:\n  - {name: shop-example.com, tier: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runStore(t, nil, "--config", cfgPath, "silence", "list", "--all", "-o", "json")
	var sils []silenceJSON
	if code != 0 || json.Unmarshal([]byte(out), &sils) != nil || len(sils) != 2 || sils[0].Domain != "shop-example.com" || sils[0].State != "expired" {
		t.Fatalf("silence list against PostgreSQL: code %d, out %s, err %s", code, out, errOut)
	}

	// Again: the target is no longer empty.
	code, out, errOut = runStore(t, nil, "store", "migrate", "--from", "sqlite:"+dbPath, "--to", pgURL)
	noSecret("stderr", errOut)
	if code != exitUsage || !strings.Contains(errOut, "the target database is not empty") || !strings.Contains(errOut, "--force") {
		t.Fatalf("second migrate: code %d, out %q, err %q", code, out, errOut)
	}
	// Forced, from the environment, as JSON.
	code, out, errOut = runStore(t, map[string]string{"NSGUARD_TEST_DB_URL": pgURL}, "store", "migrate", "--from", "sqlite:"+dbPath, "--to-env", "NSGUARD_TEST_DB_URL", "--force", "-o", "json")
	noSecret("json", out)
	var res storeMigrateJSON
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Tables) != 13 || res.Total != 57 || res.SchemaVersion != store.LatestSchema() ||
		!strings.HasPrefix(res.To, "postgres://nsguard:xxxxx@127.0.0.1:") || res.From != "sqlite:"+dbPath {
		t.Fatalf("forced migrate -o json: code %d, %+v\n%s%s", code, res, out, errOut)
	}
}

func TestStoreMigrateBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nsguard.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "postgres://nsguard:hunter2-secret@127.0.0.1:1/nsguard"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no prefix", []string{"--from", db, "--to", url}, "--from wants sqlite:PATH"},
		{"missing file", []string{"--from", "sqlite:" + db + ".nope", "--to", url}, "no such file or directory"},
		{"a directory", []string{"--from", "sqlite:" + dir, "--to", url}, "is not a file"},
		{"no target", []string{"--from", "sqlite:" + db}, "exactly one of --to URL, --to-file FILE, --to-env VAR"},
		{"two targets", []string{"--from", "sqlite:" + db, "--to", url, "--to-env", "X"}, "exactly one of"},
		{"unset env", []string{"--from", "sqlite:" + db, "--to-env", "NSGUARD_TEST_UNSET"}, "environment variable NSGUARD_TEST_UNSET is empty or unset"},
		{"not postgres", []string{"--from", "sqlite:" + db, "--to", "mysql://nsguard:hunter2-secret@127.0.0.1/nsguard"}, `want a postgres:// URL, got scheme "mysql"`},
		{"unreachable", []string{"--from", "sqlite:" + db, "--to", url}, "opening the target: store: connecting to postgres://nsguard:xxxxx@127.0.0.1:1/nsguard"},
		{"bad output", []string{"--from", "sqlite:" + db, "--to", url, "-o", "xml"}, "-o must be table or json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runStore(t, nil, append([]string{"store", "migrate"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || strings.Contains(errOut+out, "hunter2") {
				t.Fatalf("code %d, out %q, err %q; want exit 3 and %q, without the password", code, out, errOut, tc.want)
			}
		})
	}
}

// checkDocExample keeps internal/store/README.md's example of the command's
// output real: it is this test's output, the temporary path and the
// server's address replaced by an install's (NSGUARD_UPDATE_DOCS=1
// rewrites it).
func checkDocExample(t *testing.T, out, dbPath string) {
	t.Helper()
	const path = "../../internal/store/README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	example := strings.ReplaceAll(out, dbPath, "/var/lib/nsguard/nsguard.db")
	example = regexp.MustCompile(`postgres://nsguard:xxxxx@127\.0\.0\.1:\d+/t_\d+\?sslmode=disable`).
		ReplaceAllString(example, "postgres://nsguard:xxxxx@db.internal:5432/nsguard?sslmode=verify-full")
	block := "```\n$ nsguard store migrate --from sqlite:/var/lib/nsguard/nsguard.db --to-file /run/credentials/nsguard.service/db-url\n" + example + "```\n"
	doc := string(b)
	const begin, end = "<!-- store migrate example -->\n", "<!-- end store migrate example -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q … %q markers", path, begin, end)
	}
	i += len(begin)
	if doc[i:j] == block {
		return
	}
	if os.Getenv("NSGUARD_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(doc[:i]+block+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the store migrate example in internal/store/README.md is stale: NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestStoreMigrate\nwant:\n%s", block)
}
