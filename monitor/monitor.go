// Package monitor inspects each critical domain's delegation and name
// servers the way Zonemaster does — every parent server, every name server
// address over UDP and TCP, DNSSEC, watched records and the public resolvers'
// view — and turns what it saw into an Observation and Findings.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// Monitor checks domains; one Monitor serves many cycles.
type Monitor struct {
	cfg *config.Config
	res *resolver.Resolver
	log *slog.Logger
	now func() time.Time
}

// Options tune a Monitor.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// New builds a monitor from the config's resolver section and policy.
func New(cfg *config.Config, opts Options) (*Monitor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res, err := resolver.New(cfg.Resolver, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return &Monitor{cfg: cfg, res: res, log: opts.Logger.With("component", "monitor"), now: opts.Now}, nil
}

// Resolver returns the monitor's resolver (query counts, shared use).
func (m *Monitor) Resolver() *resolver.Resolver { return m.res }

// Close releases idle connections.
func (m *Monitor) Close() { m.res.Close() }

// Result is one domain's outcome of a cycle.
type Result struct {
	Domain string
	// Index is the domain's position in the list Check was given.
	Index       int
	Observation *Observation
	Findings    []finding.Finding
	// Err is set when the domain could not be checked at all (the parent
	// zone's servers were unreachable, the context ended).
	Err error
}

// CycleOptions carry per-cycle inputs.
type CycleOptions struct {
	// TrustedNS returns the name servers whose answers are the truth for
	// the resolver view (the approved baseline's, with the addresses it
	// approved: looking them up again could ask a hijacked delegation);
	// nil or empty falls back to the declared nameservers, then to the
	// delegation.
	TrustedNS func(domain string) []resolver.NameServer
	// Progress is called after each domain (for progress bars).
	Progress func(done, total int)
	// OnResult, when set, receives each domain's result as soon as it is
	// done (from several goroutines at once) and Check keeps none: a daemon
	// cycle over ten thousand domains then never holds them all.
	OnResult func(Result)
	// Preflight, when it returns a delegation for a domain, checks the
	// domain as if its parent delegated it so (see Preflight).
	Preflight func(domain string) *Preflight
}

// Preflight is a delegation to check a zone against instead of the one its
// parent publishes: Zonemaster's undelegated test, what an operator runs
// before moving a domain to new name servers. The parent is not asked; the
// name servers, the glue given here and the DS are checked as the parent
// would publish them (the resolver view is skipped: public resolvers still
// see the real delegation).
type Preflight struct {
	// NS are the name servers with the addresses to use for them (glue);
	// a name without addresses is looked up, unless it is inside the
	// domain, where only glue can reach it.
	NS []resolver.NameServer
	// DS in presentation form ("keytag algorithm digesttype digest").
	DS []string
}

// Check runs one cycle over domains, at most resolver.max_concurrent_domains
// at a time, sharing one cache. Results come back in the order given (or
// one by one through opts.OnResult, and then Check returns nil).
func (m *Monitor) Check(ctx context.Context, domains []config.Domain, opts CycleOptions) []Result {
	cycle := m.res.NewCycle()
	var results []Result
	if opts.OnResult == nil {
		results = make([]Result, len(domains))
	}
	// A fixed set of workers takes the domains in order: their stacks,
	// grown once by the first domain, serve every later one (a goroutine
	// per domain grew a fresh stack for each).
	workers := min(max(1, m.cfg.Resolver.MaxConcurrentDomains), len(domains))
	var wg sync.WaitGroup
	var next, done atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(domains) {
					return
				}
				r := m.checkDomain(ctx, cycle, domains[i], opts)
				r.Index = i
				if opts.OnResult != nil {
					opts.OnResult(r)
				} else {
					results[i] = r
				}
				if opts.Progress != nil {
					opts.Progress(int(done.Add(1)), len(domains))
				}
			}
		}()
	}
	wg.Wait()
	return results
}

// domainCheck is the working state of one domain's check.
type domainCheck struct {
	m       *Monitor
	cycle   *resolver.Cycle
	d       config.Domain
	name    string // FQDN
	obs     *Observation
	out     []finding.Finding
	trusted []resolver.NameServer
	now     time.Time
	// preflight is the delegation checked instead of the parent's.
	preflight *Preflight
	// glue is every glue address the parent gave per name, both address
	// families (obs.Parent.Glue holds the ones nsguard can use).
	glue map[string]map[netip.Addr]bool
	// sigs caches signature verifications by their full input (verifySig);
	// a domain's servers are checked one after another, on its goroutine.
	sigs map[string]error
}

func (m *Monitor) checkDomain(ctx context.Context, cycle *resolver.Cycle, d config.Domain, opts CycleOptions) (res Result) {
	start := time.Now()
	var queries atomic.Int64
	// A deadline per domain: whatever a hostile delegation does, one
	// domain cannot hold the cycle (and with it every later cycle).
	ctx, cancel := context.WithTimeout(ctx, m.domainBudget())
	defer cancel()
	ctx = resolver.WithScope(resolver.WithCounter(ctx, &queries), d.Name)
	c := &domainCheck{
		m: m, cycle: cycle, d: d, name: dns.Fqdn(d.Name), now: m.now(),
		obs: &Observation{Domain: d.Name},
	}
	c.obs.CheckedAt = c.now.UTC().Truncate(time.Second)
	if opts.TrustedNS != nil {
		c.trusted = opts.TrustedNS(d.Name)
	}
	if opts.Preflight != nil {
		c.preflight = opts.Preflight(d.Name)
		c.obs.Preflight = c.preflight != nil
	}
	defer func() {
		if r := recover(); r != nil {
			// A bug in the check's own goroutine must not take the daemon
			// down with it (the probes' goroutines are kept simple).
			res = Result{Domain: d.Name, Err: fmt.Errorf("internal error checking %s: %v", d.Name, r)}
			m.log.Error("check panicked", "domain", d.Name, "err", r)
		}
	}()
	res.Domain = d.Name
	if err := c.run(ctx); err != nil {
		res.Err = err
		// By the clock, not ctx.Err(): the rate limiter refuses to wait past
		// the deadline a moment before the context's timer fires.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			res.Err = fmt.Errorf("checking %s took longer than %s and was abandoned (a broken or hostile delegation?): %w", d.Name, m.domainBudget(), err)
		}
	}
	c.obs.Queries = int(queries.Load())
	c.obs.DurationMS = ms(time.Since(start))
	c.obs.normalize()
	for i := range c.out {
		c.out[i].Domain = d.Name
	}
	finding.Sort(c.out)
	res.Observation, res.Findings = c.obs, c.out
	return res
}

func (c *domainCheck) run(ctx context.Context) error {
	if c.preflight != nil {
		c.checkPreflight()
	} else {
		parent, err := c.cycle.FindParent(ctx, c.name)
		if err != nil {
			return c.walkFailed(err)
		}
		if err := c.checkParent(ctx, parent); err != nil {
			return err
		}
	}
	if len(c.obs.Parent.NS) == 0 {
		// Nothing delegated: the child side has no servers to ask.
		return ctx.Err()
	}
	c.checkNameServers(ctx)
	c.checkDNSSEC(ctx)
	c.checkRecords(ctx)
	if c.preflight == nil {
		c.checkResolverView(ctx)
	}
	return ctx.Err()
}

// ErrIntercepted marks a check that saw only non-authoritative negative
// answers: something between nsguard and the Internet answers port 53.
var ErrIntercepted = errors.New("answers are not authoritative: is DNS intercepted?")

// walkFailed turns a failed walk down to the parent zone into what it
// says. Servers that answered, but unusably (truncated even over TCP,
// REFUSED, lame), are a finding about those servers; answers that were all
// negative and without authority say DNS is intercepted; anything else
// (nothing answered) means the domain could not be checked.
func (c *domainCheck) walkFailed(err error) error {
	ze, ok := resolver.IsZoneError(err)
	switch {
	case ok && ze.Intercepted():
		return fmt.Errorf("finding the parent zone of %s: %w (%v)", c.d.Name, ErrIntercepted, err)
	case ok && ze.Answered() && !errors.Is(err, context.DeadlineExceeded):
		c.obs.Parent.Zone = ze.Zone
		var ev []finding.Evidence
		for _, f := range ze.Failures {
			who := f.Name
			if f.Addr.IsValid() {
				who += " " + f.Addr.String()
			}
			ev = append(ev, finding.Evidence{Server: who, Query: ze.Query.String(), Answer: f.Kind + ": " + f.Detail})
		}
		c.addSev(ParentServerError, finding.Critical, "", fmt.Sprintf("no server of the %s zone gives a usable answer for %s: resolvers cannot find the delegation (a server problem, not proof that the delegation is gone)",
			zoneName(ze.Zone), c.d.Name), ev...)
		return nil
	}
	return fmt.Errorf("finding the parent zone of %s: %w", c.d.Name, err)
}

// add records a finding with the catalogue's default severity.
func (c *domainCheck) add(id, subject, msg string, ev ...finding.Evidence) {
	c.addSev(id, defaultSeverity(id), subject, msg, ev...)
}

func (c *domainCheck) addSev(id string, sev finding.Severity, subject, msg string, ev ...finding.Evidence) {
	c.out = append(c.out, finding.Finding{ID: id, Severity: sev, Subject: subject, Message: msg, Evidence: ev})
}

// domainBudget is how long one domain's check may take
// (resolver.domain_timeout): whatever its servers do, a domain gives up
// then, and the cycle (with every later one) goes on.
func (m *Monitor) domainBudget() time.Duration {
	if d := m.cfg.Resolver.DomainTimeout.D(); d > 0 {
		return d
	}
	return config.DefaultDomainTimeout
}

func defaultSeverity(id string) finding.Severity {
	if chk, ok := finding.Lookup(id); ok {
		return chk.Default
	}
	return finding.Warning
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rdata renders a record's data without its header, lower-casing names so
// that case differences never count as changes.
func rdata(rr dns.RR) string {
	s := strings.TrimPrefix(rr.String(), rr.Header().String())
	switch rr.(type) {
	case *dns.NS, *dns.CNAME, *dns.MX, *dns.PTR, *dns.SRV, *dns.DNAME:
		s = strings.ToLower(s)
	}
	return strings.TrimSpace(s)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probeError renders a resolver error briefly for evidence lines.
func probeError(err error) string {
	switch {
	case errors.Is(err, resolver.ErrTimeout):
		return "timed out"
	case errors.Is(err, resolver.ErrMalformed):
		return "malformed answer: " + err.Error()
	case errors.Is(err, resolver.ErrMismatch):
		return "answer does not match the query: " + err.Error()
	case errors.Is(err, resolver.ErrTruncated):
		return "truncated even over TCP"
	}
	return errText(err)
}
