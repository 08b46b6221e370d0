package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/registry"
)

// clock is a settable clock shared by the client and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	lab    *reglab.Lab
	cfg    *config.Config
	client *registry.Client
	clock  *clock
	logs   *syncBuffer
	now    time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// newEnv starts a lab with the demo domains and a client pointed at it:
// RDAP through the lab's bootstrap, WHOIS servers found through the lab's
// IANA, every dial restricted to loopback.
func newEnv(t testing.TB, mutate ...func(*config.Config)) *env {
	t.Helper()
	lab, err := reglab.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	lab.SeedDemo(now)
	cfg := config.Default()
	cfg.Store.Path = filepath.Join(t.TempDir(), "nsguard.db")
	cfg.Registry = lab.RegistryConfig()
	cfg.Registry.Timeout = config.Duration(400 * time.Millisecond)
	cfg.Policy.ApprovedRegistrars = []string{"MarkMonitor Inc."}
	cfg.Policy.RequiredLocks = map[string][]string{
		"tier0": {"serverTransferProhibited", "serverUpdateProhibited", "serverDeleteProhibited", "clientTransferProhibited"},
		"tier1": {"clientTransferProhibited"},
	}
	for _, m := range mutate {
		m(cfg)
	}
	e := &env{lab: lab, cfg: cfg, clock: &clock{t: now}, logs: &syncBuffer{}, now: now}
	e.client = e.newClient(t)
	return e
}

func (e *env) newClient(t testing.TB) *registry.Client {
	t.Helper()
	c, err := registry.New(e.cfg, registry.Options{
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient:  reglab.HTTPClient(),
		DialContext: reglab.DialLoopback,
		Now:         e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) update(t testing.TB, name string, f func(*reglab.Domain)) {
	t.Helper()
	if err := e.lab.Update(name, f); err != nil {
		t.Fatal(err)
	}
}

func TestLookupRDAP(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.DS = []string{"12345 13 2 3a0b8b4c9e8e64a0"}
		d.Statuses = append(d.Statuses, "ok")
	})
	rec, err := e.client.Lookup(context.Background(), "Shop-Example.COM.")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.lab.Domain("shop-example.com")
	if rec.Domain != "shop-example.com" || rec.Source != registry.SourceRDAP || rec.Server != e.lab.RDAPBase("com") {
		t.Errorf("domain/source/server = %q %q %q", rec.Domain, rec.Source, rec.Server)
	}
	want := registry.Registrar{Name: "MarkMonitor Inc.", IANAID: "292", AbuseEmail: "abusecomplaints@markmonitor.com",
		AbusePhone: "+1.2086851750", Server: e.lab.RegistrarRDAPBase() + "domain/SHOP-EXAMPLE.COM"}
	if rec.Registrar != want {
		t.Errorf("registrar = %+v\nwant %+v", rec.Registrar, want)
	}
	wantStatuses := append(slices.Clone(reglab.RegistryLock), "ok")
	slices.Sort(wantStatuses)
	if !slices.Equal(rec.Statuses, wantStatuses) {
		t.Errorf("statuses = %v, want %v", rec.Statuses, wantStatuses)
	}
	if !rec.Expiry.Equal(d.Expiry) || !rec.RegistryExpiry.Equal(d.Expiry) || !rec.RegistrarExpiry.Equal(d.Expiry) {
		t.Errorf("expiry %v registry %v registrar %v, want %v", rec.Expiry, rec.RegistryExpiry, rec.RegistrarExpiry, d.Expiry)
	}
	if !rec.Created.Equal(d.Created) || !rec.Updated.Equal(d.Updated) {
		t.Errorf("created %v updated %v", rec.Created, rec.Updated)
	}
	if !slices.Equal(rec.Nameservers, []string{"ns1.shop-example-dns.net", "ns2.shop-example-dns.org"}) {
		t.Errorf("nameservers = %v", rec.Nameservers)
	}
	if !rec.DNSSEC.DelegationSigned || !slices.Equal(rec.DNSSEC.DS, []string{"12345 13 2 3A0B8B4C9E8E64A0"}) {
		t.Errorf("dnssec = %+v", rec.DNSSEC)
	}
	if !slices.Equal(rec.Redacted, []string{"Registrant Email", "Registrant Name"}) {
		t.Errorf("redacted = %v", rec.Redacted)
	}
	if len(rec.Trail) != 2 || rec.Trail[0].Result != "ok" || rec.Trail[1].Result != "ok" {
		t.Errorf("trail = %+v", rec.Trail)
	}
	if !strings.Contains(rec.Raw, `"ldhName":"SHOP-EXAMPLE.COM"`) {
		t.Errorf("raw answer not kept")
	}
	for srv, n := range map[string]int{"bootstrap": 1, "rdap-registry": 1, "rdap-registrar": 1, "whois-registry": 0} {
		if got := e.lab.Count(srv); got != n {
			t.Errorf("%s asked %d times, want %d", srv, got, n)
		}
	}
}

// Registries auto-renew; the registrar's earlier date is the one that bites.
func TestLookupRegistrarExpiryEarlier(t *testing.T) {
	e := newEnv(t)
	registrarExp := e.now.AddDate(0, 0, 25)
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RegistrarExpiry = registrarExp })
	rec, err := e.client.Lookup(context.Background(), "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Expiry.Equal(registrarExp) || rec.RegistryExpiry.Equal(registrarExp) || !rec.RegistrarExpiry.Equal(registrarExp) {
		t.Errorf("expiry %v registry %v registrar %v; want the registrar's %v judged", rec.Expiry, rec.RegistryExpiry, rec.RegistrarExpiry, registrarExp)
	}
}

func TestLookupWHOIS(t *testing.T) {
	e := newEnv(t)
	jst := time.FixedZone("JST", 9*3600)
	for _, tc := range []struct {
		domain     string
		wantExpiry func(reglab.Domain) time.Time
		registrar  string
		note       string
		other      []string
	}{
		// CNNIC prints Beijing time: read back exactly.
		{domain: "example.cn", wantExpiry: func(d reglab.Domain) time.Time { return d.Expiry }, registrar: "Alibaba Cloud Computing (Beijing) Co., Ltd."},
		// JPRS prints a date: midnight JST of that day.
		{domain: "example.jp", wantExpiry: func(d reglab.Domain) time.Time {
			y, m, dd := d.Expiry.In(jst).Date()
			return time.Date(y, m, dd, 0, 0, 0, 0, jst)
		}, other: []string{"Active", "AgentChangeLocked", "DomainTransferLocked"}},
		// DENIC publishes no expiry: say so, do not guess.
		{domain: "example.de", wantExpiry: func(reglab.Domain) time.Time { return time.Time{} },
			note: "DENIC does not publish expiry dates", other: []string{"connect"}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			rec, err := e.client.Lookup(context.Background(), tc.domain)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := e.lab.Domain(tc.domain)
			if rec.Source != registry.SourceWHOIS || rec.Server != e.lab.WhoisAddr() {
				t.Errorf("source %q server %q, want whois from %s", rec.Source, rec.Server, e.lab.WhoisAddr())
			}
			if want := tc.wantExpiry(d); !rec.Expiry.Equal(want) {
				t.Errorf("expiry = %v, want %v", rec.Expiry, want)
			}
			if rec.Registrar.Name != tc.registrar {
				t.Errorf("registrar = %q, want %q", rec.Registrar.Name, tc.registrar)
			}
			if !strings.Contains(rec.ExpiryNote, tc.note) || (tc.note == "") != (rec.ExpiryNote == "") {
				t.Errorf("expiry note = %q, want %q", rec.ExpiryNote, tc.note)
			}
			if !slices.Equal(rec.OtherStatuses, tc.other) {
				t.Errorf("other statuses = %v, want %v", rec.OtherStatuses, tc.other)
			}
			if !slices.Equal(rec.Nameservers, []string{"ns1.example-dns.net", "ns2.example-dns.org"}) {
				t.Errorf("nameservers = %v", rec.Nameservers)
			}
		})
	}
	// One IANA question per TLD, not per lookup.
	if got := e.lab.Count("whois-iana"); got != 3 {
		t.Errorf("IANA asked %d times, want 3", got)
	}
}

// .com over WHOIS: Verisign's thin answer refers to the registrar's server,
// which holds its own (earlier) expiry.
func TestLookupWHOISReferralChain(t *testing.T) {
	e := newEnv(t)
	registrarExp := e.now.AddDate(0, 0, 40)
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.RDAP = reglab.RateLimited
		d.RegistrarExpiry = registrarExp
	})
	rec, err := e.client.Lookup(context.Background(), "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Source != registry.SourceWHOIS || rec.Registrar.Server != e.lab.RegistrarWhoisAddr() {
		t.Errorf("source %q registrar server %q", rec.Source, rec.Registrar.Server)
	}
	if !rec.Expiry.Equal(registrarExp) || rec.RegistrarExpiry.IsZero() || rec.RegistryExpiry.IsZero() {
		t.Errorf("expiry %v registry %v registrar %v", rec.Expiry, rec.RegistryExpiry, rec.RegistrarExpiry)
	}
	if len(rec.Statuses) != 6 || rec.Registrar.IANAID != "292" || rec.Registrar.AbusePhone == "" {
		t.Errorf("record = %+v", rec)
	}
	// The trail tells the whole story: RDAP refused, IANA named the
	// registry, the registry referred to the registrar.
	var got []string
	for _, a := range rec.Trail {
		got = append(got, a.Protocol+" "+a.Server)
	}
	want := []string{"rdap " + e.lab.RDAPBase("com"), "whois " + e.lab.WhoisAddr(), "whois " + e.lab.RegistrarWhoisAddr()}
	if !slices.Equal(got, want) || !strings.Contains(rec.Trail[0].Result, "HTTP 429") {
		t.Errorf("trail = %+v, want %v", rec.Trail, want)
	}
	if e.lab.Count("whois-iana") != 1 {
		t.Errorf("IANA not asked for the .com WHOIS server")
	}
}

func TestLookupFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		domain  string
		set     func(*reglab.Domain)
		want    error
		wantMsg string
	}{
		{name: "rdap 404 is final", domain: "shop-example.com", set: func(d *reglab.Domain) { d.RDAP = reglab.NotFound },
			want: registry.ErrNotRegistered},
		{name: "malformed json then whois garbage", domain: "shop-example.com",
			set:  func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.Malformed, reglab.Malformed },
			want: registry.ErrMalformed},
		{name: "10 MiB everywhere", domain: "shop-example.com",
			set:  func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.Huge, reglab.Huge },
			want: registry.ErrTooLarge},
		{name: "never answering", domain: "shop-example.com",
			set:     func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.Hang, reglab.Hang },
			wantMsg: "no answer from"},
		{name: "429 then quota text", domain: "shop-example.com",
			set:  func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.RateLimited, reglab.RateLimited },
			want: registry.ErrRateLimited},
		{name: "cnnic quota", domain: "example.cn", set: func(d *reglab.Domain) { d.WHOIS = reglab.RateLimited },
			want: registry.ErrRateLimited},
		{name: "cnnic garbage", domain: "example.cn", set: func(d *reglab.Domain) { d.WHOIS = reglab.Malformed },
			want: registry.ErrMalformed},
		{name: "jprs 10 MiB", domain: "example.jp", set: func(d *reglab.Domain) { d.WHOIS = reglab.Huge },
			want: registry.ErrTooLarge},
		{name: "denic hang", domain: "example.de", set: func(d *reglab.Domain) { d.WHOIS = reglab.Hang },
			wantMsg: "no answer from"},
		{name: "denic free", domain: "example.de", set: func(d *reglab.Domain) { d.WHOIS = reglab.NotFound },
			want: registry.ErrNotRegistered},
		{name: "unknown domain at the registry", domain: "nothing-here.cn", want: registry.ErrNotRegistered},
		{name: "tld unknown to IANA", domain: "example.zz", wantMsg: "IANA has no TLD"},
		{name: "not a domain", domain: "exa mple..com", want: registry.ErrInvalidDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.set != nil {
				e.update(t, tc.domain, tc.set)
			}
			rec, err := e.client.Lookup(context.Background(), tc.domain)
			if err == nil {
				t.Fatalf("lookup succeeded: %+v", rec)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantMsg)
			}
			// Every failure becomes a finding with evidence, never a crash.
			fs := registry.Evaluate(rec, err, config.Domain{Name: tc.domain, Tier: 0}, e.cfg, nil, e.now)
			if len(fs) != 1 || fs[0].ID != registry.IDRegistrationUnavailable || len(fs[0].Evidence) == 0 {
				t.Errorf("findings = %+v", fs)
			}
		})
	}
}

func TestRDAPNotFoundDoesNotFallBack(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP = reglab.NotFound })
	_, err := e.client.Lookup(context.Background(), "shop-example.com")
	if !errors.Is(err, registry.ErrNotRegistered) {
		t.Fatalf("err = %v", err)
	}
	if n := e.lab.Count("whois-registry"); n != 0 {
		t.Errorf("WHOIS asked %d times after an authoritative RDAP 404", n)
	}
	fs := registry.Evaluate(nil, err, config.Domain{Name: "shop-example.com"}, e.cfg, nil, e.now)
	if len(fs) != 1 || fs[0].Severity != finding.Critical {
		t.Errorf("not registered should be critical: %+v", fs)
	}
}

// After a 429 the RDAP server is left alone until Retry-After has passed;
// WHOIS answers meanwhile.
func TestRateLimitBackoff(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP, d.RetryAfter = reglab.RateLimited, "120" })
	ctx := context.Background()
	rec, err := e.client.Refresh(ctx, "shop-example.com")
	if err != nil || rec.Source != registry.SourceWHOIS {
		t.Fatalf("first lookup: %v, %+v", err, rec)
	}
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP = reglab.Normal })
	rec, err = e.client.Refresh(ctx, "shop-example.com")
	if err != nil || rec.Source != registry.SourceWHOIS {
		t.Fatalf("inside backoff: %v, %+v", err, rec)
	}
	if n := e.lab.Count("rdap-registry"); n != 1 {
		t.Errorf("RDAP asked %d times inside its Retry-After", n)
	}
	if !strings.Contains(rec.Trail[0].Result, "rate limited us") {
		t.Errorf("trail does not say why RDAP was skipped: %+v", rec.Trail[0])
	}
	e.clock.Add(121 * time.Second)
	rec, err = e.client.Refresh(ctx, "shop-example.com")
	if err != nil || rec.Source != registry.SourceRDAP {
		t.Fatalf("after backoff: %v, %+v", err, rec)
	}
	if st := e.client.Stats(); st.RateLimited != 2 || st.RDAPQueries != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// A lab (loopback) server referring to a real host name is not followed:
// neither a WHOIS "Registrar WHOIS Server" nor an RDAP registrar link.
func TestReferralsStayOnLoopback(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.RegistrarLink = "https://rdap.markmonitor.com/rdap/domain/SHOP-EXAMPLE.COM"
	})
	e.update(t, "shop-backup.net", func(d *reglab.Domain) {
		d.RDAP = reglab.RateLimited
		d.WhoisReferral = "whois.markmonitor.com"
	})
	for _, name := range []string{"shop-example.com", "shop-backup.net"} {
		rec, err := e.client.Lookup(context.Background(), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		last := rec.Trail[len(rec.Trail)-1]
		if !strings.Contains(last.Result, "refusing referral") || !strings.Contains(last.Server, "markmonitor.com") {
			t.Errorf("%s: trail = %+v", name, rec.Trail)
		}
		if rec.Registrar.Server != "" {
			t.Errorf("%s: registrar server %q was asked", name, rec.Registrar.Server)
		}
	}
	if n := e.lab.Count("rdap-registrar") + e.lab.Count("whois-registrar"); n != 0 {
		t.Errorf("registrar servers asked %d times", n)
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Schedules.Registration = "@every 6h" })
	ctx := context.Background()
	for range 3 {
		if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.lab.Count("rdap-registry"); n != 1 {
		t.Errorf("registry asked %d times inside one period", n)
	}
	// A second process (a Nagios-run `nsguard check`) reuses the disk cache,
	// bootstrap file included.
	other := e.newClient(t)
	if _, err := other.Lookup(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	if n := e.lab.Count("rdap-registry"); n != 1 {
		t.Errorf("a second client asked the registry again (%d)", n)
	}
	cacheDir := filepath.Dir(e.cfg.Store.Path)
	if _, err := os.Stat(filepath.Join(cacheDir, "registration", "shop-example.com.json")); err != nil {
		t.Errorf("no record on disk: %v", err)
	}
	// Just under the period (less jitter): refreshed.
	e.clock.Add(6*time.Hour - 2*e.cfg.Schedules.Jitter.D())
	if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	if n := e.lab.Count("rdap-registry"); n != 2 {
		t.Errorf("registry asked %d times after a period, want 2", n)
	}
	if _, err := other.Lookup(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if n := e.lab.Count("bootstrap"); n != 1 {
		t.Errorf("bootstrap fetched %d times, want once (then the disk copy)", n)
	}
	info := other.Bootstrap()
	if info.Source != e.lab.BootstrapURL() || info.FetchedAt.IsZero() || info.CachePath == "" {
		t.Errorf("bootstrap info = %+v", info)
	}
	if st := e.client.Stats(); st.CacheHits != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestStaleRecordOnFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.Malformed, reglab.RateLimited })
	e.clock.Add(25 * time.Hour)
	rec, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil {
		t.Fatalf("stale record expected, got %v", err)
	}
	if rec.Stale == "" || !strings.Contains(rec.Stale, "rate limited") {
		t.Errorf("stale = %q", rec.Stale)
	}
	if !rec.Cached || rec.CacheAge != "25h0m" {
		t.Errorf("stale record: cached %v, age %q; want cached, 25h0m", rec.Cached, rec.CacheAge)
	}
	d := config.Domain{Name: "shop-example.com", Tier: 0}
	fs := registry.Evaluate(rec, nil, d, e.cfg, nil, e.clock.Now())
	if ids := finding.IDs(fs); !slices.Equal(ids, []string{registry.IDRegistrationUnavailable}) {
		t.Errorf("findings = %v", ids)
	}
	// "Not registered" is news, never masked by an old record.
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP = reglab.NotFound })
	e.clock.Add(time.Hour)
	if _, err := e.client.Lookup(ctx, "shop-example.com"); !errors.Is(err, registry.ErrNotRegistered) {
		t.Errorf("err = %v, want ErrNotRegistered", err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	e := newEnv(t)
	names := []string{"shop-example.com", "shop-backup.net", "example.org", "example.cn", "example.de", "example.jp"}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(names))
	for range 8 {
		for _, n := range names {
			wg.Go(func() {
				if _, err := e.client.Lookup(context.Background(), n); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One question per domain however many callers: 3 RDAP domains, 3 WHOIS.
	if n := e.lab.Count("rdap-registry"); n != 3 {
		t.Errorf("rdap-registry asked %d times, want 3", n)
	}
	if n := e.lab.Count("whois-registry"); n != 3 {
		t.Errorf("whois-registry asked %d times, want 3", n)
	}
}

func TestContextCancel(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Registry.Timeout = config.Duration(time.Minute) })
	e.update(t, "example.cn", func(d *reglab.Domain) { d.WHOIS = reglab.Hang })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := e.client.Lookup(ctx, "example.cn")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// The stored record is stable: two lookups of unchanged data give the same
// baseline JSON, sorted, without the volatile fields.
func TestRecordJSONStable(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.Statuses = []string{"serverUpdateProhibited", "clientTransferProhibited", "serverDeleteProhibited"}
		d.NS = []string{"NS2.Example-DNS.org.", "ns1.example-dns.net"}
	})
	var out [][]byte
	for range 2 {
		rec, err := e.client.Refresh(context.Background(), "shop-example.com")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		b, err := json.Marshal(rec.Baseline())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Errorf("baseline JSON differs:\n%s\n%s", out[0], out[1])
	}
	s := string(out[0])
	for _, absent := range []string{`"raw"`, `"trail"`, `"fetched_at"`, `"stale"`} {
		if strings.Contains(s, absent) {
			t.Errorf("baseline has %s: %s", absent, s)
		}
	}
	for _, present := range []string{
		`"statuses":["clientTransferProhibited","serverDeleteProhibited","serverUpdateProhibited"]`,
		`"nameservers":["ns1.example-dns.net","ns2.example-dns.org"]`,
		`"expiry":"` + e.now.AddDate(1, 0, 0).Format(time.RFC3339) + `"`,
		`"registrant":"Example Shop Ltd"`, // part of the record; baseline.FromRecord does not diff it
	} {
		if !strings.Contains(s, present) {
			t.Errorf("baseline lacks %s: %s", present, s)
		}
	}
}

// The "done when", at the package level: a tier-0 domain moved to
// an unapproved registrar, without serverTransferProhibited, 20 days from
// expiry, is three critical findings (exit 2).
func TestDoneWhenTier0Hijack(t *testing.T) {
	e := newEnv(t)
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
		d.Statuses = slices.DeleteFunc(d.Statuses, func(s string) bool { return s == "serverTransferProhibited" })
		d.Expiry = e.now.AddDate(0, 0, 20)
	})
	rec, err := e.client.Lookup(context.Background(), "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := config.Domain{Name: "shop-example.com", Tier: 0}
	fs := registry.Evaluate(rec, nil, d, e.cfg, []string{"ns1.shop-example-dns.net", "ns2.shop-example-dns.org"}, e.now)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID+"/"+f.Severity.String()+"/"+f.Subject)
		if len(f.Evidence) == 0 || f.Evidence[0].Server == "" {
			t.Errorf("%s has no evidence naming the server", f.ID)
		}
	}
	want := []string{"EXPIRY_SOON/critical/", "LOCK_MISSING/critical/serverTransferProhibited", "REGISTRAR_NOT_APPROVED/critical/"}
	if !slices.Equal(got, want) {
		t.Errorf("findings = %v, want %v", got, want)
	}
	if finding.Worst(fs).ExitCode() != 2 {
		t.Errorf("exit code %d", finding.Worst(fs).ExitCode())
	}
	if !strings.Contains(fs[0].Message, "20 days") {
		t.Errorf("message = %q", fs[0].Message)
	}
}

func TestContacts(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Contacts = map[string]config.Contact{
			"icann":                     {Name: "ICANN Contractual Compliance", URL: "https://www.icann.org/compliance/complaint"},
			"registrar_account_manager": {Name: "Dana Account", Role: "MarkMonitor account manager", Email: "dana@markmonitor.example", Phone: "+1 555 0100"},
			"legal":                     {Name: "Legal on call", Email: "legal@shop.example", Notes: "trademark | UDRP"},
		}
	})
	ctx := context.Background()
	s, err := e.client.Contacts(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Complete() {
		t.Errorf("missing = %v", s.Missing)
	}
	if s.Registrar.IANAID != "292" || s.Registry.Operator != "VeriSign Global Registry Services" ||
		s.Registry.Technical.Email != "info@verisign-grs.com" || len(s.Configured) != 3 || s.Configured[0].Key != "icann" {
		t.Errorf("sheet = %+v", s)
	}
	md := s.Markdown()
	for _, want := range []string{"| IANA ID | 292 |", "## Registry (.com): VeriSign Global Registry Services",
		"| Technical | Registry Customer Service, VeriSign Global Registry Services | info@verisign-grs.com | +1 703 925-6999 |",
		`trademark \| UDRP`, "Nothing: the sheet is complete."} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if txt := s.Text(); !strings.Contains(txt, "registry .com technical") || strings.Contains(txt, "Missing") {
		t.Errorf("text:\n%s", txt)
	}

	// .de: DENIC publishes no registrar; IANA lists no technical contact.
	e.lab.SetTLD(reglab.TLD{Name: "de", Operator: "DENIC eG", Format: "denic",
		Admin: reglab.Contact{Name: "Business Services", Email: "dbs@denic.de"}})
	s, err = e.client.Contacts(ctx, "example.de")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(s.Missing, "\n")
	for _, want := range []string{"registrar name", "registrar abuse email", "registry technical contact for .de"} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing lacks %q: %v", want, s.Missing)
		}
	}
	if strings.Contains(joined, "administrative") {
		t.Errorf("admin contact listed as missing: %v", s.Missing)
	}
	if n := e.lab.Count("whois-iana"); n != 2 {
		t.Errorf("IANA asked %d times (com, de), want 2: lookups and sheet share the TLD cache", n)
	}
}

func TestContactsWhenEverythingFails(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Contacts = nil })
	e.update(t, "example.cn", func(d *reglab.Domain) { d.WHOIS = reglab.Malformed })
	e.lab.SetTLD(reglab.TLD{Name: "cn", Format: "cnnic"}) // IANA record without operator or contacts
	s, err := e.client.Contacts(context.Background(), "example.cn")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(s.Missing, "\n")
	for _, want := range []string{"registrar: registration lookup failed", "registry operator name for .cn",
		"contacts.icann", "contacts.registrar_account_manager", "contacts.legal"} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing lacks %q:\n%s", want, joined)
		}
	}
	if _, err := e.client.Contacts(context.Background(), "not a domain"); !errors.Is(err, registry.ErrInvalidDomain) {
		t.Errorf("err = %v", err)
	}
}

func TestLookupIDNAndNoIANA(t *testing.T) {
	e := newEnv(t)
	e.lab.SetDomain(reglab.Healthy("xn--bcher-kva.com", e.now))
	rec, err := e.client.Lookup(context.Background(), "Bücher.com")
	if err != nil || rec.Domain != "xn--bcher-kva.com" {
		t.Fatalf("IDN lookup: %v %+v", err, rec)
	}
	// Without IANA and without a configured server, a WHOIS-only TLD has
	// no server: a clear error, no dial to ":43".
	e.cfg.Registry.IANAWhois = ""
	_, err = e.newClient(t).Lookup(context.Background(), "example.cn")
	if !errors.Is(err, registry.ErrNoServer) || !strings.Contains(err.Error(), "iana_whois is empty") {
		t.Errorf("err = %v", err)
	}
	e.cfg.Registry.WhoisServers = map[string]string{"cn": e.lab.WhoisAddr()}
	if _, err := e.newClient(t).Lookup(context.Background(), "example.cn"); err != nil {
		t.Errorf("configured whois_servers: %v", err)
	}
}

func TestRDAPServerOverrideAndBootstrapFile(t *testing.T) {
	e := newEnv(t)
	e.cfg.Registry.RDAPBootstrap = ""
	e.cfg.Registry.RDAPServers = map[string]string{"com": e.lab.RDAPBase("com")}
	rec, err := e.newClient(t).Lookup(context.Background(), "shop-example.com")
	if err != nil || rec.Source != registry.SourceRDAP || e.lab.Count("bootstrap") != 0 {
		t.Fatalf("rdap_servers: %v %+v (bootstrap asked %d)", err, rec, e.lab.Count("bootstrap"))
	}
	// A bootstrap file on disk (air-gapped networks) works like the URL.
	file := filepath.Join(t.TempDir(), "dns.json")
	boot := `{"version":"1.0","services":[[["net"],["` + e.lab.RDAPBase("net") + `"]]]}`
	if err := os.WriteFile(file, []byte(boot), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.Registry.RDAPServers = nil
	e.cfg.Registry.RDAPBootstrap = file
	c := e.newClient(t)
	if rec, err := c.Lookup(context.Background(), "shop-backup.net"); err != nil || rec.Source != registry.SourceRDAP {
		t.Fatalf("bootstrap file: %v %+v", err, rec)
	}
	// .org is not in that file: WHOIS it is.
	if rec, err := c.Lookup(context.Background(), "example.org"); err != nil || rec.Source != registry.SourceWHOIS {
		t.Fatalf(".org without RDAP: %v %+v", err, rec)
	}
	if c.Bootstrap().Source != file {
		t.Errorf("bootstrap info = %+v", c.Bootstrap())
	}
}

// A record served from the cache says so, with its age, in the record and
// in every finding's evidence; Refresh asks the registry whatever the
// cache holds, so a registrar transfer shows at once.
func TestCacheSaysCachedAndAge(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Schedules.Registration = "@every 6h" })
	ctx := context.Background()
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.Expiry = e.now.AddDate(0, 0, 20)
		d.RegistrarExpiry = time.Time{}
	})
	d := config.Domain{Name: "shop-example.com", Tier: 0}
	fresh, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Cached || fresh.CacheAge != "" {
		t.Errorf("a cache miss is marked cached (%q)", fresh.CacheAge)
	}
	for _, f := range registry.Evaluate(fresh, nil, d, e.cfg, nil, e.clock.Now()) {
		for _, ev := range f.Evidence {
			if strings.Contains(ev.Answer, "cached") {
				t.Errorf("fresh record's evidence says cached: %s %s", f.ID, ev.Answer)
			}
		}
	}

	// The registrar is transferred and the locks removed at the registry.
	e.update(t, "shop-example.com", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
		d.Statuses = nil
	})
	e.clock.Add(3*time.Hour + 12*time.Minute)
	hit, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !hit.Cached || hit.CacheAge != "3h12m" || hit.Registrar.Name != "MarkMonitor Inc." {
		t.Errorf("cache hit: cached %v age %q registrar %q; want cached, 3h12m, the old registrar", hit.Cached, hit.CacheAge, hit.Registrar.Name)
	}
	fs := registry.Evaluate(hit, nil, d, e.cfg, nil, e.clock.Now())
	if len(fs) == 0 {
		t.Fatal("no findings for a record expiring in 20 days")
	}
	for _, f := range fs {
		if len(f.Evidence) == 0 || !strings.Contains(f.Evidence[0].Answer, "(cached 3h12m ago)") {
			t.Errorf("%s evidence does not say it is cached and how old: %+v", f.ID, f.Evidence)
		}
	}
	if b, _ := json.Marshal(hit); !strings.Contains(string(b), `"cached":true,"cache_age":"3h12m"`) {
		t.Errorf("JSON lacks the cache fields: %s", b)
	}

	now, err := e.client.Refresh(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if now.Cached || now.Registrar.Name != "Evil Registrar Ltd" || len(now.Statuses) != 0 {
		t.Errorf("refresh: cached %v registrar %q statuses %v; want the transfer and no locks", now.Cached, now.Registrar.Name, now.Statuses)
	}
	got := map[string]bool{}
	for _, f := range registry.Evaluate(now, nil, d, e.cfg, nil, e.clock.Now()) {
		got[f.ID+"/"+f.Subject] = true
		if strings.Contains(f.Evidence[0].Answer, "cached") {
			t.Errorf("%s: fresh evidence says cached: %s", f.ID, f.Evidence[0].Answer)
		}
	}
	if !got[registry.IDRegistrarNotApproved+"/"] || !got[registry.IDLockMissing+"/serverTransferProhibited"] {
		t.Errorf("findings after refresh = %v", got)
	}
	// The cache now holds what the refresh read: a later Lookup is
	// cached again, 0s old, with the new registrar.
	if again, _ := e.client.Lookup(ctx, "shop-example.com"); !again.Cached || again.CacheAge != "0s" || again.Registrar.Name != "Evil Registrar Ltd" {
		t.Errorf("after refresh: %+v", again)
	}
}

// The RDAP bootstrap cached on disk belongs to the URL it came from:
// pointing registry.rdap_bootstrap elsewhere fetches the new file at once,
// in a new process and in a running client.
func TestBootstrapKeyedBySource(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := reglab.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	moved := reglab.Healthy("shop-example.com", e.now)
	moved.Registrar, moved.IANAID = "Other Lab Registrar", "4242"
	other.SetDomain(moved)

	if _, err := e.client.Lookup(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	first := e.client.Bootstrap()
	if e.lab.Count("bootstrap") != 1 || first.CachePath == "" {
		t.Fatalf("bootstrap fetched %d times, cache path %q", e.lab.Count("bootstrap"), first.CachePath)
	}
	if _, err := os.Stat(first.CachePath); err != nil {
		t.Fatalf("bootstrap not cached on disk: %v", err)
	}

	// A new process with another bootstrap URL, same cache directory, an
	// hour later: the other file is fetched now, not in 23 hours.
	e.clock.Add(time.Hour)
	e.cfg.Registry.RDAPBootstrap = other.BootstrapURL()
	c2 := e.newClient(t)
	rec, err := c2.Refresh(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if other.Count("bootstrap") != 1 || rec.Server != other.RDAPBase("com") || rec.Registrar.Name != "Other Lab Registrar" {
		t.Errorf("new source: fetched %d times, server %q, registrar %q; want the other lab's", other.Count("bootstrap"), rec.Server, rec.Registrar.Name)
	}
	if info := c2.Bootstrap(); info.Source != other.BootstrapURL() || info.CachePath == first.CachePath || info.FetchedAt.IsZero() {
		t.Errorf("bootstrap info = %+v (first %+v)", info, first)
	}

	// The running first client, its config changed in place (a reload):
	// also the new source, from the disk copy c2 left.
	rec, err = e.client.Refresh(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Server != other.RDAPBase("com") || other.Count("bootstrap") != 1 {
		t.Errorf("running client: server %q, other bootstrap fetched %d times", rec.Server, other.Count("bootstrap"))
	}
	// And back: the first URL's own copy is still good, nothing fetched.
	e.cfg.Registry.RDAPBootstrap = e.lab.BootstrapURL()
	if rec, err = e.newClient(t).Refresh(ctx, "shop-example.com"); err != nil || rec.Server != e.lab.RDAPBase("com") {
		t.Errorf("back to the first source: %v, server %q", err, rec.Server)
	}
	if e.lab.Count("bootstrap") != 1 {
		t.Errorf("first source fetched %d times, want its disk copy reused", e.lab.Count("bootstrap"))
	}
}

// A registry that answers in Spanish, with dates in a zone abbreviation
// and terms of use that mention excessive queries, is read as a record:
// not "not a WHOIS registration record", not a rate limit.
func TestLookupSpanishWhois(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.lab.SetTLD(reglab.TLD{Name: "cl", Operator: "NIC Chile", Format: "nicchile"})
	d := reglab.Healthy("example.cl", e.now)
	d.Registrar = "NIC Chile"
	e.lab.SetDomain(d)
	rec, err := e.client.Lookup(ctx, "example.cl")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Source != registry.SourceWHOIS || rec.Registrar.Name != "NIC Chile" || !rec.Expiry.Equal(d.Expiry) ||
		!rec.Created.Equal(d.Created) || !slices.Equal(rec.Nameservers, d.NS) || rec.Registrant != "Example Shop Ltd" {
		t.Errorf("record = %+v\nwant registrar NIC Chile, expiry %v, created %v, ns %v", rec, d.Expiry, d.Created, d.NS)
	}
	if st := e.client.Stats(); st.RateLimited != 0 {
		t.Errorf("terms of use counted as a rate limit: %+v", st)
	}
	if err := e.lab.Transfer("example.cl", "Otro Registrador SpA", ""); err != nil {
		t.Fatal(err)
	}
	if rec, err = e.client.Refresh(ctx, "example.cl"); err != nil || rec.Registrar.Name != "Otro Registrador SpA" {
		t.Errorf("after a transfer: %v, registrar %q", err, rec.Registrar.Name)
	}
	e.lab.RemoveDomain("example.cl")
	if _, err := e.client.Refresh(ctx, "example.cl"); !errors.Is(err, registry.ErrNotRegistered) {
		t.Errorf("deleted .cl domain: err = %v, want ErrNotRegistered", err)
	}
	e.lab.SetDomain(d)
	e.update(t, "example.cl", func(d *reglab.Domain) { d.WHOIS = reglab.RateLimited })
	// A refusal is a rate limit (the record cached by the lookups above
	// stands in, marked stale and cached).
	if rec, err := e.client.Refresh(ctx, "example.cl"); err != nil || !strings.Contains(rec.Stale, "rate limited") || !rec.Cached {
		t.Errorf("NIC Chile's refusal: err = %v, record %+v; want the cached record, stale because rate limited", err, rec)
	}
}
