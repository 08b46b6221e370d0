package baseline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
)

func snapshot(t *testing.T, ck *checker.Checker, d config.Domain) *baseline.State {
	t.Helper()
	r := ck.Run(context.Background(), []config.Domain{d}, checker.RunOptions{Fresh: true})[0]
	if r.Err() != nil {
		t.Fatalf("check %s: %v", d.Name, r.Err())
	}
	return baseline.StateOf(r)
}

func TestDiffAgainstTheLab(t *testing.T) {
	ctx := context.Background()
	env, err := labenv.Start(ctx, labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	cfg, err := env.Config("")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		domain  string
		break_  func() error
		want    map[string]finding.Severity // ID/subject → severity
		anyDiff bool
	}{
		{"unchanged", "shop-example.com", func() error { return nil }, map[string]finding.Severity{}, false},
		{"hijack", "shop-example.com", func() error { return env.DNS.Hijack(ctx, "shop-example.com") },
			map[string]finding.Severity{"DELEGATION_CHANGED/": finding.Critical}, true},
		{"serial bump is expected", "shop-backup.net", func() error {
			return env.DNS.SerialDrift(ctx, "shop-backup.net", "ns2.provider-a.net", 1)
		}, map[string]finding.Severity{}, true},
		{"child NS changed", "shop-backup.net", func() error {
			return env.DNS.NSMismatch(ctx, "shop-backup.net", "ns1.provider-b.org")
		}, map[string]finding.Severity{"CHILD_NS_CHANGED/": finding.Critical}, true},
		{"watched record changed", "shop-backup.net", func() error {
			return env.DNS.ChangeRecord(ctx, "shop-backup.net", "", "www.shop-backup.net. 300 IN A 198.51.100.77")
		}, map[string]finding.Severity{"RECORD_CHANGED/www.shop-backup.net/A": finding.Warning}, true},
		{"DS rolled", "pay-example.org", func() error { return env.DNS.BreakDS(ctx, "pay-example.org") },
			map[string]finding.Severity{"DELEGATION_CHANGED/": finding.Critical}, true},
		{"transfer and unlock", "corp-example.net", func() error {
			return env.Reg.Update("corp-example.net", func(d *reglab.Domain) {
				d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
				d.Statuses = d.Statuses[1:]
			})
		}, map[string]finding.Severity{"REGISTRATION_CHANGED/": finding.Critical}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := env.DNS.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			env.SeedRegistrations(timeNow())
			// A fresh checker each time: the registry client caches records.
			ck, err := checker.New(cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			d, _ := cfg.Domain(tc.domain)
			approved := snapshot(t, ck, d)
			if err := tc.break_(); err != nil {
				t.Fatal(err)
			}
			ck2, _ := checker.New(cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
			defer ck2.Close()
			now := snapshot(t, ck2, d)
			diffs := append(baseline.DiffDNS(d, approved.DNS, now.DNS), baseline.DiffRegistration(approved.Registration, now.Registration)...)
			if tc.anyDiff != (len(diffs) > 0) {
				t.Errorf("diffs: %v", diffs)
			}
			got := map[string]finding.Severity{}
			for _, f := range baseline.Findings(d.Name, diffs) {
				got[f.ID+"/"+f.Subject] = f.Severity
				for _, e := range f.Evidence {
					if !strings.Contains(e.Answer, "approved: ") || !strings.Contains(e.Answer, "now: ") {
						t.Errorf("evidence does not say approved vs now: %s", e)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("findings %v, want %v (diffs %v)", got, tc.want, diffs)
			}
			for k, sev := range tc.want {
				if got[k] != sev {
					t.Errorf("%s: %s, want %s (all %v)", k, got[k], sev, got)
				}
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := &baseline.State{Domain: "a-example.com", DNS: &baseline.DNS{ParentZone: "com.", ParentNS: []string{"ns1.x.net."}},
		Registration: &baseline.Register{Registrar: "MarkMonitor Inc.", Statuses: []string{"clientTransferProhibited"}}}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := baseline.Unmarshal(b)
	if err != nil || back.DNS.ParentNS[0] != "ns1.x.net." || back.Registration.Registrar != "MarkMonitor Inc." {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if got := back.TrustedNS(); len(got) != 1 || got[0].Name != "ns1.x.net." {
		t.Errorf("trusted NS %v", got)
	}
}

func TestLockAddedIsOnlyAWarning(t *testing.T) {
	old := &baseline.Register{Registrar: "MarkMonitor Inc.", Statuses: []string{"clientTransferProhibited"}}
	now := &baseline.Register{Registrar: "MarkMonitor Inc.", Statuses: []string{"clientTransferProhibited", "serverTransferProhibited"}}
	fs := baseline.Findings("a-example.com", baseline.DiffRegistration(old, now))
	if len(fs) != 1 || fs[0].Severity != finding.Warning {
		t.Fatalf("lock added: %+v", fs)
	}
	fs = baseline.Findings("a-example.com", baseline.DiffRegistration(now, old))
	if len(fs) != 1 || fs[0].Severity != finding.Critical {
		t.Fatalf("lock removed: %+v", fs)
	}
}

func timeNow() time.Time { return time.Now() }

// A domain whose name servers live inside it: after a hijack, looking their
// addresses up asks the attacker. The resolver view must ask the approved
// addresses instead, and so see the divergence.
func TestResolverViewTrustsApprovedAddresses(t *testing.T) {
	ctx := context.Background()
	env, err := labenv.Start(ctx, labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	cfg, err := env.Config("")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cfg.Domain("corp-example.net")
	d.Nameservers = nil // no declared set: the baseline is the only truth
	ck, err := checker.New(cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	approved := snapshot(t, ck, d)
	if len(approved.DNS.NSAddrs) != 2 {
		t.Fatalf("approved addresses: %+v", approved.DNS.NSAddrs)
	}
	if err := env.DNS.Hijack(ctx, d.Name); err != nil {
		t.Fatal(err)
	}
	for _, trusted := range []bool{true, false} {
		opts := checker.RunOptions{Classes: []string{checker.DNS}}
		if trusted {
			opts.TrustedNS = func(string) []resolver.NameServer { return approved.TrustedNS() }
		}
		r := ck.Run(ctx, []config.Domain{d}, opts)[0]
		got := strings.Join(finding.IDs(r.Findings), ",")
		if has := strings.Contains(got, "RESOLVER_ANSWER_DIVERGES"); has != trusted {
			t.Errorf("trusted addresses %v: findings %s", trusted, got)
		}
	}
}
