package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
)

// benchBackends open a new, empty store of each kind.
var benchBackends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"sqlite", func(b *testing.B) store.Store {
		s, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}},
	{"postgres", func(b *testing.B) store.Store {
		s, err := store.OpenPostgres(context.Background(), pgtest.Database(b), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}},
}

type benchClock struct{ t time.Time }

func (c *benchClock) Now() time.Time { return c.t }

// BenchmarkEngineCycle is incident's BenchmarkCycle10kDomains on
// both backends: the incident engine's hot path, one scheduler cycle of
// 10,000 domains (each op is 10,000 Process calls, sequential, as one
// check class's cycle delivers them), in three states of the fleet.
func BenchmarkEngineCycle(b *testing.B) {
	const domains = 10000
	for _, be := range benchBackends {
		for _, tc := range []struct {
			name string
			sick func(i int) bool
		}{
			{"healthy", func(int) bool { return false }},
			{"1pct-hijacked", func(i int) bool { return i%100 == 0 }},
			{"all-open", func(int) bool { return true }},
		} {
			b.Run(be.name+"/"+tc.name, func(b *testing.B) {
				ctx := context.Background()
				st := be.open(b)
				defer st.Close()
				clk := &benchClock{t: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
				eng, err := incident.New(st, incident.Options{Now: clk.Now, Policy: incident.Policy{
					Confirmations: 2, RepeatInterval: 4 * time.Hour, GroupWindow: 5 * time.Minute,
					Slack: config.Slack{Channel: "#dns-oncall", Channels: map[string]string{"critical": "#dns-pager"}},
				}})
				if err != nil {
					b.Fatal(err)
				}
				names := make([]string, domains)
				fs := make([][]finding.Finding, domains)
				for i := range domains {
					names[i] = fmt.Sprintf("d%05d.example", i)
					if tc.sick(i) {
						fs[i] = []finding.Finding{
							{ID: "XT_PARENT_NS_CHANGED", Severity: finding.Critical, Domain: names[i], Message: "the parent delegates to unapproved servers",
								Evidence: []finding.Evidence{{Server: "a.gtld-servers.net", Query: "NS " + names[i], Answer: "now ns1.evil.example"}}},
							{ID: "XT_NS_LAME", Severity: finding.Warning, Domain: names[i], Subject: "ns2.shop-dns.net", Message: "REFUSED"},
						}
					}
				}
				cycle := func() {
					clk.t = clk.t.Add(time.Minute)
					for i := range domains {
						if _, err := eng.Process(ctx, names[i], "dns", fs[i]); err != nil {
							b.Fatal(err)
						}
					}
				}
				// Two warm-up cycles: incidents are open, pages enqueued;
				// what is measured is the steady state.
				cycle()
				cycle()
				b.ResetTimer()
				for b.Loop() {
					cycle()
				}
				b.ReportMetric(float64(domains*b.N)/b.Elapsed().Seconds(), "domains/s")
			})
		}
	}
}
