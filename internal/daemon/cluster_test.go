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
	"github.com/nsguard/nsguard/internal/labenv"
	"github.com/nsguard/nsguard/internal/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/internal/outbox"
	"github.com/nsguard/nsguard/internal/reglab"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
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
schedules: {delegation: "@every 1s", registration: "@every 1h", audit: "@every 24h", jitter: 0s}
ui: {enabled: false}
`

func newClusterRig(t *testing.T, lo labenv.Options) *clusterRig {
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
	r := &clusterRig{t: t, env: env, slack: rec, url: pgtest.Database(t), nodes: map[string]*node{}}
	r.urlF = filepath.Join(env.Dir, "db-url")
	if err := os.WriteFile(r.urlF, []byte(r.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.extra = fmt.Sprintf(clusterExtra, tokenFile, rec.URL())
	r.common = r.config("common", "")
	return r
}

// config writes node name's config: the shared one, on the PostgreSQL
// store, with cluster.vantage = name, a lease of 3s, and more YAML.
func (r *clusterRig) config(name, more string) *config.Config {
	r.t.Helper()
	y := r.env.ConfigYAML(r.extra + fmt.Sprintf("cluster: {vantage: %s, lease: 3s}\n", name) + more)
	y = regexp.MustCompile(`(?m)^store: \{path: .*\}$`).ReplaceAllString(y, fmt.Sprintf("store: {url_file: %q}", r.urlF))
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

// start runs a node (a replica, or a probe) with more config.
func (r *clusterRig) start(name string, probe bool, more string) *node {
	r.t.Helper()
	n := &node{name: name, probe: probe, cfg: r.config(name, more), logs: &syncBuffer{}, done: make(chan error, 1)}
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
			Drain:          5 * time.Second,
			Version:        "test", Commit: "abc123",
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
			fra := r.start("vantage-fra", false, "")
			hk := r.start("vantage-hk", false, "")
			sh := r.start("vantage-sh", true, "")
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
			time.Sleep(2 * time.Second)
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
