package registry_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/registry"
)

var evalNow = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

func healthyRecord() *registry.Record {
	return &registry.Record{
		Domain: "shop-example.com", Source: registry.SourceRDAP,
		Server: "https://rdap.verisign.com/com/v1/", Query: "https://rdap.verisign.com/com/v1/domain/shop-example.com",
		Registrar: registry.Registrar{Name: "MarkMonitor Inc.", IANAID: "292", Server: "https://rdap.markmonitor.com/rdap/domain/SHOP-EXAMPLE.COM"},
		Statuses: []string{"clientDeleteProhibited", "clientTransferProhibited", "clientUpdateProhibited",
			"serverDeleteProhibited", "serverTransferProhibited", "serverUpdateProhibited"},
		Expiry: evalNow.AddDate(1, 0, 0), RegistryExpiry: evalNow.AddDate(1, 0, 0),
		Nameservers: []string{"ns1.shop-dns.net", "ns2.shop-dns.org"},
	}
}

func evalConfig() *config.Config {
	cfg := config.Default()
	cfg.Policy.ApprovedRegistrars = []string{"MarkMonitor Inc.", "376"}
	cfg.Policy.RequiredLocks = map[string][]string{
		"tier0": {"serverTransferProhibited", "serverUpdateProhibited", "serverDeleteProhibited", "clientTransferProhibited"},
		"tier1": {"clientTransferProhibited"},
		"tier3": {"clientTransferProhibited"},
	}
	cfg.Policy.Expiry = config.Horizon{Warning: config.Duration(90 * 24 * time.Hour), Critical: config.Duration(30 * 24 * time.Hour)}
	return cfg
}

func TestEvaluate(t *testing.T) {
	without := func(r *registry.Record, s string) {
		r.Statuses = slices.DeleteFunc(r.Statuses, func(x string) bool { return x == s })
	}
	delegation := []string{"ns1.shop-dns.net", "ns2.shop-dns.org"}
	for _, tc := range []struct {
		name       string
		tier       int
		mutate     func(*registry.Record, *config.Config)
		lookupErr  error
		delegation []string
		want       []string // ID/severity/subject, worst first
		wantInMsg  string
	}{
		{name: "healthy tier 0", delegation: delegation},
		{name: "server hold", mutate: func(r *registry.Record, _ *config.Config) { r.Statuses = append(r.Statuses, "serverHold") },
			want: []string{"STATUS_HOLD/critical/serverHold"}, wantInMsg: "out of the DNS"},
		{name: "every hold status", tier: 3, mutate: func(r *registry.Record, _ *config.Config) {
			r.Statuses = []string{"clientHold", "clientTransferProhibited", "inactive", "pendingDelete", "redemptionPeriod", "serverHold"}
		}, want: []string{"STATUS_HOLD/critical/clientHold", "STATUS_HOLD/critical/inactive", "STATUS_HOLD/critical/pendingDelete",
			"STATUS_HOLD/critical/redemptionPeriod", "STATUS_HOLD/critical/serverHold"}},
		{name: "unapproved registrar tier 0", mutate: func(r *registry.Record, _ *config.Config) {
			r.Registrar = registry.Registrar{Name: "Evil Registrar Ltd", IANAID: "9999"}
		}, want: []string{"REGISTRAR_NOT_APPROVED/critical/"}, wantInMsg: "Evil Registrar Ltd (IANA 9999)"},
		{name: "unapproved registrar tier 2 is a warning", tier: 2, mutate: func(r *registry.Record, _ *config.Config) {
			r.Registrar = registry.Registrar{Name: "Evil Registrar Ltd", IANAID: "9999"}
		}, want: []string{"REGISTRAR_NOT_APPROVED/warning/"}},
		{name: "approved by IANA ID despite another name", mutate: func(r *registry.Record, _ *config.Config) {
			r.Registrar = registry.Registrar{Name: "Corporation Service Company", IANAID: "376"}
		}},
		{name: "approved by name with other punctuation", mutate: func(r *registry.Record, _ *config.Config) {
			r.Registrar = registry.Registrar{Name: "MARKMONITOR, INC"}
		}},
		{name: "no approved list, no judgement", mutate: func(r *registry.Record, c *config.Config) {
			r.Registrar = registry.Registrar{Name: "Evil Registrar Ltd"}
			c.Policy.ApprovedRegistrars = nil
		}},
		{name: "registrar not published is info", mutate: func(r *registry.Record, _ *config.Config) { r.Registrar = registry.Registrar{} },
			want: []string{"REGISTRAR_NOT_APPROVED/info/"}},
		{name: "two locks missing tier 0", mutate: func(r *registry.Record, _ *config.Config) {
			without(r, "serverTransferProhibited")
			without(r, "clientTransferProhibited")
		}, want: []string{"LOCK_MISSING/critical/clientTransferProhibited", "LOCK_MISSING/critical/serverTransferProhibited"}},
		{name: "lock missing tier 3 is a warning", tier: 3, mutate: func(r *registry.Record, _ *config.Config) { without(r, "clientTransferProhibited") },
			want: []string{"LOCK_MISSING/warning/clientTransferProhibited"}},
		{name: "tier without required locks", tier: 2, mutate: func(r *registry.Record, _ *config.Config) { r.Statuses = nil }},
		{name: "non-EPP statuses are named", tier: 1, mutate: func(r *registry.Record, _ *config.Config) {
			r.Statuses, r.OtherStatuses = nil, []string{"AgentChangeLocked"}
		}, want: []string{"LOCK_MISSING/critical/clientTransferProhibited"}, wantInMsg: "AgentChangeLocked"},
		{name: "expiry 100 days", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.AddDate(0, 0, 100) }},
		{name: "expiry 60 days", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.AddDate(0, 0, 60) },
			want: []string{"EXPIRY_SOON/warning/"}, wantInMsg: "expires in 60 days"},
		{name: "expiry 20 days", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.AddDate(0, 0, 20) },
			want: []string{"EXPIRY_SOON/critical/"}, wantInMsg: "expires in 20 days"},
		{name: "expiry exactly at the critical horizon", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.AddDate(0, 0, 30) },
			want: []string{"EXPIRY_SOON/critical/"}},
		{name: "expiry in hours", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.Add(5 * time.Hour) },
			want: []string{"EXPIRY_SOON/critical/"}, wantInMsg: "expires in 5 hours"},
		{name: "expired", mutate: func(r *registry.Record, _ *config.Config) { r.Expiry = evalNow.AddDate(0, 0, -3) },
			want: []string{"EXPIRY_SOON/critical/"}, wantInMsg: "expired 3 days ago"},
		{name: "registry and registrar disagree", mutate: func(r *registry.Record, _ *config.Config) {
			r.RegistryExpiry, r.RegistrarExpiry, r.Expiry = evalNow.AddDate(1, 0, 0), evalNow.AddDate(0, 0, 10), evalNow.AddDate(0, 0, 10)
		}, want: []string{"EXPIRY_SOON/critical/"}, wantInMsg: "disagree"},
		{name: "no expiry published", mutate: func(r *registry.Record, _ *config.Config) {
			r.Expiry, r.RegistryExpiry, r.ExpiryNote = time.Time{}, time.Time{}, "DENIC does not publish expiry dates"
		}, want: []string{"EXPIRY_SOON/info/"}, wantInMsg: "DENIC"},
		{name: "registry NS differ from delegation", delegation: []string{"ns1.attacker.example"},
			want: []string{"REGISTRY_NS_MISMATCH/warning/"}, wantInMsg: "ns1.attacker.example"},
		{name: "NS equal up to case and dot", delegation: []string{"NS2.shop-dns.org.", "ns1.SHOP-DNS.net"}},
		{name: "no delegation given, no NS judgement"},
		{name: "lookup failed", lookupErr: &registry.LookupError{Domain: "shop-example.com", Err: registry.ErrRateLimited,
			Attempts: []registry.Attempt{{Protocol: "rdap", Server: "rdap.example", Query: "q", Result: "rate limited"}}},
			want: []string{"REGISTRATION_UNAVAILABLE/warning/"}, wantInMsg: "rate limited"},
		{name: "not registered", lookupErr: fmt.Errorf("x: %w", registry.ErrNotRegistered),
			want: []string{"REGISTRATION_UNAVAILABLE/critical/"}, wantInMsg: "not registered"},
		{name: "plain error", lookupErr: errors.New("connection refused"),
			want: []string{"REGISTRATION_UNAVAILABLE/warning/"}, wantInMsg: "connection refused"},
		{name: "stale data still judged", mutate: func(r *registry.Record, _ *config.Config) {
			r.Stale = "fresh lookup failed (rate limited)"
			r.Expiry = evalNow.AddDate(0, 0, 10)
		}, want: []string{"EXPIRY_SOON/critical/", "REGISTRATION_UNAVAILABLE/warning/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, cfg := healthyRecord(), evalConfig()
			if tc.mutate != nil {
				tc.mutate(rec, cfg)
			}
			if tc.lookupErr != nil {
				rec = nil
			}
			d := config.Domain{Name: "Shop-Example.com.", Tier: tc.tier}
			fs := registry.Evaluate(rec, tc.lookupErr, d, cfg, tc.delegation, evalNow)
			var got []string
			var msgs []string
			for _, f := range fs {
				got = append(got, f.ID+"/"+f.Severity.String()+"/"+f.Subject)
				msgs = append(msgs, f.Message)
				if f.Domain != "shop-example.com" {
					t.Errorf("domain = %q", f.Domain)
				}
				if len(f.Evidence) == 0 {
					t.Errorf("%s has no evidence", f.ID)
				}
				c, ok := finding.Lookup(f.ID)
				if !ok || c.Class != "registration" {
					t.Errorf("%s not registered as a registration check", f.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings = %v, want %v\nmessages: %q", got, tc.want, msgs)
			}
			if tc.wantInMsg != "" && !strings.Contains(strings.Join(msgs, "\n"), tc.wantInMsg) {
				t.Errorf("messages %q lack %q", msgs, tc.wantInMsg)
			}
		})
	}
}

// Evaluate is pure: same inputs, same output, inputs untouched.
func TestEvaluatePure(t *testing.T) {
	rec, cfg := healthyRecord(), evalConfig()
	rec.Statuses = []string{"serverHold"}
	before := fmt.Sprintf("%+v", *rec)
	d := config.Domain{Name: "shop-example.com", Tier: 0}
	a := registry.Evaluate(rec, nil, d, cfg, []string{"ns9.example"}, evalNow)
	b := registry.Evaluate(rec, nil, d, cfg, []string{"ns9.example"}, evalNow)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("two runs differ")
	}
	if after := fmt.Sprintf("%+v", *rec); after != before {
		t.Errorf("record changed:\n%s\n%s", before, after)
	}
}

// A record from the cache says so in every piece of evidence; a field
// whose WHOIS readings differed carries how it was read.
func TestEvaluateCachedAndParseNotes(t *testing.T) {
	rec := healthyRecord()
	rec.Registrar = registry.Registrar{Name: "Evil Registrar Ltd"}
	rec.Expiry, rec.RegistryExpiry = evalNow.AddDate(0, 0, 20), evalNow.AddDate(0, 0, 20)
	rec.FetchedAt = evalNow.Add(-(3*time.Hour + 12*time.Minute))
	rec.Cached, rec.CacheAge = true, "3h12m"
	rec.ParseNotes = []string{
		`expiry: 2026-01-26 from "Record will expire on" ("01/26/2026"); whois-parser read 2026-02-01`,
		`registrar: "Evil Registrar Ltd" from "Registrar"; whois-parser read "Evil Registrar Ltd, 1 Street"`,
	}
	fs := registry.Evaluate(rec, nil, config.Domain{Name: "shop-example.com", Tier: 0}, evalConfig(), nil, evalNow)
	byID := map[string]finding.Finding{}
	for _, f := range fs {
		byID[f.ID] = f
		for _, e := range f.Evidence {
			if !strings.HasPrefix(e.Answer, "read: ") && !strings.HasSuffix(e.Answer, " (cached 3h12m ago)") {
				t.Errorf("%s evidence %q does not say it is cached and how old", f.ID, e.Answer)
			}
		}
	}
	has := func(id, want string) {
		t.Helper()
		for _, e := range byID[id].Evidence {
			if e.Answer == want {
				return
			}
		}
		t.Errorf("%s evidence lacks %q: %+v", id, want, byID[id].Evidence)
	}
	has(registry.IDExpirySoon, "read: "+rec.ParseNotes[0])
	has(registry.IDRegistrarNotApproved, "read: "+rec.ParseNotes[1])
	for _, e := range byID[registry.IDExpirySoon].Evidence {
		if strings.Contains(e.Answer, "registrar: ") {
			t.Errorf("EXPIRY_SOON quotes the registrar note: %q", e.Answer)
		}
	}

	rec.Cached, rec.CacheAge = false, ""
	for _, f := range registry.Evaluate(rec, nil, config.Domain{Name: "shop-example.com", Tier: 0}, evalConfig(), nil, evalNow) {
		for _, e := range f.Evidence {
			if strings.Contains(e.Answer, "cached") {
				t.Errorf("fresh record: %s evidence %q says cached", f.ID, e.Answer)
			}
		}
	}
}
