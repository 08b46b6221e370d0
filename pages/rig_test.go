package pages_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/outbox"
)

const slackToken = "xoxb-pages-test-0123456789"

// rig is the in-process lab, slack-go's test server, a config and a real
// daemon serving the pages, as internal/daemon's tests run one.
type rig struct {
	t       *testing.T
	env     *labenv.Env
	slack   *slackrecorder.Recorder
	cfgPath string
	cfg     *config.Config
	addr    string
	logs    *syncBuffer
	stop    func()
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

type rigOptions struct {
	// UI is the ui: section (YAML, indented under "ui:"), "" for defaults.
	UI    string
	World func(base byte, now time.Time) *dnslab.World
	// Playbook adds the FailoverWorld's TSIG-signed playbook.
	Playbook bool
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir(), DNS: dnslab.Options{World: o.World}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	rec := slackrecorder.New()
	t.Cleanup(rec.Close)
	tokenFile := filepath.Join(env.Dir, "slack-token")
	if err := os.WriteFile(tokenFile, []byte(slackToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  repeat_interval: 1h
  recheck: 300ms
schedules: {delegation: "@every 1s", registration: "@every 1h", audit: "0 9 * * *", jitter: 0s}
`, tokenFile, rec.URL())
	if o.Playbook {
		key := filepath.Join(env.Dir, "tsig.key")
		w := env.DNS.World()
		if err := os.WriteFile(key, []byte(dnslab.TSIGKeyFile(dnslab.SwitchKey, w.TSIG[dnslab.SwitchKey])), 0o600); err != nil {
			t.Fatal(err)
		}
		primary := env.DNS.AddrOf("ns1.provider-a.net")
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		t.Cleanup(hook.Close)
		extra += fmt.Sprintf(`playbooks:
  - name: shop-to-backup
    primary: shop-example.com
    backup: shop-backup.net
    description: Point the shop's API at the backup domain.
    steps:
      - name: repoint api
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.shop-backup.net."]}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-backup.net., interval: 100ms, timeout: 20s, public_resolvers: true}
      - webhook: {url: "%s/hooks/T000/s3cr3t-path?token=s3cr3t-query", headers: {Authorization: "Bearer s3cr3t-header"}}
`, primary, key, hook.URL)
	}
	if o.UI != "" {
		extra += "ui:\n" + o.UI
	}
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

// approveAll records the lab's current state as every domain's baseline.
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
		if _, err := baseline.Save(ctx, st, baseline.StateOf(res), "alice", "initial", time.Now()); err != nil {
			r.t.Fatal(err)
		}
	}
}

// start runs the daemon until the test ends.
func (r *rig) start() {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.addr = ln.Addr().String()
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			Config: r.cfg, ConfigPath: r.cfgPath, Listener: ln,
			Logger:         slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			CheckerOptions: checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback},
			OutboxOptions:  outbox.Options{PollInterval: 100 * time.Millisecond},
			TickInterval:   200 * time.Millisecond,
			Drain:          5 * time.Second,
		})
	}()
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				r.t.Errorf("daemon: %v", err)
			}
		case <-time.After(20 * time.Second):
			r.t.Error("daemon did not stop")
		}
	}
	r.t.Cleanup(r.stop)
	r.waitFor(20*time.Second, "the daemon to be ready", func() bool {
		st, _, _ := r.get("/readyz")
		return st == http.StatusOK
	})
}

// get fetches a path from the daemon.
func (r *rig) get(path string) (int, http.Header, string) {
	return r.do(http.MethodGet, path, nil)
}

func (r *rig) do(method, path string, hdr http.Header) (int, http.Header, string) {
	req, err := http.NewRequest(method, "http://"+r.addr+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (r *rig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
