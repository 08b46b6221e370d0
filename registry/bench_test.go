package registry_test

import (
	"context"
	"testing"

	"github.com/nsguard/nsguard/config"
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
