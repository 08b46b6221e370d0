package startcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/config"
)

// TestCheck: each file or variable the daemon reads at start is read, and a
// problem names the field, the line and the file or variable, never the
// secret.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("token", "xoxb-SECRET\n")
	twoLines := write("two-lines", "https://hooks.slack.com/SECRET\nmore\n")
	write("hints", ". 3600 NS a.root.\na.root. 3600 A 127.0.0.1\n")
	badHints := write("bad-hints", "this is not a zone\n")
	write("htpasswd", "ops:$2y$10$0123456789012345678901uFQDv6OPLy5ka3xO1bSpB1YD7D1Iy1/CW\n")
	badAuth := write("bad-htpasswd", "ops:{SHA}SECRETSECRETSECRET=\n")
	t.Setenv("NSGUARD_TEST_UNSET", "")
	t.Setenv("NSGUARD_TEST_URL", "not a url SECRET")
	write("db-url", "postgres://nsguard:SECRET@db.example.internal:5432/nsguard?sslmode=verify-full\n")
	noDB := write("db-url-no-db", "postgres://nsguard:SECRET@db.example.internal:5432/?sslmode=verify-full\n")
	t.Setenv("NSGUARD_TEST_DB_URL", "mysql://nsguard:SECRET@db.example.internal/nsguard")
	for _, tc := range []struct {
		name, yaml string
		want       string // "" for no problem
	}{
		{"token file readable", "alerts:\n  slack: {token_file: token, channel: \"#x\"}\n", ""},
		{"token file missing", "alerts:\n  slack: {token_file: nope, channel: \"#x\"}\n",
			":3: alerts.slack.token_file: read secret file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"token variable unset", "alerts:\n  slack: {token_env: NSGUARD_TEST_UNSET, channel: \"#x\"}\n",
			":3: alerts.slack.token_env: environment variable NSGUARD_TEST_UNSET is empty or unset"},
		{"webhook URL file of two lines", "alerts:\n  slack: {webhook_url_file: two-lines}\n",
			":3: alerts.slack.webhook_url_file: slack webhook URL: secret file " + twoLines + " holds more than one line"},
		{"webhook URL not a URL", "alerts:\n  slack: {webhook_url_env: NSGUARD_TEST_URL}\n",
			":3: alerts.slack.webhook_url_env: webhook: the webhook URL is not an http(s) URL"},
		{"database URL file readable", "store: {url_file: db-url}\n", ""},
		{"database URL file missing", "store:\n  url_file: nope\n",
			":2: store.url_file: read secret file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"database URL names no database", "store:\n  url_file: db-url-no-db\n",
			":2: store.url_file: the PostgreSQL URL in " + noDB + ": the URL names no database"},
		{"database URL variable not postgres", "store:\n  url_env: NSGUARD_TEST_DB_URL\n",
			":2: store.url_env: the PostgreSQL URL in $NSGUARD_TEST_DB_URL: want a postgres:// URL, got scheme \"mysql\""},
		{"database URL variable unset", "store:\n  url_env: NSGUARD_TEST_UNSET\n",
			":2: store.url_env: environment variable NSGUARD_TEST_UNSET is empty or unset"},
		{"hints readable", "resolver: {root_hints: hints}\n", ""},
		{"password file readable", "ui: {basic_auth_file: htpasswd}\n", ""},
		{"password file not bcrypt", "ui:\n  basic_auth_file: bad-htpasswd\n", ":3: ui.basic_auth_file: " + badAuth + ":1: the hash for \"ops\" is not bcrypt"},
		{"password file unread when the pages are off", "ui: {enabled: false, basic_auth_file: bad-htpasswd}\n", ""},
		{"hints not a hints file", "resolver:\n  root_hints: bad-hints\n", ":3: resolver.root_hints: monitor: resolver: root hints " + badHints},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml
			if !strings.HasPrefix(y, "store:") {
				y = "store: {path: a.db}\n" + y
			}
			cfg, err := config.Parse(filepath.Join(dir, "nsguard.yaml"), []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			got := Check(cfg)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("problems: %v", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got.Error(), tc.want)):
				t.Fatalf("got %v\nwant one problem containing %q", got, tc.want)
			}
			if strings.Contains(got.Error(), "SECRET") {
				t.Fatalf("a secret in a problem: %v", got)
			}
		})
	}
}
