package incident

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
)

// BenchmarkCycle10kDomains measures one scheduler cycle of 10,000 domains
// through the engine on a real SQLite file: each op is 10,000 Process
// calls, sequential, as one check class's cycle delivers them.
func BenchmarkCycle10kDomains(b *testing.B) {
	const domains = 10000
	for _, tc := range []struct {
		name string
		// sick reports whether domain i has findings this cycle.
		sick func(i int) bool
	}{
		{"healthy", func(int) bool { return false }},
		{"1pct-hijacked", func(i int) bool { return i%100 == 0 }},
		{"all-open", func(int) bool { return true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			clk := &clock{t: t0}
			eng, err := New(st, Options{Policy: policy(), Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			names := make([]string, domains)
			fs := make([][]finding.Finding, domains)
			for i := range domains {
				names[i] = fmt.Sprintf("d%05d.example", i)
				if tc.sick(i) {
					h, l := hijack, lame
					h.Domain, l.Domain = names[i], names[i]
					fs[i] = []finding.Finding{h, l}
				}
			}
			cycle := func() {
				clk.Add(time.Minute)
				for i := range domains {
					if _, err := eng.Process(ctx, names[i], "dns", fs[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			// Two warm-up cycles: incidents are open, pages enqueued; what
			// is measured is the steady state.
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
