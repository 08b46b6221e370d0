package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/reglab"
)

// auditLab starts the DNS lab with dnslab.AuditWorld and the registration
// lab seeded to match; it returns both and the directory for configs.
func auditLab(t *testing.T) (*dnslab.Lab, *reglab.Lab, string) {
	t.Helper()
	ctx := context.Background()
	lab, err := dnslab.Start(ctx, dnslab.Options{World: dnslab.AuditWorld})
	if err != nil {
		t.Fatalf("starting the DNS lab: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	reg, err := reglab.Start(ctx)
	if err != nil {
		t.Fatalf("starting the registration lab: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	dnslab.SeedAuditRegistry(reg, time.Now())
	return lab, reg, t.TempDir()
}

// auditLabConfig writes the full audit lab inventory's config.
func auditLabConfig(t *testing.T) string {
	t.Helper()
	lab, reg, dir := auditLab(t)
	return writeAuditConfig(t, dir, lab.ConfigYAML(filepath.Join(dir, "nsguard.db"), dnslab.AuditExtraYAML(reg)))
}

func writeAuditConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "nsguard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// labOnlyYAML is a config for the labs with a hand-picked inventory.
func labOnlyYAML(lab *dnslab.Lab, reg *reglab.Lab, dir, domains string) string {
	var res []string
	for _, a := range lab.Resolvers() {
		res = append(res, fmt.Sprintf("%q", a.String()))
	}
	return fmt.Sprintf(`store: {path: %q}
resolver: {root_hints: %q, port: %d, ipv6: false, timeout: 300ms, retries: 1, max_qps_per_server: 10000, public_resolvers: [%s]}
policy: {approved_registrars: ["MarkMonitor Inc."], max_services_per_domain: 3}
registry: {rdap_bootstrap: %q, iana_whois: %q, timeout: 2s, max_qps_per_server: 1000}
domains:
%s`, filepath.Join(dir, "nsguard.db"), lab.HintsFile(), lab.Port(), strings.Join(res, ", "),
		reg.BootstrapURL(), reg.IANAWhoisAddr(), domains)
}

func runAudit(t *testing.T, cfg string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--config", cfg, "audit"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func auditJSON(t *testing.T, cfg string) *audit.Report {
	t.Helper()
	code, out, stderr := runAudit(t, cfg, "-o", "json")
	if code != exitCritical {
		t.Fatalf("audit -o json: exit %d, want %d (critical findings)\nstderr: %s", code, exitCritical, stderr)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit -o json is not a report: %v\n%s", err, out)
	}
	return &rep
}

// auditCase is one thing the audit lab was built to contain and what the
// audit must say about it.
type auditCase struct {
	name    string
	domain  string
	id      string
	subject string
	sev     finding.Severity
	reason  []string // each must appear in the finding's message
}

var auditCases = []auditCase{
	{"tier-0 domain with more than twice the services allowed", "portal-example.com", audit.IDDomainShared, "", finding.Critical,
		[]string{"7 services", "more than the 3 policy allows", "keep portal-web, portal-api, portal-admin", "move partner-web, partner-api, careers-web to a new domain"}},
	{"tier-2 domain over the limit", "group-example.com", audit.IDDomainShared, "", finding.Warning,
		[]string{"5 services", "move brand-assets, jobs-api to a new domain"}},
	{"tier-0 domain without a backup", "pay-example.org", audit.IDDomainUnbacked, "", finding.Critical,
		[]string{"tier 0 and has no backup domain"}},
	{"tier-1 domain without a backup", "corp-example.net", audit.IDDomainUnbacked, "", finding.Warning,
		[]string{"tier 1 and has no backup domain"}},
	{"backup sharing the primary's DNS providers", "shop-example.com", audit.IDDomainUnbacked, "", finding.Critical,
		[]string{"shop-backup.net: shares the DNS provider (provider-a.net, provider-b.org)", "move shop-backup.net to a DNS provider"}},
	{"backup under the same TLD, at the same registrar, same registrant", "news-example.com", audit.IDDomainUnbacked, "", finding.Warning,
		[]string{"news-backup.com: shares the registrar (MarkMonitor Inc. (IANA 292))", "shares the TLD (.com)", "shares the registrant (Example Media Ltd)"}},
	{"backup name server in the primary's /24", "mail-example.com", audit.IDDomainUnbacked, "", finding.Warning,
		[]string{"mail-backup.org: shares the name server network", "127.53.1.0/24"}},
	{"expiring backup", "id-example.com", audit.IDDomainUnbacked, "", finding.Critical,
		[]string{"id-backup.net: registration expires in 45 days", "renew id-backup.net"}},
	{"unregistered backup", "shop-example.cn", audit.IDDomainUnbacked, "", finding.Warning,
		[]string{"shop-backup.cn: not registered", "failing its own checks (DELEGATION_MISSING)", "register shop-backup.cn now"}},
	{"CNAME into an undeclared domain", "shop-example.com", audit.IDDependencyUndeclared, "shop-cdn.net", finding.Warning,
		[]string{"api.shop-example.com CNAME api.shop-cdn.net", "add shop-cdn.net to the inventory"}},
	{"one level further: the CDN's own CNAME", "shop-example.com", audit.IDDependencyUndeclared, "edge-cache.org", finding.Warning,
		[]string{"api.shop-example.com CNAME api.shop-cdn.net → api.shop-cdn.net CNAME api.edge-cache.org"}},
	{"MX host in an undeclared domain", "mail-example.com", audit.IDDependencyUndeclared, "mail-hoster.net", finding.Warning,
		[]string{"mail-example.com MX mx1.mail-hoster.net"}},
	{"single DNS provider, rolled up", "group-example.com", "NS_SINGLE_PROVIDER", "", finding.Warning,
		[]string{"provider-c.net"}},
	{"one /24 for every name server, rolled up", "promo-example.com", "NS_SAME_PREFIX", "", finding.Warning,
		[]string{"127.53.1.0/24"}},
	{"no registry lock", "pay-example.org", "LOCK_MISSING", "serverTransferProhibited", finding.Critical, nil},
	{"registrar not approved", "corp-example.net", "REGISTRAR_NOT_APPROVED", "", finding.Critical,
		[]string{"GoDaddy.com, LLC"}},
	{"backup expiring, as the backup's own finding", "id-backup.net", "EXPIRY_SOON", "", finding.Warning,
		[]string{"45 days"}},
}

func findFinding(fs []finding.Finding, domain, id, subject string) (finding.Finding, bool) {
	for _, f := range fs {
		if f.Domain == domain && f.ID == id && f.Subject == subject {
			return f, true
		}
	}
	return finding.Finding{}, false
}

func TestAuditNamesEveryCase(t *testing.T) {
	rep := auditJSON(t, auditLabConfig(t))
	for _, c := range auditCases {
		t.Run(c.name, func(t *testing.T) {
			f, ok := findFinding(rep.Findings, c.domain, c.id, c.subject)
			if !ok {
				t.Fatalf("no %s %s for %s; findings: %v", c.id, c.subject, c.domain, findingKeys(rep.Findings))
			}
			if f.Severity != c.sev {
				t.Errorf("severity %s, want %s", f.Severity, c.sev)
			}
			for _, r := range c.reason {
				if !strings.Contains(f.Message, r) {
					t.Errorf("message lacks %q:\n%s", r, f.Message)
				}
			}
			if len(f.Evidence) == 0 {
				t.Error("no evidence")
			}
		})
	}

	// Precision: the inventory findings are exactly the planted cases, so
	// the independent backup, the backups themselves (their primary's
	// redundancy) and the declared vendors stay quiet.
	var want, got []string
	for _, c := range auditCases {
		if strings.HasPrefix(c.id, "DOMAIN_") || c.id == audit.IDDependencyUndeclared {
			want = append(want, c.domain+"|"+c.id+"|"+c.subject)
		}
	}
	for _, f := range rep.Findings {
		if chk, _ := finding.Lookup(f.ID); chk.Class == "inventory" {
			got = append(got, f.Key())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("inventory findings:\n got  %v\n want %v", got, want)
	}
}

func findingKeys(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key())
	}
	return out
}

func TestAuditIndependenceMatrix(t *testing.T) {
	rep := auditJSON(t, auditLabConfig(t))
	want := map[string]struct {
		verdict string
		shared  []string // dimensions shared
	}{
		"shop-example.com→shop-backup.net":     {audit.VerdictShared, []string{audit.DimNSProvider}},
		"news-example.com→news-backup.com":     {audit.VerdictShared, []string{audit.DimRegistrar, audit.DimTLD, audit.DimRegistrant}},
		"mail-example.com→mail-backup.org":     {audit.VerdictShared, []string{audit.DimNSNetwork}},
		"id-example.com→id-backup.net":         {audit.VerdictUnhealthy, nil},
		"shop-example.cn→shop-backup.cn":       {audit.VerdictUnhealthy, []string{audit.DimTLD}},
		"portal-example.com→portal-backup.net": {audit.VerdictIndependent, nil},
	}
	if len(rep.Backups) != len(want) {
		t.Errorf("%d matrix rows, want %d", len(rep.Backups), len(want))
	}
	for _, b := range rep.Backups {
		key := b.Primary + "→" + b.Backup
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected row %s", key)
			continue
		}
		if b.Verdict != w.verdict {
			t.Errorf("%s: verdict %q, want %q (cells %+v, health %v)", key, b.Verdict, w.verdict, b.Cells, b.Health)
		}
		var shared []string
		for _, c := range b.Cells {
			if c.Status == audit.CellShared {
				shared = append(shared, c.Dimension)
			}
		}
		if !slices.Equal(shared, w.shared) {
			t.Errorf("%s: shared %v, want %v", key, shared, w.shared)
		}
		if len(b.Cells) != len(audit.Dimensions) {
			t.Errorf("%s: %d cells, want one per dimension", key, len(b.Cells))
		}
	}
	pb := rep.Backups[slices.IndexFunc(rep.Backups, func(b audit.BackupCheck) bool { return b.Backup == "portal-backup.net" })]
	for _, c := range pb.Cells {
		if c.Status != audit.CellIndependent {
			t.Errorf("portal-backup.net %s is %s: every dimension was planted independent (%+v)", c.Dimension, c.Status, c)
		}
	}
	cn := rep.Backups[slices.IndexFunc(rep.Backups, func(b audit.BackupCheck) bool { return b.Backup == "shop-backup.cn" })]
	if cn.InInventory {
		t.Error("shop-backup.cn is not in the inventory but the matrix says it is")
	}
}

func TestAuditRollUpsAndRanking(t *testing.T) {
	rep := auditJSON(t, auditLabConfig(t))

	var undeclared []string
	for _, u := range rep.Undeclared {
		undeclared = append(undeclared, u.Domain)
	}
	slices.Sort(undeclared)
	if want := []string{"edge-cache.org", "mail-hoster.net", "shop-cdn.net"}; !slices.Equal(undeclared, want) {
		t.Errorf("undeclared %v, want %v", undeclared, want)
	}

	if len(rep.Shared) != 2 || rep.Shared[0].Domain != "portal-example.com" || rep.Shared[1].Domain != "group-example.com" {
		t.Fatalf("shared ranking %+v, want portal-example.com (radius 56) then group-example.com (10)", rep.Shared)
	}
	if rep.Shared[0].BlastRadius != 7*audit.TierWeights[0] {
		t.Errorf("portal-example.com blast radius %d, want %d", rep.Shared[0].BlastRadius, 7*audit.TierWeights[0])
	}
	if rep.Domains[0].Name != "portal-example.com" {
		t.Errorf("largest blast radius is %s, want portal-example.com", rep.Domains[0].Name)
	}

	owners := map[string]audit.OwnerSummary{}
	for _, o := range rep.Owners {
		owners[o.Owner] = o
	}
	pay := owners["payments"]
	if pay.Worst != finding.Critical || countOf(pay.Counts, "LOCK_MISSING") != 3 || countOf(pay.Counts, audit.IDDomainUnbacked) != 1 {
		t.Errorf("payments roll-up %+v: want 3 LOCK_MISSING and 1 DOMAIN_UNBACKED, critical", pay.Counts)
	}
	if it := owners["it"]; countOf(it.Counts, "REGISTRAR_NOT_APPROVED") != 1 || countOf(it.Counts, audit.IDDependencyUndeclared) != 1 ||
		!slices.Equal(it.Domains, []string{"corp-example.net", "mail-backup.org", "mail-example.com"}) {
		t.Errorf("it roll-up: domains %v counts %+v", it.Domains, it.Counts)
	}
	if mk := owners["marketing"]; countOf(mk.Counts, "NS_SAME_PREFIX") != 1 {
		t.Errorf("marketing roll-up %+v lacks NS_SAME_PREFIX", mk.Counts)
	}
	if rep.Summary.Critical == 0 || rep.Summary.Worst != finding.Critical {
		t.Errorf("summary %+v", rep.Summary)
	}

	d := rep.Digest()
	if len(d.Risks) != audit.DigestRisks {
		t.Fatalf("digest has %d risks, want %d", len(d.Risks), audit.DigestRisks)
	}
	if r := d.Risks[0]; r.Domain != "portal-example.com" || r.ID != audit.IDDomainShared || r.Severity != finding.Critical {
		t.Errorf("largest risk %+v, want portal-example.com DOMAIN_SHARED (critical, radius 56)", r)
	}
	for _, r := range d.Risks {
		if r.Severity != finding.Critical {
			t.Errorf("risk %d is %s while critical ones rank lower", r.Rank, r.Severity)
		}
	}
	body := d.Markdown()
	for _, want := range []string{"**DOMAIN_UNBACKED** 7 on 7 domain(s), worst critical", "1. **CRITICAL** portal-example.com (tier 0, platform)"} {
		if !strings.Contains(body, want) {
			t.Errorf("digest lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(d.Title(), "across 20 domains") {
		t.Errorf("digest title %q", d.Title())
	}
}

func countOf(cs []audit.Count, id string) int {
	for _, c := range cs {
		if c.ID == id {
			return c.Findings
		}
	}
	return 0
}

func TestAuditTable(t *testing.T) {
	code, out, stderr := runAudit(t, auditLabConfig(t))
	if code != exitCritical {
		t.Fatalf("exit %d, want 2\n%s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty when piped: %q", stderr)
	}
	rows := strings.Split(out, "\n")
	for _, c := range auditCases {
		found := false
		for _, r := range rows {
			f := strings.Fields(r)
			if len(f) > 3 && f[0] == c.sev.String() && f[1] == c.id && f[2] == c.domain && (c.subject == "" || slices.Contains(f, c.subject)) {
				found = true
				for _, reason := range c.reason {
					// The table keeps the whole message on the row.
					if !strings.Contains(r, reason) {
						t.Errorf("%s: row lacks %q: %s", c.name, reason, r)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no row %s %s %s", c.name, c.sev, c.id, c.domain)
		}
	}
	for _, want := range []string{"BACKUP INDEPENDENCE", "SHARED DOMAINS", "UNDECLARED DEPENDENCIES", "BLAST RADIUS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks section %s", want)
		}
	}
	matrix := regexp.MustCompile(`(?m)^shop-example\.com\s+0\s+shop-backup\.net\s+ok\s+SHARED\s+ok\s+ok\s+ok\s+not independent\s+ok$`)
	if !matrix.MatchString(out) {
		t.Errorf("matrix row for shop-example.com × shop-backup.net missing or wrong:\n%s", out)
	}
}

// markdownTables checks every table is well formed: a header, a delimiter
// row with as many cells, and rows with as many cells (escaped pipes do
// not count).
func markdownTables(t *testing.T, md string) int {
	t.Helper()
	cells := func(line string) int {
		line = strings.ReplaceAll(line, `\|`, "")
		return strings.Count(line, "|") - 1
	}
	lines := strings.Split(md, "\n")
	tables := 0
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") {
			continue
		}
		tables++
		n := cells(lines[i])
		if i+1 >= len(lines) || !regexp.MustCompile(`^\|(\s*:?-+:?\s*\|)+$`).MatchString(lines[i+1]) || cells(lines[i+1]) != n {
			t.Errorf("table at line %d has no delimiter row matching %d columns: %q", i+1, n, lines[i])
		}
		j := i + 2
		for ; j < len(lines) && strings.HasPrefix(lines[j], "|"); j++ {
			if cells(lines[j]) != n {
				t.Errorf("line %d has %d cells, the header %d: %q", j+1, cells(lines[j]), n, lines[j])
			}
		}
		if j < len(lines) && lines[j] != "" {
			t.Errorf("table ending at line %d is not followed by a blank line", j)
		}
		i = j
	}
	return tables
}

func TestAuditMarkdown(t *testing.T) {
	code, md, stderr := runAudit(t, auditLabConfig(t), "-o", "markdown")
	if code != exitCritical {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// The document's structure, in order.
	headings := regexp.MustCompile(`(?m)^#{1,3} .*$`).FindAllString(md, -1)
	wantOrder := []string{"# Critical domain inventory audit", "## Summary", "## Largest risks", "## What each owner has to do",
		"## Domains out of policy", "## Backup independence", "## Shared domains", "## Undeclared dependencies",
		"## Blast radius", "## Dependency graph", "## How this report is computed"}
	pos := 0
	for _, h := range headings {
		if pos < len(wantOrder) && h == wantOrder[pos] {
			pos++
		}
	}
	if pos != len(wantOrder) {
		t.Errorf("headings out of order or missing (matched %d of %d): %q", pos, len(wantOrder), headings)
	}
	for _, owner := range []string{"shop", "payments", "it", "platform", "identity", "media", "corporate", "marketing", "dns-vendors", "shop-cn"} {
		if !slices.Contains(headings, "### "+owner) {
			t.Errorf("no section for owner %s", owner)
		}
	}
	for _, d := range []string{"portal-example.com", "pay-example.org", "shop-example.com", "news-example.com", "mail-example.com",
		"id-example.com", "shop-example.cn", "corp-example.net", "group-example.com", "promo-example.com", "id-backup.net"} {
		if !slices.Contains(headings, "### "+d) {
			t.Errorf("%s is out of policy but has no section", d)
		}
	}
	for _, d := range []string{"portal-backup.net", "shop-backup.net", "news-backup.com"} {
		if slices.Contains(headings, "### "+d) {
			t.Errorf("%s is within policy but has a section", d)
		}
	}
	if n := markdownTables(t, md); n < 8 {
		t.Errorf("%d tables, want at least 8", n)
	}
	// Key lines: what the IP/legal department acts on.
	for _, want := range []string{
		"**16 of 20 domains are out of policy",
		"| `DOMAIN_UNBACKED` | A tier-0/1 domain without a healthy, independent backup | critical | 7 | 7 |",
		"| corp-example.net | Critical | The sponsoring registrar is not an approved registrar | Move the domain to an approved registrar (MarkMonitor Inc., CSC Corporate Domains, Inc.)",
		"| pay-example.org | Critical | A lock status the domain's tier requires is not set (serverTransferProhibited) | Add registry lock: ask the registrar to have the registry set serverTransferProhibited. |",
		"| pay-example.org | Critical | A tier-0/1 domain without a healthy, independent backup | Add an independent backup domain",
		"| shop-example.com (tier 0) | shop-backup.net | independent | **shared**: provider-a.net, provider-b.org | independent | independent | independent | ok | **not independent** |",
		"| portal-example.com (tier 0) | portal-backup.net | independent | independent | independent | independent | independent | ok | independent |",
		"| shop-example.cn (tier 1) | shop-backup.cn (not in the inventory) |",
		"| portal-example.com | 0 | platform | 7 | 56 | keep portal-web, portal-api, portal-admin; new domain 1: partner-web, partner-api, careers-web; new domain 2: status-page |",
		"| shop-cdn.net | shop-example.com (tier 0, shop) | api.shop-example.com CNAME api.shop-cdn.net |",
		"| mail-hoster.net | mail-example.com (tier 1, it) | mail-example.com MX mx1.mail-hoster.net |",
		"tier 0 × 8, tier 1 × 4, tier 2 × 2, tier 3 × 1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Readable: no JSON, no Go zero values, no unrendered placeholders.
	for _, bad := range []string{`{"`, "0001-01-01", "%!", "<nil>", "map["} {
		if strings.Contains(md, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
}

func TestAuditDOT(t *testing.T) {
	code, out, stderr := runAudit(t, auditLabConfig(t), "-o", "dot")
	if code != exitCritical {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	g, err := parseDOT(out)
	if err != nil {
		t.Fatalf("not a DOT digraph: %v\n%s", err, out)
	}
	if g.name != "nsguard_dependencies" {
		t.Errorf("graph name %q", g.name)
	}
	for _, e := range g.edges {
		if _, ok := g.nodes[e.from]; !ok {
			t.Errorf("edge from undeclared node %q", e.from)
		}
		if _, ok := g.nodes[e.to]; !ok {
			t.Errorf("edge to undeclared node %q", e.to)
		}
	}
	for _, n := range []string{"edge-cache.org", "mail-hoster.net", "shop-cdn.net"} {
		if a := g.nodes[n]; !strings.Contains(a["style"], "dashed") || !strings.Contains(a["label"], "not in the inventory") {
			t.Errorf("undeclared %s drawn as %v", n, a)
		}
	}
	want := []struct{ from, to, label string }{
		{"shop-example.com", "shop-cdn.net", "CNAME"},
		{"shop-cdn.net", "edge-cache.org", "CNAME"},
		{"mail-example.com", "mail-hoster.net", "MX"},
		{"shop-example.com", "provider-a.net", "NS"},
		{"shop-example.com", "shop-backup.net", "backup"},
	}
	for _, w := range want {
		if !slices.ContainsFunc(g.edges, func(e dotEdge) bool { return e.from == w.from && e.to == w.to && e.attrs["label"] == w.label }) {
			t.Errorf("no edge %s -> %s [%s]", w.from, w.to, w.label)
		}
	}
	if a := g.nodes["portal-example.com"]; a["fillcolor"] != "#f8d7da" {
		t.Errorf("portal-example.com (critical) filled %q", a["fillcolor"])
	}
}

func TestAuditReportExample(t *testing.T) {
	code, md, stderr := runAudit(t, auditLabConfig(t), "-o", "markdown")
	if code != exitCritical {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	const header = "<!-- Generated from the audit lab (dnslab.AuditWorld, dnslab.SeedAuditRegistry) by\n" +
		"     TestAuditReportExample in cmd/nsguard/audit_test.go. Do not edit: regenerate with\n" +
		"     NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestAuditReportExample -->\n\n"
	path := filepath.Join("..", "..", "docs", "audit-report-example.md")
	if os.Getenv("NSGUARD_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(header+md), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestAuditReportExample)", err)
	}
	if got, want := maskVolatile(header+md), maskVolatile(string(old)); got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/audit-report-example.md is out of date (first difference at line %d):\n got  %s\n file %s\n"+
					"regenerate with NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestAuditReportExample", i+1, g, w)
			}
		}
	}
}

// maskVolatile blanks what changes from one run to the next: dates, times
// and the labs' ephemeral ports. It also sorts the address list of the
// monitor's NS_SAME_PREFIX evidence, whose order follows the order the
// name servers answered in.
func maskVolatile(s string) string {
	for _, m := range []struct{ re, with string }{
		{`\d{1,2} [A-Z][a-z]+ \d{4} at \d{2}:\d{2} UTC`, "DATE"},
		{`\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?`, "DATE"},
		{`127\.0\.0\.1:\d+`, "127.0.0.1:PORT"},
	} {
		s = regexp.MustCompile(m.re).ReplaceAllString(s, m.with)
	}
	return regexp.MustCompile(`name server addresses: [^;|\n]+`).ReplaceAllStringFunc(s, func(m string) string {
		head, list, _ := strings.Cut(m, ": ")
		items := strings.Split(list, ", ")
		slices.Sort(items)
		return head + ": " + strings.Join(items, ", ")
	})
}

func TestAuditExitCodes(t *testing.T) {
	lab, reg, dir := auditLab(t)
	ctx := context.Background()
	t.Run("warnings only", func(t *testing.T) {
		cfg := writeAuditConfig(t, t.TempDir(), labOnlyYAML(lab, reg, dir, `  - {name: group-example.com, tier: 2, owner: corporate, services: [a, b, c, d]}
  - {name: provider-c.net, tier: 3, owner: dns-vendors}
`))
		code, out, stderr := runAudit(t, cfg)
		if code != exitWarning {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
		}
		if !strings.Contains(out, "DOMAIN_SHARED") || !strings.Contains(out, "NS_SINGLE_PROVIDER") {
			t.Errorf("output lacks the warnings:\n%s", out)
		}
	})
	t.Run("bad output", func(t *testing.T) {
		cfg := writeAuditConfig(t, t.TempDir(), labOnlyYAML(lab, reg, dir, "  - {name: group-example.com, tier: 2}\n"))
		code, _, stderr := runAudit(t, cfg, "-o", "xml")
		if code != exitUsage || !strings.Contains(stderr, `unknown output "xml"`) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		cfg := writeAuditConfig(t, t.TempDir(), "domains: [{name: x.com, tier: 9}]\n")
		code, _, stderr := runAudit(t, cfg)
		if code != exitUsage || !strings.Contains(stderr, "invalid config") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("could not check", func(t *testing.T) {
		// Every root server times out: no domain can be checked over DNS.
		if err := lab.Mutate(ctx, func(w *dnslab.World) error {
			for _, h := range w.Hosts {
				if h.Role == "root" {
					h.Fault = dnslab.FaultTimeout
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		defer lab.Reset(ctx)
		cfg := writeAuditConfig(t, t.TempDir(), labOnlyYAML(lab, reg, dir, "  - {name: portal-backup.net, tier: 2, owner: platform}\n"))
		code, out, stderr := runAudit(t, cfg)
		if code != exitUsage || !strings.Contains(stderr, "could not be checked") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if !strings.Contains(out, "portal-backup.net: dns: could not be checked") {
			t.Errorf("the report does not say what failed:\n%s", out)
		}
	})
}

// A minimal DOT reader: enough of the grammar (graphviz.org/doc/info/lang.html)
// to prove the output is one digraph of node and edge statements with
// attribute lists, quoted IDs and escapes.

type dotGraph struct {
	name  string
	nodes map[string]map[string]string
	edges []dotEdge
}

type dotEdge struct {
	from, to string
	attrs    map[string]string
}

func dotTokens(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			var b strings.Builder
			b.WriteByte('"')
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				if s[j] == '\n' {
					return nil, fmt.Errorf("newline inside a quoted string at %d", j)
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, b.String())
			i = j + 1
		case strings.HasPrefix(s[i:], "->"):
			toks = append(toks, "->")
			i += 2
		case strings.ContainsRune("{}[];=,", rune(c)):
			toks = append(toks, string(c))
			i++
		case c == '_' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || c == '.' || c == '#':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] == '#' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return toks, nil
}

func parseDOT(s string) (*dotGraph, error) {
	toks, err := dotTokens(s)
	if err != nil {
		return nil, err
	}
	p := 0
	next := func() string {
		if p >= len(toks) {
			return ""
		}
		p++
		return toks[p-1]
	}
	peek := func() string {
		if p >= len(toks) {
			return ""
		}
		return toks[p]
	}
	id := func(t string) (string, bool) {
		if t == "" || strings.ContainsAny(t[:1], "{}[];=,") || t == "->" {
			return "", false
		}
		return strings.TrimPrefix(t, `"`), true
	}
	g := &dotGraph{nodes: map[string]map[string]string{}}
	if next() != "digraph" {
		return nil, fmt.Errorf("does not start with digraph")
	}
	if t := peek(); t != "{" {
		name, ok := id(next())
		if !ok {
			return nil, fmt.Errorf("bad graph name %q", t)
		}
		g.name = name
	}
	if next() != "{" {
		return nil, fmt.Errorf("no { after the graph name")
	}
	attrs := func() (map[string]string, error) {
		a := map[string]string{}
		if peek() != "[" {
			return a, nil
		}
		next()
		for peek() != "]" {
			k, ok := id(next())
			if !ok {
				return nil, fmt.Errorf("bad attribute name %q", toks[p-1])
			}
			if next() != "=" {
				return nil, fmt.Errorf("attribute %s without =", k)
			}
			v, ok := id(next())
			if !ok {
				return nil, fmt.Errorf("attribute %s without a value", k)
			}
			a[k] = v
			if peek() == "," || peek() == ";" {
				next()
			}
			if peek() == "" {
				return nil, fmt.Errorf("unterminated attribute list")
			}
		}
		next()
		return a, nil
	}
	for {
		t := next()
		switch t {
		case "":
			return nil, fmt.Errorf("no closing }")
		case "}":
			if p != len(toks) {
				return nil, fmt.Errorf("tokens after the closing }: %q", toks[p:])
			}
			return g, nil
		case ";":
			continue
		case "graph", "node", "edge":
			if _, err := attrs(); err != nil {
				return nil, fmt.Errorf("%s attributes: %w", t, err)
			}
		default:
			from, ok := id(t)
			if !ok {
				return nil, fmt.Errorf("unexpected %q", t)
			}
			if peek() == "->" {
				next()
				to, ok := id(next())
				if !ok {
					return nil, fmt.Errorf("edge from %s has no target", from)
				}
				a, err := attrs()
				if err != nil {
					return nil, fmt.Errorf("edge %s -> %s: %w", from, to, err)
				}
				g.edges = append(g.edges, dotEdge{from, to, a})
			} else {
				a, err := attrs()
				if err != nil {
					return nil, fmt.Errorf("node %s: %w", from, err)
				}
				g.nodes[from] = a
			}
		}
		if peek() == ";" {
			next()
		}
	}
}

// The DOT reader must reject what Graphviz rejects, or TestAuditDOT proves nothing.
func TestParseDOTRejectsBrokenGraphs(t *testing.T) {
	for _, bad := range []string{
		`graph g { a -- b; }`,
		`digraph g { a -> b;`,
		`digraph g { "a -> b; }`,
		`digraph g { a [label=] ; }`,
		`digraph g { a -> ; }`,
		`digraph g { a [label="x" }`,
		`digraph g { } extra`,
	} {
		if _, err := parseDOT(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	g, err := parseDOT(`digraph g { node [shape=box]; "a\"b" [label="x\ny"]; "a\"b" -> c [label="NS"]; }`)
	if err != nil || g.nodes[`a"b`]["label"] != "x\ny" || len(g.edges) != 1 || g.edges[0].to != "c" {
		t.Errorf("good graph: %v %+v", err, g)
	}
}
