package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/dnslab/labtest"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/outbox"
)

const token = "xoxb-test-token-0123456789"

// rig is a lab, a fake Slack and a config; start runs a daemon on it.
type rig struct {
	t       *testing.T
	env     *labenv.Env
	slack   *slackrecorder.Recorder
	cfgPath string
	cfg     *config.Config
	logs    *syncBuffer
	// tune adjusts the daemon's options before start (fault tests).
	tune func(*daemon.Options)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRig(t *testing.T, delegation, repeat string) *rig {
	return newRigWith(t, delegation, repeat, "@every 1h")
}

func newRigWith(t *testing.T, delegation, repeat, registration string) *rig {
	return newRigOn(t, labenv.Options{}, delegation, repeat, registration)
}

// bindBase is this package's BIND lab, 127.66.0.0/16 (see the dnslab
// README's address plan): packages' test binaries run in parallel.
const bindBase = 66

// backends are the two labs every end-to-end story runs on.
var backends = []struct {
	name string
	opts func(t *testing.T) labenv.Options
}{
	{"in-process", func(*testing.T) labenv.Options { return labenv.Options{} }},
	{"bind", func(t *testing.T) labenv.Options {
		return labenv.Options{DNS: dnslab.Options{Backend: labtest.Backend(t), Base: bindBase}}
	}},
}

// startLabAndSlack starts the labs and a recording Slack for a test, both
// stopped when it ends, and writes the bot token's file.
func startLabAndSlack(t *testing.T, lo labenv.Options) (*labenv.Env, *slackrecorder.Recorder, string) {
	t.Helper()
	if lo.Dir == "" {
		lo.Dir = t.TempDir()
	}
	env, err := labenv.Start(context.Background(), lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	rec := slackrecorder.New()
	t.Cleanup(rec.Close)
	tokenFile := filepath.Join(env.Dir, "slack-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return env, rec, tokenFile
}

func newRigOn(t *testing.T, lo labenv.Options, delegation, repeat, registration string) *rig {
	t.Helper()
	env, rec, tokenFile := startLabAndSlack(t, lo)
	extra := fmt.Sprintf(`alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  repeat_interval: %s
  recheck: 300ms
schedules: {delegation: %q, registration: %q, audit: "@every 24h", jitter: 0s}
playbooks:
  - name: shop-to-backup
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - notify: {message: "switching shop-example.com to shop-backup.net"}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-backup.net.}
`, tokenFile, rec.URL(), repeat, delegation, registration)
	path, err := env.WriteConfig(extra)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, env: env, slack: rec, cfgPath: path, cfg: cfg, logs: &syncBuffer{}}
}

// approveAll records the current lab state as every domain's baseline.
func (r *rig) approveAll() {
	r.t.Helper()
	ctx := context.Background()
	ck, err := checker.New(r.cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		r.t.Fatal(err)
	}
	defer ck.Close()
	st, err := store.Open(ctx, r.cfg.Store.Path, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	for _, res := range ck.Run(ctx, r.cfg.Domains, checker.RunOptions{Fresh: true}) {
		if _, err := baseline.Save(ctx, st, baseline.StateOf(res), "test", "initial", time.Now()); err != nil {
			r.t.Fatal(err)
		}
	}
}

type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	reload chan struct{}
}

func (r *rig) start() *running {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1), reload: make(chan struct{}, 1)}
	go func() {
		opts := daemon.Options{
			Config: r.cfg, ConfigPath: r.cfgPath, Listener: ln, Reload: run.reload,
			Logger:         slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			CheckerOptions: checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback},
			OutboxOptions:  outbox.Options{Backoff: outbox.Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Factor: 2}, PollInterval: 100 * time.Millisecond},
			TickInterval:   200 * time.Millisecond,
			Drain:          5 * time.Second,
			Version:        "test", Commit: "abc123",
		}
		if r.tune != nil {
			r.tune(&opts)
		}
		run.done <- daemon.Run(ctx, opts)
	}()
	r.t.Cleanup(func() { run.stop(r.t) })
	waitFor(r.t, 15*time.Second, "the daemon to be ready", func() bool {
		ok := get(run.addr, "/readyz") == 200
		if !ok && os.Getenv("DBG") != "" {
			println(body(r.t, run.addr, "/readyz"))
		}
		return ok
	})
	return run
}

func (run *running) stop(t *testing.T) {
	if run.cancel == nil {
		return
	}
	run.cancel()
	run.cancel = nil
	select {
	case err := <-run.done:
		if err != nil {
			t.Errorf("daemon: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("daemon did not stop")
	}
}

func get(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func body(t *testing.T, addr, path string) string {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postsAbout(rec *slackrecorder.Recorder, domain string) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range rec.Posts() {
		if strings.Contains(p.Text, domain) || strings.Contains(string(p.Blocks), domain) {
			out = append(out, p)
		}
	}
	return out
}

// topLevel returns the posts that start a thread: the pages.
func topLevel(posts []slackrecorder.Post) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range posts {
		if p.ThreadTS == "" {
			out = append(out, p)
		}
	}
	return out
}

// inThread returns the replies in the thread started by ts whose text
// contains want.
func inThread(posts []slackrecorder.Post, ts, want string) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range posts {
		if p.ThreadTS == ts && strings.Contains(p.Text+string(p.Blocks), want) {
			out = append(out, p)
		}
	}
	return out
}

// noDuplicates fails if Slack received one message twice: the same text
// in the same thread.
func noDuplicates(t *testing.T, posts []slackrecorder.Post) {
	t.Helper()
	seen := map[string]int{}
	for _, p := range posts {
		k := p.ThreadTS + "\x00" + p.Text
		if seen[k]++; seen[k] > 1 {
			t.Errorf("delivered twice: %q (thread %q)", p.Text, p.ThreadTS)
		}
	}
}

// cli is what an `nsguard incident ack` beside the daemon does: its own
// store connections, engine and sender, on the daemon's store.
func (r *rig) cliAck(id int64, by, reason string) {
	r.t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, r.cfg.Store.Path, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	eng, err := incident.New(st, incident.Options{Policy: incident.PolicyFromConfig(r.cfg)})
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := eng.Ack(ctx, id, by, reason)
	if err != nil {
		r.t.Fatal(err)
	}
	rcv, err := outbox.NewReceiver(r.cfg.Alerts.Slack, st, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := outbox.New(st, outbox.Options{Receiver: rcv, Owner: "cli"})
	if err != nil {
		r.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if pending, err := out.Wait(wctx, res.MessageIDs); err != nil || pending != 0 {
		r.t.Fatalf("the ack's messages: %d pending, %v", pending, err)
	}
}

// The on-call's story, on a lab whose healthy domains carry accepted
// warnings (one provider, one /24), against both labs: nothing at start-up;
// a hijack is one new top-level CRITICAL page within an interval and a few
// seconds; it repeats until acknowledged, then stops; the restore resolves
// it in its thread, and the page shows it, while the accepted warnings
// stay quiet; nothing reaches Slack twice.
func TestOnCallStory(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			lo := be.opts(t)
			lo.Posture = true
			const interval = 2 * time.Second
			r := newRigOn(t, lo, "@every 2s", "4s", "@every 1h")
			r.approveAll()
			run := r.start()
			time.Sleep(interval + 500*time.Millisecond)
			if n := len(r.slack.Posts()); n != 0 {
				t.Fatalf("accepted warnings paged at start-up: %d message(s): %s", n, r.slack.Posts()[0].Text)
			}
			checkFindings := body(t, run.addr, "/metrics")
			if !strings.Contains(checkFindings, `nsguard_findings{id="NS_SINGLE_PROVIDER",severity="warning"}`) {
				t.Fatalf("the lab has no posture warning to accept:\n%s", grep(checkFindings, "nsguard_findings"))
			}

			hijackedAt := time.Now()
			if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, interval+5*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
			t.Logf("hijack to page: %s (interval %s, confirmations 2, recheck 300ms)", time.Since(hijackedAt).Round(time.Millisecond), interval)
			page := topLevel(r.slack.Posts())[0]
			if page.Channel != "#dns-oncall" || !strings.HasPrefix(page.Text, "🔴 [CRITICAL] shop-example.com · incident #1") {
				t.Fatalf("page = %q in %q", page.Text, page.Channel)
			}
			all := page.Text + string(page.Blocks)
			for _, want := range []string{"nsguard failover plan shop-to-backup", "nsguard incident ack 1", "attacker.net"} {
				if !strings.Contains(all, want) {
					t.Errorf("the page lacks %q:\n%s", want, all)
				}
			}
			if strings.Contains(all, "one registrable domain") || strings.Contains(all, "/24") {
				t.Errorf("an accepted posture warning rides along on the hijack page:\n%s", all)
			}
			waitFor(t, 2*time.Second, "the evidence reply", func() bool { return len(inThread(r.slack.Posts(), page.TS, "*Evidence*")) == 1 })
			if ev := inThread(r.slack.Posts(), page.TS, "*Evidence*")[0]; !strings.Contains(string(ev.Blocks), "DELEGATION_CHANGED") {
				t.Errorf("the evidence lacks DELEGATION_CHANGED: %s", ev.Blocks)
			}

			waitFor(t, 8*time.Second, "the repeat", func() bool { return len(inThread(r.slack.Posts(), page.TS, "*Still open*")) > 0 })
			r.cliAck(1, "ann", "calling the registry")
			acked := time.Now()
			if len(inThread(r.slack.Posts(), page.TS, "*Acknowledged* by ann")) != 1 {
				t.Fatalf("no ack reply in the thread")
			}
			repeats := len(inThread(r.slack.Posts(), page.TS, "*Still open*"))
			time.Sleep(6 * time.Second) // more than the repeat interval
			if n := len(inThread(r.slack.Posts(), page.TS, "*Still open*")); n != repeats {
				t.Fatalf("%d repeat(s) after the ack", n-repeats)
			}

			restoredAt := time.Now()
			if err := r.env.DNS.Restore(context.Background(), "shop-example.com"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 2*interval+5*time.Second, "the resolution", func() bool { return len(inThread(r.slack.Posts(), page.TS, "*Resolved*")) > 0 })
			t.Logf("restore to resolved: %s; acknowledged %s before", time.Since(restoredAt).Round(time.Millisecond), restoredAt.Sub(acked).Round(time.Second))
			waitFor(t, 2*time.Second, "the page to show the resolution", func() bool {
				for _, u := range r.slack.Updates() {
					if u.TS == page.TS && strings.Contains(string(u.Blocks), "RESOLVED · shop-example.com") {
						return true
					}
				}
				return false
			})
			time.Sleep(interval + time.Second)
			posts := r.slack.Posts()
			if tl := topLevel(posts); len(tl) != 1 {
				t.Errorf("%d top-level messages, want the one page: %q", len(tl), tl[len(tl)-1].Text)
			}
			noDuplicates(t, posts)
			if strings.Contains(r.logs.String(), token) {
				t.Error("the Slack token appears in the logs")
			}
			run.stop(t)
		})
	}
}

// Slack down (HTTP 500) while the incident opens: the page arrives once
// Slack is back, in order with what followed.
func TestSlackOutageLosesNothing(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.approveAll()
	var mu sync.Mutex
	down := true
	r.slack.SetResponder(func(n int, channel string) slackrecorder.Reply {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return slackrecorder.Reply{Status: 500}
		}
		return slackrecorder.Reply{}
	})
	r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "failed delivery attempts", func() bool { return r.slack.Calls() >= 3 })
	if err := r.env.DNS.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // the incident resolves while Slack is still down
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, 10*time.Second, "delivery after the outage", func() bool {
		ps := r.slack.Posts()
		return len(ps) >= 3 && strings.Contains(ps[len(ps)-1].Text, "[RESOLVED]")
	})
	posts := r.slack.Posts()
	if posts[0].ThreadTS != "" || !strings.Contains(posts[0].Text, "[CRITICAL] shop-example.com") {
		t.Errorf("first delivered message is not the page: %s", posts[0].Text)
	}
	if posts[1].ThreadTS != posts[0].TS || !strings.Contains(string(posts[1].Blocks), "NS_NOT_AS_DECLARED") {
		t.Errorf("second message is not the evidence in the thread: %+v", posts[1])
	}
	// A cycle that ran across the reset can see half of each state, and a
	// finding of that half-state may have joined the incident meanwhile:
	// that update is news, not noise. What must hold: everything in the
	// thread, in order, the resolution last, nothing twice.
	for _, p := range posts[1:] {
		if p.ThreadTS != posts[0].TS {
			t.Errorf("a message outside the incident's thread: %s", p.Text)
		}
	}
	noDuplicates(t, posts)
	time.Sleep(time.Second)
	if n := len(r.slack.Posts()); n != len(posts) {
		t.Errorf("%d more message(s) after the resolution", n-len(posts))
	}
}

// The daemon is stopped in the middle of its cycles and restarted with an
// open incident and a resolved one: nothing is paged again.
func TestRestartDoesNotRepage(t *testing.T) {
	r := newRigWith(t, "@every 1s", "1h", "@every 1s")
	r.approveAll()
	run := r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	// The DNS page, then the registration cycle's note that the registry's
	// name servers no longer match the (hijacked) delegation.
	waitFor(t, 10*time.Second, "the page and its update", func() bool {
		for _, p := range r.slack.Posts() {
			if strings.Contains(p.Text+string(p.Blocks), "REGISTRY_NS_MISMATCH") {
				return true
			}
		}
		return false
	})
	// Cancel as the next cycle runs: mid-cycle more often than not.
	time.Sleep(1100 * time.Millisecond)
	run.stop(t)
	before := len(r.slack.Posts())
	r.start()
	time.Sleep(3 * time.Second)
	if after := len(r.slack.Posts()); after != before {
		t.Fatalf("restart sent %d more message(s): %s", after-before, r.slack.Posts()[before].Text)
	}
	noDuplicates(t, r.slack.Posts())
}

// A reload that removes a domain closes its incident with a message that
// says so ("closed", not "resolved"), and no later result of a cycle that
// was running reopens it.
func TestReloadRemovingADomainClosesItsIncident(t *testing.T) {
	r := newRigWith(t, "@every 1s", "1h", "@every 1s")
	r.approveAll()
	run := r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
	page := topLevel(r.slack.Posts())[0]
	cfg, err := os.ReadFile(r.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Drop shop-example.com from the inventory (and the playbook naming it).
	text := string(cfg)
	i := strings.Index(text, "playbooks:")
	text = text[:i]
	var kept []string
	skip := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "  - name: ") {
			skip = strings.Contains(line, "shop-example.com")
		} else if !strings.HasPrefix(line, "    ") {
			skip = false
		}
		if !skip {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(r.cfgPath, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	run.reload <- struct{}{}
	waitFor(t, 5*time.Second, "the closing message", func() bool { return len(inThread(r.slack.Posts(), page.TS, "*Closed:*")) == 1 })
	closing := inThread(r.slack.Posts(), page.TS, "*Closed:*")[0]
	if !strings.Contains(string(closing.Blocks), "removed from the inventory") || strings.Contains(closing.Text, "RESOLVED") {
		t.Fatalf("closing message = %q %s", closing.Text, closing.Blocks)
	}
	time.Sleep(3 * time.Second) // cycles that ran across the reload finish
	if tl := topLevel(r.slack.Posts()); len(tl) != 1 {
		t.Fatalf("a removed domain paged again: %q", tl[len(tl)-1].Text)
	}
	st, err := store.Open(context.Background(), r.cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open, err := st.OpenIncidents(context.Background(), "shop-example.com")
	if err != nil || len(open) != 0 {
		t.Fatalf("open incidents for the removed domain: %+v, %v", open, err)
	}
	if inc, err := st.Incident(context.Background(), 1); err != nil || inc.Status != store.IncidentClosed {
		t.Fatalf("incident #1 = %+v, %v", inc, err)
	}
}

// SIGHUP with a broken config: refused, the old config keeps running.
func TestReloadRefusesABrokenConfig(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.approveAll()
	run := r.start()
	good, _ := os.ReadFile(r.cfgPath)
	if err := os.WriteFile(r.cfgPath, append(good, []byte("\nbogus_key: 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	run.reload <- struct{}{}
	waitFor(t, 5*time.Second, "the refusal in the log", func() bool { return strings.Contains(r.logs.String(), "config reload refused") })
	if !strings.Contains(r.logs.String(), "bogus_key: unknown field") {
		t.Errorf("the log does not say why:\n%s", r.logs.String())
	}
	// Still checking with the old config: a hijack still pages.
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the page after a refused reload", func() bool { return len(r.slack.Posts()) > 0 })
	metrics := body(t, run.addr, "/metrics")
	if !strings.Contains(metrics, `nsguard_config_reloads_total{result="refused"} 1`) {
		t.Errorf("refused reload not counted")
	}
	// A good config is applied.
	if err := os.WriteFile(r.cfgPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	run.reload <- struct{}{}
	waitFor(t, 5*time.Second, "the applied reload", func() bool { return strings.Contains(r.logs.String(), "config reloaded") })
}

// /metrics serves every series the deploy manifests and dashboard query.
func TestMetricsAndProbes(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	run := r.start()
	if get(run.addr, "/healthz") != 200 {
		t.Error("/healthz not 200")
	}
	m := body(t, run.addr, "/metrics")
	for _, name := range []string{
		"nsguard_cycle_duration_seconds_bucket", "nsguard_cycles_total", "nsguard_dns_queries_total",
		"nsguard_findings", "nsguard_domain_last_success_timestamp_seconds", "nsguard_outbox_depth",
		"nsguard_incident_events_total",
		"nsguard_outbox_delivery_failures_total", "nsguard_incidents_open", "nsguard_build_info",
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if !strings.Contains(m, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(m, `nsguard_build_info{commit="abc123",version="test"} 1`) {
		t.Error("build info labels")
	}
	if !strings.Contains(m, `nsguard_findings{id="BASELINE_NEEDED",severity="info"} 5`) {
		t.Errorf("no baseline yet: want 5 BASELINE_NEEDED findings:\n%s", grep(m, "nsguard_findings"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A transfer to an unapproved registrar with a lock removed pages at the
// next registration cycle (registration confirms at once), with the
// contact sheet in the message.
func TestRegistrationChangePagesWithTheContactSheet(t *testing.T) {
	r := newRigWith(t, "@every 1h", "1h", "@every 2s")
	r.approveAll()
	r.start()
	time.Sleep(500 * time.Millisecond)
	if n := len(r.slack.Posts()); n != 0 {
		t.Fatalf("healthy lab paged: %d", n)
	}
	if err := r.env.Reg.Update("shop-example.com", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
		var keep []string
		for _, st := range d.Statuses {
			if st != "serverTransferProhibited" {
				keep = append(keep, st)
			}
		}
		d.Statuses = keep
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the registration page and its evidence", func() bool { return len(postsAbout(r.slack, "shop-example.com")) > 1 })
	page, detail := postsAbout(r.slack, "shop-example.com")[0], postsAbout(r.slack, "shop-example.com")[1]
	all := page.Text + string(page.Blocks) + string(detail.Blocks)
	for _, want := range []string{"REGISTRAR_NOT_APPROVED", "REGISTRATION_CHANGED", "LOCK_MISSING", "Evil Registrar Ltd", "compliance@icann.org", "VeriSign"} {
		if !strings.Contains(all, want) {
			t.Errorf("the registration page lacks %q:\n%s", want, all)
		}
	}
}
