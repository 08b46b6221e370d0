package monitor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/dnslab"
	"github.com/nsguard/nsguard/monitor"
)

// scenario is one way the lab breaks and what the monitor must say about it.
type scenario struct {
	name   string
	apply  func(ctx context.Context, l *dnslab.Lab) error
	domain string
	want   []string // exactly these finding IDs for domain
	sev    finding.Severity
}

var scenarios = []scenario{
	{"hijack", func(ctx context.Context, l *dnslab.Lab) error { return l.Hijack(ctx, "shop-example.com") },
		"shop-example.com", []string{"NS_NOT_AS_DECLARED", "NS_SINGLE_PROVIDER", "RESOLVER_ANSWER_DIVERGES"}, finding.Critical},
	{"hijack undone", func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.Hijack(ctx, "shop-example.com"); err != nil {
			return err
		}
		return l.Restore(ctx, "shop-example.com")
	}, "shop-example.com", nil, finding.OK},
	{"hijack to circular glueless name servers", func(ctx context.Context, l *dnslab.Lab) error {
		return l.HijackCircular(ctx, "shop-example.com")
	}, "shop-example.com", []string{"NS_NAME_UNRESOLVABLE", "NS_NOT_AS_DECLARED", "RESOLVER_ANSWER_DIVERGES"}, finding.Critical},
	{"suspended", func(ctx context.Context, l *dnslab.Lab) error { return l.Suspend(ctx, "shop-backup.net") },
		"shop-backup.net", []string{"DELEGATION_MISSING"}, finding.Critical},
	{"lame server", func(ctx context.Context, l *dnslab.Lab) error {
		return l.Lame(ctx, "shop-example.cn", "ns2.provider-b.org")
	}, "shop-example.cn", []string{"NS_LAME"}, finding.Warning},
	{"parent/child NS mismatch", func(ctx context.Context, l *dnslab.Lab) error {
		return l.NSMismatch(ctx, "shop-backup.net", "ns1.provider-b.org")
	}, "shop-backup.net", []string{"PARENT_CHILD_NS_MISMATCH"}, finding.Warning},
	{"SOA serial drift", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SerialDrift(ctx, "shop-example.com", "ns1.provider-b.org", 5)
	}, "shop-example.com", []string{"SOA_SERIAL_DRIFT"}, finding.Warning},
	{"glue mismatch", func(ctx context.Context, l *dnslab.Lab) error {
		return l.GlueMismatch(ctx, "corp-example.net", "ns1.corp-example.net", l.AddrOf("ns2.provider-a.net").String())
	}, "corp-example.net", []string{"GLUE_MISMATCH"}, finding.Warning},
	{"glue missing", func(ctx context.Context, l *dnslab.Lab) error {
		return l.DropGlue(ctx, "corp-example.net", "ns1.corp-example.net")
	}, "corp-example.net", []string{"GLUE_MISSING"}, finding.Critical},
	{"broken DS", func(ctx context.Context, l *dnslab.Lab) error { return l.BreakDS(ctx, "pay-example.org") },
		"pay-example.org", []string{"DS_NOT_AS_DECLARED", "DS_NO_MATCHING_DNSKEY"}, finding.Critical},
	{"expiring RRSIG", func(ctx context.Context, l *dnslab.Lab) error {
		return l.ExpireRRSIG(ctx, "pay-example.org", 36*time.Hour)
	}, "pay-example.org", []string{"RRSIG_EXPIRING"}, finding.Critical},
	{"RRSIG warning horizon", func(ctx context.Context, l *dnslab.Lab) error {
		return l.ExpireRRSIG(ctx, "pay-example.org", 5*24*time.Hour)
	}, "pay-example.org", []string{"RRSIG_EXPIRING"}, finding.Warning},
	{"invalid RRSIG", func(ctx context.Context, l *dnslab.Lab) error { return l.CorruptRRSIG(ctx, "pay-example.org") },
		"pay-example.org", []string{"RRSIG_INVALID"}, finding.Critical},
	{"unsigned with DS", func(ctx context.Context, l *dnslab.Lab) error { return l.Unsign(ctx, "pay-example.org") },
		"pay-example.org", []string{"DNSSEC_UNSIGNED_WITH_DS"}, finding.Critical},
	{"unsigned on one server", func(ctx context.Context, l *dnslab.Lab) error {
		return l.UnsignOn(ctx, "pay-example.org", "ns2.provider-a.net")
	}, "pay-example.org", []string{"DNSSEC_UNSIGNED_WITH_DS"}, finding.Critical},
	{"server times out", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTimeout)
	}, "shop-example.cn", []string{"NS_UNREACHABLE"}, finding.Warning},
	{"TCP broken", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns1.provider-b.org", dnslab.FaultTCPBroken)
	}, "shop-example.com", []string{"NS_UNREACHABLE"}, finding.Warning},
	{"garbage answers", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultGarbage)
	}, "shop-example.cn", []string{"NS_UNREACHABLE"}, finding.Warning},
	{"mismatched IDs", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultWrongID)
	}, "shop-example.cn", []string{"NS_UNREACHABLE"}, finding.Warning},
	{"truncated answers", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTruncated)
	}, "shop-example.cn", []string{"NS_UNREACHABLE"}, finding.Warning},
	{"oversized answers", func(ctx context.Context, l *dnslab.Lab) error {
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultOversized)
	}, "shop-example.cn", []string{"NS_LAME", "NS_UNREACHABLE"}, finding.Warning},
	{"every server times out", func(ctx context.Context, l *dnslab.Lab) error {
		if err := l.SetFault(ctx, "ns1.provider-a.net", dnslab.FaultTimeout); err != nil {
			return err
		}
		return l.SetFault(ctx, "ns2.provider-b.org", dnslab.FaultTimeout)
	}, "shop-example.cn", []string{"NS_UNREACHABLE"}, finding.Critical},
	{"parent servers disagree", func(ctx context.Context, l *dnslab.Lab) error {
		return l.ParentDisagree(ctx, "shop-example.com", "b.gtld-servers.net", "ns1.provider-a.net", "ns2.provider-b.org")
	}, "shop-example.com", []string{"NS_NOT_AS_DECLARED", "PARENT_CHILD_NS_MISMATCH", "PARENT_SERVERS_DISAGREE"}, finding.Critical},
	{"record changed on one server", func(ctx context.Context, l *dnslab.Lab) error {
		return l.ChangeRecord(ctx, "shop-backup.net", "ns2.provider-b.org", "www.shop-backup.net. 300 IN A 198.51.100.99")
	}, "shop-backup.net", []string{"RECORD_CHANGED", "RESOLVER_ANSWER_DIVERGES"}, finding.Warning},
	{"poisoned resolver", func(ctx context.Context, l *dnslab.Lab) error {
		return l.Poison(ctx, 1, "www.shop-example.com. 300 IN A 203.0.113.99")
	}, "shop-example.com", []string{"RESOLVER_ANSWER_DIVERGES"}, finding.Warning},
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
			res := check(t, cfg)
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
		})
	}
}
