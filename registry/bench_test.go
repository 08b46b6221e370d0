package registry_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/registry"
)

// unthrottled lifts the per-server token bucket (1000 qps in the lab
// config, i.e. 1 ms between questions) so the benchmarks measure work, not
// politeness.
func unthrottled(c *config.Config) { c.Registry.MaxQPSPerServer = 1e9 }

// BenchmarkLookupRDAP measures a full uncached lookup against the lab:
// registry and registrar RDAP over loopback HTTP, decode, normalise.
func BenchmarkLookupRDAP(b *testing.B) {
	e := newEnv(b, unthrottled)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.client.Refresh(ctx, "shop-example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupWHOIS is the thin-registry path: Verisign's answer, then
// the registrar's, over loopback TCP.
func BenchmarkLookupWHOIS(b *testing.B) {
	e := newEnv(b, unthrottled)
	e.cfg.Registry.RDAPBootstrap = "" // WHOIS only
	client := e.newClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Refresh(ctx, "shop-example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupCached is the common case in the daemon: a cache hit.
func BenchmarkLookupCached(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHeap10k reports the heap a Client holds after looking up
// 10,000 lab domains (the daemon benchmark's inventory size): live heap
// after GC with the client alive, less the live heap before it was built.
// The lab's own data is in both figures, so the difference is the client's
// caches (plus a few pooled connections).
//
//	go test ./registry -run '^$' -bench CacheHeap10k -benchtime 1x
func BenchmarkCacheHeap10k(b *testing.B) {
	const n = 10000
	for _, tc := range []struct {
		name string
		tlds []string
		rdap bool
	}{
		// The daemon benchmark's spread: RDAP registry plus registrar.
		{"rdap", []string{"com", "com", "com", "com", "com", "com", "com", "net", "net", "org"}, true},
		// Verisign thin WHOIS referring to the registrar's thick answer.
		{"whois", []string{"com", "net"}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, unthrottled, func(c *config.Config) {
				c.Registry.Timeout = config.Duration(10 * time.Second)
				if !tc.rdap {
					c.Registry.RDAPBootstrap = ""
				}
			})
			now := time.Now()
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("bench-%05d.%s", i, tc.tlds[i%len(tc.tlds)])
				d := reglab.Healthy(names[i], now)
				d.Registrant = "Example Group (bench)"
				e.lab.SetDomain(d)
			}
			ctx := context.Background()
			for b.Loop() {
				e.lab.ResetRequests()
				// A fresh cache directory, and no debug log kept in memory.
				e.cfg.Registry.CacheDir = b.TempDir()
				before := liveHeap()
				client, err := registry.New(e.cfg, registry.Options{HTTPClient: reglab.HTTPClient(), DialContext: reglab.DialLoopback})
				if err != nil {
					b.Fatal(err)
				}
				lookupAll(b, ctx, client, names)
				e.lab.ResetRequests()
				after := liveHeap()
				// A cache hit must not grow the heap either.
				lookupAll(b, ctx, client, names)
				if st := client.Stats(); st.CacheHits != n {
					b.Fatalf("%d cache hits, want %d", st.CacheHits, n)
				}
				runtime.KeepAlive(client)
				held := float64(after) - float64(before)
				b.ReportMetric(held/1e6, "MB-held")
				b.ReportMetric(held/n, "B/domain")
			}
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func lookupAll(b *testing.B, ctx context.Context, client *registry.Client, names []string) {
	b.Helper()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for name := range work {
				if _, err := client.Lookup(ctx, name); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
