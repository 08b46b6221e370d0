package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

var now = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// ns builds an observation delegated to "name=addr" pairs.
func ns(pairs ...string) *monitor.Observation {
	o := &monitor.Observation{}
	for _, p := range pairs {
		name, addr, _ := strings.Cut(p, "=")
		o.Parent.NS = append(o.Parent.NS, name+".")
		o.Servers = append(o.Servers, monitor.Server{Name: name + ".", Addr: addr, InParent: true, InChild: true})
	}
	return o
}

func reg(registrar, iana string, expiry time.Time, statuses ...string) *registry.Record {
	return &registry.Record{Registrar: registry.Registrar{Name: registrar, IANAID: iana}, Expiry: expiry, Statuses: statuses}
}

func testConfig(domains ...config.Domain) *config.Config {
	cfg := config.Default()
	cfg.Policy.ApprovedRegistrars = []string{"MarkMonitor Inc.", "CSC Corporate Domains, Inc."}
	cfg.Domains = domains
	return cfg
}

// A primary and a backup that share nothing; each test case breaks one thing.
func pair() (primary, backup Input) {
	year := now.AddDate(1, 0, 0)
	primary = Input{
		Domain:       config.Domain{Name: "shop.com", Tier: 0, Owner: "shop", Services: []string{"web"}, Backups: []string{"shop-backup.net"}},
		DNS:          ns("ns1.alpha-dns.net=192.0.2.1", "ns2.beta-dns.org=198.51.100.1"),
		Registration: reg("MarkMonitor Inc.", "292", year),
		Registrant:   "Shop Ltd",
		Edges:        []Edge{},
	}
	backup = Input{
		Domain:       config.Domain{Name: "shop-backup.net", Tier: 2, Owner: "shop"},
		DNS:          ns("ns1.gamma-dns.com=203.0.113.1", "ns2.delta-dns.net=2001:db8:1::1"),
		Registration: reg("CSC Corporate Domains, Inc.", "299", year),
		Registrant:   "Shop Continuity GmbH",
		Edges:        []Edge{},
	}
	return primary, backup
}

func analyzePair(p, b Input) *Report {
	cfg := testConfig(p.Domain, b.Domain)
	return Analyze(cfg, []Input{p, b}, now)
}

func only(r *Report, id string) []finding.Finding {
	var out []finding.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func TestUnbacked(t *testing.T) {
	tests := []struct {
		name    string
		change  func(p, b *Input)
		sev     finding.Severity // OK: no finding
		verdict string
		reason  string
	}{
		{"independent backup", func(p, b *Input) {}, finding.OK, VerdictIndependent, ""},
		{"redacted registrant does not disqualify", func(p, b *Input) { b.Registrant = "" }, finding.OK, VerdictUnverified, ""},
		{"same registrar by IANA ID", func(p, b *Input) { b.Registration.Registrar = registry.Registrar{Name: "MarkMonitor", IANAID: "0292"} },
			finding.Critical, VerdictShared, "shares the registrar"},
		{"same registrar by name when IDs are missing", func(p, b *Input) {
			p.Registration.Registrar.IANAID, b.Registration.Registrar = "", registry.Registrar{Name: "MARKMONITOR, INC."}
		}, finding.Critical, VerdictShared, "shares the registrar (MarkMonitor Inc.)"},
		{"same DNS provider under another host name", func(p, b *Input) {
			b.DNS = ns("ns7.alpha-dns.net=203.0.113.1", "ns2.delta-dns.net=2001:db8:1::1")
		}, finding.Critical, VerdictShared, "shares the DNS provider (alpha-dns.net)"},
		{"same name server address", func(p, b *Input) {
			b.DNS = ns("ns1.gamma-dns.com=192.0.2.1", "ns2.delta-dns.net=2001:db8:1::1")
		}, finding.Critical, VerdictShared, "192.0.2.1 is both ns1.alpha-dns.net and ns1.gamma-dns.com"},
		{"same IPv6 /48", func(p, b *Input) {
			p.DNS = ns("ns1.alpha-dns.net=2001:db8:1:ff::53", "ns2.beta-dns.org=198.51.100.1")
		}, finding.Critical, VerdictShared, "2001:db8:1::/48"},
		{"same TLD", func(p, b *Input) { b.Domain.Name = "shop-backup.com"; p.Domain.Backups = []string{"shop-backup.com"} },
			finding.Critical, VerdictShared, "shares the TLD (.com)"},
		{"same registrant, spelt differently", func(p, b *Input) { b.Registrant = "SHOP LIMITED" },
			finding.Critical, VerdictShared, "shares the registrant"},
		{"backup not registered", func(p, b *Input) {
			b.Registration, b.RegErr = nil, fmt.Errorf("lookup: %w", registry.ErrNotRegistered)
		}, finding.Critical, VerdictUnhealthy, "not registered"},
		{"backup expired", func(p, b *Input) { b.Registration.Expiry = now.AddDate(0, 0, -3) },
			finding.Critical, VerdictUnhealthy, "registration expired on 2026-11-23"},
		{"backup expiring inside the warning horizon", func(p, b *Input) { b.Registration.Expiry = now.AddDate(0, 0, 89) },
			finding.Critical, VerdictUnhealthy, "expires in 89 days"},
		{"backup expiring after the horizon", func(p, b *Input) { b.Registration.Expiry = now.AddDate(0, 0, 91) },
			finding.OK, VerdictIndependent, ""},
		{"backup on hold", func(p, b *Input) { b.Registration.Statuses = []string{"clientHold"} },
			finding.Critical, VerdictUnhealthy, "registration status clientHold"},
		{"backup failing a critical check", func(p, b *Input) {
			b.DNSFindings = []finding.Finding{{ID: "DELEGATION_MISSING", Severity: finding.Critical}, {ID: "NS_LAME", Severity: finding.Warning}}
		}, finding.Critical, VerdictUnhealthy, "failing its own checks (DELEGATION_MISSING)"},
		{"backup whose DNS could not be checked", func(p, b *Input) { b.DNS, b.DNSErr = nil, errors.New("no server of zone net answered") },
			finding.Critical, VerdictUnhealthy, "its DNS could not be checked (no server of zone net answered)"},
		{"tier 1 gets a warning", func(p, b *Input) { p.Domain.Tier = 1; b.Registrant = "Shop Ltd" },
			finding.Warning, VerdictShared, "shares the registrant (Shop Ltd)"},
		{"tier 2 needs no backup", func(p, b *Input) { p.Domain.Tier = 2; b.Registrant = "Shop Ltd" },
			finding.OK, VerdictShared, ""},
		{"no backup at all", func(p, b *Input) { p.Domain.Backups = nil }, finding.Critical, "", "has no backup domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, b := pair()
			tc.change(&p, &b)
			r := analyzePair(p, b)
			fs := only(r, IDDomainUnbacked)
			switch {
			case tc.sev == finding.OK && len(fs) > 0:
				t.Fatalf("unexpected finding: %s", fs[0].Message)
			case tc.sev != finding.OK && len(fs) != 1:
				t.Fatalf("want one DOMAIN_UNBACKED, got %d (matrix %+v)", len(fs), r.Backups)
			case tc.sev != finding.OK:
				if fs[0].Severity != tc.sev || !strings.Contains(fs[0].Message, tc.reason) {
					t.Errorf("%s %q, want %s containing %q", fs[0].Severity, fs[0].Message, tc.sev, tc.reason)
				}
				if !strings.Contains(fs[0].Message, "What to do:") || len(fs[0].Evidence) == 0 {
					t.Errorf("no remedy or evidence: %+v", fs[0])
				}
			}
			if tc.verdict != "" && (len(r.Backups) != 1 || r.Backups[0].Verdict != tc.verdict) {
				t.Errorf("matrix %+v, want verdict %q", r.Backups, tc.verdict)
			}
		})
	}
}

func TestUnbackedRules(t *testing.T) {
	p, b := pair()
	// A tier-1 domain that is another's backup is the redundancy itself.
	b.Domain.Tier = 1
	if fs := only(analyzePair(p, b), IDDomainUnbacked); len(fs) != 0 {
		t.Errorf("a backup was asked for its own backup: %s", fs[0].Message)
	}
	// One usable backup is enough, whatever the others are.
	p, b = pair()
	bad := Input{Domain: config.Domain{Name: "shop.org", Tier: 3}, RegErr: registry.ErrNotRegistered, DNSErr: errors.New("x")}
	p.Domain.Backups = []string{"shop.org", "shop-backup.net"}
	r := Analyze(testConfig(p.Domain, b.Domain), []Input{p, b, bad}, now)
	if fs := only(r, IDDomainUnbacked); len(fs) != 0 {
		t.Errorf("one good backup of two: %s", fs[0].Message)
	}
	if len(r.Backups) != 2 || r.Backups[0].Verdict != VerdictUnhealthy || r.Backups[0].InInventory {
		t.Errorf("matrix %+v", r.Backups)
	}
}

func TestShared(t *testing.T) {
	tests := []struct {
		tier, services, limit int
		want                  finding.Severity
	}{
		{0, 3, 3, finding.OK},
		{0, 4, 3, finding.Warning},
		{0, 6, 3, finding.Warning},
		{0, 7, 3, finding.Critical},
		{1, 20, 3, finding.Warning},
		{3, 2, 1, finding.Warning},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("tier%d_%d_of_%d", tc.tier, tc.services, tc.limit), func(t *testing.T) {
			var svc []string
			for i := range tc.services {
				svc = append(svc, fmt.Sprintf("svc%d", i))
			}
			cfg := testConfig(config.Domain{Name: "a.com", Tier: tc.tier, Services: svc})
			cfg.Policy.MaxServicesPerDomain = tc.limit
			r := Analyze(cfg, nil, now)
			fs := only(r, IDDomainShared)
			if tc.want == finding.OK {
				if len(fs) != 0 || len(r.Shared) != 0 {
					t.Fatalf("unexpected %v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Severity != tc.want {
				t.Fatalf("got %v, want one %s", fs, tc.want)
			}
			sd := r.Shared[0]
			if sd.BlastRadius != tc.services*TierWeights[tc.tier] {
				t.Errorf("blast radius %d", sd.BlastRadius)
			}
			n := len(sd.Split.Keep)
			for _, m := range sd.Split.Move {
				n += len(m)
				if len(m) > tc.limit {
					t.Errorf("split group %v over the limit", m)
				}
			}
			if n != tc.services || len(sd.Split.Keep) > tc.limit {
				t.Errorf("split %+v loses or overloads services", sd.Split)
			}
		})
	}
}

func TestSuggestSplit(t *testing.T) {
	tests := []struct {
		services []string
		limit    int
		want     string
	}{
		{[]string{"a", "b"}, 3, "keep a,b"},
		{[]string{"shop-web", "blog", "shop-api", "hr-web", "blog-admin", "hr-api", "wiki"}, 3,
			"keep shop-web,shop-api,wiki | blog,blog-admin | hr-web,hr-api"},
		{[]string{"x-1", "x-2", "x-3", "x-4", "x-5"}, 2, "keep x-1,x-2 | x-3,x-4 | x-5"},
		{[]string{"a", "b", "c"}, 0, "keep a | b | c"},
	}
	for _, tc := range tests {
		s := SuggestSplit(tc.services, tc.limit)
		got := "keep " + strings.Join(s.Keep, ",")
		for _, m := range s.Move {
			got += " | " + strings.Join(m, ",")
		}
		if got != tc.want {
			t.Errorf("SuggestSplit(%v, %d) = %s, want %s", tc.services, tc.limit, got, tc.want)
		}
	}
}

func TestUndeclared(t *testing.T) {
	d := config.Domain{Name: "shop.com", Tier: 1, Owner: "shop"}
	x := config.Domain{Name: "cdn.net", Tier: 3, Owner: "vendors"}
	shopEdges := []Edge{
		{From: "shop.com", To: "cdn.net", Kind: EdgeCNAME, Record: "api.shop.com CNAME api.cdn.net", Depth: 1, Host: "api.cdn.net."},
		{From: "shop.com", To: "dns-host.org", Kind: EdgeNS, Record: "shop.com NS ns1.dns-host.org", Depth: 1, Host: "ns1.dns-host.org."},
		{From: "cdn.net", To: "edge.io", Kind: EdgeCNAME, Record: "api.cdn.net CNAME api.edge.io", Depth: 2, Host: "api.edge.io."},
		{From: "cdn.net", To: "other.io", Kind: EdgeCNAME, Record: "www.cdn.net CNAME www.other.io", Depth: 2, Host: "www.other.io."},
		{From: "dns-host.org", To: "registry-ns.io", Kind: EdgeNS, Record: "dns-host.org NS a.registry-ns.io", Depth: 2, Host: "a.registry-ns.io."},
	}
	tests := []struct {
		name     string
		domains  []config.Domain
		cdnEdges []Edge
		want     []string // subjects of shop.com's DEPENDENCY_UNDECLARED
	}{
		{"nothing declared: level 1 and level 2 through undeclared domains",
			[]config.Domain{d}, nil, []string{"cdn.net", "dns-host.org", "edge.io", "registry-ns.io"}},
		{"declared CDN whose own walk finds edge.io: its owner hears of it, not shop's",
			[]config.Domain{d, x}, []Edge{{From: "cdn.net", To: "edge.io", Kind: EdgeNS, Depth: 1}}, []string{"dns-host.org", "registry-ns.io"}},
		{"declared CDN whose own walk misses the chain: shop's finding",
			[]config.Domain{d, x}, []Edge{}, []string{"dns-host.org", "edge.io", "registry-ns.io"}},
		{"a declared backup counts as declared",
			[]config.Domain{{Name: "shop.com", Tier: 1, Backups: []string{"cdn.net", "dns-host.org"}}}, nil, []string{"edge.io", "registry-ns.io"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inputs := []Input{{Domain: tc.domains[0], Edges: shopEdges}}
			if len(tc.domains) > 1 {
				inputs = append(inputs, Input{Domain: x, Edges: tc.cdnEdges})
			}
			r := Analyze(testConfig(tc.domains...), inputs, now)
			var got []string
			for _, f := range only(r, IDDependencyUndeclared) {
				if f.Domain == "shop.com" {
					got = append(got, f.Subject)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// The www.other.io chain starts at a host shop.com does not point at.
	r := Analyze(testConfig(d), []Input{{Domain: d, Edges: shopEdges}}, now)
	for _, u := range r.Undeclared {
		if u.Domain == "other.io" {
			t.Errorf("other.io reported though shop.com never points at www.cdn.net: %+v", u)
		}
		if u.Domain == "edge.io" && u.Dependents[0].Paths[0] != "api.shop.com CNAME api.cdn.net → api.cdn.net CNAME api.edge.io" {
			t.Errorf("edge.io path %v", u.Dependents[0].Paths)
		}
	}
}

func TestExitCode(t *testing.T) {
	healthy := func() Input {
		p, _ := pair()
		p.Domain.Tier, p.Domain.Backups = 2, nil
		return p
	}
	tests := []struct {
		name   string
		change func(*Input)
		want   int
	}{
		{"within policy", func(*Input) {}, 0},
		{"warning", func(in *Input) { in.Domain.Services = []string{"a", "b", "c", "d"} }, 1},
		{"could not be checked", func(in *Input) { in.DNS, in.DNSErr = nil, errors.New("timeout") }, 3},
		{"critical beats could not be checked", func(in *Input) {
			in.DNS, in.DNSErr = nil, errors.New("timeout")
			in.Registration.Statuses = []string{"serverHold"}
		}, 2},
		{"not gathered counts as not checked", func(in *Input) { in.DNS = nil }, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := healthy()
			tc.change(&in)
			r := Analyze(testConfig(in.Domain), []Input{in}, now)
			if got := r.ExitCode(); got != tc.want {
				t.Errorf("exit %d, want %d (findings %v, notes %v)", got, tc.want, r.Findings, r.Notes)
			}
		})
	}
}

// Analyze must not change its inputs: the daemon keeps them.
func TestAnalyzeLeavesInputsAlone(t *testing.T) {
	p, b := pair()
	p.Domain.Name = "SHOP.com."
	inputs := []Input{p, b}
	Analyze(testConfig(config.Domain{Name: "shop.com", Tier: 0, Backups: []string{"shop-backup.net"}}, b.Domain), inputs, now)
	if inputs[0].Domain.Name != "SHOP.com." || inputs[0].Domain.Tier != 0 {
		t.Errorf("input changed: %+v", inputs[0].Domain)
	}
}

func TestGather(t *testing.T) {
	domains := []config.Domain{{Name: "a.com"}, {Name: "b.com"}, {Name: "c.com"}}
	var asked [][]string
	src := func(have ...string) Source {
		return SourceFunc(func(ctx context.Context, ds []config.Domain) ([]Input, error) {
			var names []string
			var out []Input
			for _, d := range ds {
				names = append(names, d.Name)
				for _, h := range have {
					if h == d.Name {
						out = append(out, Input{Domain: config.Domain{Name: strings.ToUpper(h)}, Registrant: "from " + fmt.Sprint(len(asked))})
					}
				}
			}
			asked = append(asked, names)
			return out, nil
		})
	}
	got, err := Gather(context.Background(), domains, src("b.com"), src("a.com"), src("c.com", "a.com"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(asked) != "[[a.com b.com c.com] [a.com c.com] [c.com]]" {
		t.Errorf("sources asked %v: each should only be asked for what is still missing", asked)
	}
	for i, want := range []string{"from 1", "from 0", "from 2"} {
		if got[i].Registrant != want || got[i].Domain.Name != domains[i].Name {
			t.Errorf("input %d: %+v, want %s with the config's domain", i, got[i], want)
		}
	}
	boom := SourceFunc(func(context.Context, []config.Domain) ([]Input, error) { return nil, errors.New("store locked") })
	if _, err := Gather(context.Background(), domains, boom); err == nil || !strings.Contains(err.Error(), "store locked") {
		t.Errorf("source error lost: %v", err)
	}
}

func TestTargets(t *testing.T) {
	cfg := testConfig(
		config.Domain{Name: "a.com", Owner: "x", Backups: []string{"b.net", "z.org"}},
		config.Domain{Name: "b.net", Owner: "y", Backups: []string{"z.org"}},
	)
	var got []string
	for _, d := range Targets(cfg) {
		got = append(got, fmt.Sprintf("%s/%d/%s", d.Name, d.Tier, d.Owner))
	}
	if want := "a.com/0/x b.net/0/y z.org/3/x"; strings.Join(got, " ") != want {
		t.Errorf("targets %v, want %s", got, want)
	}
}
