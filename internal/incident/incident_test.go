package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/notify/slack"
	"github.com/nsguard/nsguard/internal/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/internal/outbox"
	"github.com/nsguard/nsguard/internal/store"
)

// Test-only IDs: the real catalogue belongs to the monitor and registry.
func init() {
	finding.Register(
		finding.Check{ID: "XT_PARENT_NS_CHANGED", Class: "baseline", Default: finding.Critical, Title: "Parent NS changed"},
		finding.Check{ID: "XT_NS_LAME", Class: "nameserver", Default: finding.Warning, Title: "Lame name server"},
		finding.Check{ID: "XT_STATUS_HOLD", Class: "registration", Default: finding.Critical, Title: "Domain on hold"},
	)
}

const domain = "shop-example.com"

var (
	t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

	hijack = finding.Finding{ID: "XT_PARENT_NS_CHANGED", Severity: finding.Critical, Domain: domain, Message: "the parent delegates to unapproved servers",
		Evidence: []finding.Evidence{{Server: "a.gtld-servers.net", Query: "NS " + domain, Answer: "approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example"}}}
	lame = finding.Finding{ID: "XT_NS_LAME", Severity: finding.Warning, Domain: domain, Subject: "ns2.shop-dns.net", Message: "REFUSED"}
	hold = finding.Finding{ID: "XT_STATUS_HOLD", Severity: finding.Critical, Domain: domain, Message: "serverHold"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t    *testing.T
	path string
	clk  *clock
	rec  *slackrecorder.Recorder
	st   *store.SQLite
	eng  *Engine
	out  *outbox.Dispatcher
	reg  *prometheus.Registry
}

func policy() Policy {
	return Policy{
		Confirmations:  2,
		RepeatInterval: 4 * time.Hour,
		Slack:          config.Slack{Channel: "#dns-oncall", Channels: map[string]string{"critical": "#dns-pager"}},
		Playbooks: func(d string) []string {
			if d == domain {
				return []string{"shop-to-backup"}
			}
			return nil
		},
		ContactSheet: func(d string) string { return "## Registrar\n**MarkMonitor** +1 208 389 5740" },
	}
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "nsguard.db"), clk: &clock{t: t0}, rec: slackrecorder.New()}
	t.Cleanup(h.rec.Close)
	h.start()
	return h
}

// start is the daemon starting: open the store, build engine and outbox.
func (h *harness) start() {
	h.t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, h.path, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	rcv, err := slack.New(slack.Options{Token: "xoxb-test", APIURL: h.rec.URL(), Channel: "#dns-oncall", Threads: st, Now: h.clk.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	out, err := outbox.New(st, outbox.Options{Receiver: rcv, Now: h.clk.Now, Registerer: h.reg})
	if err != nil {
		h.t.Fatal(err)
	}
	eng, err := New(st, Options{Policy: policy(), Now: h.clk.Now, Registerer: h.reg, OnEnqueue: out.Kick})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st, h.eng, h.out = st, eng, out
}

func (h *harness) restart() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

func (h *harness) observe(class string, fs ...finding.Finding) Result {
	h.t.Helper()
	res, err := h.eng.Process(context.Background(), domain, class, fs)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) tick() Result {
	h.t.Helper()
	res, err := h.eng.Tick(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// deliver flushes the outbox and returns the messages Slack received.
func (h *harness) deliver() []slackrecorder.Post {
	h.t.Helper()
	before := len(h.rec.Posts())
	if _, err := h.out.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return h.rec.Posts()[before:]
}

// cycle is one scheduler interval: time passes, an observation arrives,
// the outbox flushes.
func (h *harness) cycle(class string, fs ...finding.Finding) []slackrecorder.Post {
	h.t.Helper()
	h.clk.Add(time.Minute)
	h.observe(class, fs...)
	return h.deliver()
}

func kinds(posts []slackrecorder.Post) string {
	var out []string
	for _, p := range posts {
		out = append(out, strings.SplitN(p.Text, " ", 2)[0])
	}
	return strings.Join(out, " ")
}

func TestOpensAfterConfirmationsExactlyOnce(t *testing.T) {
	h := newHarness(t)
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("paged after one observation: %v", kinds(posts))
	}
	posts := h.cycle("dns", hijack)
	if len(posts) != 1 {
		t.Fatalf("after two observations: %d messages, want 1", len(posts))
	}
	p := posts[0]
	if p.Channel != "#dns-pager" || p.ThreadTS != "" || !strings.HasPrefix(p.Text, "[CRITICAL] shop-example.com: Parent NS changed") {
		t.Fatalf("page = channel %q thread %q text %q", p.Channel, p.ThreadTS, p.Text)
	}
	blocks := string(p.Blocks)
	for _, want := range []string{
		"nsguard failover run shop-to-backup",
		`nsguard baseline approve shop-example.com --reason \"…\"`,
		"a.gtld-servers.net NS shop-example.com: approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example",
		"Open since",
	} {
		if !strings.Contains(blocks, want) {
			t.Errorf("page lacks %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, "Contacts") {
		t.Errorf("contact sheet on a DNS-only incident")
	}
	for range 10 {
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("paged again before repeat_interval: %s", kinds(posts))
		}
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP nsguard_incidents_open Incidents open now by severity (one per domain at most).
# TYPE nsguard_incidents_open gauge
nsguard_incidents_open{severity="critical"} 1
nsguard_incidents_open{severity="info"} 0
nsguard_incidents_open{severity="warning"} 0
`), "nsguard_incidents_open"); err != nil {
		t.Fatal(err)
	}
}

func TestFlappingFindingNeedsConsecutiveObservations(t *testing.T) {
	h := newHarness(t)
	for i := range 6 {
		var fs []finding.Finding
		if i%2 == 0 {
			fs = append(fs, lame)
		}
		if posts := h.cycle("dns", fs...); len(posts) != 0 {
			t.Fatalf("cycle %d paged: %s", i, kinds(posts))
		}
	}
}

func TestRepeatsInThreadAndResolvesOnce(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	root := h.cycle("dns", hijack)[0]

	// Just before the interval: nothing; at the interval: one repeat.
	h.clk.Add(4*time.Hour - time.Minute)
	if res := h.tick(); res.Enqueued != 0 {
		t.Fatalf("repeat before the interval: %+v", res)
	}
	h.clk.Add(time.Minute)
	if res := h.tick(); res.Repeated != 1 {
		t.Fatalf("tick at the interval = %+v, want one repeat", res)
	}
	posts := h.deliver()
	if len(posts) != 1 || posts[0].ThreadTS != root.TS || posts[0].Channel != root.ChannelID || !posts[0].Broadcast ||
		!strings.Contains(posts[0].Text, "(still open)") {
		t.Fatalf("repeat = %+v; want a broadcast reply in %s", posts, root.TS)
	}
	// The observation right after the tick must not repeat again.
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("double repeat: %s", kinds(posts))
	}

	posts = h.cycle("dns")
	if len(posts) != 1 || posts[0].ThreadTS != root.TS || !strings.HasPrefix(posts[0].Text, "[RESOLVED] shop-example.com: Cleared: Parent NS changed") {
		t.Fatalf("resolution = %+v", posts)
	}
	for range 3 {
		if posts := h.cycle("dns"); len(posts) != 0 {
			t.Fatalf("message after resolution: %s", kinds(posts))
		}
	}
	h.clk.Add(5 * time.Hour)
	if res := h.tick(); res.Enqueued != 0 {
		t.Fatalf("tick after resolution: %+v", res)
	}
	incs, err := h.st.Incidents(context.Background(), store.IncidentFilter{Domain: domain})
	if err != nil || len(incs) != 1 || incs[0].Status != store.IncidentResolved || incs[0].Notifications != 3 {
		t.Fatalf("incidents = %+v, %v", incs, err)
	}
}

func TestCheckClassesAreProcessedSeparately(t *testing.T) {
	h := newHarness(t)
	h.cycle("registration", hold)
	posts := h.cycle("registration", hold)
	if len(posts) != 1 || !strings.Contains(string(posts[0].Blocks), "MarkMonitor") {
		t.Fatalf("registration page = %+v (want the contact sheet)", posts)
	}
	root := posts[0]
	// Healthy DNS observations must not resolve the registration incident.
	for range 3 {
		if posts := h.cycle("dns"); len(posts) != 0 {
			t.Fatalf("dns observation produced %s", kinds(posts))
		}
	}
	if _, err := h.st.OpenIncident(context.Background(), domain); err != nil {
		t.Fatalf("registration incident closed by a dns observation: %v", err)
	}
	// A DNS finding joins the open incident: visible as a broadcast update.
	h.cycle("dns", lame)
	posts = h.cycle("dns", lame)
	if len(posts) != 1 || posts[0].ThreadTS != root.TS || !posts[0].Broadcast || !strings.Contains(posts[0].Text, "New: Lame name server (ns2.shop-dns.net)") {
		t.Fatalf("new finding on open incident = %+v", posts)
	}
	if !strings.Contains(string(posts[0].Blocks), "`NEW`") {
		t.Fatalf("update does not mark the new finding: %s", posts[0].Blocks)
	}
	// Registration clears; DNS finding remains: still open, no message.
	if posts := h.cycle("registration"); len(posts) != 0 {
		t.Fatalf("partial clear produced %s", kinds(posts))
	}
	// The DNS finding clears too: one resolution in the thread.
	posts = h.cycle("dns")
	if len(posts) != 1 || posts[0].ThreadTS != root.TS || !strings.HasPrefix(posts[0].Text, "[RESOLVED]") {
		t.Fatalf("resolution = %+v", posts)
	}
}

func TestEscalationMovesToTheCriticalChannel(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", lame)
	first := h.cycle("dns", lame)
	if len(first) != 1 || first[0].Channel != "#dns-oncall" {
		t.Fatalf("warning page = %+v", first)
	}
	h.cycle("dns", lame, hijack)
	posts := h.cycle("dns", lame, hijack)
	if len(posts) != 2 {
		t.Fatalf("escalation = %d messages (%s), want a note in the old thread and a new page", len(posts), kinds(posts))
	}
	note, page := posts[0], posts[1]
	if note.ThreadTS != first[0].TS || !strings.Contains(note.Text, "Escalated to critical: continued in #dns-pager") {
		t.Fatalf("note = %+v", note)
	}
	if page.Channel != "#dns-pager" || page.ThreadTS != "" || !strings.HasPrefix(page.Text, "[CRITICAL]") {
		t.Fatalf("page = %+v", page)
	}
	posts = h.cycle("dns")
	if len(posts) != 1 || posts[0].ThreadTS != page.TS {
		t.Fatalf("resolution went to %+v, want the critical thread %s", posts, page.TS)
	}
}

func TestSilenceHoldsThePageUntilItEnds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.st.AddSilence(ctx, store.Silence{Domain: domain, CreatedBy: "ann", Reason: "registrar migration", CreatedAt: t0, StartsAt: t0, EndsAt: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h.cycle("dns", hijack)
	h.clk.Add(time.Minute)
	if res := h.observe("dns", hijack); res.Opened != 1 || res.Suppressed != 1 || res.Enqueued != 0 {
		t.Fatalf("confirmed during silence = %+v; want opened, suppressed, nothing enqueued", res)
	}
	for range 5 {
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("paged during silence: %s", kinds(posts))
		}
	}
	h.clk.Add(time.Hour)
	if res := h.tick(); res.Enqueued != 0 {
		t.Fatalf("tick during silence: %+v", res)
	}
	h.clk.Add(time.Hour) // the silence is over
	if res := h.tick(); res.Unsilenced != 1 {
		t.Fatalf("tick after silence = %+v", res)
	}
	posts := h.deliver()
	if len(posts) != 1 || posts[0].ThreadTS != "" || !strings.Contains(string(posts[0].Blocks), "Held back by a silence") {
		t.Fatalf("page after silence = %+v", posts)
	}
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("paged twice after silence: %s", kinds(posts))
	}
}

func TestSilencedIncidentThatClearsNeverPages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id, err := h.st.AddSilence(ctx, store.Silence{Domain: store.AllDomains, CreatedBy: "ann", Reason: "provider maintenance", CreatedAt: t0, StartsAt: t0, EndsAt: t0.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.cycle("dns", hijack)
	h.cycle("dns", hijack)
	h.cycle("dns")
	if n, _ := h.st.CountOpenIncidents(ctx); n != 0 {
		t.Fatalf("%d open incidents", n)
	}
	// A second incident; the silence is expired by hand: it pages at once.
	h.cycle("dns", lame)
	h.cycle("dns", lame)
	if err := h.st.ExpireSilence(ctx, id, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(time.Second)
	h.tick()
	posts := h.deliver()
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "[WARNING]") {
		t.Fatalf("after expiring the silence: %+v", posts)
	}
	if h.rec.Calls() != 1 {
		t.Fatalf("%d Slack calls in all, want 1", h.rec.Calls())
	}
}

// The daemon restarts (store closed and reopened, new engine and outbox):
// no re-page, and the next repeat lands in the same thread on time.
func TestRestartDoesNotRePage(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	root := h.cycle("dns", hijack)[0]
	h.restart()
	for range 3 {
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("re-paged after restart: %s", kinds(posts))
		}
	}
	h.clk.Add(4 * time.Hour)
	h.tick()
	posts := h.deliver()
	if len(posts) != 1 || posts[0].ThreadTS != root.TS {
		t.Fatalf("repeat after restart = %+v, want one reply in %s", posts, root.TS)
	}
}

// The daemon dies after the page is committed but before Slack got it:
// the next process delivers it, once.
func TestCrashBeforeDeliveryLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.clk.Add(time.Minute)
	h.observe("dns", hijack)
	h.clk.Add(time.Minute)
	if res := h.observe("dns", hijack); res.Enqueued != 1 {
		t.Fatalf("observe = %+v", res)
	}
	h.restart() // no Flush before the "crash"
	posts := h.deliver()
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "[CRITICAL]") {
		t.Fatalf("after restart: %+v", posts)
	}
	if posts := h.deliver(); len(posts) != 0 {
		t.Fatalf("delivered twice: %+v", posts)
	}
}

func TestRaisingConfirmationsKeepsOpenIncidents(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	h.cycle("dns", hijack)
	p := policy()
	p.Confirmations = 5
	if err := h.eng.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("reload produced %s", kinds(posts))
	}
	if _, err := h.st.OpenIncident(context.Background(), domain); err != nil {
		t.Fatalf("incident closed by a reload: %v", err)
	}
	p.Confirmations = 0
	if err := h.eng.SetPolicy(p); err == nil {
		t.Fatal("confirmations 0 accepted")
	}
}

func TestRetireResolves(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	root := h.cycle("dns", hijack)[0]
	res, err := h.eng.Retire(context.Background(), domain, "removed from the inventory")
	if err != nil || res.Resolved != 1 {
		t.Fatalf("retire = %+v, %v", res, err)
	}
	posts := h.deliver()
	if len(posts) != 1 || posts[0].ThreadTS != root.TS || !strings.Contains(string(posts[0].Blocks), "removed from the inventory") {
		t.Fatalf("retire message = %+v", posts)
	}
}

func TestConcurrentDomains(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n*8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := fmt.Sprintf("d%02d.example", i)
			f := hijack
			f.Domain = d
			for range 3 {
				if _, err := h.eng.Process(ctx, d, "dns", []finding.Finding{f}); err != nil {
					errs <- err
				}
				if _, err := h.eng.Process(ctx, d, "registration", nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 10 {
			if _, err := h.eng.Tick(ctx); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c, _ := h.st.CountOpenIncidents(ctx); c != n {
		t.Fatalf("%d open incidents, want %d", c, n)
	}
	if st, _ := h.st.OutboxStats(ctx); st.Pending != n {
		t.Fatalf("%d messages pending, want %d (one page per domain)", st.Pending, n)
	}
}

func TestIncidentStateIsReadable(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack, lame)
	h.cycle("dns", hijack, lame)
	inc, err := h.st.OpenIncident(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	var data incidentData
	if err := json.Unmarshal(inc.Data, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Findings) != 2 || data.Findings[0].Finding.ID != "XT_PARENT_NS_CHANGED" || !data.Findings[0].Announced {
		t.Fatalf("incident data = %s", inc.Data)
	}
	if inc.ThreadKey != fmt.Sprintf("incident:%d", inc.ID) || inc.Severity != "critical" || inc.PagedAt.IsZero() {
		t.Fatalf("incident = %+v", inc)
	}
}

func TestInfoIsSaidOnceNotRepeated(t *testing.T) {
	h := newHarness(t)
	notice := finding.Finding{ID: "XT_BASELINE_NEEDED", Severity: finding.Info, Domain: domain, Message: "no approved baseline yet"}
	ok := finding.Finding{ID: "XT_FINE", Severity: finding.OK, Domain: domain}
	h.cycle("dns", notice, ok)
	posts := h.cycle("dns", notice, ok)
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Text, "[INFO]") || posts[0].Channel != "#dns-oncall" {
		t.Fatalf("notice = %+v", posts)
	}
	for range 3 {
		h.clk.Add(5 * time.Hour)
		h.tick()
		if posts := h.cycle("dns", notice, ok); len(posts) != 0 {
			t.Fatalf("info repeated: %s", kinds(posts))
		}
	}
	inc, err := h.st.OpenIncident(context.Background(), domain)
	if err != nil || strings.Contains(string(inc.Data), "XT_FINE") {
		t.Fatalf("incident = %s, %v (an OK finding must not be tracked)", inc.Data, err)
	}
}
