package registry_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/registry"
)

// The registrant comes from whichever answer carries it: the registrar's
// RDAP (the registry's gTLD answer has none), a thick registrar WHOIS
// behind Verisign's thin one, PIR's thick WHOIS, CNNIC and JPRS.
func TestLookupRegistrant(t *testing.T) {
	for _, tc := range []struct {
		name, domain string
		set          func(*reglab.Domain)
		source       string
		want         string
	}{
		{"rdap, from the registrar's answer", "shop-example.com", nil, registry.SourceRDAP, "Example Shop Ltd"},
		{"rdap, registrar answer broken: unknown", "shop-example.com",
			func(d *reglab.Domain) { d.RegistrarRDAP = reglab.Malformed }, registry.SourceRDAP, ""},
		{"rdap, redacted", "shop-example.com",
			func(d *reglab.Domain) { d.Registrant = "REDACTED FOR PRIVACY" }, registry.SourceRDAP, ""},
		{"thin whois then the registrar's", "shop-example.com",
			func(d *reglab.Domain) { d.RDAP, d.Registrant = reglab.RateLimited, "Example Group plc" }, registry.SourceWHOIS, "Example Group plc"},
		{"pir thick whois", "example.org",
			func(d *reglab.Domain) { d.RDAP, d.Registrant = reglab.RateLimited, "Example Org Ltd" }, registry.SourceWHOIS, "Example Org Ltd"},
		{"cnnic", "example.cn",
			func(d *reglab.Domain) { d.Registrant = "Example Shop (Shanghai) Co., Ltd." }, registry.SourceWHOIS, "Example Shop (Shanghai) Co., Ltd."},
		{"jprs", "example.jp", nil, registry.SourceWHOIS, "Example Shop Ltd"},
		{"denic publishes none", "example.de", nil, registry.SourceWHOIS, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.set != nil {
				e.update(t, tc.domain, tc.set)
			}
			rec, err := e.client.Lookup(context.Background(), tc.domain)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Source != tc.source || rec.Registrant != tc.want {
				t.Errorf("source %s registrant %q, want %s %q", rec.Source, rec.Registrant, tc.source, tc.want)
			}
		})
	}
}

// The caches keep records without their raw answers: a cache hit (memory
// or disk) has no Raw but everything else, registrant included; a fresh
// lookup has Raw.
func TestCacheKeepsNoRaw(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fresh, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fresh.Raw, `"ldhName":"SHOP-EXAMPLE.COM"`) || fresh.Registrant != "Example Shop Ltd" {
		t.Fatalf("a cache miss is a fresh lookup: raw %d bytes, registrant %q", len(fresh.Raw), fresh.Registrant)
	}
	fresh.Raw = "changed by the caller"

	hit, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil {
		t.Fatal(err)
	}
	if e.lab.Count("rdap-registry") != 1 {
		t.Fatalf("second lookup asked the registry")
	}
	if hit.Raw != "" {
		t.Errorf("cache hit has %d bytes of raw answers", len(hit.Raw))
	}
	if hit.Registrant != "Example Shop Ltd" || len(hit.Trail) != 2 || hit.Registrar.IANAID != "292" || hit.FetchedAt.IsZero() {
		t.Errorf("cache hit lost more than Raw: %+v", hit)
	}
	if fresh.Cached || !hit.Cached || hit.CacheAge != "0s" {
		t.Errorf("cached/cache age: fresh %v %q, hit %v %q; want only the hit cached, 0s old", fresh.Cached, fresh.CacheAge, hit.Cached, hit.CacheAge)
	}
	fresh.Raw = ""
	hit.Cached, hit.CacheAge = false, ""
	if a, b := mustJSON(t, fresh), mustJSON(t, hit); a != b {
		t.Errorf("cache hit differs from the fresh record beyond Raw and its cache marks:\n%s\n%s", a, b)
	}

	file := filepath.Join(filepath.Dir(e.cfg.Store.Path), "registration", "shop-example.com.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); strings.Contains(s, `"raw"`) || !strings.Contains(s, `"registrant": "Example Shop Ltd"`) {
		t.Errorf("disk cache entry:\n%s", s)
	}
	disk, err := e.newClient(t).Lookup(ctx, "shop-example.com")
	if err != nil || disk.Raw != "" || disk.Registrant != "Example Shop Ltd" || e.lab.Count("rdap-registry") != 1 {
		t.Errorf("disk hit: %v, raw %d bytes, registrant %q, registry asked %d times", err, len(disk.Raw), disk.Registrant, e.lab.Count("rdap-registry"))
	}

	refreshed, err := e.client.Refresh(ctx, "shop-example.com")
	if err != nil || !strings.Contains(refreshed.Raw, `"ldhName":"SHOP-EXAMPLE.COM"`) {
		t.Errorf("Refresh: %v, raw %d bytes", err, len(refreshed.Raw))
	}

	// A stale record stands in for a failed lookup from the cache: no raw,
	// registrant kept (the audit still compares it).
	e.update(t, "shop-example.com", func(d *reglab.Domain) { d.RDAP, d.WHOIS = reglab.Malformed, reglab.Malformed })
	e.clock.Add(25 * time.Hour)
	stale, err := e.client.Lookup(ctx, "shop-example.com")
	if err != nil || stale.Stale == "" || stale.Raw != "" || stale.Registrant != "Example Shop Ltd" {
		t.Errorf("stale: %v, stale %q, raw %d bytes, registrant %q", err, stale.Stale, len(stale.Raw), stale.Registrant)
	}
}

// Disk cache entries written before records carried the registrant kept
// the raw answers: the registrant is read from them on load, and they are
// then dropped, without asking the registry.
func TestDiskCacheFromBeforeRegistrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := filepath.Join(filepath.Dir(e.cfg.Store.Path), "registration")
	for _, name := range []string{"shop-example.com", "example.cn"} {
		rec, err := e.client.Refresh(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rec.Registrant = "" // the old format: no registrant, raw kept
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(mustJSON(t, rec)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.lab.ResetRequests()
	c := e.newClient(t)
	for name, want := range map[string]string{"shop-example.com": "Example Shop Ltd", "example.cn": "Example Shop Ltd"} {
		rec, err := c.Lookup(ctx, name)
		if err != nil || rec.Registrant != want || rec.Raw != "" {
			t.Errorf("%s: %v, registrant %q (want %q), raw %d bytes", name, err, rec.Registrant, want, len(rec.Raw))
		}
	}
	if n := len(e.lab.Requests()); n != 0 {
		t.Errorf("the registry was asked %d times", n)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
