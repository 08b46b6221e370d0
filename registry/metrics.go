package registry

import "sync/atomic"

// Stats counts a Client's work since it was built. The daemon exports these
// as Prometheus counters (nsguard_registry_*); the package itself stays free
// of a metrics dependency so `nsguard registry lookup` links nothing extra.
type Stats struct {
	RDAPQueries  uint64 `json:"rdap_queries"`
	WHOISQueries uint64 `json:"whois_queries"`
	// RateLimited counts answers that were rate-limit refusals (HTTP 429,
	// WHOIS quota text) plus questions not asked because of a backoff.
	RateLimited uint64 `json:"rate_limited"`
	CacheHits   uint64 `json:"cache_hits"`
	// Stale counts lookups answered with a cached record after a failure.
	Stale    uint64 `json:"stale"`
	Failures uint64 `json:"failures"`
}

type counters struct {
	rdap, whois, limited, hits, stale, failures atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	n := &c.counters
	return Stats{
		RDAPQueries: n.rdap.Load(), WHOISQueries: n.whois.Load(), RateLimited: n.limited.Load(),
		CacheHits: n.hits.Load(), Stale: n.stale.Load(), Failures: n.failures.Load(),
	}
}
