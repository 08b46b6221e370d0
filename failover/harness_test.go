package failover

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify"
)

// harness is a failover world: the DNS lab with the switch zone (served
// in-process or by BIND), the registration lab, a real SQLite store, a
// TSIG key file, a webhook receiver on 127.0.0.1 that checks signatures,
// and a config with the playbook.
type harness struct {
	t       testing.TB
	env     *labenv.Env
	st      *store.SQLite
	cfg     *config.Config
	keyFile string
	hook    *hookServer
	dir     string
	logs    *syncBuffer
}

const (
	playbook      = "shop-to-backup"
	apiName       = "api.shop-switch.com."
	webhookSecret = "webhook-secret-3b1f0c"
)

// newHarness starts a lab; backend nil serves the zones in-process.
func newHarness(t testing.TB, backend dnslab.Backend, base byte) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dopts := dnslab.Options{World: dnslab.FailoverWorld, Backend: backend, Base: base}
	env, err := labenv.Start(ctx, labenv.Options{DNS: dopts, Dir: dir})
	if err != nil {
		t.Fatalf("starting the labs: %v", err)
	}
	t.Cleanup(func() { env.Close() })
	h := &harness{t: t, env: env, dir: dir, hook: newHookServer(t), logs: &syncBuffer{}}
	w := env.DNS.World()
	h.keyFile = filepath.Join(dir, "tsig.key")
	if err := os.WriteFile(h.keyFile, []byte(dnslab.TSIGKeyFile(dnslab.SwitchKey, w.TSIG[dnslab.SwitchKey])), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(webhookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfg = h.config("")
	h.st, err = store.Open(ctx, filepath.Join(dir, "nsguard.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.st.Close() })
	return h
}

// primaryAddr is the switch zone's primary (its SOA MNAME).
func (h *harness) primaryAddr() netip.Addr { return h.env.DNS.AddrOf("ns1.provider-a.net") }

// playbookYAML is the playbook under test; keyFile may be replaced.
func (h *harness) playbookYAML(keyFile string) string {
	return fmt.Sprintf(`playbooks:
  - name: %s
    primary: shop-example.com
    backup: shop-backup.net
    description: Move the shop's API to the backup domain.
    slack_channel: "#failover"
    steps:
      - name: repoint api
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.shop-backup.net."]}
      - name: tell the load balancer
        webhook:
          url: "%s/switch?token=url-credential"
          body: '{"primary":"{{.Primary}}","backup":"{{.Backup}}","run":"{{.RunID}}"}'
          headers: {X-Team: shop}
          secret_file: %q
          retries: 2
          timeout: 2s
      - name: check api
        verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-backup.net., interval: 50ms, timeout: 10s}
      - notify: {message: "{{.Backup}} serves the shop now (run {{.RunID}}, by {{.By}})"}
    rollback:
      - name: api back
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.shop-example.com."]}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-example.com., interval: 50ms, timeout: 10s}
`, playbook, h.primaryAddr(), keyFile, h.hook.srv.URL, filepath.Join(h.dir, "hook.secret"), h.primaryAddr(), keyFile)
}

// config renders the lab config with a policy that approves two
// registrars (so a backup can be moved to the other) and the playbook.
func (h *harness) config(keyFile string) *config.Config {
	h.t.Helper()
	if keyFile == "" {
		keyFile = h.keyFile
	}
	return h.configWith(h.playbookYAML(keyFile))
}

// configWith renders the lab config with the given playbooks section.
func (h *harness) configWith(playbooks string) *config.Config {
	h.t.Helper()
	cfg, err := config.Parse(filepath.Join(h.dir, "nsguard.yaml"), []byte(h.configYAML(playbooks)))
	if err != nil {
		h.t.Fatalf("lab config: %v", err)
	}
	return cfg
}

// writeConfig writes the harness's config, the playbook under test
// included, where another process can load it.
func (h *harness) writeConfig() string {
	h.t.Helper()
	p := filepath.Join(h.dir, "nsguard.yaml")
	if err := os.WriteFile(p, []byte(h.configYAML(h.playbookYAML(h.keyFile))), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) configYAML(playbooks string) string {
	extra := fmt.Sprintf(`registry:
  rdap_bootstrap: %q
  iana_whois: %q
  timeout: 2s
  max_qps_per_server: 1000
policy:
  approved_registrars: ["MarkMonitor Inc.", "CSC Corporate Domains, Inc."]
  required_locks:
    tier0: [serverTransferProhibited, serverUpdateProhibited, serverDeleteProhibited, clientTransferProhibited]
    tier1: [clientTransferProhibited]
  expiry: {warning: 90d, critical: 30d}
`, h.env.Reg.BootstrapURL(), h.env.Reg.IANAWhoisAddr()) + playbooks
	return h.env.DNS.ConfigYAML(filepath.Join(h.dir, "nsguard.db"), extra)
}

// engine builds an engine over the harness's store; each gets a fresh
// checker (the registry client caches) and its own lock holder name.
func (h *harness) engine(cfg *config.Config, o Options) *Engine {
	h.t.Helper()
	if cfg == nil {
		cfg = h.cfg
	}
	ck, err := checker.New(cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(ck.Close)
	o.Store = h.st
	o.Checker = ck
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e, err := New(cfg, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(e.Close)
	return e
}

// cname asks every provider-A server (the switch zone's) for the api
// CNAME and fails unless all answer want, polling a little for a BIND
// secondary to catch up.
func (h *harness) cname(want string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		ok := true
		for _, ns := range []string{"ns1.provider-a.net", "ns2.provider-a.net"} {
			c := askCNAME(h.t, h.env.DNS, h.env.DNS.AddrOf(ns), apiName)
			got = append(got, ns+"="+c)
			ok = ok && c == want
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("api CNAME is %v, want %s everywhere", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serial is the switch zone's SOA serial at its primary.
func (h *harness) serial() uint32 {
	h.t.Helper()
	r := ask(h.t, h.env.DNS, h.primaryAddr(), dnslab.SwitchZone, dns.TypeSOA)
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	h.t.Fatalf("no SOA for the switch zone: %v", r)
	return 0
}

func ask(t testing.TB, l *dnslab.Lab, addr netip.Addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, netip.AddrPortFrom(addr, uint16(l.Port())).String())
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return r
}

func askCNAME(t testing.TB, l *dnslab.Lab, addr netip.Addr, name string) string {
	r := ask(t, l, addr, name, dns.TypeCNAME)
	for _, rr := range r.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			return c.Target
		}
	}
	return ""
}

// messages returns the outbox's messages, decoded, in enqueue order.
func (h *harness) messages() []*notify.Message {
	h.t.Helper()
	rows, err := h.st.OutboxMessages(context.Background(), 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*notify.Message
	for _, r := range rows {
		m, err := notify.Unmarshal(r.Payload)
		if err != nil {
			h.t.Fatal(err)
		}
		if m.ThreadKey != r.ThreadKey || m.Channel != r.Channel {
			h.t.Errorf("outbox row and payload disagree: %q/%q vs %q/%q", r.ThreadKey, r.Channel, m.ThreadKey, m.Channel)
		}
		out = append(out, m)
	}
	return out
}

func titles(ms []*notify.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Title)
	}
	return out
}

// hookServer is the company's switch API: it checks the signature of
// every request and answers what the test tells it to.
type hookServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
	// reply decides the status for request n (1-based); nil answers 200.
	reply func(n int) int
	// block, when set, holds each request until it is closed.
	block chan struct{}
}

type hookRequest struct {
	Body, Signature, Idempotency, Team, Run string
	ValidSig                                bool
}

func newHookServer(t testing.TB) *hookServer {
	hs := &hookServer{}
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		sig := r.Header.Get("X-Nsguard-Signature")
		want := Sign(webhookSecret, b)
		hs.mu.Lock()
		hs.got = append(hs.got, hookRequest{Body: string(b), Signature: sig, Idempotency: r.Header.Get("Idempotency-Key"),
			Team: r.Header.Get("X-Team"), Run: r.Header.Get("X-Nsguard-Run"), ValidSig: hmac.Equal([]byte(sig), []byte(want))})
		n, reply, block := len(hs.got), hs.reply, hs.block
		hs.mu.Unlock()
		if r.URL.Query().Get("token") != "url-credential" || r.URL.Path != "/switch" {
			http.Error(w, "wrong url", http.StatusNotFound)
			return
		}
		if block != nil {
			<-block
		}
		code := http.StatusOK
		if reply != nil {
			code = reply(n)
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"switched": code == 200, "attempt": n})
	}))
	t.Cleanup(hs.srv.Close)
	return hs
}

func (hs *hookServer) requests() []hookRequest {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]hookRequest(nil), hs.got...)
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
