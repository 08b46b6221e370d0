package monitor_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/monitor"
)

// scenario is one way the lab breaks and what the monitor must say about it.
type scenario struct {
	name   string
	apply  func(ctx context.Context, l *dnslab.Lab) error
	domain string
	want   []string // exactly these finding IDs for domain
	sev    finding.Severity
	// config adjusts a copy of the lab config (declared name servers that
	// follow the change, an extra domain to check).
	config func(cfg *config.Config, l *dnslab.Lab)
	// verify looks further into the result (evidence, query counts).
	verify func(t *testing.T, l *dnslab.Lab, r monitor.Result)
}

var scenarios = []scenario{
	{name: "hijack", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.Hijack(ctx, "shop-example.com") },
		domain: "shop-example.com", want: []string{"NS_NOT_AS_DECLARED", "NS_SINGLE_PROVIDER", "RESOLVER_ANSWER_DIVERGES"}, sev: finding.Critical},
	{name: "hijack undone", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Hijack(ctx, "shop-example.com"); err != nil {
			return err
		}
		return l.Restore(ctx, "shop-example.com")
	}, domain: "shop-example.com", want: nil, sev: finding.OK},
	{name: "hijack to circular glueless name servers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.HijackCircular(ctx, "shop-example.com")
	}, domain: "shop-example.com", want: []string{"NS_NAME_UNRESOLVABLE", "NS_NOT_AS_DECLARED", "RESOLVER_ANSWER_DIVERGES"}, sev: finding.Critical},
	{name: "suspended", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.Suspend(ctx, "shop-backup.net") },
		domain: "shop-backup.net", want: []string{"DELEGATION_MISSING"}, sev: finding.Critical},
	{name: "lame server", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.Lame(ctx, "shop-example.cn", "ns2.provider-b.org")
	}, domain: "shop-example.cn", want: []string{"NS_LAME"}, sev: finding.Warning},
	{name: "parent/child NS mismatch", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.NSMismatch(ctx, "shop-backup.net", "ns1.provider-b.org")
	}, domain: "shop-backup.net", want: []string{"PARENT_CHILD_NS_MISMATCH"}, sev: finding.Warning},
	{name: "SOA serial drift", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SerialDrift(ctx, "shop-example.com", "ns1.provider-b.org", 5)
	}, domain: "shop-example.com", want: []string{"SOA_SERIAL_DRIFT"}, sev: finding.Warning},
	{name: "glue mismatch", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.GlueMismatch(ctx, "corp-example.net", "ns1.corp-example.net", l.AddrOf("ns2.provider-a.net").String())
	}, domain: "corp-example.net", want: []string{"GLUE_MISMATCH"}, sev: finding.Warning},
	{name: "glue missing", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.DropGlue(ctx, "corp-example.net", "ns1.corp-example.net")
	}, domain: "corp-example.net", want: []string{"GLUE_MISSING"}, sev: finding.Critical},
	{name: "broken DS", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.BreakDS(ctx, "pay-example.org") },
		domain: "pay-example.org", want: []string{"DS_NOT_AS_DECLARED", "DS_NO_MATCHING_DNSKEY"}, sev: finding.Critical},
	{name: "expiring RRSIG", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ExpireRRSIG(ctx, "pay-example.org", 36*time.Hour)
	}, domain: "pay-example.org", want: []string{"RRSIG_EXPIRING"}, sev: finding.Critical},
	{name: "RRSIG warning horizon", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ExpireRRSIG(ctx, "pay-example.org", 5*24*time.Hour)
	}, domain: "pay-example.org", want: []string{"RRSIG_EXPIRING"}, sev: finding.Warning},
	{name: "invalid RRSIG", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.CorruptRRSIG(ctx, "pay-example.org") },
		domain: "pay-example.org", want: []string{"RRSIG_INVALID"}, sev: finding.Critical},
	{name: "DNSKEY set signed by the ZSK only", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.SignKeysWithZSK(ctx, "pay-example.org") },
		domain: "pay-example.org", want: []string{"RRSIG_INVALID"}, sev: finding.Critical},
	{name: "unsigned with DS", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.Unsign(ctx, "pay-example.org") },
		domain: "pay-example.org", want: []string{"DNSSEC_UNSIGNED_WITH_DS"}, sev: finding.Critical},
	{name: "unsigned on one server", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.UnsignOn(ctx, "pay-example.org", "ns2.provider-a.net")
	}, domain: "pay-example.org", want: []string{"DNSSEC_UNSIGNED_WITH_DS"}, sev: finding.Critical},
	{name: "server times out", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTimeout)
	}, domain: "shop-example.cn", want: []string{"NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "TCP broken", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns1.provider-b.org", dnslab.FaultTCPBroken)
	}, domain: "shop-example.com", want: []string{"NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "garbage answers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultGarbage)
	}, domain: "shop-example.cn", want: []string{"NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "mismatched IDs", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultWrongID)
	}, domain: "shop-example.cn", want: []string{"NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "truncated answers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTruncated)
	}, domain: "shop-example.cn", want: []string{"NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "oversized answers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultOversized)
	}, domain: "shop-example.cn", want: []string{"NS_LAME", "NS_UNREACHABLE"}, sev: finding.Warning},
	{name: "every server times out", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.SetFault(ctx, "ns1.provider-a.net", dnslab.FaultTimeout); err != nil {
			return err
		}
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTimeout)
	}, domain: "shop-example.cn", want: []string{"NS_UNREACHABLE"}, sev: finding.Critical},
	{name: "parent servers disagree", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ParentDisagree(ctx, "shop-example.com", "b.gtld-servers.net", "ns1.provider-a.net", "ns2.provider-b.org")
	}, domain: "shop-example.com", want: []string{"NS_NOT_AS_DECLARED", "PARENT_CHILD_NS_MISMATCH", "PARENT_SERVERS_DISAGREE"}, sev: finding.Critical},
	{name: "record changed on one server", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ChangeRecord(ctx, "shop-backup.net", "ns2.provider-b.org", "www.shop-backup.net. 300 IN A 198.51.100.99")
	}, domain: "shop-backup.net", want: []string{"RECORD_CHANGED", "RESOLVER_ANSWER_DIVERGES"}, sev: finding.Warning},
	{name: "poisoned resolver", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.Poison(ctx, 1, "www.shop-example.com. 300 IN A 203.0.113.99")
	}, domain: "shop-example.com", want: []string{"RESOLVER_ANSWER_DIVERGES"}, sev: finding.Warning},

	// The resolver view follows CNAME chains on both sides.
	{name: "watched CNAME to the apex", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.Alias(ctx, "shop-example.com", "www", "shop-example.com.")
	}, domain: "shop-example.com", sev: finding.OK},
	{name: "watched CNAME to the apex, hijacked", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Alias(ctx, "shop-example.com", "www", "shop-example.com."); err != nil {
			return err
		}
		return l.Hijack(ctx, "shop-example.com")
	}, domain: "shop-example.com", want: []string{"NS_NOT_AS_DECLARED", "NS_SINGLE_PROVIDER", "RESOLVER_ANSWER_DIVERGES"}, sev: finding.Critical,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			// The resolver answers the same CNAME as the real servers: only
			// the end of the chain tells the attacker's address.
			wantEvidence(t, r, "RESOLVER_ANSWER_DIVERGES", "www.shop-example.com A", "CNAME shop-example.com. → A "+dnslab.AttackerAddr)
			wantEvidence(t, r, "RESOLVER_ANSWER_DIVERGES", "www.shop-example.com A", "CNAME shop-example.com. → A 192.0.2.10")
		}},
	{name: "watched CNAME to another zone", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.Alias(ctx, "shop-backup.net", "www", "www.shop-example.com.")
	}, domain: "shop-backup.net", sev: finding.OK},
	{name: "watched CNAME to another zone whose name a resolver forges", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Alias(ctx, "shop-backup.net", "www", "www.shop-example.com."); err != nil {
			return err
		}
		return l.Poison(ctx, 1, "www.shop-example.com. 300 IN A 203.0.113.99")
	}, domain: "shop-backup.net", want: []string{"RESOLVER_ANSWER_DIVERGES"}, sev: finding.Warning,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "RESOLVER_ANSWER_DIVERGES", "www.shop-backup.net A", "CNAME www.shop-example.com. → A 203.0.113.99")
		}},
	{name: "watched CNAME to a CDN name a resolver forges", apply: func(ctx context.Context, l *dnslab.Lab) error {
		// api.shop-example.com is CNAME api.shop-cdn.net. in the lab.
		return l.Poison(ctx, 0, "api.shop-cdn.net. 300 IN A 203.0.113.80")
	}, domain: "shop-example.com", want: []string{"RESOLVER_ANSWER_DIVERGES"}, sev: finding.Warning,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "RESOLVER_ANSWER_DIVERGES", "api.shop-example.com A", "CNAME api.shop-cdn.net. → A 203.0.113.80")
			wantEvidence(t, r, "RESOLVER_ANSWER_DIVERGES", "api.shop-example.com A", "CNAME api.shop-cdn.net. → A 192.0.2.80")
		}},
	{name: "watched CNAME loop", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Alias(ctx, "shop-backup.net", "www", "loop.shop-backup.net."); err != nil {
			return err
		}
		return l.Alias(ctx, "shop-backup.net", "loop", "www.shop-backup.net.")
	}, domain: "shop-backup.net", sev: finding.OK,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			for _, v := range r.Observation.Resolvers {
				if v.Name == "www.shop-backup.net." && len(v.Chain) > 8 {
					t.Errorf("followed %d hops of a loop", len(v.Chain))
				}
			}
		}},

	// Delegation and name server edge cases.
	{name: "glue for a name the child zone does not have", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.GlueWithoutChildRecord(ctx, "corp-example.net", "ns3.corp-example.net", l.AddrOf("ns2.provider-b.org").String())
	}, domain: "corp-example.net", want: []string{"GLUE_MISMATCH", "PARENT_CHILD_NS_MISMATCH"}, sev: finding.Warning,
		config: declare("corp-example.net", "ns1.corp-example.net", "ns2.provider-b.org", "ns3.corp-example.net"),
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "GLUE_MISMATCH", "ns3.corp-example.net. A", "NXDOMAIN")
		}},
	{name: "glue of one family, the child's address of the other", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ChildAddressOtherFamily(ctx, "corp-example.net", "ns1.corp-example.net", "2001:db8:53::1")
	}, domain: "corp-example.net", want: []string{"GLUE_MISMATCH"}, sev: finding.Warning,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "GLUE_MISMATCH", "ns1.corp-example.net. A", "no A record")
		}},
	{name: "out-of-bailiwick glue differs from the name server's zone", apply: func(ctx context.Context, l *dnslab.Lab) error {
		// net's sibling glue for ns2.provider-a.net (handed out with the
		// referral for shop-backup.net) points at another server.
		return l.GlueMismatch(ctx, "shop-backup.net", "ns2.provider-a.net", l.AddrOf("ns1.attacker.net").String())
	}, domain: "shop-backup.net", want: []string{"GLUE_MISMATCH", "NS_LAME"}, sev: finding.Warning},
	{name: "name servers with IPv6 addresses only", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.IPv6OnlyNameServers(ctx, "corp-example.net", "ns1.corp-example.net", "ns6.provider-b.org")
	}, domain: "corp-example.net", want: []string{"NS_NO_IPV4"}, sev: finding.Warning,
		config: declare("corp-example.net", "ns1.corp-example.net", "ns6.provider-b.org")},
	{name: "missing delegation below a registered zone", apply: func(context.Context, *dnslab.Lab) error { return nil },
		domain: "child.parent.shop-example.com", want: []string{"DELEGATION_MISSING"}, sev: finding.Critical,
		config: func(cfg *config.Config, _ *dnslab.Lab) {
			cfg.Domains = append(cfg.Domains, config.Domain{Name: "child.parent.shop-example.com", Tier: 3, WatchSeverity: "warning"})
		}},
	{name: "missing delegation below a registered zone whose servers refuse it", apply: func(ctx context.Context, l *dnslab.Lab) error {
		// The registered zone's servers no longer serve it (REFUSED): the
		// walk cannot reach the deepest zone, and says so as a finding.
		if err := l.Lame(ctx, "shop-example.com", "ns1.provider-a.net"); err != nil {
			return err
		}
		return l.Lame(ctx, "shop-example.com", "ns1.provider-b.org")
	}, domain: "child.parent.shop-example.com", want: []string{"PARENT_SERVER_ERROR"}, sev: finding.Critical,
		config: func(cfg *config.Config, _ *dnslab.Lab) {
			cfg.Domains = append(cfg.Domains, config.Domain{Name: "child.parent.shop-example.com", Tier: 3, WatchSeverity: "warning"})
		},
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "PARENT_SERVER_ERROR", "child.parent.shop-example.com. NS", "answered REFUSED")
		}},
	{name: "DS with unsupported digest types only, child unsigned", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Unsign(ctx, "pay-example.org"); err != nil {
			return err
		}
		return l.ReplaceDS(ctx, "pay-example.org", "12345 13 5 "+hex64, "12345 13 6 "+hex64)
	}, domain: "pay-example.org", want: []string{"DS_UNSUPPORTED"}, sev: finding.Warning, config: undeclareDS("pay-example.org")},
	{name: "DS with an unsupported algorithm only, child unsigned", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Unsign(ctx, "pay-example.org"); err != nil {
			return err
		}
		return l.ReplaceDS(ctx, "pay-example.org", "12345 12 2 "+hex64)
	}, domain: "pay-example.org", want: []string{"DS_UNSUPPORTED"}, sev: finding.Warning, config: undeclareDS("pay-example.org")},
	{name: "DS with a supported digest and algorithm, child unsigned", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Unsign(ctx, "pay-example.org"); err != nil {
			return err
		}
		return l.ReplaceDS(ctx, "pay-example.org", "12345 13 2 "+hex64, "12345 13 6 "+hex64)
	}, domain: "pay-example.org", want: []string{"DNSSEC_UNSIGNED_WITH_DS"}, sev: finding.Critical, config: undeclareDS("pay-example.org")},
	{name: "a parent server also hosts the child", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ParentHostsChild(ctx, "corp-example.net", "b.gtld-servers.net")
	}, domain: "corp-example.net", sev: finding.OK,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			statuses := map[string]int{}
			for _, s := range r.Observation.Parent.Servers {
				statuses[s.Status]++
			}
			if statuses[monitor.StatusAnswered] != 1 || statuses[monitor.StatusDelegated] != 1 {
				t.Errorf("want one referral and one authoritative answer, got %v", statuses)
			}
		}},
	{name: "every parent server also hosts the signed child", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.ParentHostsChild(ctx, "pay-example.org", "ns1.nic.org")
	}, domain: "pay-example.org", sev: finding.OK,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			if len(r.Observation.Parent.DS) != 1 {
				t.Errorf("the DS, asked on its own, is missing: %v", r.Observation.Parent.DS)
			}
		}},
	{name: "a TLD server truncates over UDP and TCP", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "a.gtld-servers.net", dnslab.FaultTruncatedAlways)
	}, domain: "shop-example.com", want: []string{"PARENT_SERVER_ERROR"}, sev: finding.Warning,
		verify: func(t *testing.T, _ *dnslab.Lab, r monitor.Result) {
			wantEvidence(t, r, "PARENT_SERVER_ERROR", "shop-example.com NS", "truncated even over TCP")
		}},
	{name: "every TLD server truncates over UDP and TCP", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.SetFault(ctx, "a.gtld-servers.net", dnslab.FaultTruncatedAlways); err != nil {
			return err
		}
		return l.SetFault(ctx, "b.gtld-servers.net", dnslab.FaultTruncatedAlways)
	}, domain: "shop-example.com", want: []string{"PARENT_SERVER_ERROR"}, sev: finding.Critical},
	{name: "a root server truncates over UDP and TCP", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "a.root-servers.net", dnslab.FaultTruncatedAlways)
	}, domain: "shop-example.com", sev: finding.OK},
	{name: "a referral to 1,600 glueless name servers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.FloodNameServers(ctx, "shop-backup.net", 1600)
	}, domain: "shop-backup.net", want: []string{"NS_NAME_UNRESOLVABLE", "NS_NOT_AS_DECLARED", "NS_SINGLE_PROVIDER", "NS_TOO_MANY", "RESOLVER_ANSWER_DIVERGES"}, sev: finding.Critical,
		verify: func(t *testing.T, l *dnslab.Lab, r monitor.Result) {
			// 20 names (resolver.max_ns_per_delegation) cost one A query
			// each; the parent, the resolver view and the walk a few more.
			if q := r.Observation.Queries; q > 80 {
				t.Errorf("%d queries for a referral to 1,600 glueless names, want at most 80", q)
			}
			wantEvidence(t, r, "NS_TOO_MANY", "not checked", "ns0020.flood-example.net., ns0021.flood-example.net.")
			wantEvidence(t, r, "NS_TOO_MANY", "not checked", "… 1570 more")
			for _, f := range r.Findings {
				if len(f.Message) > 2000 {
					t.Errorf("%s's message is %d characters long: lists must stay bounded", f.ID, len(f.Message))
				}
			}
		}},
}

// hex64 is a digest of SHA-256's length (any DS digest type accepts it).
const hex64 = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

// declare sets domain's declared name servers (the change is planned).
func declare(domain string, ns ...string) func(*config.Config, *dnslab.Lab) {
	return func(cfg *config.Config, _ *dnslab.Lab) {
		for i := range cfg.Domains {
			if cfg.Domains[i].Name == domain {
				cfg.Domains[i].Nameservers = ns
			}
		}
	}
}

// undeclareDS drops domain's declared DS (the DS change is planned).
func undeclareDS(domain string) func(*config.Config, *dnslab.Lab) {
	return func(cfg *config.Config, _ *dnslab.Lab) {
		for i := range cfg.Domains {
			if cfg.Domains[i].Name == domain {
				cfg.Domains[i].DS = nil
			}
		}
	}
}

// wantEvidence requires an evidence line of finding id for query whose
// answer contains want.
func wantEvidence(t *testing.T, r monitor.Result, id, query, want string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID != id {
			continue
		}
		for _, e := range f.Evidence {
			if e.Query == query && strings.Contains(e.Answer, want) {
				return
			}
		}
	}
	t.Errorf("no %s evidence for %q answering %q:%s", id, query, want, describe(r.Findings))
}

// withConfig returns a copy of cfg changed by f (nil: cfg itself).
func withConfig(cfg *config.Config, l *dnslab.Lab, f func(*config.Config, *dnslab.Lab)) *config.Config {
	if f == nil {
		return cfg
	}
	c := *cfg
	c.Domains = make([]config.Domain, len(cfg.Domains))
	for i, d := range cfg.Domains {
		d.Nameservers = append([]string(nil), d.Nameservers...)
		d.DS = append([]string(nil), d.DS...)
		c.Domains[i] = d
	}
	f(&c, l)
	return &c
}

func startLab(t testing.TB, opts dnslab.Options) (*dnslab.Lab, *config.Config) {
	t.Helper()
	ctx := context.Background()
	lab, err := dnslab.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting lab: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(lab.ConfigYAML(filepath.Join(t.TempDir(), "nsguard.db"), "")))
	if err != nil {
		t.Fatalf("lab config: %v", err)
	}
	return lab, cfg
}

func check(t testing.TB, cfg *config.Config) map[string]monitor.Result {
	t.Helper()
	m, err := monitor.New(cfg, monitor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string]monitor.Result{}
	for _, r := range m.Check(context.Background(), cfg.Domains, monitor.CycleOptions{}) {
		if r.Err != nil {
			t.Errorf("%s: could not check: %v", r.Domain, r.Err)
		}
		out[r.Domain] = r
	}
	return out
}

func describe(fs []finding.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("\n  " + f.Severity.String() + " " + f.ID + " " + f.Subject + ": " + f.Message)
		for _, e := range f.Evidence {
			b.WriteString("\n      " + e.String())
		}
	}
	return b.String()
}

func TestHealthyLabHasNoFindings(t *testing.T) {
	_, cfg := startLab(t, dnslab.Options{})
	for name, r := range check(t, cfg) {
		if len(r.Findings) > 0 {
			t.Errorf("%s: want no findings, got:%s", name, describe(r.Findings))
		}
		if r.Observation == nil || len(r.Observation.Parent.NS) == 0 {
			t.Errorf("%s: observation has no delegation", name)
		}
	}
}

func TestScenariosInProcess(t *testing.T) {
	lab, cfg := startLab(t, dnslab.Options{})
	runScenarios(t, lab, cfg)
}

func runScenarios(t *testing.T, lab *dnslab.Lab, cfg *config.Config) {
	ctx := context.Background()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if err := lab.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := sc.apply(ctx, lab); err != nil {
				t.Fatal(err)
			}
			res := check(t, withConfig(cfg, lab, sc.config))
			r := res[sc.domain]
			got := finding.IDs(r.Findings)
			if strings.Join(got, ",") != strings.Join(sc.want, ",") {
				t.Fatalf("%s: want %v, got %v:%s", sc.domain, sc.want, got, describe(r.Findings))
			}
			if w := finding.Worst(r.Findings); w != sc.sev {
				t.Errorf("%s: worst severity %s, want %s:%s", sc.domain, w, sc.sev, describe(r.Findings))
			}
			for _, f := range r.Findings {
				if len(f.Evidence) == 0 {
					t.Errorf("%s has no evidence", f.ID)
				}
			}
			if sc.verify != nil {
				sc.verify(t, lab, r)
			}
		})
	}
}

// unchecked is a way the lab breaks that leaves a domain not checkable at
// all: the check must say why (exit 3 for `nsguard check`), give up in
// time and raise no finding — above all no DELEGATION_MISSING.
type unchecked struct {
	name    string
	apply   func(ctx context.Context, l *dnslab.Lab) error
	config  func(cfg *config.Config, l *dnslab.Lab)
	domain  string
	wantErr string
	// within bounds the wall time of the check (a deadline's business).
	within time.Duration
}

var uncheckable = []unchecked{
	{name: "DNS intercepted by a middlebox", apply: func(ctx context.Context, l *dnslab.Lab) error { return l.Intercept(ctx) },
		domain: "shop-example.com", wantErr: "answers are not authoritative: is DNS intercepted?", within: 10 * time.Second},
	{name: "no server ever answers", apply: func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFaultAll(ctx, dnslab.FaultTimeout)
	}, config: func(cfg *config.Config, _ *dnslab.Lab) { cfg.Resolver.DomainTimeout = config.Duration(time.Second) },
		domain: "shop-example.com", wantErr: "took longer than 1s and was abandoned", within: 5 * time.Second},
}

func runUncheckable(t *testing.T, lab *dnslab.Lab, cfg *config.Config) {
	ctx := context.Background()
	for _, u := range uncheckable {
		t.Run(u.name, func(t *testing.T) {
			if err := lab.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := u.apply(ctx, lab); err != nil {
				t.Fatal(err)
			}
			c := withConfig(cfg, lab, u.config)
			d, _ := c.Domain(u.domain)
			m, err := monitor.New(c, monitor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			start := time.Now()
			res := m.Check(ctx, []config.Domain{d}, monitor.CycleOptions{})
			took := time.Since(start)
			r := res[0]
			if r.Err == nil || !strings.Contains(r.Err.Error(), u.wantErr) {
				t.Fatalf("error %v, want one saying %q", r.Err, u.wantErr)
			}
			if len(r.Findings) > 0 {
				t.Errorf("want no finding from a domain that could not be checked, got:%s", describe(r.Findings))
			}
			if took > u.within {
				t.Errorf("took %s, want at most %s", took.Round(time.Millisecond), u.within)
			}
			t.Logf("%s: %v (%s)", u.domain, r.Err, took.Round(time.Millisecond))
		})
	}
}

func TestUncheckableInProcess(t *testing.T) {
	lab, cfg := startLab(t, dnslab.Options{})
	runUncheckable(t, lab, cfg)
}

// preflightCase checks a zone against a delegation its parent does not
// (yet) publish: Zonemaster's undelegated test.
type preflightCase struct {
	name   string
	apply  func(ctx context.Context, l *dnslab.Lab) error
	domain string
	pf     func(l *dnslab.Lab, cfg *config.Config) *monitor.Preflight
	want   []string
	sev    finding.Severity
}

func nsAt(l *dnslab.Lab, name, host string) resolver.NameServer {
	ns := resolver.NameServer{Name: name}
	if host != "" {
		ns.Addrs = []netip.Addr{l.AddrOf(host)}
	}
	return ns
}

var preflights = []preflightCase{
	{name: "a zone ready at two providers", apply: serveNewShop, domain: "new-shop.com",
		pf: func(l *dnslab.Lab, _ *config.Config) *monitor.Preflight {
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.provider-b.org", ""), nsAt(l, "ns2.provider-a.net", "")}}
		}, sev: finding.OK},
	{name: "a proposed server that does not serve the zone", apply: serveNewShop, domain: "new-shop.com",
		pf: func(l *dnslab.Lab, _ *config.Config) *monitor.Preflight {
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.provider-b.org", ""), nsAt(l, "ns1.attacker.net", "")}}
		}, want: []string{"NS_LAME", "PARENT_CHILD_NS_MISMATCH"}, sev: finding.Warning},
	{name: "a name inside the zone without an address", apply: serveNewShop, domain: "new-shop.com",
		pf: func(l *dnslab.Lab, _ *config.Config) *monitor.Preflight {
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.new-shop.com", ""), nsAt(l, "ns1.provider-b.org", ""), nsAt(l, "ns2.provider-a.net", "")}}
		}, want: []string{"GLUE_MISSING", "NS_NAME_UNRESOLVABLE", "PARENT_CHILD_NS_MISMATCH"}, sev: finding.Critical},
	{name: "a name inside the zone with an address the zone does not give it", apply: func(ctx context.Context, l *dnslab.Lab) error {
		if err := serveNewShop(ctx, l); err != nil {
			return err
		}
		return l.Mutate(ctx, func(w *dnslab.World) error {
			w.Zone("new-shop.com").Add("ns1 A " + w.Host("ns1.provider-b.org").Addr.String())
			return nil
		})
	}, domain: "new-shop.com",
		pf: func(l *dnslab.Lab, _ *config.Config) *monitor.Preflight {
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.new-shop.com", "ns2.provider-a.net"), nsAt(l, "ns1.provider-b.org", "")}}
		}, want: []string{"GLUE_MISMATCH", "PARENT_CHILD_NS_MISMATCH"}, sev: finding.Warning},
	{name: "a signed zone with its DS", apply: func(context.Context, *dnslab.Lab) error { return nil }, domain: "pay-example.org",
		pf: func(l *dnslab.Lab, cfg *config.Config) *monitor.Preflight {
			d, _ := cfg.Domain("pay-example.org")
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.provider-b.org", ""), nsAt(l, "ns2.provider-a.net", "")}, DS: d.DS}
		}, sev: finding.OK},
	{name: "a signed zone with a DS for another key", apply: func(context.Context, *dnslab.Lab) error { return nil }, domain: "pay-example.org",
		pf: func(l *dnslab.Lab, _ *config.Config) *monitor.Preflight {
			return &monitor.Preflight{NS: []resolver.NameServer{nsAt(l, "ns1.provider-b.org", ""), nsAt(l, "ns2.provider-a.net", "")},
				DS: []string{"12345 13 2 " + hex64}}
		}, want: []string{"DS_NO_MATCHING_DNSKEY"}, sev: finding.Critical},
}

func serveNewShop(ctx context.Context, l *dnslab.Lab) error {
	return l.ServeUndelegated(ctx, "new-shop.com", "ns1.provider-b.org", "ns2.provider-a.net")
}

func runPreflights(t *testing.T, lab *dnslab.Lab, cfg *config.Config) {
	ctx := context.Background()
	for _, pc := range preflights {
		t.Run(pc.name, func(t *testing.T) {
			if err := lab.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := pc.apply(ctx, lab); err != nil {
				t.Fatal(err)
			}
			d, ok := cfg.Domain(pc.domain)
			if !ok {
				d = config.Domain{Name: pc.domain, Tier: 3, WatchSeverity: "warning"}
			}
			m, err := monitor.New(cfg, monitor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			pf := pc.pf(lab, cfg)
			r := m.Check(ctx, []config.Domain{d}, monitor.CycleOptions{Preflight: func(string) *monitor.Preflight { return pf }})[0]
			if r.Err != nil {
				t.Fatalf("could not check: %v", r.Err)
			}
			if got := finding.IDs(r.Findings); strings.Join(got, ",") != strings.Join(pc.want, ",") {
				t.Fatalf("want %v, got %v:%s", pc.want, got, describe(r.Findings))
			}
			if w := finding.Worst(r.Findings); w != pc.sev {
				t.Errorf("worst severity %s, want %s", w, pc.sev)
			}
			if !r.Observation.Preflight || len(r.Observation.Parent.Servers) != 0 || len(r.Observation.Resolvers) != 0 {
				t.Errorf("a pre-flight asks neither the parent nor the public resolvers: %+v", r.Observation.Parent)
			}
		})
	}
	// Without the pre-flight the undelegated zone is what it is.
	if err := serveNewShop(ctx, lab); err != nil {
		t.Fatal(err)
	}
	r := check(t, withConfig(cfg, lab, func(c *config.Config, _ *dnslab.Lab) {
		c.Domains = append(c.Domains, config.Domain{Name: "new-shop.com", Tier: 3, WatchSeverity: "warning"})
	}))["new-shop.com"]
	if got := finding.IDs(r.Findings); strings.Join(got, ",") != "DELEGATION_MISSING" {
		t.Errorf("new-shop.com checked as delegated: want DELEGATION_MISSING, got %v", got)
	}
}

func TestPreflightInProcess(t *testing.T) {
	lab, cfg := startLab(t, dnslab.Options{})
	runPreflights(t, lab, cfg)
}
