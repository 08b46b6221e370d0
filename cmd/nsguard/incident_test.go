package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
	"github.com/nsguard/nsguard/outbox"
)

// postureEnv is a lab whose healthy domains carry accepted-risk warnings,
// with a fake Slack.
func postureEnv(t *testing.T) (*labenv.Env, *slackrecorder.Recorder, string) {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir(), Posture: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	rec := slackrecorder.New()
	t.Cleanup(rec.Close)
	t.Setenv("NSGUARD_TEST_SLACK_TOKEN", "xoxb-test-token")
	path, err := env.WriteConfig(fmt.Sprintf("alerts:\n  slack: {token_env: NSGUARD_TEST_SLACK_TOKEN, channel: \"#dns-oncall\", api_url: %q}\n", rec.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return env, rec, path
}

// Posture warnings present at approval are accepted: approve lists them,
// check shows them and does not count them; a critical finding is never
// listed as accepted, and a refusal names only the critical findings.
func TestApproveAcceptsPostureWarnings(t *testing.T) {
	env, _, cfg := postureEnv(t)
	code, out, stderr := runCLI(t, "check", "shop-example.com", "--config", cfg)
	if code != 1 || !strings.Contains(out, "NS_SINGLE_PROVIDER") {
		t.Fatalf("check before approval: exit %d, want 1 (warnings)\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "baseline", "approve", "--reason", "initial", "--by", "ann", "--config", cfg)
	if code != 0 {
		t.Fatalf("approve: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"shop-example.com: approved as version 1 by ann: initial", "accepted risk (shown, never paged",
		"warning  NS_SINGLE_PROVIDER: every name server of shop-example.com is under provider-a.net", "warning  NS_SAME_PREFIX"} {
		if !strings.Contains(out, want) {
			t.Errorf("approve output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "NS_SINGLE_PROVIDER (accepted risk)") || !strings.Contains(out, "accepted findings not counted") {
		t.Fatalf("check after approval: exit %d, want 0 with the warnings shown as accepted\n%s", code, out)
	}
	code, out, _ = runCLI(t, "baseline", "show", "shop-example.com", "--config", cfg)
	if code != 0 || !strings.Contains(out, "accepted risk") || !strings.Contains(out, "NS_SAME_PREFIX") {
		t.Errorf("baseline show: exit %d\n%s", code, out)
	}

	if err := env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "baseline", "approve", "shop-example.com", "--reason", "oops", "--config", cfg)
	if code != 1 || !strings.Contains(out, "critical findings (") {
		t.Fatalf("approving a hijack: exit %d\n%s", code, out)
	}
	listed := out[strings.Index(out, "critical findings (")+len("critical findings ("):]
	listed = listed[:strings.Index(listed, ")")]
	if strings.Contains(listed, "NS_SINGLE_PROVIDER") || strings.Contains(listed, "NS_SAME_PREFIX") || !strings.Contains(listed, "NS_NOT_AS_DECLARED") {
		t.Errorf("the refusal lists %q: only critical findings belong there", listed)
	}
}

// incidentOn opens a critical incident on domain the way the daemon would
// (two observations), and delivers its page.
func incidentOn(t *testing.T, cfgPath, domain string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := incident.PolicyFromConfig(cfg)
	eng, err := incident.New(st, incident.Options{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	f := finding.Finding{ID: baseline.DelegationChanged, Severity: finding.Critical, Domain: domain,
		Message:  "parent NS of " + domain + " changed: approved ns1.provider-a.net. → now ns1.attacker.net.",
		Evidence: []finding.Evidence{{Server: "a.gtld-servers.net.", Query: "parent NS", Answer: "approved: ns1.provider-a.net., now: ns1.attacker.net."}}}
	for range 2 {
		if _, err := eng.Process(ctx, domain, checker.DNS, []finding.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	rcv, err := outbox.NewReceiver(cfg.Alerts.Slack, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d, err := outbox.New(st, outbox.Options{Receiver: rcv})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := d.Flush(ctx); err != nil || res.Delivered != 2 {
		t.Fatalf("delivering the page: %+v, %v", res, err)
	}
}

func TestIncidentListShowAck(t *testing.T) {
	_, rec, cfg := postureEnv(t)
	code, out, _ := runCLI(t, "incident", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "no open incidents") {
		t.Fatalf("list with none: exit %d\n%s", code, out)
	}
	incidentOn(t, cfg, "shop-example.com")
	page := rec.Posts()[0]

	code, out, _ = runCLI(t, "incident", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "ID  STATE  SEVERITY  DOMAIN") || !strings.Contains(out, "1   open   critical  shop-example.com") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "incident", "show", "1", "--config", cfg)
	for _, want := range []string{"Incident #1 · shop-example.com · CRITICAL · open", "DELEGATION_CHANGED (dns, open)",
		"· a.gtld-servers.net. parent NS: approved: ns1.provider-a.net., now: ns1.attacker.net.", "open        delivered", "detail      delivered"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show: exit %d, lacks %q\n%s", code, want, out)
		}
	}

	code, out, stderr := runCLI(t, "incident", "ack", "1", "--by", "ann", "--reason", "calling the registry", "--config", cfg)
	if code != 0 || !strings.Contains(out, "incident 1 acknowledged by ann: calling the registry") || stderr != "" {
		t.Fatalf("ack: exit %d\n%s\n%s", code, out, stderr)
	}
	var ackReply, edits int
	for _, p := range rec.Posts() {
		if p.ThreadTS == page.TS && strings.Contains(string(p.Blocks), "Acknowledged* by ann: calling the registry") {
			ackReply++
		}
	}
	for _, u := range rec.Updates() {
		if u.TS == page.TS && strings.Contains(string(u.Blocks), "Acknowledged* by ann") {
			edits++
		}
	}
	if ackReply != 1 || edits != 1 {
		t.Fatalf("ack posted %d replies and %d page edits, want 1 each (without a daemon)", ackReply, edits)
	}
	code, _, stderr = runCLI(t, "incident", "ack", "1", "--by", "bob", "--reason", "me too", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "acknowledged by ann") {
		t.Errorf("second ack: exit %d, %s", code, stderr)
	}
	code, out, _ = runCLI(t, "incident", "list", "-o", "json", "--config", cfg)
	var views []incident.View
	if err := json.Unmarshal([]byte(out), &views); code != 0 || err != nil || len(views) != 1 || views[0].State != "acknowledged" || views[0].AckedBy != "ann" {
		t.Fatalf("list -o json: exit %d, %v\n%s", code, err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"incident", "show", "99"}, "no incident 99"},
		{[]string{"incident", "show", "x"}, "positive number"},
		{[]string{"incident", "ack", "1", "--by", "ann"}, "--reason is required"},
	} {
		code, _, stderr := runCLI(t, append(tc.args, "--config", cfg)...)
		if code != 3 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
}

// The "done when": failover run --yes beside a running daemon on
// the same store; nothing reaches Slack twice.
func TestFailoverRunBesideADaemonSendsNothingTwice(t *testing.T) {
	fl := startFailoverLab(t, nil, 0)
	cfg, err := config.Load(fl.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, ConfigPath: fl.cfg, Listener: ln, Logger: slog.New(slog.DiscardHandler),
			CheckerOptions: checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback},
			OutboxOptions:  outbox.Options{PollInterval: 20 * time.Millisecond}, TickInterval: 100 * time.Millisecond})
	}()
	defer func() {
		cancel()
		<-done
	}()
	code, out, stderr := runCLI(t, "failover", "run", "shop-to-backup", "--yes", "--config", fl.cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	time.Sleep(time.Second) // the daemon had every chance to send again
	seen := map[string]int{}
	runPosts := 0
	for _, p := range fl.slack.Posts() {
		if seen[p.ThreadTS+"\x00"+p.Text]++; seen[p.ThreadTS+"\x00"+p.Text] > 1 {
			t.Errorf("delivered twice: %q", p.Text)
		}
		if strings.Contains(p.Text, "shop-to-backup") || strings.Contains(p.Text, "Step ") {
			runPosts++
		}
	}
	if runPosts != 5 {
		t.Errorf("%d posts of the run's thread, want 5", runPosts)
	}
}
