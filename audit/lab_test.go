package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// auditLab starts the DNS lab with the audit world and the registration
// lab seeded to match, and returns the parsed config pointing at both.
func auditLab(t testing.TB) *config.Config {
	t.Helper()
	ctx := context.Background()
	lab, err := dnslab.Start(ctx, dnslab.Options{World: dnslab.AuditWorld})
	if err != nil {
		t.Fatalf("starting DNS lab: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	reg, err := reglab.Start(ctx)
	if err != nil {
		t.Fatalf("starting registration lab: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	dnslab.SeedAuditRegistry(reg, time.Now())
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "nsguard.yaml"),
		[]byte(lab.ConfigYAML(filepath.Join(dir, "nsguard.db"), dnslab.AuditExtraYAML(reg))))
	if err != nil {
		t.Fatalf("lab config: %v", err)
	}
	return cfg
}

// freshInputs gathers every target of cfg from the labs.
func freshInputs(t testing.TB, cfg *config.Config) []audit.Input {
	t.Helper()
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Close)
	rc, err := registry.New(cfg, registry.Options{HTTPClient: reglab.HTTPClient(), DialContext: reglab.DialLoopback})
	if err != nil {
		t.Fatal(err)
	}
	in, err := audit.Gather(context.Background(), audit.Targets(cfg), &audit.Fresh{Monitor: mon, Registry: rc})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// The walk against real DNS servers: the lab's resolver path, iterating
// from its roots, must find every planted dependency with its record.
func TestWalkAgainstLab(t *testing.T) {
	cfg := auditLab(t)
	mon, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	tests := []struct {
		domain string
		want   []audit.Edge // From, To, Kind, Record, Depth compared
	}{
		{"shop-example.com", []audit.Edge{
			{From: "shop-example.com", To: "provider-a.net", Kind: audit.EdgeNS, Record: "shop-example.com NS ns1.provider-a.net", Depth: 1},
			{From: "shop-example.com", To: "provider-b.org", Kind: audit.EdgeNS, Record: "shop-example.com NS ns1.provider-b.org", Depth: 1},
			{From: "shop-example.com", To: "shop-cdn.net", Kind: audit.EdgeCNAME, Record: "api.shop-example.com CNAME api.shop-cdn.net", Depth: 1},
			{From: "shop-cdn.net", To: "provider-b.org", Kind: audit.EdgeNS, Record: "shop-cdn.net NS ns1.provider-b.org", Depth: 2},
			{From: "shop-cdn.net", To: "provider-b.org", Kind: audit.EdgeNS, Record: "shop-cdn.net NS ns2.provider-b.org", Depth: 2},
			{From: "shop-cdn.net", To: "edge-cache.org", Kind: audit.EdgeCNAME, Record: "api.shop-cdn.net CNAME api.edge-cache.org", Depth: 2},
		}},
		{"mail-example.com", []audit.Edge{
			{From: "mail-example.com", To: "provider-a.net", Kind: audit.EdgeNS, Record: "mail-example.com NS ns1.provider-a.net", Depth: 1},
			{From: "mail-example.com", To: "provider-b.org", Kind: audit.EdgeNS, Record: "mail-example.com NS ns1.provider-b.org", Depth: 1},
			{From: "mail-example.com", To: "mail-hoster.net", Kind: audit.EdgeMX, Record: "mail-example.com MX mx1.mail-hoster.net", Depth: 1},
			{From: "mail-hoster.net", To: "provider-c.net", Kind: audit.EdgeNS, Record: "mail-hoster.net NS ns1.provider-c.net", Depth: 2},
			{From: "mail-hoster.net", To: "provider-c.net", Kind: audit.EdgeNS, Record: "mail-hoster.net NS ns2.provider-c.net", Depth: 2},
		}},
		// In-bailiwick name servers are no dependency: only provider-b.org.
		{"corp-example.net", []audit.Edge{
			{From: "corp-example.net", To: "provider-b.org", Kind: audit.EdgeNS, Record: "corp-example.net NS ns2.provider-b.org", Depth: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			d, ok := cfg.Domain(tc.domain)
			if !ok {
				t.Fatalf("%s not in the lab inventory", tc.domain)
			}
			// No observation: everything comes from lookups.
			edges, problems := audit.Walk(context.Background(), mon.Resolver().NewCycle(), d, nil)
			if len(problems) > 0 {
				t.Errorf("problems: %v", problems)
			}
			var got, want []string
			for _, e := range edges {
				got = append(got, fmt.Sprintf("%d %s -%s-> %s: %s", e.Depth, e.From, e.Kind, e.To, e.Record))
			}
			for _, e := range tc.want {
				want = append(want, fmt.Sprintf("%d %s -%s-> %s: %s", e.Depth, e.From, e.Kind, e.To, e.Record))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("edges:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}
}

// Fresh gathers every target: inventory domains and the backup that is not
// in the inventory, each with DNS, registration and a walk.
func TestFreshGathersEveryTarget(t *testing.T) {
	cfg := auditLab(t)
	in := freshInputs(t, cfg)
	targets := audit.Targets(cfg)
	if len(in) != len(targets) || len(targets) != len(cfg.Domains)+1 {
		t.Fatalf("%d inputs for %d targets (%d inventory domains + shop-backup.cn)", len(in), len(targets), len(cfg.Domains))
	}
	for _, x := range in {
		if x.DNS == nil || x.DNSErr != nil {
			t.Errorf("%s: no DNS observation (%v)", x.Domain.Name, x.DNSErr)
		}
		if x.Edges == nil {
			t.Errorf("%s: not walked", x.Domain.Name)
		}
		switch {
		case x.Domain.Name == "shop-backup.cn":
			if !errors.Is(x.RegErr, registry.ErrNotRegistered) {
				t.Errorf("shop-backup.cn: registration error %v, want not registered", x.RegErr)
			}
			if x.Domain.Owner != "shop-cn" || x.Domain.Tier != 3 {
				t.Errorf("shop-backup.cn gathered as %+v, want tier 3 of the primary's owner", x.Domain)
			}
		case x.Registration == nil:
			t.Errorf("%s: no registration (%v)", x.Domain.Name, x.RegErr)
		}
	}
	// The registry client reads the registrant during the lookup (the
	// registrar's RDAP, the CNNIC WHOIS) and the record carries it.
	for _, want := range []struct{ domain, registrant string }{
		{"news-backup.com", "Example Media Ltd"},
		{"shop-example.cn", "Example Shop (Shanghai) Co., Ltd."},
	} {
		i := slices.IndexFunc(in, func(x audit.Input) bool { return x.Domain.Name == want.domain })
		if got := audit.Registrant(in[i]); got != want.registrant {
			t.Errorf("%s: registrant %q, want %q", want.domain, got, want.registrant)
		}
	}
}
