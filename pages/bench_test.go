package pages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/outbox"
	"github.com/nsguard/nsguard/pages"
	"github.com/nsguard/nsguard/registry"
)

// world10k is a store holding what a daemon watching n domains holds: a
// DNS and a registration observation and an approved baseline per domain,
// an open incident (with its page in the outbox) for every tenth, and a
// config naming them all.
type world10k struct {
	cfg *config.Config
	st  *store.SQLite
	src *pages.StoreSource
	h   http.Handler
}

func benchDomain(i int) string { return fmt.Sprintf("d%05d-example.com", i) }

func benchObservation(name string, i int) *monitor.Observation {
	ns := []string{fmt.Sprintf("ns1.provider-%d.net.", i%7), fmt.Sprintf("ns2.provider-%d.org.", i%5)}
	addr := []string{fmt.Sprintf("192.0.2.%d", i%250+1), fmt.Sprintf("198.51.100.%d", i%250+1)}
	o := &monitor.Observation{Domain: name, Parent: monitor.Parent{Zone: "com.", NS: ns}}
	for j, s := range []string{"a.gtld-servers.net.", "b.gtld-servers.net."} {
		o.Parent.Servers = append(o.Parent.Servers, monitor.ParentServer{Name: s, Addr: fmt.Sprintf("203.0.113.%d", j+1), Status: monitor.StatusDelegated, NS: ns})
	}
	for j, n := range ns {
		p := monitor.Probe{Status: monitor.ProbeOK, AA: true, Serial: 2026120601, NS: ns}
		o.Servers = append(o.Servers, monitor.Server{Name: n, Addr: addr[j], InParent: true, InChild: true, UDP: p, TCP: p})
	}
	o.Records = []monitor.Record{{Name: "www." + name + ".", Type: "A", Answers: []monitor.ServerAnswer{
		{Server: ns[0], Addr: addr[0], Data: []string{"203.0.113.80"}}, {Server: ns[1], Addr: addr[1], Data: []string{"203.0.113.80"}}}}}
	o.Resolvers = []monitor.ResolverView{{Resolver: "127.0.0.53:53", Name: "www." + name + ".", Type: "A", Data: []string{"203.0.113.80"}, Expected: []string{"203.0.113.80"}}}
	return o
}

func newWorld10k(b *testing.B, n int) *world10k {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	cfg := config.Default()
	cfg.Store.Path = filepath.Join(dir, "nsguard.db")
	cfg.Policy.RequiredLocks = map[string][]string{"tier0": {"serverTransferProhibited", "clientTransferProhibited"}}
	st, err := store.Open(ctx, cfg.Store.Path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now()
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		err := st.InTx(ctx, func(q store.Queries) error {
			for i := lo; i < min(lo+batch, n); i++ {
				name := benchDomain(i)
				cfg.Domains = append(cfg.Domains, config.Domain{Name: name, Tier: i % 4, Owner: fmt.Sprintf("team-%d", i%40),
					Services: []string{"web", "api"}, Backups: []string{}, Watch: []string{"www"}})
				obs := benchObservation(name, i)
				var fs []finding.Finding
				if i%10 == 0 {
					fs = append(fs, finding.Finding{ID: "NS_SINGLE_PROVIDER", Severity: finding.Warning, Domain: name, Message: "one provider",
						Evidence: []finding.Evidence{{Query: "NS", Answer: "all under provider.net"}}})
				}
				if _, err := checker.Put(ctx, q, name, checker.DNS, now, checker.Snapshot{DNS: obs, Findings: fs}); err != nil {
					return err
				}
				rec := registry.Record{Domain: name, Source: "rdap", Registrar: registry.Registrar{Name: "MarkMonitor Inc.", IANAID: "292"},
					Statuses: []string{"clientTransferProhibited", "serverTransferProhibited"}, Nameservers: []string{"ns1.provider.net"},
					Expiry: now.Add(time.Duration(30+i%400) * 24 * time.Hour)}
				if _, err := checker.Put(ctx, q, name, checker.Registration, now, checker.Snapshot{Registration: &rec, Findings: []finding.Finding{}}); err != nil {
					return err
				}
				if _, err := baseline.Save(ctx, q, &baseline.State{Domain: name, DNS: baseline.FromObservation(obs), Registration: baseline.FromRecord(&rec)}, "bench", "initial", now); err != nil {
					return err
				}
				if i%10 == 0 {
					data, _ := json.Marshal(map[string]any{"findings": []map[string]any{{"class": "dns", "key": fs[0].Key(), "finding": fs[0], "since": now, "confirmed_at": now}}})
					id, err := q.CreateIncident(ctx, store.Incident{Domain: name, Status: store.IncidentOpen, Severity: "warning", ThreadKey: fmt.Sprintf("incident:%d", i+1),
						Channel: "#dns", OpenedAt: now, UpdatedAt: now, PagedAt: now, Notifications: 1, Data: data})
					if err != nil {
						return err
					}
					msg := &notify.Message{Kind: notify.KindOpen, Domain: name, Severity: finding.Warning, Title: "one provider", IncidentID: id,
						ThreadKey: fmt.Sprintf("incident:%d", id), At: now, Findings: []notify.Finding{{Finding: fs[0], State: notify.StateNew, Since: now}}}
					if _, err := outbox.Enqueue(ctx, q, msg); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	inputs := make([]audit.Input, 0, n)
	for i, d := range cfg.Domains {
		inputs = append(inputs, audit.Input{Domain: d, DNS: benchObservation(d.Name, i)})
	}
	rep := audit.Analyze(cfg, inputs, now)
	src := pages.NewStoreSource(pages.StoreSourceOptions{Store: st, Config: func() *config.Config { return cfg }})
	src.SetAudit(rep)
	// The daemon's feed after a cycle in which nothing changed.
	for i, d := range cfg.Domains {
		src.Observed(d.Name, checker.DNS, now, false, benchObservation(d.Name, i))
		src.Observed(d.Name, checker.Registration, now, false, nil)
	}
	h, err := pages.New(pages.Options{Source: src, Refresh: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	return &world10k{cfg: cfg, st: st, src: src, h: h}
}

// benchPage serves path in a loop and reports milliseconds per page.
func benchPage(b *testing.B, h http.Handler, path, want string) {
	b.Helper()
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := serve(); rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
		b.Fatalf("%s: %d, want %q in the page", path, rec.Code, want)
	}
	b.ResetTimer()
	var bytes int
	for b.Loop() {
		bytes = serve().Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	b.ReportMetric(float64(bytes), "bytes/page")
}

// BenchmarkPages10k: every page, on a store of 10,000 domains. The target
// is under 100 ms a page.
func BenchmarkPages10k(b *testing.B) {
	w := newWorld10k(b, 10000)
	for _, tc := range []struct{ name, path, want string }{
		{"overview", "/", benchDomain(0)},
		{"overview-filtered-page3", "/?owner=team-7&page=3", "page 3 of"},
		{"domain", "/domains/" + benchDomain(5000), benchDomain(5000)},
		{"incidents", "/incidents", "open incidents"},
		{"incident", "/incidents/500", "Messages, as sent to Slack"},
		{"audit", "/audit", "Inventory audit"},
		{"failover", "/failover", "No failover run recorded"},
	} {
		b.Run(tc.name, func(b *testing.B) { benchPage(b, w.h, tc.path, tc.want) })
	}
}

// BenchmarkOverviewIndex10k: building the overview's index from the store
// (the first request, and each background refresh after a change).
func BenchmarkOverviewIndex10k(b *testing.B) {
	w := newWorld10k(b, 10000)
	b.ResetTimer()
	for b.Loop() {
		h, err := pages.New(pages.Options{Source: w.src})
		if err != nil {
			b.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/build")
}
