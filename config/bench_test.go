package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// largeInventory writes a config with n domains, each the way a real
// inventory entry looks (owner, services, a backup, watched names), plus a
// playbook and the usual sections, and returns its size.
func largeInventory(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, `store: {path: nsguard.db}
resolver: {public_resolvers: [127.0.0.1]}
policy:
  approved_registrars: ["MarkMonitor Inc."]
  required_locks: {tier0: [serverTransferProhibited, clientTransferProhibited]}
alerts:
  confirmations: 2
domains:
`)
	for i := range n {
		fmt.Fprintf(f, "  - {name: d%06d-example.com, tier: %d, owner: team-%d, services: [web-%d, api-%d], backups: [d%06d-backup.net], watch: [www, api, \"@ MX\"]}\n",
			i, i%4, i%50, i, i, i)
	}
	fmt.Fprint(f, `playbooks:
  - name: d0-to-backup
    primary: d000000-example.com
    backup: d000000-backup.net
    steps:
      - verify: {name: api.d000000-example.com., type: CNAME, expect: api.d000000-backup.net., servers: [127.0.0.1]}
`)
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

// peakHeap samples the heap while f runs and returns the highest figure
// seen above where it started: the memory loading a config needs at its
// worst moment, which the allocation total (B/op) does not tell.
// runtime/metrics is read rather than ReadMemStats, which stops the world
// and would slow what it measures.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := read(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	p := max(peak.Load(), read())
	if p < base {
		return 0
	}
	return p - base
}

// BenchmarkLoad100kDomains: loading and validating a 100,000-domain
// inventory, the size of a large registrar portfolio. peak-heap-MB is the
// most heap in use at once (the limit is 150 MB for the whole
// process), B/op the total allocated.
//
//	go test -run '^$' -bench Load100k -benchtime 3x ./config/
func BenchmarkLoad100kDomains(b *testing.B) {
	path := filepath.Join(b.TempDir(), "large.yaml")
	size := largeInventory(b, path, 100_000)
	b.SetBytes(size)
	b.ReportAllocs()
	// GOGC as the daemon runs it: a benchmark with a lower or higher GOGC
	// would measure the collector, not the loader.
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	var peak uint64
	for b.Loop() {
		var cfg *Config
		p := peakHeap(func() {
			var err error
			if cfg, err = Load(path); err != nil {
				b.Fatal(err)
			}
		})
		if len(cfg.Domains) != 100_000 {
			b.Fatalf("%d domains", len(cfg.Domains))
		}
		peak = max(peak, p)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
