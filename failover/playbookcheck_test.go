package failover

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/config"
)

func TestServerSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		host string
		port int
		bad  bool
	}{
		{in: "127.0.0.11", addr: "127.0.0.11:53"},
		{in: "127.0.0.11:5353", addr: "127.0.0.11:5353"},
		{in: "[2001:db8::1]:53", addr: "[2001:db8::1]:53"},
		{in: "2001:db8::1", addr: "[2001:db8::1]:53"},
		{in: "ns1.example.com", host: "ns1.example.com", port: 53},
		{in: "ns1.example.com:5353", host: "ns1.example.com", port: 5353},
		{in: "ns1.example.com:99x", bad: true},
		{in: "ns1.example.com:0", bad: true},
		{in: "bad server", bad: true},
		{in: "http://ns1.example.com", bad: true},
		{in: "", bad: true},
	} {
		ap, host, port, err := serverSpec(tc.in, 53)
		switch {
		case tc.bad:
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.addr != "" && ap.String() != tc.addr:
			t.Errorf("%q: address %s, want %s", tc.in, ap, tc.addr)
		case tc.host != "" && (host != tc.host || port != tc.port):
			t.Errorf("%q: %s port %d, want %s port %d", tc.in, host, port, tc.host, tc.port)
		}
	}
}

// TestCheckPlaybooks: what a plan would stop on is found without a plan, on the
// field's line; a playbook whose files are all there has no problem.
func TestCheckPlaybooks(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "tsig.key")
	if err := os.WriteFile(key, []byte("key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"aGVsbG8gd29ybGQ=\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NSGUARD_TEST_PREFLIGHT_SECRET", "")
	yaml := `store: {path: a.db}
domains: [{name: a-example.com, tier: 0}]
playbooks:
  - name: good
    primary: a-example.com
    backup: b-example.net
    steps:
      - dns_update: {server: "ns1.example.com:5353", zone: s.example., tsig_file: tsig.key, replace: ["a.s.example. 60 IN A 192.0.2.1"]}
      - webhook: {url: "https://hooks.internal/{{.Backup}}"}
      - verify: {name: a.s.example., type: A, expect: 192.0.2.1, servers: [127.0.0.1]}
  - name: bad
    primary: a-example.com
    backup: b-example.net
    steps:
      - dns_update: {server: 127.0.0.1, zone: s.example., tsig_file: missing.key, replace: ["a.s.example. 60 IN A 192.0.2.1"]}
      - webhook: {url: "https://hooks.internal/{{.Nope}}", secret_env: NSGUARD_TEST_PREFLIGHT_SECRET}
      - verify: {name: a.s.example., type: A, expect: not-an-address, servers: [ns1.example.com]}
      - notify: {message: "{{.Backup"}
`
	cfg, err := config.Parse(filepath.Join(dir, "nsguard.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckPlaybooks(cfg).Error()
	want := []string{
		`:15: playbooks[1].steps[0].dns_update.tsig_file: tsig_file ` + filepath.Join(dir, "missing.key") + `: no such file or directory`,
		`:16: playbooks[1].steps[1].webhook.secret_env: environment variable NSGUARD_TEST_PREFLIGHT_SECRET is empty or unset`,
		`:16: playbooks[1].steps[1].webhook: url template: template: url:1:25: executing "url" at <.Nope>`,
		`:17: playbooks[1].steps[2].verify.expect: expect: "not-an-address" is not A data`,
		`:18: playbooks[1].steps[3].notify.message: message template: template: message:1: unclosed action`,
	}
	lines := strings.Split(got, "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), got)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("problem %d:\n%s\nwant it to contain\n%s", i, lines[i], w)
		}
	}
}
