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
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/outbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clusterRig is a lab, a fake Slack and a PostgreSQL database shared by
// several in-process daemons (replicas and probes), each with its own
// config file naming its vantage.
type clusterRig struct {
	t      *testing.T
	env    *labenv.Env
	slack  *slackrecorder.Recorder
	url    string
	urlF   string
	extra  string
	common *config.Config
	nodes  map[string]*node
	mu     sync.Mutex
}

// node is one daemon of the cluster.
type node struct {
	name    string
	probe   bool
	cfgPath string
	cfg     *config.Config
	logs    *syncBuffer
	addr    string
	cancel  context.CancelFunc
	done    chan error
}

// clusterExtra is the config every node shares, beside its vantage.
const clusterExtra = `alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  repeat_interval: 1h
  recheck: 300ms
  delivery_timeout: 2s
  claim_lease: 5s
  group_wait: 1s
schedules: {delegation: "@every 1s", registration: "@every 1h", audit: "@every 24h", jitter: 0s}
ui: {enabled: false}
`

func newClusterRig(t *testing.T, lo labenv.Options) *clusterRig {
	t.Helper()
	return newClusterRigOn(t, lo, pgtest.Database(t))
}

// newClusterRigOn is newClusterRig on the database at url.
func newClusterRigOn(t *testing.T, lo labenv.Options, url string) *clusterRig {
	t.Helper()
	env, rec, tokenFile := startLabAndSlack(t, lo)
	r := &clusterRig{t: t, env: env, slack: rec, url: url, nodes: map[string]*node{}}
	r.urlF = filepath.Join(env.Dir, "db-url")
	if err := os.WriteFile(r.urlF, []byte(r.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.extra = fmt.Sprintf(clusterExtra, tokenFile, rec.URL())
	r.common = r.config("common", nil)
	return r
}

// config writes node name's config: the shared one, on the PostgreSQL
// store, with cluster.vantage = name and a lease of 3s, then edited.
func (r *clusterRig) config(name string, edit func(string) string) *config.Config {
	r.t.Helper()
	y := r.env.ConfigYAML(r.extra + fmt.Sprintf("cluster: {vantage: %s, lease: 3s}\n", name))
	y = regexp.MustCompile(`(?m)^store: \{path: .*\}$`).ReplaceAllString(y, fmt.Sprintf("store: {url_file: %q}", r.urlF))
	if edit != nil {
		y = edit(y)
	}
	path := filepath.Join(r.env.Dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// approveAll records the lab's state as every domain's baseline, in the
// shared database.
func (r *clusterRig) approveAll() {
	r.t.Helper()
	ctx := context.Background()
	ck, err := checker.New(r.common, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		r.t.Fatal(err)
	}
	defer ck.Close()
	st, err := store.OpenPostgres(ctx, r.url, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	for _, res := range ck.Run(ctx, r.common.Domains, checker.RunOptions{Fresh: true}) {
		if _, err := baseline.Save(ctx, st, baseline.StateOf(res), "test", "initial", time.Now()); err != nil {
			r.t.Fatal(err)
		}
	}
}

// start runs a node (a replica, or a probe) with its config edited.
func (r *clusterRig) start(name string, probe bool, edit func(string) string) *node {
	r.t.Helper()
	n := &node{name: name, probe: probe, cfg: r.config(name, edit), logs: &syncBuffer{}, done: make(chan error, 1)}
	n.cfgPath = filepath.Join(r.env.Dir, name+".yaml")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		n.done <- daemon.Run(ctx, daemon.Options{
			Config: n.cfg, ConfigPath: n.cfgPath, Listener: ln, Probe: probe,
			Logger:         slog.New(slog.NewJSONHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			CheckerOptions: checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback},
			OutboxOptions:  outbox.Options{Backoff: outbox.Backoff{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Factor: 2}, PollInterval: 100 * time.Millisecond},
			TickInterval:   200 * time.Millisecond, HealthInterval: 200 * time.Millisecond, RecheckPoll: 100 * time.Millisecond,
			Drain:   5 * time.Second,
			Version: "test", Commit: "abc123",
		})
	}()
	r.mu.Lock()
	r.nodes[name] = n
	r.mu.Unlock()
	r.t.Cleanup(func() { n.stop(r.t) })
	return n
}

func (n *node) stop(t *testing.T) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop", n.name)
	}
}

func (n *node) running() bool { return n.cancel != nil }

// dumpOnFailure logs what the node said about leading, judging and
// incidents when the test failed.
func (n *node) dumpOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	for _, l := range strings.Split(n.logs.String(), "\n") {
		for _, w := range []string{"re-checking", "judging without", "incident", "leading", "stepped down", "fenced", "could not be checked"} {
			if strings.Contains(l, w) {
				t.Logf("%s: %s", n.name, l)
				break
			}
		}
	}
}

// leaders returns the running nodes whose nsguard_leader gauge is 1.
func (r *clusterRig) leaders() []*node {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*node
	for _, n := range r.nodes {
		if n.running() && metricValue(n.addr, "nsguard_leader") == "1" {
			out = append(out, n)
		}
	}
	return out
}

// oneLeader waits until exactly one running node leads and returns it.
func (r *clusterRig) oneLeader(within time.Duration) *node {
	r.t.Helper()
	var got []*node
	waitFor(r.t, within, "exactly one leader", func() bool {
		got = r.leaders()
		return len(got) == 1
	})
	return got[0]
}

// metricValue reads one unlabelled series' value from /metrics ("" if absent).
func metricValue(addr, name string) string {
	resp, err := httpGet("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(resp, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// Three vantage points — two replicas and a probe — on one PostgreSQL
// store, on both labs: one leader (nsguard_leader 1 on it alone, /readyz
// says who is what); a hijack is paged once, naming the vantage points
// that saw it; the leader stops and another takes over within a lease;
// the restore resolves the incident in the same thread; nothing reaches
// Slack twice.
func TestClusterStory(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			r := newClusterRig(t, be.opts(t))
			r.approveAll()
			fra := r.start("vantage-fra", false, nil)
			hk := r.start("vantage-hk", false, nil)
			sh := r.start("vantage-sh", true, nil)
			for _, n := range []*node{fra, hk, sh} {
				waitFor(t, 20*time.Second, n.name+" ready", func() bool { return get(n.addr, "/readyz") == 200 })
			}
			leader := r.oneLeader(10 * time.Second)
			if leader.probe {
				t.Fatal("the probe leads")
			}
			for _, n := range []*node{fra, hk, sh} {
				b := body(t, n.addr, "/readyz")
				switch {
				case n == leader && !strings.HasPrefix(b, "ready: leader (vantage "+n.name+", epoch "):
					t.Errorf("%s (leader) /readyz = %q", n.name, b)
				case n == sh && !strings.HasPrefix(b, "ready: probe (vantage vantage-sh), leader is "+leader.name+"/"):
					t.Errorf("probe /readyz = %q", b)
				case n != leader && n != sh && !strings.HasPrefix(b, "ready: follower (vantage "+n.name+"), leader is "+leader.name+"/"):
					t.Errorf("%s (follower) /readyz = %q", n.name, b)
				}
			}
			// The registration cycle is the leader's alone (and the audit's,
			// whose schedule does not come round here).
			const regOK = `nsguard_cycles_total{class="registration",result="ok"}`
			waitFor(t, 20*time.Second, "the leader's registration cycle", func() bool {
				v := metricValue(leader.addr, regOK)
				return v != "" && v != "0"
			})
			time.Sleep(2 * time.Second)
			for _, n := range []*node{fra, hk, sh} {
				if v := metricValue(n.addr, regOK); n != leader && v != "" && v != "0" {
					t.Errorf("%s, not leading, ran %s registration cycle(s)", n.name, v)
				}
			}
			if n := len(r.slack.Posts()); n != 0 {
				t.Fatalf("%d message(s) on a healthy lab: %q", n, r.slack.Posts()[0].Text)
			}

			hijacked := time.Now()
			if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 15*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
			t.Logf("hijack to page across 3 vantage points: %s", time.Since(hijacked).Round(time.Millisecond))
			page := topLevel(r.slack.Posts())[0]
			all := page.Text + string(page.Blocks)
			seen := regexp.MustCompile(`Seen from ([a-z, -]+)`).FindStringSubmatch(all)
			if !strings.HasPrefix(page.Text, "🔴 [CRITICAL] shop-example.com") || seen == nil || strings.Count(seen[1], "vantage-") < 2 {
				t.Fatalf("page = %q\n%s", page.Text, all)
			}
			t.Logf("the page says: %s", seen[0])

			// The leader stops (a rolling update): another leads within a lease.
			stopped := time.Now()
			leader.stop(t)
			next := r.oneLeader(2 * 3 * time.Second)
			t.Logf("%s stopped; %s leads after %s", leader.name, next.name, time.Since(stopped).Round(time.Millisecond))
			if next.probe {
				t.Fatal("the probe leads")
			}
			// The new leader does not run the registration cycle its
			// predecessor ran minutes ago.
			waitFor(t, 5*time.Second, "the new leader's catch-up decision", func() bool {
				return strings.Contains(next.logs.String(), "registration checked recently by the previous leader")
			})
			if v := metricValue(next.addr, regOK); v != "" && v != "0" {
				t.Errorf("the new leader ran the registration cycle again (%s)", v)
			}

			if err := r.env.DNS.Restore(context.Background(), "shop-example.com"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the resolution in the page's thread", func() bool {
				return len(inThread(r.slack.Posts(), page.TS, "*Resolved*")) > 0
			})
			time.Sleep(2 * time.Second)
			posts := r.slack.Posts()
			if tl := topLevel(posts); len(tl) != 1 {
				t.Errorf("%d top-level messages, want the one page: %q\n%s", len(tl), tl[len(tl)-1].Text, tl[len(tl)-1].Blocks)
			}
			noDuplicates(t, posts)
		})
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// blackHole listens on addr (UDP and TCP) and never answers: a vantage
// whose every query goes there is partitioned from the DNS.
func blackHole(t *testing.T, addr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
}

// cutOff points a config's root hints at a black hole: every probe of
// that vantage times out.
func cutOff(t *testing.T, env *labenv.Env) func(string) string {
	const hole = "127.250.0.1"
	blackHole(t, fmt.Sprintf("%s:%d", hole, env.DNS.Port()))
	hints, err := os.ReadFile(env.DNS.HintsFile())
	if err != nil {
		t.Fatal(err)
	}
	cut := regexp.MustCompile(`(?m)(\sA\s+)127\.\d+\.\d+\.\d+$`).ReplaceAll(hints, []byte("${1}"+hole))
	path := filepath.Join(env.Dir, "cut.hints")
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	return func(y string) string {
		return regexp.MustCompile(`(?m)^  root_hints: .*$`).ReplaceAllString(y, fmt.Sprintf("  root_hints: %q", path))
	}
}

// onlyResolver makes a vantage ask one of the lab's public resolvers.
func onlyResolver(env *labenv.Env, i int) func(string) string {
	return func(y string) string {
		return regexp.MustCompile(`(?m)^  public_resolvers: .*$`).ReplaceAllString(y, fmt.Sprintf("  public_resolvers: [%q]", env.DNS.Resolvers()[i]))
	}
}

// A partitioned vantage point (every probe times out) neither sees nor
// denies: nothing pages while the others see a healthy lab; a hijack the
// others see pages as itself, seen from both, without naming the cut one;
// and VANTAGE_DISAGREES comes only when the vantages that can check
// disagree (a resolver poisoned for one of them).
func TestClusterPartitionedVantage(t *testing.T) {
	ctx := context.Background()
	r := newClusterRig(t, labenv.Options{})
	r.approveAll()
	fra := r.start("vantage-fra", false, onlyResolver(r.env, 0))
	t.Cleanup(func() { fra.dumpOnFailure(t) })
	waitFor(t, 20*time.Second, "fra ready", func() bool { return get(fra.addr, "/readyz") == 200 })
	r.oneLeader(10 * time.Second)
	hk := r.start("vantage-hk", false, onlyResolver(r.env, 1))
	t.Cleanup(func() { hk.dumpOnFailure(t) })
	cut := r.start("vantage-cut", true, cutOff(t, r.env))
	waitFor(t, 20*time.Second, "hk ready", func() bool { return get(hk.addr, "/readyz") == 200 })
	waitFor(t, 30*time.Second, "the cut vantage's reports", func() bool {
		return strings.Contains(cut.logs.String(), "domain could not be checked")
	})
	time.Sleep(3 * time.Second)
	if n := len(r.slack.Posts()); n != 0 {
		t.Fatalf("a partitioned vantage caused %d message(s): %q", n, r.slack.Posts()[0].Text)
	}
	if v := metricValue(fra.addr, `nsguard_vantage_verdicts_total{outcome="disagree"}`); v != "0" {
		t.Fatalf("disagreements while only the cut vantage differs: %s", v)
	}

	// A hijack both vantages that can check see: one page, seen from both,
	// and the cut vantage is not named as not seeing it.
	if err := r.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
	page := topLevel(r.slack.Posts())[0]
	all := page.Text + string(page.Blocks)
	if !strings.Contains(all, "Seen from vantage-fra, vantage-hk") || strings.Contains(all, "vantage-cut") || strings.Contains(all, "VANTAGE") {
		t.Fatalf("page = %q\n%s", page.Text, all)
	}
	if err := r.env.DNS.Restore(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the resolution", func() bool { return len(inThread(r.slack.Posts(), page.TS, "*Resolved*")) > 0 })

	// The resolver hk asks is poisoned: hk sees it, fra does not.
	if err := r.env.DNS.Poison(ctx, 1, "www.shop-example.com. 300 IN A 203.0.113.99"); err != nil {
		t.Fatal(err)
	}
	var vd slackrecorder.Post
	waitFor(t, 20*time.Second, "the disagreement's page", func() bool {
		for _, p := range topLevel(r.slack.Posts()) {
			if strings.Contains(p.Text, "vantage points disagree") {
				vd = p
				return true
			}
		}
		return false
	})
	all = vd.Text + string(vd.Blocks)
	if !strings.Contains(vd.Text, "[WARNING]") || !strings.Contains(all, "Seen from vantage-hk; not from vantage-fra") || strings.Contains(all, "vantage-cut") {
		t.Fatalf("disagreement page = %q\n%s", vd.Text, all)
	}
	if tl := topLevel(r.slack.Posts()); len(tl) != 2 {
		t.Errorf("%d pages, want the hijack's and the disagreement's", len(tl))
	}
	noDuplicates(t, r.slack.Posts())
}

// A view most vantage points share but not all (the example): the
// resolver vantage-hk and vantage-sh ask is poisoned, vantage-fra's is
// not. Two of three is a majority: the finding pages as itself, once,
// and the page says "Seen from vantage-hk, vantage-sh; not from
// vantage-fra"; no VANTAGE_DISAGREES. With alerts.quorum 3 the same view
// is a disagreement instead, naming who sees what.
func TestClusterSeenFromSomeVantages(t *testing.T) {
	for _, tc := range []struct {
		quorum   int
		wantText string // in the page's text
		wantBody string // in the page's text or blocks
		notBody  string
	}{
		{0, "[WARNING] shop-example.com", "Seen from vantage-hk, vantage-sh; not from vantage-fra", "disagree"},
		{3, "vantage points disagree", "Seen from vantage-hk, vantage-sh; not from vantage-fra", "RESOLVER_ANSWER_DIVERGES seen from vantage-fra"},
	} {
		t.Run(fmt.Sprintf("quorum %d", tc.quorum), func(t *testing.T) {
			ctx := context.Background()
			r := newClusterRig(t, labenv.Options{})
			r.approveAll()
			withQuorum := func(resolver int) func(string) string {
				return func(y string) string {
					y = onlyResolver(r.env, resolver)(y)
					return strings.Replace(y, "alerts:\n", fmt.Sprintf("alerts:\n  quorum: %d\n", tc.quorum), 1)
				}
			}
			fra := r.start("vantage-fra", false, withQuorum(0))
			hk := r.start("vantage-hk", false, withQuorum(1))
			sh := r.start("vantage-sh", true, withQuorum(1))
			for _, n := range []*node{fra, hk, sh} {
				t.Cleanup(func() { n.dumpOnFailure(t) })
				waitFor(t, 20*time.Second, n.name+" ready", func() bool { return get(n.addr, "/readyz") == 200 })
			}
			if n := r.nodes["vantage-fra"].cfg.Alerts.Quorum; n != tc.quorum {
				t.Fatalf("alerts.quorum = %d, want %d", n, tc.quorum)
			}
			leader := r.oneLeader(10 * time.Second)
			time.Sleep(2 * time.Second)
			if n := len(r.slack.Posts()); n != 0 {
				t.Fatalf("%d message(s) on a healthy lab: %q", n, r.slack.Posts()[0].Text)
			}
			if err := r.env.DNS.Poison(ctx, 1, "www.shop-example.com. 300 IN A 203.0.113.99"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
			time.Sleep(2 * time.Second)
			tl := topLevel(r.slack.Posts())
			if len(tl) != 1 {
				t.Fatalf("%d pages, want one: %q", len(tl), tl[len(tl)-1].Text)
			}
			page := tl[0]
			all := page.Text + string(page.Blocks)
			if !strings.Contains(page.Text, tc.wantText) || !strings.Contains(all, tc.wantBody) || strings.Contains(all, tc.notBody) {
				t.Fatalf("page = %q\n%s\nwant %q in the text, %q in the page, not %q", page.Text, page.Blocks, tc.wantText, tc.wantBody, tc.notBody)
			}
			t.Logf("%s leads; the page: %q; %s", leader.name, page.Text, tc.wantBody)
			noDuplicates(t, r.slack.Posts())
		})
	}
}

// The database restarts under the cluster: the leader steps down (its
// connection is gone), every replica reconnects, one leads again at a
// higher epoch, and a hijack after the restart is paged once.
func TestClusterDatabaseRestart(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	r := newClusterRigOn(t, labenv.Options{}, srv.Database(t))
	r.approveAll()
	a := r.start("vantage-fra", false, nil)
	b := r.start("vantage-hk", false, nil)
	for _, n := range []*node{a, b} {
		waitFor(t, 20*time.Second, n.name+" ready", func() bool { return get(n.addr, "/readyz") == 200 })
	}
	first := r.oneLeader(10 * time.Second)
	e1 := metricValue(first.addr, "nsguard_leader_epoch")

	restarted := time.Now()
	if err := srv.Restart(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, 10*time.Second, "the leader to step down", func() bool {
		return strings.Contains(first.logs.String(), "stepped down")
	})
	second := r.oneLeader(15 * time.Second)
	e2 := metricValue(second.addr, "nsguard_leader_epoch")
	if e2 <= e1 {
		t.Fatalf("epoch %s after the restart, %s before", e2, e1)
	}
	t.Logf("database down %s; %s leads at epoch %s %s after it was back (was %s at %s)", back.Sub(restarted).Round(time.Millisecond),
		second.name, e2, time.Since(back).Round(time.Millisecond), first.name, e1)
	for _, n := range []*node{a, b} {
		waitFor(t, 15*time.Second, n.name+" ready again", func() bool { return get(n.addr, "/readyz") == 200 })
	}
	if err := r.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the page", func() bool { return len(incidentPages(r.slack.Posts())) > 0 })
	time.Sleep(2 * time.Second)
	if tl := incidentPages(r.slack.Posts()); len(tl) != 1 {
		t.Fatalf("%d pages after the restart, want one", len(tl))
	}
	// Each replica said its store was down, and back, in its own name.
	for _, n := range []*node{a, b} {
		if down, up := healthPosts(r.slack, "nsguard on "+n.name+" cannot do its job: store"), healthPosts(r.slack, "nsguard on "+n.name+": store works again"); len(down) != 1 || len(up) != 1 {
			t.Errorf("%s said its store was down %d time(s) and back %d time(s), want once each", n.name, len(down), len(up))
		}
	}
	noDuplicates(t, r.slack.Posts())
}

// incidentPages are the top-level posts that page an incident (not the
// daemons' health messages).
func incidentPages(posts []slackrecorder.Post) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range topLevel(posts) {
		if !strings.Contains(p.Text, "nsguard on ") {
			out = append(out, p)
		}
	}
	return out
}
