package audit

import (
	"fmt"
	"io"
	"testing"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// generated builds an inventory of n domains with everything the analysis
// reads, no DNS: 40 DNS providers (one domain in eleven on a single one), every third tier-0/1 domain backed by
// another inventory domain, one in eight over the services limit, five
// dependency edges each (a fifth of them into undeclared domains).
func generated(n int) (*config.Config, []Input) {
	cfg := config.Default()
	cfg.Policy.ApprovedRegistrars = []string{"MarkMonitor Inc.", "CSC Corporate Domains, Inc."}
	cfg.Policy.RequiredLocks = map[string][]string{
		"tier0": {"serverTransferProhibited", "serverUpdateProhibited", "clientTransferProhibited"},
		"tier1": {"clientTransferProhibited"},
	}
	tlds := []string{"com", "net", "org", "cn", "de"}
	name := func(i int) string { return fmt.Sprintf("d%05d.%s", i, tlds[i%len(tlds)]) }
	registrars := []registry.Registrar{{Name: "MarkMonitor Inc.", IANAID: "292"}, {Name: "CSC Corporate Domains, Inc.", IANAID: "299"}, {Name: "GoDaddy.com, LLC", IANAID: "146"}}
	inputs := make([]Input, 0, n)
	for i := range n {
		d := config.Domain{Name: name(i), Tier: i % 4, Owner: fmt.Sprintf("team%d", i%150)}
		for s := range 1 + i%8/2 + 3*boolInt(i%8 == 0) {
			d.Services = append(d.Services, fmt.Sprintf("svc%d-%d", i, s))
		}
		if d.Tier <= 1 && i%3 == 0 {
			d.Backups = []string{name((i + 7) % n)}
		}
		p1, p2 := i%40, (i+1+i%3)%40
		if i%11 == 0 {
			p2 = p1 // one provider only
		}
		obs := &monitor.Observation{Domain: d.Name}
		for k, p := range []int{p1, p2} {
			ns := fmt.Sprintf("ns%d.provider%d.net.", k+1, p)
			addr := fmt.Sprintf("10.%d.%d.%d", p, k, 53)
			obs.Parent.NS = append(obs.Parent.NS, ns)
			obs.Servers = append(obs.Servers, monitor.Server{Name: ns, Addr: addr, InParent: true, InChild: true})
		}
		in := Input{
			Domain: d, DNS: obs,
			Registration: &registry.Record{Domain: d.Name, Registrar: registrars[i%len(registrars)],
				Statuses: []string{"clientTransferProhibited", "serverTransferProhibited"}, Expiry: now.AddDate(0, 0, 20+i%700)},
			Registrant: fmt.Sprintf("Company %d Ltd", i%40),
		}
		if p1 == p2 {
			in.DNSFindings = append(in.DNSFindings, finding.Finding{ID: monitor.NSSingleProvider, Severity: finding.Warning})
		}
		for k := range 5 {
			to := fmt.Sprintf("provider%d.net", (i+k)%40)
			if k == 4 {
				to = fmt.Sprintf("cdn%d.io", i%500) // undeclared
			}
			in.Edges = append(in.Edges, Edge{From: d.Name, To: to, Kind: EdgeCNAME, Record: fmt.Sprintf("www%d.%s CNAME x.%s", k, d.Name, to), Depth: 1, Host: "x." + to + "."})
		}
		in.Edges = append(in.Edges, Edge{From: fmt.Sprintf("cdn%d.io", i%500), To: "edge.example", Kind: EdgeCNAME,
			Record: fmt.Sprintf("x.cdn%d.io CNAME e.edge.example", i%500), Depth: 2})
		cfg.Domains = append(cfg.Domains, d)
		inputs = append(inputs, in)
	}
	// The providers are declared (tier 3), as a well-kept inventory does.
	for p := range 40 {
		cfg.Domains = append(cfg.Domains, config.Domain{Name: fmt.Sprintf("provider%d.net", p), Tier: 3, Owner: "dns-vendors"})
	}
	return cfg, inputs
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkAnalyze10k is the analysis alone (no DNS, no registry) over a
// generated 10,000-domain inventory: what the daemon's daily audit costs
// on top of the observations it already has.
func BenchmarkAnalyze10k(b *testing.B) {
	cfg, inputs := generated(10000)
	r := Analyze(cfg, inputs, now)
	b.ReportMetric(float64(len(r.Findings)), "findings")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Analyze(cfg, inputs, now)
	}
}

func BenchmarkRender10k(b *testing.B) {
	cfg, inputs := generated(10000)
	r := Analyze(cfg, inputs, now)
	for _, f := range Formats {
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Render(io.Discard, r, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The generator must exercise every rule, or the figure flatters.
func TestGeneratedInventoryCoversEveryRule(t *testing.T) {
	cfg, inputs := generated(2000)
	r := Analyze(cfg, inputs, now)
	for _, id := range []string{IDDomainShared, IDDomainUnbacked, IDDependencyUndeclared, monitor.NSSingleProvider,
		registry.IDRegistrarNotApproved, registry.IDLockMissing, registry.IDExpirySoon} {
		if countOf(r.Summary.ByID, id) == 0 {
			t.Errorf("no %s in the generated inventory", id)
		}
	}
	if len(r.Backups) == 0 || len(r.Undeclared) == 0 || len(r.Shared) == 0 {
		t.Errorf("matrix %d, undeclared %d, shared %d", len(r.Backups), len(r.Undeclared), len(r.Shared))
	}
}

func countOf(cs []Count, id string) int {
	for _, c := range cs {
		if c.ID == id {
			return c.Findings
		}
	}
	return 0
}
