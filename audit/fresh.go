package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Fresh is the Source that checks now: one monitor cycle over the
// domains, a registration lookup each (the registry client's cache and
// rate limits apply) and the dependency walk. It answers for every domain
// it is asked about.
type Fresh struct {
	Monitor  *monitor.Monitor
	Registry *registry.Client
	Logger   *slog.Logger
	// Concurrency bounds registration lookups and walks in flight (default 8).
	Concurrency int
	// Progress is called as domains finish each phase (for progress bars).
	Progress func(phase string, done, total int)
}

// Inputs checks domains now.
func (f *Fresh) Inputs(ctx context.Context, domains []config.Domain) ([]Input, error) {
	if f.Monitor == nil || f.Registry == nil {
		return nil, fmt.Errorf("audit: fresh source needs a monitor and a registry client")
	}
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "audit")
	conc := f.Concurrency
	if conc < 1 {
		conc = 8
	}
	progress := func(phase string) func(done, total int) {
		if f.Progress == nil {
			return nil
		}
		return func(done, total int) { f.Progress(phase, done, total) }
	}

	out := make([]Input, len(domains))
	results := f.Monitor.Check(ctx, domains, monitor.CycleOptions{Progress: progress("dns")})
	for i, d := range domains {
		out[i] = Input{Domain: d, Edges: nil}
		if i < len(results) {
			r := results[i]
			out[i].DNS, out[i].DNSFindings, out[i].DNSErr = r.Observation, r.Findings, r.Err
			if r.Err != nil {
				log.Warn("domain could not be checked", "domain", d.Name, "err", r.Err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, report := 0, progress("registration")
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec, err := f.Registry.Lookup(ctx, out[i].Domain.Name)
			out[i].Registration, out[i].RegErr = rec, err
			if report != nil {
				mu.Lock()
				done++
				report(done, len(out))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	WalkAll(ctx, f.Monitor.Resolver().NewCycle(), out, conc)
	return out, ctx.Err()
}
