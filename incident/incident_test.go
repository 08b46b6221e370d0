package incident

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify/slack"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/outbox"
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
		GroupWindow:    5 * time.Minute,
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
		out = append(out, kindOf(p))
	}
	return strings.Join(out, " ")
}

// kindOf names a post by the nsguard message kind it renders.
func kindOf(p slackrecorder.Post) string {
	b := string(p.Blocks)
	switch {
	case p.ThreadTS == "":
		return "page"
	case strings.Contains(b, "*Evidence*"):
		return "detail"
	case strings.Contains(b, "*New in incident"):
		return "update"
	case strings.Contains(b, "*Cleared:*"):
		return "cleared"
	case strings.Contains(b, "*Still open*"):
		return "repeat"
	case strings.Contains(b, "*Acknowledged*"):
		return "ack"
	case strings.Contains(b, "*Resolved*"):
		return "resolved"
	case strings.Contains(b, "*Closed:*"):
		return "closed"
	}
	return "other"
}

// page checks that posts are one incident's page and its evidence reply,
// and returns the page.
func page(t *testing.T, posts []slackrecorder.Post) slackrecorder.Post {
	t.Helper()
	if kinds(posts) != "page detail" {
		t.Fatalf("want a page and its evidence, got %q", kinds(posts))
	}
	if posts[1].ThreadTS != posts[0].TS || posts[1].Broadcast {
		t.Fatalf("evidence is not a quiet reply under the page: %+v", posts[1])
	}
	return posts[0]
}

func openIncidents(t *testing.T, h *harness) []store.Incident {
	t.Helper()
	incs, err := h.st.OpenIncidents(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	return incs
}

func TestOpensAfterConfirmationsWithOnePage(t *testing.T) {
	h := newHarness(t)
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("paged after one observation: %v", kinds(posts))
	}
	posts := h.cycle("dns", hijack)
	p := page(t, posts)
	if p.Channel != "#dns-pager" || !strings.HasPrefix(p.Text, "🔴 [CRITICAL] shop-example.com · incident #1: Parent NS changed") {
		t.Fatalf("page = channel %q text %q", p.Channel, p.Text)
	}
	blocks := string(p.Blocks)
	for _, want := range []string{
		"nsguard failover plan shop-to-backup",
		`nsguard baseline approve shop-example.com --reason \"…\"`,
		`nsguard incident ack 1 --by NAME --reason \"…\"`,
		"the parent delegates to unapproved servers",
	} {
		if !strings.Contains(blocks, want) {
			t.Errorf("page lacks %q:\n%s", want, blocks)
		}
	}
	for _, not := range []string{"Contacts", "```", "failover run"} {
		if strings.Contains(blocks, not) {
			t.Errorf("page holds %q:\n%s", not, blocks)
		}
	}
	if ev := string(posts[1].Blocks); !strings.Contains(ev, "a.gtld-servers.net NS shop-example.com: approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example") {
		t.Errorf("evidence reply lacks the evidence:\n%s", ev)
	}
	for range 10 {
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("paged again before repeat_interval: %s", kinds(posts))
		}
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP nsguard_incidents_open Incidents open now, by severity and whether someone acknowledged them.
# TYPE nsguard_incidents_open gauge
nsguard_incidents_open{acknowledged="false",severity="critical"} 1
nsguard_incidents_open{acknowledged="false",severity="info"} 0
nsguard_incidents_open{acknowledged="false",severity="warning"} 0
nsguard_incidents_open{acknowledged="true",severity="critical"} 0
nsguard_incidents_open{acknowledged="true",severity="info"} 0
nsguard_incidents_open{acknowledged="true",severity="warning"} 0
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

// The on-call's story: a page, repeats until someone acknowledges it, then
// quiet; the page itself shows who has it and, at the end, that it
// resolved and how long it lasted.
func TestRepeatsUntilAcknowledgedThenResolves(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.cycle("dns", hijack)
	root := page(t, h.cycle("dns", hijack))

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
	if kinds(posts) != "repeat" || posts[0].ThreadTS != root.TS || posts[0].Channel != root.ChannelID || !posts[0].Broadcast {
		t.Fatalf("repeat = %+v; want a broadcast reply in %s", posts, root.TS)
	}
	// The observation right after the tick must not repeat again.
	if posts := h.cycle("dns", hijack); len(posts) != 0 {
		t.Fatalf("double repeat: %s", kinds(posts))
	}

	res, err := h.eng.Ack(ctx, 1, "ann", "calling the registry")
	if err != nil || res.Acked != 1 || len(res.MessageIDs) != 2 {
		t.Fatalf("ack = %+v, %v", res, err)
	}
	posts = h.deliver()
	if kinds(posts) != "ack" || posts[0].ThreadTS != root.TS || !strings.Contains(string(posts[0].Blocks), "by ann: calling the registry") {
		t.Fatalf("ack reply = %+v", posts)
	}
	ups := h.rec.Updates()
	if len(ups) != 1 || ups[0].TS != root.TS || !strings.Contains(string(ups[0].Blocks), "Acknowledged* by ann") {
		t.Fatalf("the page was not updated to show the ack: %+v", ups)
	}
	if _, err := h.eng.Ack(ctx, 1, "bob", "me too"); !errors.Is(err, ErrAlreadyAcked) || !strings.Contains(err.Error(), "acknowledged by ann") {
		t.Fatalf("second ack: %v", err)
	}
	for range 3 {
		h.clk.Add(5 * time.Hour)
		h.tick()
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("acknowledged incident repeated: %s", kinds(posts))
		}
	}

	// One clean observation is not enough; the second resolves.
	if posts := h.cycle("dns"); len(posts) != 0 {
		t.Fatalf("resolved after one clean observation: %s", kinds(posts))
	}
	posts = h.cycle("dns")
	if kinds(posts) != "resolved" || posts[0].ThreadTS != root.TS || !posts[0].Broadcast ||
		!strings.HasPrefix(posts[0].Text, "✅ [RESOLVED] shop-example.com · incident #1 after") {
		t.Fatalf("resolution = %+v", posts)
	}
	ups = h.rec.Updates()
	if len(ups) != 2 || !strings.Contains(string(ups[1].Blocks), "RESOLVED · shop-example.com (was CRITICAL)") {
		t.Fatalf("the page was not updated to show the resolution: %+v", ups)
	}
	for range 3 {
		if posts := h.cycle("dns"); len(posts) != 0 {
			t.Fatalf("message after resolution: %s", kinds(posts))
		}
	}
	if _, err := h.eng.Ack(ctx, 1, "bob", "late"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("ack of a resolved incident: %v", err)
	}
	inc, err := h.st.Incident(ctx, 1)
	if err != nil || inc.Status != store.IncidentResolved || inc.AckedBy != "ann" {
		t.Fatalf("incident = %+v, %v", inc, err)
	}
}

// A finding that comes back before its clear is confirmed keeps its
// incident: no resolution, no second page.
func TestComebackBeforeTheClearIsConfirmed(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	page(t, h.cycle("dns", hijack))
	for range 3 {
		if posts := h.cycle("dns"); len(posts) != 0 {
			t.Fatalf("clean once: %s", kinds(posts))
		}
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("back again: %s", kinds(posts))
		}
	}
	if incs := openIncidents(t, h); len(incs) != 1 {
		t.Fatalf("%d open incidents", len(incs))
	}
}

// A hijack's findings, confirmed together, are one incident and one page.
func TestFindingsConfirmedTogetherAreOneIncident(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack, lame)
	p := page(t, h.cycle("dns", hijack, lame))
	if !strings.Contains(p.Text, "Parent NS changed and 1 more") {
		t.Fatalf("page = %q", p.Text)
	}
	if incs := openIncidents(t, h); len(incs) != 1 || incs[0].Title != "Parent NS changed and 1 more" {
		t.Fatalf("open incidents = %+v", incs)
	}
}

// An incident is a problem, not a domain: a critical finding where only a
// warning incident is open is a new top-level page linking the older
// thread; each incident resolves on its own findings.
func TestEscalationIsANewPageAndEachIncidentEndsOnItsOwn(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", lame)
	warn := page(t, h.cycle("dns", lame))
	if warn.Channel != "#dns-oncall" || !strings.HasPrefix(warn.Text, "🟠 [WARNING]") {
		t.Fatalf("warning page = %+v", warn)
	}
	h.cycle("dns", lame, hijack)
	crit := page(t, h.cycle("dns", lame, hijack))
	b := string(crit.Blocks)
	if crit.Channel != "#dns-pager" || !strings.HasPrefix(crit.Text, "🔴 [CRITICAL] shop-example.com · incident #2") {
		t.Fatalf("escalation page = %+v", crit)
	}
	link := slackrecorder.Permalink(warn.ChannelID, warn.TS)
	if !strings.Contains(b, "Escalation: incident #1 on this domain is warning") || !strings.Contains(b, `\u003c`+link+"|#1 WARNING") {
		t.Fatalf("escalation page does not link the older thread %s:\n%s", link, b)
	}
	if strings.Contains(b, "🟠 *Lame name server") {
		t.Fatalf("the escalation page repeats the warning incident's finding:\n%s", b)
	}
	// The warning clears: its own incident resolves, in its own thread,
	// while the hijack goes on.
	h.cycle("dns", hijack)
	posts := h.cycle("dns", hijack)
	if kinds(posts) != "resolved" || posts[0].ThreadTS != warn.TS {
		t.Fatalf("warning incident's resolution = %+v", posts)
	}
	if incs := openIncidents(t, h); len(incs) != 1 || incs[0].ID != 2 {
		t.Fatalf("open incidents = %+v", incs)
	}
	h.cycle("dns")
	posts = h.cycle("dns")
	if kinds(posts) != "resolved" || posts[0].ThreadTS != crit.TS {
		t.Fatalf("hijack's resolution went to %+v, want the critical thread %s", posts, crit.TS)
	}
}

// Findings confirmed within the group window, no worse than the incident,
// join it (one reply that never claims a higher severity than its own
// findings); after the window they are a new problem.
func TestGroupWindow(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	root := page(t, h.cycle("dns", hijack))
	h.cycle("dns", hijack, lame)
	posts := h.cycle("dns", hijack, lame)
	if kinds(posts) != "update" || posts[0].ThreadTS != root.TS || !posts[0].Broadcast {
		t.Fatalf("a warning inside the window = %s, want an update in the hijack's thread", kinds(posts))
	}
	if u := posts[0]; !strings.HasPrefix(u.Text, "🟠 [WARNING]") || strings.Contains(string(u.Blocks), "CRITICAL") || !strings.Contains(string(u.Blocks), "`NEW`") {
		t.Fatalf("update about a warning = %q\n%s", u.Text, u.Blocks)
	}
	// Much later, a registration hold: a new problem, a new page.
	h.clk.Add(10 * time.Minute)
	h.cycle("registration", hold)
	posts = h.cycle("registration", hold)
	p := page(t, posts)
	if !strings.Contains(p.Text, "incident #2") || !strings.Contains(string(posts[1].Blocks), "MarkMonitor") {
		t.Fatalf("later problem = %q; evidence %s", p.Text, posts[1].Blocks)
	}
}

// A new incident without a critical finding waits group_wait before it
// pages: a finding confirmed meanwhile joins it, and a critical one pages
// it at once, so a hijack whose resolver view confirms a recheck before its
// delegation is still one page.
func TestGroupWait(t *testing.T) {
	h := newHarness(t)
	p := policy()
	p.GroupWait = 30 * time.Second
	if err := h.eng.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	divergence := finding.Finding{ID: "XT_RESOLVER", Severity: finding.Warning, Domain: domain, Message: "public resolvers answer differently"}
	h.cycle("dns", divergence)
	if posts := h.cycle("dns", divergence, hijack); len(posts) != 0 {
		t.Fatalf("a warning paged before group_wait: %s", kinds(posts))
	}
	h.clk.Add(5 * time.Second)
	h.observe("dns", divergence, hijack)
	posts := h.deliver()
	p0 := page(t, posts)
	if !strings.HasPrefix(p0.Text, "🔴 [CRITICAL] shop-example.com · incident #1: Parent NS changed and 1 more") {
		t.Fatalf("the hijack's page = %q", p0.Text)
	}
	if incs := openIncidents(t, h); len(incs) != 1 {
		t.Fatalf("%d incidents for one hijack", len(incs))
	}
	// A lone warning pages once group_wait has passed, at the next tick.
	h2 := newHarness(t)
	if err := h2.eng.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	h2.cycle("dns", lame)
	h2.cycle("dns", lame)
	h2.clk.Add(29 * time.Second)
	if h2.tick(); len(h2.deliver()) != 0 {
		t.Fatal("paged before group_wait")
	}
	h2.clk.Add(time.Second)
	h2.tick()
	if p := page(t, h2.deliver()); !strings.HasPrefix(p.Text, "🟠 [WARNING]") {
		t.Fatalf("warning page = %q", p.Text)
	}
}

// Cleared findings are said when they clear, not at the next repeat, and
// the rest of the incident goes on.
func TestClearedFindingsAreSaidWhenTheyClear(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack, lame)
	root := page(t, h.cycle("dns", hijack, lame))
	h.cycle("dns", hijack)
	posts := h.cycle("dns", hijack)
	if kinds(posts) != "cleared" || posts[0].ThreadTS != root.TS || posts[0].Broadcast {
		t.Fatalf("a cleared finding = %+v, want a quiet reply", posts)
	}
	if b := string(posts[0].Blocks); !strings.Contains(b, "Lame name server") || !strings.Contains(b, "Still open (CRITICAL): Parent NS changed") {
		t.Fatalf("cleared reply:\n%s", b)
	}
	h.clk.Add(4 * time.Hour)
	h.tick()
	if posts := h.deliver(); kinds(posts) != "repeat" || strings.Contains(string(posts[0].Blocks), "Lame") {
		t.Fatalf("repeat = %s (a cleared finding is not repeated)", kinds(posts))
	}
}

func TestCheckClassesAreProcessedSeparately(t *testing.T) {
	h := newHarness(t)
	h.cycle("registration", hold)
	posts := h.cycle("registration", hold)
	root := page(t, posts)
	if !strings.Contains(string(posts[1].Blocks), "MarkMonitor") || !strings.Contains(string(root.Blocks), "nsguard contacts shop-example.com") {
		t.Fatalf("registration page lacks the contacts: %s / %s", root.Blocks, posts[1].Blocks)
	}
	// Healthy DNS observations must not resolve the registration incident.
	for range 3 {
		if posts := h.cycle("dns"); len(posts) != 0 {
			t.Fatalf("dns observation produced %s", kinds(posts))
		}
	}
	if incs := openIncidents(t, h); len(incs) != 1 {
		t.Fatalf("registration incident closed by a dns observation: %+v", incs)
	}
	h.cycle("registration")
	posts = h.cycle("registration")
	if kinds(posts) != "resolved" || posts[0].ThreadTS != root.TS {
		t.Fatalf("resolution = %+v", posts)
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
	p := page(t, h.deliver())
	if !strings.Contains(string(p.Blocks), "Held back by a silence") {
		t.Fatalf("page after silence = %s", p.Blocks)
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
	if p := page(t, h.deliver()); !strings.HasPrefix(p.Text, "🟠 [WARNING]") {
		t.Fatalf("after expiring the silence: %+v", p)
	}
	if h.rec.Calls() != 2 {
		t.Fatalf("%d Slack calls in all, want 2", h.rec.Calls())
	}
}

// The daemon restarts (store closed and reopened, new engine and outbox)
// with an open, an acknowledged and a resolved incident: no page twice,
// and the next repeat lands in the same thread on time.
func TestRestartDoesNotRePage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.cycle("dns", hijack)
	root := page(t, h.cycle("dns", hijack))
	h.clk.Add(10 * time.Minute)
	h.cycle("registration", hold)
	page(t, h.cycle("registration", hold))
	if _, err := h.eng.Ack(ctx, 2, "ann", "on it"); err != nil {
		t.Fatal(err)
	}
	h.deliver()
	h.clk.Add(10 * time.Minute)
	h.cycle("dns", hijack, lame)
	page(t, h.cycle("dns", hijack, lame))
	h.cycle("dns", hijack)
	h.cycle("dns", hijack) // #3 resolves
	before := len(h.rec.Posts())
	h.restart()
	for range 3 {
		if posts := h.cycle("dns", hijack); len(posts) != 0 {
			t.Fatalf("re-paged after restart: %s", kinds(posts))
		}
	}
	h.clk.Add(4 * time.Hour)
	h.tick()
	posts := h.deliver()
	if kinds(posts) != "repeat" || posts[0].ThreadTS != root.TS {
		t.Fatalf("after restart = %s, want one repeat in %s (the acknowledged incident stays quiet)", kinds(posts), root.TS)
	}
	if len(h.rec.Posts()) != before+1 {
		t.Fatalf("%d messages after restart, want 1", len(h.rec.Posts())-before)
	}
}

// The daemon dies after the page is committed but before Slack got it:
// the next process delivers it, once.
func TestCrashBeforeDeliveryLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.clk.Add(time.Minute)
	h.observe("dns", hijack)
	h.clk.Add(time.Minute)
	if res := h.observe("dns", hijack); res.Enqueued != 2 {
		t.Fatalf("observe = %+v", res)
	}
	h.restart() // no Flush before the "crash"
	page(t, h.deliver())
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
	if incs := openIncidents(t, h); len(incs) != 1 {
		t.Fatalf("incident closed by a reload: %+v", incs)
	}
	p.Confirmations = 0
	if err := h.eng.SetPolicy(p); err == nil {
		t.Fatal("confirmations 0 accepted")
	}
}

// A domain removed from the inventory closes its incidents: "closed", not
// "resolved", because nobody saw the problem go away.
func TestRetireCloses(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.cycle("dns", hijack)
	root := page(t, h.cycle("dns", hijack))
	res, err := h.eng.Retire(ctx, domain, "shop-example.com was removed from the inventory")
	if err != nil || res.Closed != 1 || res.Resolved != 0 {
		t.Fatalf("retire = %+v, %v", res, err)
	}
	posts := h.deliver()
	if kinds(posts) != "closed" || posts[0].ThreadTS != root.TS || !strings.Contains(string(posts[0].Blocks), "removed from the inventory") ||
		strings.Contains(posts[0].Text+string(posts[0].Blocks), "RESOLVED") {
		t.Fatalf("retire message = %+v", posts)
	}
	if ups := h.rec.Updates(); len(ups) != 1 || !strings.Contains(string(ups[0].Blocks), "CLOSED · shop-example.com") {
		t.Fatalf("root update = %+v", ups)
	}
	inc, err := h.st.Incident(ctx, 1)
	if err != nil || inc.Status != store.IncidentClosed {
		t.Fatalf("incident = %+v, %v", inc, err)
	}
	if states, _ := h.st.FindingStates(ctx, domain); len(states) != 0 {
		t.Fatalf("finding states kept: %+v", states)
	}
}

// Accepted risk never reaches the engine's books.
func TestAcceptedFindingsNeverPage(t *testing.T) {
	h := newHarness(t)
	accepted := lame
	accepted.Accepted = true
	for range 5 {
		if posts := h.cycle("dns", accepted); len(posts) != 0 {
			t.Fatalf("accepted finding paged: %s", kinds(posts))
		}
	}
	if active, _ := h.st.DomainActive(context.Background(), domain); active {
		t.Fatal("an accepted finding is tracked")
	}
}

func TestAckNeedsWhoAndWhy(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack)
	h.cycle("dns", hijack)
	for _, tc := range []struct{ by, reason string }{{"", "x"}, {"ann", " "}} {
		if _, err := h.eng.Ack(context.Background(), 1, tc.by, tc.reason); err == nil {
			t.Errorf("ack by %q for %q accepted", tc.by, tc.reason)
		}
	}
	if _, err := h.eng.Ack(context.Background(), 99, "ann", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ack of a missing incident: %v", err)
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
	if st, _ := h.st.OutboxStats(ctx); st.Pending != 2*n {
		t.Fatalf("%d messages pending, want %d (a page and its evidence per domain)", st.Pending, 2*n)
	}
}

func TestIncidentStateIsReadable(t *testing.T) {
	h := newHarness(t)
	h.cycle("dns", hijack, lame)
	h.cycle("dns", hijack, lame)
	incs := openIncidents(t, h)
	if len(incs) != 1 {
		t.Fatalf("open incidents = %+v", incs)
	}
	inc := incs[0]
	var data incidentData
	if err := json.Unmarshal(inc.Data, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Findings) != 2 || data.Findings[0].Finding.ID != "XT_PARENT_NS_CHANGED" || !data.Findings[0].Announced || len(data.Root) == 0 {
		t.Fatalf("incident data = %s", inc.Data)
	}
	if inc.ThreadKey != fmt.Sprintf("incident:%d", inc.ID) || inc.Severity != "critical" || inc.PagedAt.IsZero() {
		t.Fatalf("incident = %+v", inc)
	}
	if ms, err := h.st.IncidentMessages(context.Background(), inc.ID); err != nil || len(ms) != 2 {
		t.Fatalf("messages of the incident = %d, %v", len(ms), err)
	}
}

func TestInfoIsSaidOnceNotRepeated(t *testing.T) {
	h := newHarness(t)
	notice := finding.Finding{ID: "XT_BASELINE_NEEDED", Severity: finding.Info, Domain: domain, Message: "no approved baseline yet"}
	ok := finding.Finding{ID: "XT_FINE", Severity: finding.OK, Domain: domain}
	h.cycle("dns", notice, ok)
	p := page(t, h.cycle("dns", notice, ok))
	if !strings.HasPrefix(p.Text, "🔵 [INFO]") || p.Channel != "#dns-oncall" {
		t.Fatalf("notice = %+v", p)
	}
	for range 3 {
		h.clk.Add(5 * time.Hour)
		h.tick()
		if posts := h.cycle("dns", notice, ok); len(posts) != 0 {
			t.Fatalf("info repeated: %s", kinds(posts))
		}
	}
	incs := openIncidents(t, h)
	if len(incs) != 1 || strings.Contains(string(incs[0].Data), "XT_FINE") {
		t.Fatalf("incidents = %+v (an OK finding must not be tracked)", incs)
	}
}
