package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// failoverLab is the labs with the failover world, a switch API (webhook
// receiver) that can be held, a fake Slack and a config with the playbook.
type failoverLab struct {
	env   *labenv.Env
	cfg   string
	slack *slackrecorder.Recorder
	mu    sync.Mutex
	calls int
	hold  chan struct{}
}

func startFailoverLab(t *testing.T, backend dnslab.Backend, base byte) *failoverLab {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir(),
		DNS: dnslab.Options{World: dnslab.FailoverWorld, Backend: backend, Base: base}})
	if err != nil {
		t.Fatalf("starting labs: %v", err)
	}
	t.Cleanup(func() { env.Close() })
	fl := &failoverLab{env: env, slack: slackrecorder.New()}
	t.Cleanup(fl.slack.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl.mu.Lock()
		fl.calls++
		hold := fl.hold
		fl.mu.Unlock()
		if hold != nil {
			<-hold
		}
		fmt.Fprintln(w, `{"ok":true}`)
	}))
	t.Cleanup(hook.Close)
	key := filepath.Join(env.Dir, "tsig.key")
	if err := os.WriteFile(key, []byte(dnslab.TSIGKeyFile(dnslab.SwitchKey, env.DNS.World().TSIG[dnslab.SwitchKey])), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NSGUARD_TEST_SLACK_TOKEN", "xoxb-test-token")
	primary := env.DNS.AddrOf("ns1.provider-a.net")
	extra := fmt.Sprintf(`alerts:
  slack: {token_env: NSGUARD_TEST_SLACK_TOKEN, channel: "#dns-oncall", api_url: %q}
playbooks:
  - name: shop-to-backup
    primary: shop-example.com
    backup: shop-backup.net
    description: Move the shop's API to the backup domain.
    steps:
      - name: repoint api
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.shop-backup.net."]}
      - webhook: {url: "%s/switch", body: '{"backup":"{{.Backup}}","run":"{{.RunID}}"}'}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-backup.net., interval: 50ms, timeout: 10s}
    rollback:
      - dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.shop-example.com."]}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-example.com., interval: 50ms, timeout: 10s}
`, fl.slack.URL(), primary, key, hook.URL, primary, key)
	if fl.cfg, err = env.WriteConfig(extra); err != nil {
		t.Fatal(err)
	}
	return fl
}

func (fl *failoverLab) webhookCalls() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.calls
}

// api returns what each provider-A server answers for the api CNAME,
// waiting a little for a BIND secondary to agree with the primary.
func (fl *failoverLab) api(t *testing.T) string {
	t.Helper()
	var got []string
	for i := 0; i < 200; i++ {
		got = got[:0]
		for _, ns := range []string{"ns1.provider-a.net", "ns2.provider-a.net"} {
			m := new(dns.Msg)
			m.SetQuestion("api.shop-switch.com.", dns.TypeCNAME)
			c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, netip.AddrPortFrom(fl.env.DNS.AddrOf(ns), uint16(fl.env.DNS.Port())).String())
			if err != nil || len(r.Answer) != 1 {
				t.Fatalf("asking %s: %v %v", ns, err, r)
			}
			got = append(got, r.Answer[0].(*dns.CNAME).Target)
		}
		if got[0] == got[1] {
			return got[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the switch's servers disagree: %v", got)
	return ""
}

func runCLIIn(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func planChecksum(t *testing.T, cfg string) string {
	t.Helper()
	code, out, stderr := runCLI(t, "failover", "plan", "shop-to-backup", "-o", "json", "--config", cfg)
	if code != 0 {
		t.Fatalf("plan -o json: exit %d\n%s\n%s", code, out, stderr)
	}
	var p struct {
		Checksum string `json:"checksum"`
		Steps    []struct {
			Changes []struct{ Action string } `json:"changes"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan -o json is not JSON: %v\n%s", err, out)
	}
	return p.Checksum
}

// oneThread checks Slack got n posts as one thread in #dns-oncall.
func oneThread(t *testing.T, rec *slackrecorder.Recorder, n int) []slackrecorder.Post {
	t.Helper()
	posts := rec.Posts()
	if len(posts) != n {
		var texts []string
		for _, p := range posts {
			texts = append(texts, p.Text)
		}
		t.Fatalf("%d Slack posts, want %d:\n%s", len(posts), n, strings.Join(texts, "\n"))
	}
	root := posts[0]
	if root.ThreadTS != "" || root.Channel != "#dns-oncall" {
		t.Errorf("the first post is not a thread root in #dns-oncall: %+v", root)
	}
	for _, p := range posts[1:] {
		if p.ThreadTS != root.TS {
			t.Errorf("post %q is not in the run's thread (thread_ts %q, root %q)", p.Text, p.ThreadTS, root.TS)
		}
	}
	return posts
}

func TestFailoverCLI(t *testing.T) {
	fl := startFailoverLab(t, nil, 0)
	cfg := fl.cfg

	code, out, _ := runCLI(t, "failover", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "shop-to-backup") || !strings.Contains(out, "shop-example.com → shop-backup.net") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "failover", "plan", "shop-to-backup", "--config", cfg)
	if code != 0 || !strings.Contains(out, "CHANGE api.shop-switch.com. CNAME") || !strings.Contains(out, "+ api.shop-switch.com.\t60\tIN\tCNAME\tapi.shop-backup.net.") {
		t.Errorf("plan: exit %d\n%s", code, out)
	}
	sum := planChecksum(t, cfg)

	code, _, stderr := runCLI(t, "failover", "run", "shop-to-backup", "--config", cfg)
	if code != 3 || !strings.Contains(stderr, "no terminal to confirm on") {
		t.Errorf("run without --yes and without a terminal: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--plan-checksum", "000000000000", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, "plan-checksum") {
		t.Errorf("stale checksum: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "failover", "run", "no-such-playbook", "--yes", "--config", cfg)
	if code != 3 || !strings.Contains(stderr, "unknown playbook") {
		t.Errorf("unknown playbook: exit %d, %s", code, stderr)
	}
	if got := fl.api(t); got != "api.shop-example.com." || fl.webhookCalls() != 0 {
		t.Fatalf("refused runs changed something: api %s, %d webhook calls", got, fl.webhookCalls())
	}

	code, out, stderr = runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--plan-checksum", sum[:12], "--by", "alice", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"Failover plan for shop-to-backup", "Step 1/3  dns_update \"repoint api\": DONE",
		"CHANGE api.shop-switch.com. CNAME: api.shop-example.com. → api.shop-backup.net.", "Step 3/3  verify: DONE",
		"Run 2 done and verified. Undo with: nsguard failover rollback 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	if got := fl.api(t); got != "api.shop-backup.net." {
		t.Errorf("api is %s after the run", got)
	}
	// The refused run (the stale checksum; an unknown playbook is a usage
	// error, not a run) and this one: a thread each, this one of five
	// messages (start, three steps, done).
	posts := fl.slack.Posts()
	if len(posts) != 6 {
		t.Fatalf("%d Slack posts, want 1 refusal + 5", len(posts))
	}
	thread := posts[1:]
	for _, p := range thread[1:] {
		if p.ThreadTS != thread[0].TS {
			t.Errorf("post %q is outside the run's thread", p.Text)
		}
	}
	if !strings.Contains(thread[0].Text, "Failover shop-to-backup started · run 2") || !strings.Contains(thread[4].Text, "done and verified") {
		t.Errorf("thread root %q, end %q", thread[0].Text, thread[4].Text)
	}

	code, out, _ = runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Step 1/3  dns_update \"repoint api\": NO-OP") || !strings.Contains(out, "already in place") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, "failover", "history", "--config", cfg)
	if code != 0 || strings.Count(out, "shop-to-backup") != 3 || !strings.Contains(out, "refused") || !strings.Contains(out, "alice") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "failover", "status", "2", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Run 2  shop-to-backup  failover  DONE") || !strings.Contains(out, "require api.shop-switch.com. CNAME = {api.shop-example.com.}") {
		t.Errorf("status 2: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "failover", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "free") || !strings.Contains(out, "run 3 done") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "failover", "status", "99", "--config", cfg)
	if code != 3 {
		t.Errorf("status of a missing run: exit %d\n%s", code, out)
	}

	code, out, stderr = runCLI(t, "failover", "rollback", "2", "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Rollback plan for shop-to-backup (undoes run 2)") {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := fl.api(t); got != "api.shop-example.com." {
		t.Errorf("api is %s after the rollback", got)
	}
	code, _, _ = runCLI(t, "failover", "rollback", "4", "--yes", "--config", cfg)
	if code != 3 {
		t.Errorf("rolling back a rollback: exit %d", code)
	}
}

func TestFailoverCLIConfirmation(t *testing.T) {
	fl := startFailoverLab(t, nil, 0)
	old := confirmTTY
	confirmTTY = func(*globals) bool { return true }
	t.Cleanup(func() { confirmTTY = old })

	code, out, stderr := runCLIIn(t, context.Background(), "y\n", "failover", "run", "shop-to-backup", "--config", fl.cfg)
	if code != 1 || !strings.Contains(out, "type the playbook's name (shop-to-backup)") || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("answering y: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := fl.api(t); got != "api.shop-example.com." {
		t.Fatalf("an unconfirmed run changed api to %s", got)
	}
	code, out, stderr = runCLIIn(t, context.Background(), "shop-to-backup\n", "failover", "run", "shop-to-backup", "--config", fl.cfg)
	if code != 0 {
		t.Fatalf("confirmed run: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := fl.api(t); got != "api.shop-backup.net." {
		t.Errorf("api is %s after a confirmed run", got)
	}
}

func TestFailoverCLISafetyAndForce(t *testing.T) {
	fl := startFailoverLab(t, nil, 0)
	if err := fl.env.DNS.Suspend(context.Background(), "shop-backup.net"); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "failover", "plan", "shop-to-backup", "--config", fl.cfg)
	if code != 2 || !strings.Contains(out, "REFUSE     backup-healthy") || !strings.Contains(out, "would be REFUSED") {
		t.Errorf("plan: exit %d\n%s", code, out)
	}
	code, out, stderr := runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--config", fl.cfg)
	if code != 2 || !strings.Contains(stderr, "DELEGATION_MISSING") {
		t.Errorf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--force", "--config", fl.cfg)
	if code != 0 || !strings.Contains(out, "OVERRIDDEN backup-healthy") || !strings.Contains(out, "FORCED: --force overrides backup-healthy") {
		t.Errorf("forced run: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "safety rules overridden with --force") {
		t.Errorf("the log does not name --force:\n%s", stderr)
	}
}

// testFailoverCLIDone is the "done when", end to end through the
// CLI: plan shows the switch, run --yes moves the records, verifies them,
// posts one Slack thread and records the run; a re-run and a killed (here:
// interrupted, as by Ctrl-C) and resumed run end in the same state.
func testFailoverCLIDone(t *testing.T, fl *failoverLab) {
	cfg := fl.cfg
	code, out, _ := runCLI(t, "failover", "plan", "shop-to-backup", "--config", cfg)
	if code != 0 || !strings.Contains(out, "- api.shop-switch.com.\t60\tIN\tCNAME\tapi.shop-example.com.") {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	code, out, stderr := runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "done and verified") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := fl.api(t); got != "api.shop-backup.net." {
		t.Fatalf("api is %s after the run", got)
	}
	oneThread(t, fl.slack, 5)
	code, out, _ = runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "NO-OP") || fl.api(t) != "api.shop-backup.net." {
		t.Fatalf("re-run: exit %d\n%s", code, out)
	}
	code, _, _ = runCLI(t, "failover", "rollback", "1", "--yes", "--config", cfg)
	if code != 0 || fl.api(t) != "api.shop-example.com." {
		t.Fatalf("rollback: exit %d", code)
	}

	// Killed mid-run: the switch API hangs, the operator hits Ctrl-C.
	fl.mu.Lock()
	fl.hold = make(chan struct{})
	before := fl.calls
	fl.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for fl.webhookCalls() == before {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	code, out, stderr = runCLIIn(t, ctx, "", "failover", "run", "shop-to-backup", "--yes", "--config", cfg)
	fl.mu.Lock()
	close(fl.hold)
	fl.hold = nil
	fl.mu.Unlock()
	if code != 1 || !strings.Contains(stderr, "was interrupted at step 2") || !strings.Contains(stderr, "--resume 4") {
		t.Fatalf("interrupted run: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "failover", "run", "shop-to-backup", "--resume", "4", "--yes", "--config", cfg)
	if code != 0 || !strings.Contains(out, "in an earlier attempt, not repeated") || !strings.Contains(out, "Run 4 done and verified") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := fl.api(t); got != "api.shop-backup.net." {
		t.Errorf("api is %s after the resumed run", got)
	}
	code, out, _ = runCLI(t, "failover", "status", "4", "--config", cfg)
	if code != 0 || !strings.Contains(out, "DONE") || strings.Count(out, ": DONE") != 3 {
		t.Errorf("status 4: exit %d\n%s", code, out)
	}
}

func TestFailoverCLIDoneInProcess(t *testing.T) {
	testFailoverCLIDone(t, startFailoverLab(t, nil, 0))
}
