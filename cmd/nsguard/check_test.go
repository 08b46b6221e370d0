package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
)

// startEnv starts the DNS and registration labs and writes a config for them.
func startEnv(t *testing.T, extra string) (*labenv.Env, string) {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("starting labs: %v", err)
	}
	t.Cleanup(func() { env.Close() })
	path, err := env.WriteConfig(extra)
	if err != nil {
		t.Fatal(err)
	}
	return env, path
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

type checkJSON struct {
	Domains []struct {
		Domain   string `json:"domain"`
		Status   string `json:"status"`
		Findings []struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
			Subject  string `json:"subject"`
			Evidence []struct {
				Server, Query, Answer string
			} `json:"evidence"`
		} `json:"findings"`
		Registration struct {
			Source    string    `json:"source"`
			Expiry    time.Time `json:"expiry"`
			Registrar struct {
				Name string `json:"name"`
			} `json:"registrar"`
			Cached   bool   `json:"cached"`
			CacheAge string `json:"cache_age"`
		} `json:"registration"`
		DNS struct {
			Queries int `json:"queries"`
		} `json:"dns"`
	} `json:"domains"`
	Summary struct {
		Total, Critical, Warning, OK, Errors int
	} `json:"summary"`
}

func decodeCheck(t *testing.T, s string) checkJSON {
	t.Helper()
	var out checkJSON
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("check -o json is not JSON: %v\n%s", err, s)
	}
	return out
}

func TestCheckHealthyLabExitsZero(t *testing.T) {
	_, cfg := startEnv(t, "")
	code, out, stderr := runCLI(t, "check", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "5 domains: 0 critical, 0 warning, 5 ok") {
		t.Errorf("summary missing:\n%s", out)
	}
}

func TestCheckCatchesHijack(t *testing.T) {
	env, cfg := startEnv(t, "")
	if err := env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "check", "--config", cfg, "-o", "json")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (critical)\n%s", code, stderr)
	}
	rep := decodeCheck(t, out)
	found := false
	for _, d := range rep.Domains {
		if d.Domain != "shop-example.com" {
			if d.Status != "ok" {
				t.Errorf("%s is %s, want ok", d.Domain, d.Status)
			}
			continue
		}
		if d.Status != "critical" {
			t.Errorf("shop-example.com status %s, want critical", d.Status)
		}
		for _, f := range d.Findings {
			if f.ID != "NS_NOT_AS_DECLARED" {
				continue
			}
			found = true
			if f.Severity != "critical" {
				t.Errorf("NS_NOT_AS_DECLARED is %s", f.Severity)
			}
			servers := 0
			for _, e := range f.Evidence {
				if strings.Contains(e.Server, "gtld-servers.net") && strings.Contains(e.Answer, "attacker.net") {
					servers++
				}
			}
			if servers != 2 {
				t.Errorf("want both .com parent servers' answers as evidence, got %+v", f.Evidence)
			}
		}
	}
	if !found {
		t.Fatalf("no NS_NOT_AS_DECLARED for the hijacked domain:\n%s", out)
	}
	// The table for people says the same.
	code, table, _ := runCLI(t, "check", "--config", cfg, "shop-example.com")
	if code != 2 || !strings.Contains(table, "CRITICAL NS_NOT_AS_DECLARED") {
		t.Errorf("table (exit %d):\n%s", code, table)
	}
}

// The registration issue's acceptance test: a tier-0 domain transferred to
// an unapproved registrar, with serverTransferProhibited removed and 20 days
// left, is critical three times over and check exits 2.
func TestCheckRegistrationPolicy(t *testing.T) {
	env, cfg := startEnv(t, "")
	err := env.Reg.Update("shop-example.com", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
		var keep []string
		for _, s := range d.Statuses {
			if s != "serverTransferProhibited" {
				keep = append(keep, s)
			}
		}
		d.Statuses = keep
		d.Expiry = time.Now().AddDate(0, 0, 20)
		d.RegistrarExpiry = time.Time{}
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "check", "--config", cfg, "--only", "registration", "-o", "json")
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, out, stderr)
	}
	rep := decodeCheck(t, out)
	got := map[string]string{}
	for _, d := range rep.Domains {
		if d.Domain == "shop-example.com" {
			for _, f := range d.Findings {
				got[f.ID+"/"+f.Subject] = f.Severity
			}
			if d.DNS.Queries != 0 {
				t.Errorf("--only registration sent %d DNS queries", d.DNS.Queries)
			}
		} else if len(d.Findings) > 0 {
			t.Errorf("%s: unexpected findings %+v", d.Domain, d.Findings)
		}
	}
	for _, want := range []string{"REGISTRAR_NOT_APPROVED/", "LOCK_MISSING/serverTransferProhibited", "EXPIRY_SOON/"} {
		if got[want] != "critical" {
			t.Errorf("%s: severity %q, want critical (all: %v)", want, got[want], got)
		}
	}
}

// Issue 11: a by-hand check right after a registrar transfer and the
// removal of the locks reports them, although an earlier run cached the
// registration; --cached reports the cached record and says it is cached
// and how old.
func TestCheckSeesRegistrarTransferAtOnce(t *testing.T) {
	env, cfg := startEnv(t, "")
	const domain = "shop-example.com"
	if err := env.Reg.Update(domain, func(d *reglab.Domain) {
		d.Expiry, d.RegistrarExpiry = time.Now().AddDate(0, 0, 60), time.Time{}
	}); err != nil {
		t.Fatal(err)
	}
	check := func(args ...string) (int, map[string]string, checkJSON, string) {
		t.Helper()
		code, out, stderr := runCLI(t, append([]string{"check", "--config", cfg, "--only", "registration", "-o", "json", domain}, args...)...)
		rep := decodeCheck(t, out)
		if len(rep.Domains) != 1 {
			t.Fatalf("report (exit %d):\n%s\n%s", code, out, stderr)
		}
		got := map[string]string{}
		for _, f := range rep.Domains[0].Findings {
			got[f.ID+"/"+f.Subject] = f.Severity
		}
		return code, got, rep, out
	}

	code, got, rep, out := check()
	if code != 1 || got["EXPIRY_SOON/"] != "warning" || got["REGISTRAR_NOT_APPROVED/"] != "" || rep.Domains[0].Registration.Cached {
		t.Fatalf("first check: exit %d, findings %v, cached %v\n%s", code, got, rep.Domains[0].Registration.Cached, out)
	}
	if strings.Contains(out, "cached") {
		t.Errorf("a fresh check mentions a cache:\n%s", out)
	}

	// Seconds later the domain is transferred and unlocked at the registry.
	if err := env.Reg.Transfer(domain, "Evil Registrar Ltd", "9999"); err != nil {
		t.Fatal(err)
	}
	if err := env.Reg.RemoveLocks(domain); err != nil {
		t.Fatal(err)
	}

	// --cached: the record the first check left, and it says so.
	code, got, rep, out = check("--cached")
	reg := rep.Domains[0].Registration
	if code != 1 || got["REGISTRAR_NOT_APPROVED/"] != "" || reg.Registrar.Name != "MarkMonitor Inc." {
		t.Errorf("--cached: exit %d, findings %v, registrar %q; want the cached record\n%s", code, got, reg.Registrar.Name, out)
	}
	age := regexp.MustCompile(`^\d+s$`)
	if !reg.Cached || !age.MatchString(reg.CacheAge) {
		t.Errorf("--cached JSON: cached %v, cache_age %q; want true and seconds", reg.Cached, reg.CacheAge)
	}
	for _, f := range rep.Domains[0].Findings {
		if len(f.Evidence) == 0 || !regexp.MustCompile(`\(cached \d+s ago\)$`).MatchString(f.Evidence[0].Answer) {
			t.Errorf("--cached: %s evidence does not say it is cached and how old: %+v", f.ID, f.Evidence)
		}
	}
	_, table, _ := runCLI(t, "check", "--config", cfg, "--only", "registration", "--cached", domain)
	if !regexp.MustCompile(`registration data cached \d+s ago \(fetched \S+\)`).MatchString(table) || !strings.Contains(table, "ago)") {
		t.Errorf("--cached table does not say the data is cached:\n%s", table)
	}

	// By default the registry is asked: the transfer and the missing locks show.
	code, got, rep, out = check()
	if code != 2 || got["REGISTRAR_NOT_APPROVED/"] != "critical" || got["LOCK_MISSING/serverTransferProhibited"] != "critical" ||
		got["LOCK_MISSING/clientTransferProhibited"] != "critical" || rep.Domains[0].Registration.Cached {
		t.Errorf("check after the transfer: exit %d, findings %v, cached %v\n%s", code, got, rep.Domains[0].Registration.Cached, out)
	}
	if strings.Contains(out, "cached") {
		t.Errorf("a fresh check mentions a cache:\n%s", out)
	}
	_, table, _ = runCLI(t, "check", "--config", cfg, "--only", "registration", domain)
	if !strings.Contains(table, "REGISTRAR_NOT_APPROVED") || strings.Contains(table, "cached") {
		t.Errorf("table after the transfer:\n%s", table)
	}
}

func TestCheckReadsCNOverWhois(t *testing.T) {
	env, cfg := startEnv(t, "")
	want, _ := env.Reg.Domain("shop-example.cn")
	code, out, stderr := runCLI(t, "check", "--config", cfg, "shop-example.cn", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	rep := decodeCheck(t, out)
	r := rep.Domains[0].Registration
	if r.Source != "whois" {
		t.Errorf(".cn source %q, want whois", r.Source)
	}
	if !r.Expiry.Equal(want.Expiry) {
		t.Errorf(".cn expiry %s, want %s", r.Expiry, want.Expiry)
	}
}

func TestCheckOnlyDNS(t *testing.T) {
	env, cfg := startEnv(t, "")
	code, out, _ := runCLI(t, "check", "--config", cfg, "--only", "dns", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := len(env.Reg.Requests()); n != 0 {
		t.Errorf("--only dns asked registration servers %d times", n)
	}
	for _, d := range decodeCheck(t, out).Domains {
		if d.Registration.Source != "" {
			t.Errorf("%s has registration data with --only dns", d.Domain)
		}
	}
}

func TestCheckBadInputExitsThree(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("domains:\n  - name: shop-example.com\n    tier: 9\n    wtach: [www]\n"), 0o644)
	for _, args := range [][]string{
		{"check", "--config", bad},
		{"check", "--config", filepath.Join(dir, "missing.yaml")},
		{"check", "--config", bad, "-o", "xml"},
		{"config", "check", bad},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 3 {
			t.Errorf("%v: exit %d, want 3 (%s)", args, code, stderr)
		}
	}
	_, _, stderr := runCLI(t, "config", "check", bad)
	if !strings.Contains(stderr, bad+":4: domains[0].wtach: unknown field") {
		t.Errorf("error does not name file, line and field:\n%s", stderr)
	}
}

func TestDemo(t *testing.T) {
	code, out, stderr := runCLI(t, "demo", "--hold", "0s")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"healthy lab", "approved as version 1", "attacker", "┌─ Slack #dns-oncall", "NS_NOT_AS_DECLARED",
		"Plan checksum:", "PASS       backup-independent", "run 1 done and verified", "public resolver now answers api.shop-switch.com CNAME api.shop-backup.net.",
		"Acknowledged by on-call: calling the .com registry", "✅ Resolved after", "the page above now reads: ✅ RESOLVED · shop-example.com (was CRITICAL)", "Done: hijack → Slack page → failover to shop-backup.net → verified → resolved"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	checkReadmeExcerpt(t, out)
}

// checkReadmeExcerpt holds the README's demo excerpt to what the demo
// prints: every line of it appears in the output, in order. A line that
// ends in " …" stands for any line it starts; a line of "…" alone for
// lines left out.
func checkReadmeExcerpt(t *testing.T, out string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "This excerpt is checked against the demo's output by a\ntest")
	if i < 0 {
		t.Fatal("README lacks the demo excerpt")
	}
	block := text[i:]
	block = block[strings.Index(block, "```\n")+4:]
	block = block[:strings.Index(block, "```")]
	got := strings.Split(out, "\n")
	at := 0
	for _, want := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		w := strings.TrimRight(want, " ")
		if strings.TrimSpace(w) == "…" || w == "" {
			continue
		}
		prefix := strings.HasSuffix(w, " …")
		w = strings.TrimSuffix(w, " …")
		found := false
		for ; at < len(got); at++ {
			if g := strings.TrimRight(got[at], " "); g == w || (prefix && strings.HasPrefix(g, w)) {
				found, at = true, at+1
				break
			}
		}
		if !found {
			t.Errorf("README's demo excerpt line is not in the demo's output (in order): %q", want)
			return
		}
	}
}
