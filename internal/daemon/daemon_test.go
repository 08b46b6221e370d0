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
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/labenv"
	"github.com/nsguard/nsguard/internal/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/internal/outbox"
	"github.com/nsguard/nsguard/internal/reglab"
	"github.com/nsguard/nsguard/internal/store"
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
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir()})
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
		run.done <- daemon.Run(ctx, daemon.Options{
			Config: r.cfg, ConfigPath: r.cfgPath, Listener: ln, Reload: run.reload,
			Logger:         slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			CheckerOptions: checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback},
			OutboxOptions:  outbox.Options{Backoff: outbox.Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Factor: 2}, PollInterval: 100 * time.Millisecond},
			TickInterval:   200 * time.Millisecond,
			Drain:          5 * time.Second,
			Version:        "test", Commit: "abc123",
		})
	}()
	r.t.Cleanup(func() { run.stop(r.t) })
	waitFor(r.t, 15*time.Second, "the daemon to be ready", func() bool { return get(run.addr, "/readyz") == 200 })
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

// The end-to-end story: healthy → approve → hijack → one critical
// page within one interval, a threaded repeat, a resolved reply after reset.
func TestHijackPagesOnceRepeatsInThreadAndResolves(t *testing.T) {
	r := newRig(t, "@every 2s", "4s")
	r.approveAll()
	run := r.start()
	time.Sleep(2500 * time.Millisecond)
	if n := len(r.slack.Posts()); n != 0 {
		t.Fatalf("healthy, approved lab paged %d times: %+v", n, r.slack.Posts())
	}

	hijackedAt := time.Now()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second+5*time.Second, "the page", func() bool { return len(r.slack.Posts()) > 0 })
	latency := time.Since(hijackedAt)
	t.Logf("hijack to Slack: %s (interval 2s, confirmations 2, recheck 300ms)", latency.Round(time.Millisecond))
	page := r.slack.Posts()[0]
	all := page.Text + string(page.Blocks)
	for _, want := range []string{"shop-example.com", "NS_NOT_AS_DECLARED", "DELEGATION_CHANGED", "nsguard failover run shop-to-backup", "nsguard baseline approve shop-example.com", "attacker.net"} {
		if !strings.Contains(all, want) {
			t.Errorf("the page lacks %q:\n%s", want, all)
		}
	}
	if page.Channel != "#dns-oncall" || page.ThreadTS != "" {
		t.Errorf("the page went to %q thread %q", page.Channel, page.ThreadTS)
	}
	time.Sleep(2500 * time.Millisecond) // another cycle: no second page
	if n := len(r.slack.Posts()); n != 1 {
		t.Fatalf("want exactly one message within the interval, got %d", n)
	}

	waitFor(t, 8*time.Second, "the repeat", func() bool { return len(r.slack.Posts()) >= 2 })
	if rep := r.slack.Posts()[1]; rep.ThreadTS != page.TS {
		t.Errorf("the repeat is not a reply in the incident's thread: %+v", rep)
	}

	if err := r.env.DNS.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the resolved reply", func() bool {
		for _, p := range r.slack.Posts() {
			if p.ThreadTS == page.TS && strings.Contains(strings.ToLower(p.Text+string(p.Blocks)), "resolved") {
				return true
			}
		}
		return false
	})
	for _, p := range r.slack.Posts()[1:] {
		if p.ThreadTS != page.TS {
			t.Errorf("a message outside the incident's thread: %+v", p)
		}
		if strings.Contains(p.Token, "xoxb") && p.Token != token {
			t.Errorf("token mangled")
		}
	}
	if strings.Contains(r.logs.String(), token) {
		t.Error("the Slack token appears in the logs")
	}
	run.stop(t)
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
	time.Sleep(3 * time.Second) // the incident resolves while Slack is still down
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, 10*time.Second, "delivery after the outage", func() bool { return len(r.slack.Posts()) >= 2 })
	posts := r.slack.Posts()
	if !strings.Contains(posts[0].Text+string(posts[0].Blocks), "NS_NOT_AS_DECLARED") {
		t.Errorf("first delivered message is not the page: %s", posts[0].Text)
	}
	if posts[1].ThreadTS != posts[0].TS || !strings.Contains(strings.ToLower(posts[1].Text+string(posts[1].Blocks)), "resolved") {
		t.Errorf("second message is not the resolution in the thread: %+v", posts[1])
	}
	time.Sleep(time.Second)
	if n := len(r.slack.Posts()); n != 2 {
		t.Errorf("want 2 messages, got %d", n)
	}
}

// The daemon is killed in the middle of its cycles and restarted: the
// incident it paged for is not paged again.
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
	waitFor(t, 10*time.Second, "the registration page", func() bool { return len(postsAbout(r.slack, "shop-example.com")) > 0 })
	page := postsAbout(r.slack, "shop-example.com")[0]
	all := page.Text + string(page.Blocks)
	for _, want := range []string{"REGISTRAR_NOT_APPROVED", "REGISTRATION_CHANGED", "LOCK_MISSING", "Evil Registrar Ltd", "compliance@icann.org", "VeriSign"} {
		if !strings.Contains(all, want) {
			t.Errorf("the registration page lacks %q:\n%s", want, all)
		}
	}
}
