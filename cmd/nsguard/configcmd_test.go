package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
)

// TestConfigCheckIsWhatTheDaemonAccepts: for each file or variable the
// daemon or a failover plan reads at start, breaking it makes config check
// exit 3 naming the field, and makes the daemon (or the plan) refuse too;
// with everything in place config check passes and the daemon starts.
func TestConfigCheckIsWhatTheDaemonAccepts(t *testing.T) {
	fl := startFailoverLab(t, nil, 0)
	good, err := os.ReadFile(fl.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(fl.cfg)
	// The daemon listens on a port of its own choosing in these tests.
	base := strings.Replace(string(good), "store:", "listen: 127.0.0.1:0\nstore:", 1)
	write := func(t *testing.T, yaml string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "nsguard.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("this is not a key file {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "tsig.key")
	missing := filepath.Join(dir, "missing")

	t.Run("everything in place", func(t *testing.T) {
		cfg := write(t, base)
		code, out, stderr := runCLI(t, "config", "check", cfg)
		if code != 0 || out != cfg+": ok (5 domains, 1 playbook)\n" {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if code, out, stderr := runCLIIn(t, ctx, "", "daemon", "--config", cfg); code != 0 {
			t.Fatalf("the daemon refused a config check passed: exit %d\n%s%s", code, out, stderr)
		}
	})

	for _, tc := range []struct {
		name  string
		yaml  func() string
		env   map[string]string
		field string
		msg   string
		// who else refuses it: "daemon" or "plan"
		also string
	}{
		{name: "slack token variable unset", yaml: func() string { return base }, env: map[string]string{"NSGUARD_TEST_SLACK_TOKEN": ""},
			field: "alerts.slack.token_env", msg: "environment variable NSGUARD_TEST_SLACK_TOKEN is empty or unset", also: "daemon"},
		{name: "slack token file missing", yaml: func() string {
			return strings.Replace(base, "token_env: NSGUARD_TEST_SLACK_TOKEN", fmt.Sprintf("token_file: %q", missing), 1)
		}, field: "alerts.slack.token_file", msg: "read secret file " + missing + ": no such file or directory", also: "daemon"},
		{name: "webhook URL file missing", yaml: func() string {
			return strings.Replace(base, "token_env: NSGUARD_TEST_SLACK_TOKEN", fmt.Sprintf("webhook_url_file: %q", missing), 1)
		}, field: "alerts.slack.webhook_url_file", msg: "slack webhook URL: read secret file " + missing + ": no such file or directory", also: "daemon"},
		{name: "root hints not a hints file", yaml: func() string {
			return strings.Replace(base, fl.env.DNS.HintsFile(), garbage, 1)
		}, field: "resolver.root_hints", msg: "monitor: resolver: root hints " + garbage, also: "daemon"},
		{name: "status pages' password file not one", yaml: func() string {
			return base + fmt.Sprintf("ui:\n  basic_auth_file: %q\n", garbage)
		}, field: "ui.basic_auth_file", msg: garbage + ":1: want user:bcrypt-hash", also: "daemon"},
		{name: "TSIG key file missing", yaml: func() string {
			return strings.Replace(base, key, missing, 1)
		}, field: "playbooks[0].steps[0].dns_update.tsig_file", msg: "tsig_file " + missing + ": no such file or directory", also: "plan"},
		{name: "TSIG key file not a key", yaml: func() string {
			return strings.Replace(base, key, garbage, 1)
		}, field: "playbooks[0].steps[0].dns_update.tsig_file", msg: "tsig_file " + garbage + ": line 1", also: "plan"},
		{name: "webhook secret unset", yaml: func() string {
			return strings.Replace(base, "body: '", "secret_env: NSGUARD_TEST_HOOK_SECRET, body: '", 1)
		}, env: map[string]string{"NSGUARD_TEST_HOOK_SECRET": ""},
			field: "playbooks[0].steps[1].webhook.secret_env", msg: "environment variable NSGUARD_TEST_HOOK_SECRET is empty or unset", also: "plan"},
		{name: "server not an address or a name", yaml: func() string {
			return strings.Replace(base, "name: repoint api\n        dns_update: {server: \"", "name: repoint api\n        dns_update: {server: \"bad server ", 1)
		}, field: "playbooks[0].steps[0].dns_update.server", msg: `want an address or host[:port], got "bad server`, also: "plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := write(t, tc.yaml())
			code, out, stderr := runCLI(t, "config", "check", cfg)
			if code != 3 || out != "" {
				t.Fatalf("config check: exit %d\n%s%s", code, out, stderr)
			}
			if !strings.Contains(stderr, ": "+tc.field+": "+tc.msg) {
				t.Errorf("config check does not say %s: %s:\n%s", tc.field, tc.msg, stderr)
			}
			// The same problem stops the daemon, or the failover plan.
			switch tc.also {
			case "daemon":
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				code, out, stderr := runCLIIn(t, ctx, "", "daemon", "--config", cfg)
				if code != 3 || time.Since(start) > 15*time.Second {
					t.Errorf("the daemon did not refuse it: exit %d after %s\n%s%s", code, time.Since(start), out, stderr)
				}
			case "plan":
				code, out, stderr := runCLI(t, "failover", "plan", "shop-to-backup", "--config", cfg)
				if code != 3 {
					t.Errorf("the plan did not refuse it: exit %d\n%s%s", code, out, stderr)
				}
			}
		})
	}
}

// TestConfigCheckFindsTheFile: the file comes from the argument, --config
// or $NSGUARD_CONFIG; two different files are refused.
func TestConfigCheckFindsTheFile(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "one.yaml")
	two := filepath.Join(dir, "two.yaml")
	os.WriteFile(one, []byte("store: {path: a.db}\ndomains:\n  - {name: a-example.com, tier: 0}\n"), 0o644)
	os.WriteFile(two, []byte("store: {path: a.db}\ndomains:\n  - {name: a-example.com, tier: 0}\n  - {name: b-example.com, tier: 1}\n"+
		"playbooks:\n  - {name: p, primary: a-example.com, backup: b-example.com, steps: [{wait: 1s}]}\n"), 0o644)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		out  string
	}{
		{"argument", "", []string{one}, 0, one + ": ok (1 domain, 0 playbooks)\n"},
		{"--config", "", []string{"--config", two}, 0, two + ": ok (2 domains, 1 playbook)\n"},
		{"-c before the command", "", nil, 0, two + ": ok (2 domains, 1 playbook)\n"},
		{"NSGUARD_CONFIG", two, nil, 0, two + ": ok (2 domains, 1 playbook)\n"},
		{"argument over NSGUARD_CONFIG", two, []string{one}, 0, one + ": ok (1 domain, 0 playbooks)\n"},
		{"the same file twice", "", []string{one, "--config", one}, 0, one + ": ok (1 domain, 0 playbooks)\n"},
		{"two files", "", []string{one, "--config", two}, 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NSGUARD_CONFIG", tc.env)
			args := append([]string{"config", "check"}, tc.args...)
			if tc.name == "-c before the command" {
				args = []string{"-c", two, "config", "check"}
			}
			code, out, stderr := runCLI(t, args...)
			if code != tc.code || out != tc.out {
				t.Fatalf("exit %d, want %d\n%q\nwant %q\n%s", code, tc.code, out, tc.out, stderr)
			}
			if code == 3 && !strings.Contains(stderr, "two config files given") {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}
}

// TestConfigCheckJSON: -o json carries every problem with file, line and
// field, and never a secret's value.
func TestConfigCheckJSON(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("xoxb-SECRET-VALUE\nsecond line\n"), 0o600)
	cfg := filepath.Join(dir, "nsguard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`store: {path: a.db}
alerts:
  slack: {token_file: %q, channel: "#x"}
domains:
  - {name: a-example.com, tier: 7}
`, token)), 0o644)
	code, out, stderr := runCLI(t, "config", "check", "-o", "json", cfg)
	if code != 3 || stderr != "" {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(out, "SECRET") {
		t.Fatalf("the secret is in the output:\n%s", out)
	}
	var rep configReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := configReport{File: cfg, Domains: 1, Problems: config.Errors{
		{File: cfg, Line: 3, Field: "alerts.slack.token_file", Msg: "secret file " + token + " holds more than one line"},
		{File: cfg, Line: 5, Field: "domains[0].tier", Msg: "must be 0..3, got 7"},
	}}
	if fmt.Sprint(rep) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", rep, want)
	}
	os.WriteFile(token, []byte("xoxb-SECRET-VALUE\n"), 0o600)
	os.WriteFile(cfg, []byte(fmt.Sprintf("store: {path: a.db}\nalerts:\n  slack: {token_file: %q, channel: \"#x\"}\n", token)), 0o644)
	code, out, _ = runCLI(t, "config", "check", "-o", "json", cfg)
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"problems": []`) || strings.Contains(out, "SECRET") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 domains"}, {1, "1 domain"}, {2, "2 domains"}, {100000, "100000 domains"}} {
		if got := count(tc.n, "domain"); got != tc.want {
			t.Errorf("count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestConfigCheckConfigOnly: --config-only validates the file and does not
// read what it names.
func TestConfigCheckConfigOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nsguard.yaml")
	os.WriteFile(cfg, []byte("store: {path: a.db}\nalerts:\n  slack: {token_file: /run/credentials/nsguard.service/slack-token, channel: \"#x\"}\ndomains:\n  - {name: a-example.com, tier: 0}\n"), 0o644)
	if code, out, stderr := runCLI(t, "config", "check", cfg); code != 3 || !strings.Contains(stderr, "alerts.slack.token_file") {
		t.Fatalf("without --config-only: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, "config", "check", "--config-only", cfg); code != 0 || out != cfg+": ok (1 domain, 0 playbooks)\n" {
		t.Fatalf("--config-only: exit %d\n%s%s", code, out, stderr)
	}
	os.WriteFile(cfg, []byte("domains:\n  - {name: a-example.com, tier: 9}\n"), 0o644)
	if code, _, stderr := runCLI(t, "config", "check", "--config-only", cfg); code != 3 || !strings.Contains(stderr, "domains[0].tier: must be 0..3") {
		t.Fatalf("--config-only still validates: exit %d\n%s", code, stderr)
	}
}
