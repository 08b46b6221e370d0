package monitor_test

import (
	"context"
	"sort"
	"testing"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/monitor"
)

// TestQueryCountsOfHealthyDomains pins what a healthy domain costs, so
// following CNAMEs in the resolver view (or any later change) cannot make
// ordinary domains dearer unnoticed.
func TestQueryCountsOfHealthyDomains(t *testing.T) {
	t.Run("the benchmark's domains", func(t *testing.T) {
		// Two single-address name servers, no watched names: 2 queries at
		// the parent (one per .com server), SOA over UDP and NS over TCP
		// per name server, and DNSKEY per server when signed (README,
		// Performance).
		_, cfg := startLab(t, dnslab.Options{World: dnslab.BenchWorld(60)})
		// One domain at a time: the first domain under each TLD pays the
		// walk from the root (the cut is then shared), the others do not;
		// concurrently, every domain started before a cut is learned pays
		// it too, and the figure would depend on the scheduler.
		cfg.Resolver.MaxConcurrentDomains = 1
		signed := map[string]bool{}
		for _, d := range cfg.Domains {
			signed[d.Name] = len(d.DS) > 0
		}
		m, err := monitor.New(cfg, monitor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var unsigned, withDS []int
		for _, r := range m.Check(context.Background(), cfg.Domains, monitor.CycleOptions{}) {
			if r.Err != nil || len(r.Findings) > 0 {
				t.Fatalf("%s: %v %s", r.Domain, r.Err, describe(r.Findings))
			}
			if signed[r.Domain] {
				withDS = append(withDS, r.Observation.Queries)
			} else {
				unsigned = append(unsigned, r.Observation.Queries)
			}
		}
		if got := median(unsigned); got != 6 {
			t.Errorf("an unsigned domain costs %d queries (median of %d), want 6: %v", got, len(unsigned), unsigned)
		}
		if got := median(withDS); got != 8 {
			t.Errorf("a signed domain costs %d queries (median of %d), want 8: %v", got, len(withDS), withDS)
		}
	})
	t.Run("the lab's domains with watched names", func(t *testing.T) {
		// Each domain alone in its cycle (walk from the root included).
		// These are the counts from before the resolver view followed
		// CNAMEs: watched names that are not aliases cost exactly what they
		// did. shop-example.com watches api, an alias of a CDN name: the
		// CDN's answer is looked up once per type (and a resolver that
		// answers the alias without the CDN's AAAA is asked once more).
		_, cfg := startLab(t, dnslab.Options{})
		m, err := monitor.New(cfg, monitor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		want := map[string][2]int{
			"shop-example.com": {29, 29 + 8},
			"shop-backup.net":  {28, 28},
			"pay-example.org":  {21, 21},
			"corp-example.net": {20, 20},
			"shop-example.cn":  {20, 20},
		}
		for _, d := range cfg.Domains {
			r := m.Check(context.Background(), []config.Domain{d}, monitor.CycleOptions{})[0]
			w := want[d.Name]
			if q := r.Observation.Queries; q < w[0] || q > w[1] {
				t.Errorf("%s: %d queries, want %d..%d", d.Name, q, w[0], w[1])
			}
		}
	})
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}
