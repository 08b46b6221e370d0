// Package checker runs nsguard's two check classes over a set of domains —
// DNS (monitor) and registration (registry) — and joins what they found.
// `nsguard check`, the daemon, the audit and the demo all go through it.
package checker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Classes of checks, each on its own schedule in the daemon.
const (
	DNS          = "dns"
	Registration = "registration"
)

// Checker holds a monitor and a registry client for one config.
type Checker struct {
	cfg      *config.Config
	Monitor  *monitor.Monitor
	Registry *registry.Client
	now      func() time.Time
}

// Options tune a Checker.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// HTTPClient and Dial replace the registry's network access (tests
	// pin them to loopback).
	HTTPClient *http.Client
	Dial       registry.DialFunc
}

// New builds a checker for cfg.
func New(cfg *config.Config, opts Options) (*Checker, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	mon, err := monitor.New(cfg, monitor.Options{Logger: opts.Logger, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	reg, err := registry.New(cfg, registry.Options{Logger: opts.Logger, Now: opts.Now, HTTPClient: opts.HTTPClient, DialContext: opts.Dial})
	if err != nil {
		mon.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &Checker{cfg: cfg, Monitor: mon, Registry: reg, now: opts.Now}, nil
}

// Close releases the monitor's connections.
func (c *Checker) Close() { c.Monitor.Close() }

// Result is what one run found about one domain.
type Result struct {
	Domain config.Domain `json:"-"`
	// Index is the domain's position in the list Run was given.
	Index        int                  `json:"-"`
	DNS          *monitor.Observation `json:"dns,omitempty"`
	Registration *registry.Record     `json:"registration,omitempty"`
	Findings     []finding.Finding    `json:"findings"`
	// DNSErr and RegErr say a class could not be checked at all.
	DNSErr error `json:"-"`
	RegErr error `json:"-"`
	// RegLookupErr is why the registration lookup failed, when it did:
	// the findings say so too (REGISTRATION_UNAVAILABLE), the class still ran.
	RegLookupErr error `json:"-"`
}

// Worst is the worst severity found.
func (r Result) Worst() finding.Severity { return finding.Worst(r.Findings) }

// Err returns the first class error.
func (r Result) Err() error {
	if r.DNSErr != nil {
		return r.DNSErr
	}
	return r.RegErr
}

// RunOptions select and feed a run.
type RunOptions struct {
	// Classes to run; empty means both.
	Classes []string
	// TrustedNS feeds the resolver view (see monitor.CycleOptions).
	TrustedNS func(domain string) []resolver.NameServer
	// DelegationNS gives the last known delegation for registration-only
	// runs (REGISTRY_NS_MISMATCH); a DNS run in the same call supersedes it.
	DelegationNS func(domain string) []string
	// Progress reports done/total work items (domains × classes).
	Progress func(done, total int)
	// Fresh bypasses the registration cache (baseline approval must see
	// the registry as it is now).
	Fresh bool
	// OnResult, for a run of one class, receives each domain's result as
	// soon as it is done (concurrently) and Run returns nil: nothing is
	// held.
	OnResult func(Result)
	// Preflight checks the domains it returns a delegation for as if their
	// parent delegated them so (see monitor.Preflight).
	Preflight func(domain string) *monitor.Preflight
}

func (o RunOptions) has(class string) bool {
	if len(o.Classes) == 0 {
		return true
	}
	for _, c := range o.Classes {
		if c == class {
			return true
		}
	}
	return false
}

// registryConcurrency bounds registration lookups in flight: registries
// are slow and rate-limited, the token buckets do the rest.
const registryConcurrency = 8

// Run checks domains and returns one Result each, in order.
func (c *Checker) Run(ctx context.Context, domains []config.Domain, opts RunOptions) []Result {
	results := make([]Result, len(domains))
	for i, d := range domains {
		results[i].Domain, results[i].Index = d, i
	}
	total := 0
	if opts.has(DNS) {
		total += len(domains)
	}
	if opts.has(Registration) {
		total += len(domains)
	}
	var done atomic.Int64
	tick := func() {
		if opts.Progress != nil {
			opts.Progress(int(done.Add(1)), total)
		}
	}
	if opts.OnResult != nil && opts.has(DNS) && !opts.has(Registration) {
		c.Monitor.Check(ctx, domains, monitor.CycleOptions{TrustedNS: opts.TrustedNS, Preflight: opts.Preflight, Progress: func(int, int) { tick() },
			OnResult: func(r monitor.Result) {
				res := Result{Domain: domains[r.Index], Index: r.Index, DNS: r.Observation, DNSErr: r.Err, Findings: r.Findings}
				finding.Sort(res.Findings)
				opts.OnResult(res)
			}})
		return nil
	}
	if opts.has(DNS) {
		dns := c.Monitor.Check(ctx, domains, monitor.CycleOptions{TrustedNS: opts.TrustedNS, Preflight: opts.Preflight, Progress: func(int, int) { tick() }})
		for i, r := range dns {
			results[i].DNS = r.Observation
			results[i].DNSErr = r.Err
			results[i].Findings = append(results[i].Findings, r.Findings...)
		}
	}
	if opts.has(Registration) {
		stream := opts.OnResult != nil && !opts.has(DNS)
		sem := make(chan struct{}, registryConcurrency)
		var wg sync.WaitGroup
		for i := range domains {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				defer tick()
				r := &results[i]
				if stream {
					defer func() {
						finding.Sort(r.Findings)
						opts.OnResult(*r)
						*r = Result{}
					}()
				}
				lookup := c.Registry.Lookup
				if opts.Fresh {
					lookup = c.Registry.Refresh
				}
				rec, err := lookup(ctx, r.Domain.Name)
				if rec != nil {
					rec.Raw = "" // only `registry lookup --raw` shows it; a cycle would hold 10,000 of them
				}
				var delegation []string
				if r.DNS != nil {
					delegation = r.DNS.Parent.NS
				} else if opts.DelegationNS != nil {
					delegation = opts.DelegationNS(r.Domain.Name)
				}
				r.Registration, r.RegLookupErr = rec, err
				if rec == nil && err != nil && ctx.Err() != nil {
					r.RegErr = err
					return
				}
				r.Findings = append(r.Findings, registry.Evaluate(rec, err, r.Domain, c.cfg, delegation, c.now())...)
			}()
		}
		wg.Wait()
		if stream {
			return nil
		}
	}
	for i := range results {
		finding.Sort(results[i].Findings)
	}
	return results
}

// Select returns the inventory entries named by names (all when empty). A
// name outside the inventory is checked as an ad-hoc tier-3 domain.
func Select(cfg *config.Config, names []string) ([]config.Domain, error) {
	if len(names) == 0 {
		return cfg.Domains, nil
	}
	var out []config.Domain
	for _, n := range names {
		if d, ok := cfg.Domain(n); ok {
			out = append(out, d)
			continue
		}
		norm, err := config.NormalizeDomain(n)
		if err != nil {
			return nil, err
		}
		out = append(out, config.Domain{Name: norm, Tier: 3, WatchSeverity: "warning"})
	}
	return out, nil
}
