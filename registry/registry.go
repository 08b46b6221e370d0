package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nsguard/nsguard/config"
)

// staleLimit is how old a cached record may be and still stand in for a
// failed lookup (with REGISTRATION_UNAVAILABLE beside it): expiry dates and
// registrars rarely change, and judging week-old data beats judging none.
const staleLimit = 30 * 24 * time.Hour

// Options are the seams of a Client; zero values are production defaults.
type Options struct {
	Logger *slog.Logger
	// HTTPClient is used for RDAP and the bootstrap file. nsguard wraps it
	// to bound response bodies and keep redirects in scope.
	HTTPClient *http.Client
	// Now is the clock (cache ages, backoff deadlines).
	Now func() time.Time
	// DialContext dials WHOIS servers, and RDAP servers when HTTPClient is
	// nil. Tests pass reglab.DialLoopback so nothing can leave 127.0.0.0/8.
	DialContext DialFunc
}

// Client looks up registration data. It is safe for concurrent use; one
// Client should serve a whole process so caches and rate limits are shared.
type Client struct {
	cfg      *config.Config
	log      *slog.Logger
	http     *http.Client
	dial     DialFunc
	now      func() time.Time
	timeout  time.Duration
	ttl      time.Duration
	polite   *politeness
	cache    *diskCache
	boot     bootstrapState
	counters counters

	mu       sync.Mutex
	records  map[string]*Record
	tlds     map[string]*TLDInfo
	inflight map[string]*flight
}

type flight struct {
	done chan struct{}
	rec  *Record
	err  error
}

// New builds a Client from the registry section of cfg. The caches live in
// registry.cache_dir, or beside store.path when that is empty.
func New(cfg *config.Config, opts Options) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("registry: nil config")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "registry")
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	timeout := cfg.Registry.Timeout.D()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	qps := cfg.Registry.MaxQPSPerServer
	if qps <= 0 {
		qps = 1
	}
	dial := opts.DialContext
	if dial == nil {
		dial = defaultDial(timeout)
	}
	dir := cfg.Registry.CacheDir
	if dir == "" && cfg.Store.Path != "" {
		dir = filepath.Dir(cfg.Store.Path)
	}
	return &Client{
		cfg:      cfg,
		log:      log,
		http:     newHTTPClient(opts.HTTPClient, dial),
		dial:     dial,
		now:      now,
		timeout:  timeout,
		ttl:      cacheTTL(cfg),
		polite:   newPoliteness(qps, now),
		cache:    &diskCache{dir: dir, log: log},
		records:  map[string]*Record{},
		tlds:     map[string]*TLDInfo{},
		inflight: map[string]*flight{},
	}, nil
}

// cacheTTL is how long a record is reused: a registration period, less
// twice the scheduler's jitter so the next scheduled run always refreshes
// (each domain is asked once per period, not once per two periods).
func cacheTTL(cfg *config.Config) time.Duration {
	p := cfg.RegistrationPeriod()
	if ttl := p - 2*cfg.Schedules.Jitter.D(); ttl >= p/2 {
		return ttl
	}
	return p / 2
}

// Lookup returns the registration record of domain, from the cache when it
// is younger than the registration period (then marked Cached, with its
// CacheAge). When a fresh lookup fails but a
// record up to 30 days old is cached, that record comes back with Stale
// set (and a nil error); Evaluate reports it. The caches keep records
// without their raw answers, so a record served from the cache (a hit, or
// a stale record) has an empty Raw; a fresh lookup (Refresh, or a miss)
// carries them. The returned record is the caller's to modify.
func (c *Client) Lookup(ctx context.Context, domain string) (*Record, error) {
	return c.lookup(ctx, domain, false)
}

// Refresh is Lookup without the cache (rate limits still apply): what a
// person running `nsguard check` by hand must see. Only when the registry
// cannot be read does a cached record stand in (Stale and Cached set).
func (c *Client) Refresh(ctx context.Context, domain string) (*Record, error) {
	return c.lookup(ctx, domain, true)
}

func (c *Client) lookup(ctx context.Context, domain string, fresh bool) (*Record, error) {
	name, err := config.NormalizeDomain(domain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDomain, err)
	}
	if !fresh {
		if rec := c.cached(name); rec != nil && c.now().Sub(rec.FetchedAt) < c.ttl {
			c.counters.hits.Add(1)
			return c.servedFromCache(rec), nil
		}
	}

	// One lookup per domain at a time: concurrent callers share its result.
	c.mu.Lock()
	if f, ok := c.inflight[name]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.rec.clone(), f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[name] = f
	c.mu.Unlock()

	rec, err := c.fetch(ctx, name)
	switch {
	case err == nil:
		keep := rec.cacheCopy()
		c.mu.Lock()
		c.records[name] = keep
		c.mu.Unlock()
		c.cache.save("registration", name, keep)
	case ctx.Err() == nil && !errors.Is(err, ErrNotRegistered):
		if old := c.cached(name); old != nil && c.now().Sub(old.FetchedAt) < staleLimit {
			c.counters.stale.Add(1)
			rec = c.servedFromCache(old)
			rec.Stale = fmt.Sprintf("fresh lookup failed (%v); data fetched %s", err, rec.FetchedAt.Format(time.RFC3339))
			err = nil
			break
		}
		c.counters.failures.Add(1)
	default:
		c.counters.failures.Add(1)
	}
	f.rec, f.err = rec, err
	c.mu.Lock()
	delete(c.inflight, name)
	c.mu.Unlock()
	close(f.done)
	return rec.clone(), err
}

// servedFromCache copies a cached record for a caller, marked as cached
// with its age, so whoever reports it can say the data is not fresh.
func (c *Client) servedFromCache(rec *Record) *Record {
	out := rec.clone()
	out.Cached = true
	out.CacheAge = Age(c.now().Sub(rec.FetchedAt))
	return out
}

// cached returns the newest cached record (memory, else disk), or nil.
func (c *Client) cached(name string) *Record {
	c.mu.Lock()
	rec := c.records[name]
	c.mu.Unlock()
	if rec != nil {
		return rec
	}
	var disk Record
	if c.cache.load("registration", name, &disk) && disk.Domain == name && !disk.FetchedAt.IsZero() {
		if disk.Registrant == "" {
			// Written before records carried the registrant: read it from
			// the raw answers those files kept, before dropping them.
			disk.Registrant = boundName(registrantFromRaw(disk.Source, disk.Raw), maxRegistrant)
		}
		keep := disk.cacheCopy()
		c.mu.Lock()
		c.records[name] = keep
		c.mu.Unlock()
		return keep
	}
	return nil
}

// fetch asks RDAP, then WHOIS, and returns a normalised record.
func (c *Client) fetch(ctx context.Context, name string) (*Record, error) {
	rec := &Record{Domain: name}
	var errs []error
	fail := func(err error) (*Record, error) {
		errs = append(errs, err)
		best := errs[0]
		for _, e := range errs[1:] {
			if rank(e) > rank(best) {
				best = e
			}
		}
		if ctx.Err() != nil {
			best = ctx.Err()
		}
		return nil, &LookupError{Domain: name, Attempts: rec.Trail, Err: best}
	}

	base, err := c.rdapBaseFor(ctx, name)
	if err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: "bootstrap", Server: c.cfg.Registry.RDAPBootstrap, Query: name, Result: err.Error()})
		errs = append(errs, err)
	}
	if base != nil {
		err := c.rdapLookup(ctx, name, base, rec)
		if err == nil {
			return c.finish(rec), nil
		}
		if errors.Is(err, ErrNotRegistered) || ctx.Err() != nil {
			return fail(err)
		}
		errs = append(errs, err)
		c.log.Debug("rdap failed, trying whois", "domain", name, "err", err)
	}
	server, err := c.whoisServerFor(ctx, name)
	if err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: c.cfg.Registry.IANAWhois, Query: tldOf(name), Result: err.Error()})
		return fail(err)
	}
	if err := c.whoisLookup(ctx, name, tldOf(name), server, rec); err != nil {
		return fail(err)
	}
	return c.finish(rec), nil
}

func (c *Client) finish(rec *Record) *Record {
	rec.FetchedAt = c.now()
	rec.normalise()
	if rec.Expiry.IsZero() {
		rec.ExpiryNote = "the registry's answer has no expiry date"
		if tldOf(rec.Domain) == "de" {
			rec.ExpiryNote = "DENIC does not publish expiry dates: .de registrations run until cancelled"
		}
	}
	return rec
}

// cacheCopy is the form a record is cached in, in memory and on disk:
// without the raw answers, which are up to MaxRaw each while the daemon
// holds a record per domain for a whole registration period.
func (r *Record) cacheCopy() *Record {
	c := r.clone()
	c.Raw = ""
	c.Cached, c.CacheAge = false, ""
	return c
}

// clone deep-copies a record so callers cannot change the cache.
func (r *Record) clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Statuses = slices.Clone(r.Statuses)
	c.OtherStatuses = slices.Clone(r.OtherStatuses)
	c.Nameservers = slices.Clone(r.Nameservers)
	c.DNSSEC.DS = slices.Clone(r.DNSSEC.DS)
	c.Redacted = slices.Clone(r.Redacted)
	c.ParseNotes = slices.Clone(r.ParseNotes)
	c.Trail = slices.Clone(r.Trail)
	return &c
}
