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
	"time"

	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/registry"
)

// registryTestConfig starts a registration lab with the demo domains and
// writes a config pointing RDAP (bootstrap) and WHOIS (IANA) at it. Every
// address in it, and in the lab's answers, is a 127.0.0.1 literal.
func registryTestConfig(t *testing.T, extra string) (*reglab.Lab, string) {
	t.Helper()
	lab, err := reglab.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	lab.SeedDemo(time.Now())
	dir := t.TempDir()
	cfg := fmt.Sprintf(`store: {path: %s}
registry:
  rdap_bootstrap: %s
  iana_whois: %s
  timeout: 2s
  max_qps_per_server: 1000
policy:
  approved_registrars: ["MarkMonitor Inc."]
domains:
  - {name: shop-example.com, tier: 0}
%s`, filepath.Join(dir, "nsguard.db"), lab.BootstrapURL(), lab.IANAWhoisAddr(), extra)
	path := filepath.Join(dir, "nsguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return lab, path
}

func runNsguard(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

const allContacts = `contacts:
  icann: {name: ICANN Contractual Compliance, url: "https://www.icann.org/compliance/complaint"}
  registrar_account_manager: {name: Dana Account, role: MarkMonitor account manager, email: dana@markmonitor.example, phone: "+1 555 0100"}
  legal: {name: Legal on call, email: legal@shop.example}
`

func TestRegistryLookupCommand(t *testing.T) {
	lab, cfg := registryTestConfig(t, "")
	code, out, stderr := runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"MarkMonitor Inc. (IANA 292)", "serverTransferProhibited", "rdap " + lab.RDAPBase("com"),
		"ns1.shop-example-dns.net", "Servers asked:", "RDAP bootstrap", "abusecomplaints@markmonitor.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, stderr = runNsguard(t, "--config", cfg, "registry", "lookup", "example.cn", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rec registry.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	d, _ := lab.Domain("example.cn")
	if rec.Source != registry.SourceWHOIS || !rec.Expiry.Equal(d.Expiry.Truncate(time.Second)) || rec.Raw != "" {
		t.Errorf("record = %+v, want whois with expiry %v and no raw", rec, d.Expiry)
	}

	// Fresh by default: every run asks the registry, and says nothing of a cache.
	before := lab.Count("rdap-registry")
	code, out, _ = runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com", "-o", "json")
	if code != exitOK || lab.Count("rdap-registry") != before+1 || strings.Contains(out, `"cached"`) {
		t.Errorf("default run: exit %d, registry asked %d times, want once and no cache mark:\n%s", code, lab.Count("rdap-registry")-before, out)
	}
	// --cached: the record the previous run left beside the store, marked
	// cached with its age, in JSON and in the table.
	before = lab.Count("rdap-registry")
	code, out, _ = runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com", "--cached", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rec); err != nil || code != exitOK {
		t.Fatalf("--cached -o json: exit %d, %v\n%s", code, err, out)
	}
	if lab.Count("rdap-registry") != before || !rec.Cached || !regexp.MustCompile(`^\d+s$`).MatchString(rec.CacheAge) {
		t.Errorf("--cached: registry asked %d times, cached %v, age %q; want the cache, seconds old", lab.Count("rdap-registry")-before, rec.Cached, rec.CacheAge)
	}
	code, out, _ = runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com", "--cached")
	if code != exitOK || !regexp.MustCompile(`Source +rdap \S+ \(fetched \S+, cached \d+s ago\)`).MatchString(out) || lab.Count("rdap-registry") != before {
		t.Errorf("--cached table does not say the record is cached and how old:\n%s", out)
	}
	// --raw asks again (caches keep no raw answers), --cached or not.
	code, out, _ = runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com", "--cached", "--raw", "-o", "json")
	if code != exitOK || lab.Count("rdap-registry") != before+1 || !strings.Contains(out, `"raw"`) {
		t.Errorf("--cached --raw: exit %d, registry asked %d times:\n%s", code, lab.Count("rdap-registry")-before, out)
	}
	// --fresh, the old spelling of the default, still works and says so.
	code, out, stderr = runNsguard(t, "--config", cfg, "registry", "lookup", "shop-example.com", "--fresh", "-o", "json")
	if code != exitOK || lab.Count("rdap-registry") != before+2 || !strings.Contains(stderr, "deprecated") || json.Unmarshal([]byte(out), &rec) != nil {
		t.Errorf("--fresh: exit %d, asked %d times, stderr %q", code, lab.Count("rdap-registry")-before, stderr)
	}
}

func TestRegistryLookupCommandErrors(t *testing.T) {
	lab, cfg := registryTestConfig(t, "")
	lab.RemoveDomain("shop-backup.net")
	lab.Update("example.de", func(d *reglab.Domain) { d.WHOIS = reglab.Malformed })
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"registry", "lookup", "shop-backup.net"}, exitCritical, "not registered"},
		{[]string{"registry", "lookup", "example.de"}, exitUsage, "malformed answer"},
		{[]string{"registry", "lookup", "not a domain"}, exitUsage, "invalid domain name"},
		{[]string{"registry", "lookup", "shop-example.com", "-o", "yaml"}, exitUsage, "unknown output"},
		{[]string{"registry", "lookup"}, exitUsage, "accepts 1 arg"},
	} {
		code, _, stderr := runNsguard(t, append([]string{"--config", cfg}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	code, _, stderr := runNsguard(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"), "registry", "lookup", "shop-example.com")
	if code != exitUsage || !strings.Contains(stderr, "cannot read config") {
		t.Errorf("missing config: exit %d, %q", code, stderr)
	}
}

func TestContactsCommand(t *testing.T) {
	_, cfg := registryTestConfig(t, allContacts)
	code, out, stderr := runNsguard(t, "--config", cfg, "contacts", "shop-example.com")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	for _, want := range []string{"registrar abuse", "MarkMonitor Inc. (IANA 292)", "registry .com administrative",
		"info@verisign-grs.com", "registrar_account_manager", "dana@markmonitor.example"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Missing") {
		t.Errorf("complete sheet lists missing pieces:\n%s", out)
	}

	code, out, _ = runNsguard(t, "--config", cfg, "contacts", "shop-example.com", "-o", "markdown")
	if code != exitOK || !strings.HasPrefix(out, "# Emergency contacts: shop-example.com") || !strings.Contains(out, "| Abuse phone | +1.2086851750 |") {
		t.Errorf("markdown (exit %d):\n%s", code, out)
	}

	code, out, _ = runNsguard(t, "--config", cfg, "contacts", "shop-example.com", "-o", "json")
	var sheet registry.ContactSheet
	if err := json.Unmarshal([]byte(out), &sheet); err != nil || code != exitOK {
		t.Fatalf("json (exit %d): %v\n%s", code, err, out)
	}
	if sheet.Registry.Technical.Phone != "+1 703 925-6999" || len(sheet.Configured) != 3 || len(sheet.Missing) != 0 {
		t.Errorf("sheet = %+v", sheet)
	}
}

func TestContactsCommandMissing(t *testing.T) {
	_, cfg := registryTestConfig(t, "")
	code, out, stderr := runNsguard(t, "--config", cfg, "contacts", "example.de")
	if code != exitWarning {
		t.Fatalf("exit %d, want %d: %s", code, exitWarning, stderr)
	}
	for _, want := range []string{"Missing:", "registrar name (not published by whois", "contacts.icann", "registry .de technical"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, stderr := runNsguard(t, "--config", cfg, "contacts", "..."); code != exitUsage || !strings.Contains(stderr, "invalid domain") {
		t.Errorf("bad domain: exit %d %q", code, stderr)
	}
	if code, _, _ := runNsguard(t, "--config", cfg, "contacts", "example.de", "-o", "pdf"); code != exitUsage {
		t.Errorf("bad output: exit %d", code)
	}
}

// The lookup table says where the record came from and how old it is, and
// how WHOIS fields were read where the readings differed.
func TestWriteRegistryRecordCachedAndNotes(t *testing.T) {
	now := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	rec := &registry.Record{Domain: "example.tk", Source: registry.SourceWHOIS, Server: "whois.dot.tk:43",
		FetchedAt: now.Add(-(3*time.Hour + 12*time.Minute)), Cached: true, CacheAge: "3h12m",
		ParseNotes: []string{`expiry: 2026-03-02 from "Record will expire on" ("03/02/2026", month first by the answer's "12/18/2001" (month first)); whois-parser read 2026-02-03`}}
	var b bytes.Buffer
	writeRegistryRecord(&b, rec, registry.BootstrapInfo{}, now)
	out := b.String()
	for _, want := range []string{"Source        whois whois.dot.tk:43 (fetched 2026-01-06T08:48:00Z, cached 3h12m ago)",
		"Read          expiry: 2026-03-02 from \"Record will expire on\""} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	rec.Cached = false
	b.Reset()
	writeRegistryRecord(&b, rec, registry.BootstrapInfo{}, now)
	if strings.Contains(b.String(), "cached") {
		t.Errorf("a fresh record's table says cached:\n%s", b.String())
	}
}
