package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	cfg, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatalf("good config rejected:\n%v", err)
	}
	if got := cfg.Domains[0].Name; got != "shop-example.com" {
		t.Errorf("domain not normalised: %q", got)
	}
	if got := cfg.Domains[2].Name; got != "xn--bcher-example-wob.de" {
		t.Errorf("IDN not in punycode: %q", got)
	}
	if cfg.Policy.Expiry.Critical.D() != 30*24*time.Hour {
		t.Errorf("90d/30d not parsed: %v", cfg.Policy.Expiry)
	}
	if want := filepath.Join("testdata", "nsguard.db"); cfg.Store.Path != want {
		t.Errorf("relative store path %q, want %q", cfg.Store.Path, want)
	}
	pb, ok := cfg.Playbook("shop-to-backup")
	if !ok || pb.Steps[2].Verify.Type != "CNAME" || pb.Steps[2].Verify.Interval.D() != 2*time.Second {
		t.Errorf("playbook defaults not applied: %+v", pb.Steps[2].Verify)
	}
	if pb.SlackChannel != "#dns-oncall" {
		t.Errorf("playbook channel defaults to the alerts channel, got %q", pb.SlackChannel)
	}
	if pb.Steps[1].Webhook.Method != "POST" || pb.Steps[1].Webhook.SignatureHeader == "" {
		t.Errorf("webhook defaults: %+v", pb.Steps[1].Webhook)
	}
	if cfg.Line("domains[1].ds") != 30 {
		t.Errorf("line of domains[1].ds = %d", cfg.Line("domains[1].ds"))
	}
	if got := cfg.RequiredLocksFor(1); len(got) != 1 {
		t.Errorf("tier1 locks %v", got)
	}
	if r := cfg.Resolver; r.MaxNSPerDelegation != 20 || r.DomainTimeout.D() != 15*time.Second {
		t.Errorf("resolver bounds default to 20 names and 15s, got %d and %s", r.MaxNSPerDelegation, r.DomainTimeout)
	}
}

// TestBadConfigs: each fixture yields exactly these messages (file:line:
// field: problem), in the spirit of Alertmanager's config/testdata.
func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "storage: {path: x}\n", []string{`:1: storage: unknown field (did you mean "store"?)`}},
		{"unknown nested key", "resolver:\n  tiemout: 2s\n", []string{`:2: resolver.tiemout: unknown field (did you mean "timeout"?)`}},
		{"wrong type", "resolver:\n  port: fifty-three\n", []string{`:2: resolver.port: want an integer, got "fifty-three"`}},
		{"bad duration", "policy:\n  expiry: {warning: 90x, critical: 30d}\n", []string{`:2: policy.expiry.warning: invalid duration "90x"`}},
		{"list expected", "domains: shop-example.com\n", []string{`:1: domains: want a list, got "shop-example.com"`}},
		{"duplicate domain", "domains:\n  - {name: a-example.com, tier: 0}\n  - {name: A-Example.com., tier: 1}\n",
			[]string{`:3: domains[1].name: duplicate domain "a-example.com" (also domains[0])`}},
		{"malformed domain", "domains:\n  - {name: bad..example.com, tier: 0}\n", []string{`:2: domains[0].name: invalid domain name`}},
		{"tld only", "domains:\n  - {name: com, tier: 0}\n", []string{`:2: domains[0].name: "com" is a TLD, not a domain`}},
		{"tier missing", "domains:\n  - {name: a-example.com}\n", []string{`:2: domains[0].tier: required`}},
		{"tier out of range", "domains:\n  - {name: a-example.com, tier: 7}\n", []string{`:2: domains[0].tier: must be 0..3, got 7`}},
		{"bad DS", "domains:\n  - {name: a-example.com, tier: 0, ds: [\"1 13 2 XYZ\"]}\n", []string{`:2: domains[0].ds[0]: digest is not hexadecimal`}},
		{"bad watch type", "domains:\n  - {name: a-example.com, tier: 0, watch: [\"@ MXX\"]}\n", []string{`:2: domains[0].watch[0]: unknown record type "MXX"`}},
		{"own backup", "domains:\n  - {name: a-example.com, tier: 0, backups: [a-example.com]}\n", []string{`:2: domains[0].backups[0]: a domain cannot be its own backup`}},
		{"bad lock", "policy:\n  required_locks: {tier0: [serverLocked]}\n", []string{`:2: policy.required_locks.tier0[0]: unknown EPP status "serverLocked"`}},
		{"critical over warning", "policy:\n  expiry: {warning: 10d, critical: 30d}\n", []string{`policy.expiry.critical: critical (30d) must not exceed warning (10d)`}},
		{"bad schedule", "schedules: {delegation: \"every minute\"}\n", []string{`:1: schedules.delegation: invalid schedule "every minute"`}},
		{"token and webhook", "alerts:\n  slack: {token_file: t, webhook_url_file: w, channel: \"#x\"}\n", []string{`:2: alerts.slack: set a bot token or an incoming webhook, not both`}},
		{"bot without channel", "alerts:\n  slack: {token_env: SLACK_TOKEN}\n", []string{`alerts.slack.channel: a bot token needs a channel`}},
		{"resolver not an IP", "resolver:\n  public_resolvers: [dns.google]\n", []string{`:2: resolver.public_resolvers[0]: want an IP address (optionally :port), got "dns.google"`}},
		{"no name servers per delegation", "resolver:\n  max_ns_per_delegation: 0\n", []string{`:2: resolver.max_ns_per_delegation: must be 1..1000, got 0`}},
		{"domain timeout shorter than a query", "resolver:\n  timeout: 2s\n  domain_timeout: 500ms\n", []string{`:3: resolver.domain_timeout: must be at least resolver.timeout (2s), got 500ms`}},
		{"domain timeout not a duration", "resolver:\n  domain_timeout: soon\n", []string{`:2: resolver.domain_timeout: invalid duration "soon"`}},
		{"playbook primary unknown", "playbooks:\n  - {name: p, primary: x-example.com, backup: y-example.net, steps: [{wait: 1s}]}\n",
			[]string{`:2: playbooks[0].primary: "x-example.com" is not in domains`}},
		{"step with two kinds", "domains: [{name: a-example.com, tier: 0}]\nplaybooks:\n  - name: p\n    primary: a-example.com\n    backup: b-example.net\n    steps:\n      - {wait: 1s, notify: {message: hi}}\n",
			[]string{`:7: playbooks[0].steps[0]: a step has exactly one of dns_update, webhook, verify, wait, notify (found 2)`}},
		{"update without tsig", "domains: [{name: a-example.com, tier: 0}]\nplaybooks:\n  - name: p\n    primary: a-example.com\n    backup: b-example.net\n    steps:\n      - dns_update: {server: 127.0.0.1, zone: s.example., replace: [\"a.s.example. 60 IN A 192.0.2.1\"]}\n",
			[]string{`playbooks[0].steps[0].dns_update.tsig_file: required`}},
		{"record outside zone", "domains: [{name: a-example.com, tier: 0}]\nplaybooks:\n  - name: p\n    primary: a-example.com\n    backup: b-example.net\n    steps:\n      - dns_update: {server: 127.0.0.1, zone: s.example., tsig_file: k, replace: [\"a.other.example. 60 IN A 192.0.2.1\"]}\n",
			[]string{`playbooks[0].steps[0].dns_update.replace[0]: a.other.example. is outside zone s.example`}},
		{"ui base path relative", "ui: {base_path: nsguard}\n", []string{`:1: ui.base_path: must start with /, got "nsguard"`}},
		{"ui base path hostile", "ui: {base_path: \"/a/../b\"}\n", []string{`:1: ui.base_path: want a plain path such as /nsguard, got "/a/../b"`}},
		{"ui base path taken", "ui: {base_path: /metrics}\n", []string{`:1: ui.base_path: /metrics is taken by the daemon`}},
		{"ui refresh too fast", "ui: {refresh: 1s}\n", []string{`:1: ui.refresh: want 0s (off) or at least 5s, got 1s`}},
		{"ui password file missing", "ui: {basic_auth_file: /nonexistent/htpasswd}\n", []string{`:1: ui.basic_auth_file: cannot read the password file: no such file or directory`}},
		{"two documents", "store: {path: a}\n---\nstore: {path: b}\n", []string{`more than one YAML document`}},
		{"store path and url", "store: {path: a.db, url: \"postgres://nsguard@127.0.0.1:5432/nsguard\"}\n",
			[]string{`:1: store: set exactly one of store.path, store.url, store.url_file, store.url_env; found store.path, store.url`}},
		{"store url file and env", "store: {url_file: db-url, url_env: NSGUARD_DB_URL}\n",
			[]string{`:1: store: set exactly one of store.path, store.url, store.url_file, store.url_env; found store.url_file, store.url_env`}},
		{"store empty", "store: {path: \"\"}\n", []string{`:1: store.path: set store.path (a SQLite file) or one of store.url, store.url_file, store.url_env (PostgreSQL)`}},
		{"store url not postgres", "store:\n  url: mysql://nsguard@127.0.0.1/nsguard\n", []string{`:2: store.url: want a postgres:// URL, got scheme "mysql"`}},
		{"store url without database", "store:\n  url: postgres://nsguard@127.0.0.1:5432\n", []string{`:2: store.url: the URL names no database`}},
		{"store url with password", "store:\n  url: postgres://nsguard:hunter2-secret@127.0.0.1/nsguard\n",
			[]string{`:2: store.url: holds a password: put the URL in a file (store.url_file) or an environment variable (store.url_env), never in the config`}},
		{"vantage name with a space", "cluster: {vantage: \"vantage fra\"}\n", []string{`:1: cluster.vantage: want 1 to 40 letters, digits, '.', '_' or '-' (starting with a letter or digit), got "vantage fra"`}},
		{"lease too short", "cluster: {lease: 1s}\n", []string{`:1: cluster.lease: must be 3s to 5m0s, got 1s`}},
		{"lease too long", "cluster: {lease: 1h}\n", []string{`:1: cluster.lease: must be 3s to 5m0s, got 1h0m0s`}},
		{"negative quorum", "alerts: {quorum: -1}\n", []string{`:1: alerts.quorum: must be 0 (a majority of the vantage points that reported) to 100, got -1`}},
		{"syntax error", "domains: [\n", []string{`invalid YAML`}},
		{"empty", "", []string{`config is empty`}},
		{"several problems at once", "resolver:\n  retries: 99\n  port: 0\ndomains:\n  - {name: a-example.com, tier: 9}\n", []string{
			`:2: resolver.retries: must be 0..10, got 99`, `:3: resolver.port: must be 1..65535, got 0`, `:5: domains[0].tier: must be 0..3, got 9`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("want %q in:\n%s", w, msg)
				}
			}
			if n := strings.Count(msg, "\n") + 1; n != len(tc.want) {
				t.Errorf("want %d problems, got %d:\n%s", len(tc.want), n, msg)
			}
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, "bad.yaml") {
					t.Errorf("problem does not name the file: %q", line)
				}
			}
		})
	}
}

// A PostgreSQL key replaces the default SQLite path; the URL's password
// never appears in an error.
func TestStoreKeys(t *testing.T) {
	for _, tc := range []struct {
		name, yaml   string
		wantPostgres bool
		wantString   string
	}{
		{"default", "listen: 127.0.0.1:9153\n", false, "sqlite:/var/lib/nsguard/nsguard.db"},
		{"path", "store: {path: /srv/nsguard.db}\n", false, "sqlite:/srv/nsguard.db"},
		{"url", "store: {url: \"postgres://nsguard@10.0.0.5:5432/nsguard?sslmode=verify-full\"}\n", true, "postgres://nsguard@10.0.0.5:5432/nsguard?sslmode=verify-full"},
		{"url_file", "store: {url_file: secrets/db-url}\n", true, "postgres (URL in " + filepath.Join("conf", "secrets", "db-url") + ")"},
		{"url_env", "store: {url_env: NSGUARD_DB_URL}\n", true, "postgres (URL in $NSGUARD_DB_URL)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join("conf", "nsguard.yaml"), []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Store.Postgres() != tc.wantPostgres || cfg.Store.String() != tc.wantString {
				t.Fatalf("store = %+v: Postgres() %v, String() %q; want %v, %q", cfg.Store, cfg.Store.Postgres(), cfg.Store.String(), tc.wantPostgres, tc.wantString)
			}
			if tc.wantPostgres && cfg.Store.Path != "" {
				t.Fatalf("the default path %q stayed beside a PostgreSQL key", cfg.Store.Path)
			}
		})
	}
	_, err := Parse("bad.yaml", []byte("store: {url: \"postgres://nsguard:hunter2-secret@127.0.0.1/nsguard\"}\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a URL with a password: err = %v, want a refusal that does not repeat the password", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read config") {
		t.Fatalf("got %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
		if back, err := ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("%s does not round-trip: %s", in, got)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "ten", "1y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBadConfigFiles: each testdata/bad/NAME.yaml is refused with exactly
// the problems in NAME.err, in order.
func TestBadConfigFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(f)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := err.Error(); got != strings.TrimRight(string(want), "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestOneDocument: an explicit start marker and an end marker are fine;
// only a second document is refused.
func TestOneDocument(t *testing.T) {
	for _, yaml := range []string{
		"---\nstore: {path: a.db}\n",
		"%YAML 1.1\n---\nstore: {path: a.db}\n",
		"store: {path: a.db}\n...\n# nothing more\n",
		"store: {path: a.db}\nlisten: \"---\"\n",
	} {
		if _, err := Parse("one.yaml", []byte(yaml)); err != nil && !strings.Contains(err.Error(), "listen") {
			t.Errorf("%q refused: %v", yaml, err)
		}
	}
}

// FuzzParse runs the whole load: decoding, validation and the chunked
// reading of large inventories. No input may panic or hang; every problem
// names the file; and loading in chunks gives exactly what loading whole
// does (errors, values and the line of every field).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, s := range append(seeds, bad...) {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("domains: [{name: a-example.com, tier: 0}]"))
	f.Add([]byte("domains:\n- {name: a-example.com, tier: 0}\n- name: b-example.com\n  tier: 1\nplaybooks: []\n"))
	f.Add([]byte("resolver: {timeout: 90d}"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("problem does not name the file: %q", line)
				}
			}
		} else if len(cfg.Domains) > 0 && cfg.Domains[0].Name == "" {
			t.Fatal("accepted a domain without a name")
		}
		for _, per := range []int{1, 2} {
			agree(t, "fuzz.yaml", data, per)
		}
	})
}
