package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/reglab"
)

// The scenarios run against both labs: in-process (TestInProcess, what
// `nsguard demo` relies on) and real BIND 9 (TestBIND, bind_test.go).
var scenarios = []struct {
	name string
	run  func(t *testing.T, h *harness)
}{
	{"plan shows the records before and after", testPlan},
	{"run switches, verifies, posts one thread; a second run is a no-op", testRunAndRerun},
	{"dry run changes nothing", testDryRun},
	{"wrong key: a clear error and nothing changed", testWrongKey},
	{"run killed after a step resumes without repeating it", testKilledAndResumed},
	{"run killed with SIGKILL: its lock is taken over at once", testKilledWithSIGKILL},
	{"interrupted run resumes and repeats only the step in flight", testInterruptedAndResumed},
	{"two concurrent runs: the second is refused", testConcurrentRuns},
	{"rollback restores the records", testRollback},
	{"plan checksum mismatch is refused", testChecksumMismatch},
	{"a concurrent change of the records fails the prerequisite", testConcurrentChange},
	{"backup with a critical finding is refused, --force overrides", testBackupUnhealthy},
	{"backup sharing what fails on the primary is refused", testBackupNotIndependent},
	{"a step that delegates a zone is pre-flighted", testPreflightStep},
}

func TestInProcess(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			s.run(t, newHarness(t, nil, 0))
		})
	}
}

var errCrash = errors.New("simulated crash")

// setAPI changes the api CNAME behind the playbook's back, as another
// operator would: a signed update with the zone's key.
func (h *harness) setAPI(target string) {
	h.t.Helper()
	cur := askCNAME(h.t, h.env.DNS, h.primaryAddr(), apiName)
	m := new(dns.Msg)
	m.SetUpdate(dnslab.SwitchZone)
	old, _ := dns.NewRR(apiName + " 60 IN CNAME " + cur)
	m.Used([]dns.RR{old})
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: apiName, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}}})
	rr, _ := dns.NewRR(apiName + " 60 IN CNAME " + target)
	m.Insert([]dns.RR{rr})
	secret := h.env.DNS.World().TSIG[dnslab.SwitchKey]
	m.SetTsig(dnslab.SwitchKey, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{dnslab.SwitchKey: secret}}
	r, _, err := c.Exchange(m, netip.AddrPortFrom(h.primaryAddr(), uint16(h.env.DNS.Port())).String())
	if err != nil || r.Rcode != dns.RcodeSuccess {
		h.t.Fatalf("changing api behind the playbook's back: %v %v", err, r)
	}
	h.cname(target)
}

func testPlan(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	p, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 4 {
		t.Fatalf("%d steps", len(p.Steps))
	}
	s1 := p.Steps[0]
	if s1.Action != ActionChange || len(s1.Changes) != 1 || s1.NoOp {
		t.Fatalf("step 1: %+v", s1)
	}
	ch := s1.Changes[0]
	wantBefore := "api.shop-switch.com.\t60\tIN\tCNAME\tapi.shop-example.com."
	wantAfter := "api.shop-switch.com.\t60\tIN\tCNAME\tapi.shop-backup.net."
	if ch.Action != ActionChange || ch.Name != apiName || ch.Type != "CNAME" ||
		!slices.Equal(ch.Before, []string{wantBefore}) || !slices.Equal(ch.After, []string{wantAfter}) {
		t.Errorf("change: %+v", ch)
	}
	hook := p.Steps[1]
	if hook.Action != ActionReport || !strings.Contains(hook.Summary, "POST "+h.hook.srv.URL+"/switch?…") ||
		strings.Contains(hook.Summary, "url-credential") || !strings.Contains(hook.Summary, "HMAC-SHA256 signature in X-Nsguard-Signature") {
		t.Errorf("webhook summary: %s", hook.Summary)
	}
	if len(hook.Notes) != 1 || !strings.Contains(hook.Notes[0], `"run":"<run id>"`) || !strings.Contains(hook.Notes[0], `"backup":"shop-backup.net"`) {
		t.Errorf("webhook body shown: %v", hook.Notes)
	}
	verify := p.Steps[2]
	if len(verify.Notes) != 2 {
		t.Fatalf("verify should show what both provider-A servers answer now: %v", verify.Notes)
	}
	for _, n := range verify.Notes {
		if !strings.HasSuffix(n, ": api.shop-example.com.") || !strings.Contains(n, "provider-a.net.") {
			t.Errorf("verify note: %q", n)
		}
	}
	for _, r := range p.Safety {
		if r.Status != SafetyPass {
			t.Errorf("rule %s: %s (%s)", r.Rule, r.Status, r.Detail)
		}
	}
	if len(p.Safety) != 3 || p.Refused() || p.Force {
		t.Errorf("safety: %+v", p.Safety)
	}
	// No step changes NS: the backup's declared delegation is pre-flighted.
	if pf := p.Safety[2]; pf.Rule != RulePreflight || !strings.Contains(pf.Detail, "shop-backup.net, pre-flighted with its declared delegation to ns2.provider-a.net, ns2.provider-b.org (no step changes NS): has no critical finding as delegated so") {
		t.Errorf("pre-flight rule: %+v", pf)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.Checksum) {
		t.Errorf("checksum %q", p.Checksum)
	}
	again, err := e.Plan(ctx, playbook, false)
	if err != nil || again.Checksum != p.Checksum {
		t.Errorf("the same state plans to another checksum: %s vs %s (%v)", again.Checksum, p.Checksum, err)
	}
	var out strings.Builder
	if err := p.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Failover plan for shop-to-backup: shop-example.com → shop-backup.net",
		"CHANGE api.shop-switch.com. CNAME",
		"- " + wantBefore, "+ " + wantAfter,
		"PASS       backup-healthy",
		"Plan checksum: " + p.Checksum,
		"nsguard failover run shop-to-backup --plan-checksum " + p.Checksum[:12],
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, out.String())
		}
	}
	// A plan changes nothing and records nothing.
	h.cname("api.shop-example.com.")
	if runs, _ := e.History(ctx, "", 10); len(runs) != 0 || len(h.messages()) != 0 || len(h.hook.requests()) != 0 {
		t.Errorf("a plan left traces: %d runs, %d messages, %d webhooks", len(runs), len(h.messages()), len(h.hook.requests()))
	}
}

func testRunAndRerun(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	serial := h.serial()
	var events []string
	res, err := e.Run(ctx, playbook, RunOptions{By: "alice", Progress: func(ev Event) {
		if ev.Result == nil {
			events = append(events, fmt.Sprintf("start %d", ev.Step.Index))
		} else {
			events = append(events, fmt.Sprintf("%s %d", ev.Result.Status, ev.Step.Index))
		}
	}})
	if err != nil || ExitCode(err) != 0 {
		t.Fatalf("run: %v\n%s", err, h.logs)
	}
	if res.Status != StatusDone || !res.Verified || res.RunID == 0 || res.By != "alice" {
		t.Errorf("result: %+v", res)
	}
	if want := []string{"start 1", "done 1", "start 2", "done 2", "start 3", "done 3", "start 4", "done 4"}; !slices.Equal(events, want) {
		t.Errorf("progress %v, want %v", events, want)
	}
	h.cname("api.shop-backup.net.")
	if got := h.serial(); got != serial+1 {
		t.Errorf("serial %d, want %d", got, serial+1)
	}

	reqs := h.hook.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d webhook requests, want 1", len(reqs))
	}
	r := reqs[0]
	wantBody := fmt.Sprintf(`{"primary":"shop-example.com","backup":"shop-backup.net","run":"%d"}`, res.RunID)
	if !r.ValidSig || r.Body != wantBody || r.Team != "shop" || r.Run != fmt.Sprint(res.RunID) ||
		r.Idempotency != fmt.Sprintf("nsguard-shop-to-backup-%d-2", res.RunID) {
		t.Errorf("webhook request: %+v", r)
	}

	rec, err := e.Status(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Run.Status != StatusDone || rec.Run.StartedBy != "alice" || rec.Run.Checksum != res.Plan.Checksum || rec.Run.FinishedAt.IsZero() {
		t.Errorf("recorded run: %+v", rec.Run)
	}
	if len(rec.Steps) != 4 {
		t.Fatalf("%d recorded steps", len(rec.Steps))
	}
	for _, s := range rec.Steps {
		if s.Status != StepDone || s.Request == "" || s.Response == "" || s.StartedAt.IsZero() || s.FinishedAt.IsZero() {
			t.Errorf("recorded step: %+v", s)
		}
	}
	if s := rec.Steps[0]; !strings.Contains(s.Request, "require api.shop-switch.com. CNAME = {api.shop-example.com.}") ||
		!strings.Contains(s.Response, "NOERROR; now api.shop-switch.com. CNAME = {api.shop-backup.net.}") {
		t.Errorf("step 1 audit: %q → %q", s.Request, s.Response)
	}
	if s := rec.Steps[1]; strings.Contains(s.Request, "url-credential") || !strings.Contains(s.Response, "HTTP 200 after 1 attempt(s)") {
		t.Errorf("step 2 audit: %q → %q", s.Request, s.Response)
	}

	// One thread, in order, in the playbook's channel.
	msgs := h.messages()
	want := []string{
		fmt.Sprintf("Failover shop-to-backup started · run %d", res.RunID),
		"Step 1/4 · repoint api · done",
		"Step 2/4 · tell the load balancer · done",
		"Step 3/4 · check api · done",
		"Step 4/4 · notify",
		fmt.Sprintf("Failover shop-to-backup · run %d done and verified", res.RunID),
	}
	if !slices.Equal(titles(msgs), want) {
		t.Errorf("thread:\n%s\nwant:\n%s", strings.Join(titles(msgs), "\n"), strings.Join(want, "\n"))
	}
	for _, m := range msgs {
		if m.ThreadKey != ThreadKey(res.RunID) || m.Channel != "#failover" || m.Kind != "failover" || m.Domain != "shop-example.com" {
			t.Errorf("message %q: thread %q channel %q kind %q domain %q", m.Title, m.ThreadKey, m.Channel, m.Kind, m.Domain)
		}
	}
	if len(msgs) == 6 {
		if want := fmt.Sprintf("shop-backup.net serves the shop now (run %d, by alice)", res.RunID); msgs[4].Text != want {
			t.Errorf("notify text %q, want %q", msgs[4].Text, want)
		}
		if !strings.Contains(msgs[1].Text, "CHANGE api.shop-switch.com. CNAME: api.shop-example.com. → api.shop-backup.net.") {
			t.Errorf("step 1 message: %q", msgs[1].Text)
		}
	}
	if _, held, _ := e.Lock(ctx, playbook); held {
		t.Errorf("the lock outlived the run")
	}
	noSecret(t, h)

	// The second run: the records are in place, the update is not sent.
	res2, err := e.Run(ctx, playbook, RunOptions{By: "alice"})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if res2.Steps[0].Status != StepNoOp || !res2.Plan.Steps[0].NoOp || res2.Plan.Steps[0].Changes[0].Action != ActionReport {
		t.Errorf("second run step 1: %+v / %+v", res2.Steps[0], res2.Plan.Steps[0])
	}
	if got := h.serial(); got != serial+1 {
		t.Errorf("the second run changed the zone: serial %d, want %d", got, serial+1)
	}
	h.cname("api.shop-backup.net.")
}

// noSecret checks the TSIG and webhook secrets appear nowhere nsguard
// writes: logs, the recorded plans and steps, the outbox.
func noSecret(t *testing.T, h *harness) {
	t.Helper()
	tsig := h.env.DNS.World().TSIG[dnslab.SwitchKey]
	var all strings.Builder
	all.WriteString(h.logs.String())
	runs, _ := h.st.FailoverRuns(context.Background(), "", 100)
	for _, r := range runs {
		all.Write(r.Plan)
		all.WriteString(r.Error)
		steps, _ := h.st.FailoverSteps(context.Background(), r.ID)
		for _, s := range steps {
			all.WriteString(s.Request + s.Response + s.Error)
		}
	}
	rows, _ := h.st.OutboxMessages(context.Background(), 0, 1000)
	for _, r := range rows {
		all.Write(r.Payload)
	}
	for _, sec := range []string{tsig, webhookSecret, "url-credential"} {
		if strings.Contains(all.String(), sec) {
			t.Errorf("a secret leaked into the logs, the audit trail or the outbox: %q", sec)
		}
	}
}

func testDryRun(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	serial := h.serial()
	res, err := e.Run(ctx, playbook, RunOptions{DryRun: true, By: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDryRun || len(res.Steps) != 4 {
		t.Fatalf("result %+v", res)
	}
	for _, s := range res.Steps {
		if s.Status != StepSkipped {
			t.Errorf("dry-run step %d: %s", s.Index, s.Status)
		}
	}
	// Checked on the servers themselves.
	h.cname("api.shop-example.com.")
	if got := h.serial(); got != serial {
		t.Errorf("dry run changed the serial: %d → %d", serial, got)
	}
	if n := len(h.hook.requests()); n != 0 {
		t.Errorf("dry run called the webhook %d times", n)
	}
	if n := len(h.messages()); n != 0 {
		t.Errorf("dry run posted %d messages", n)
	}
	rec, err := e.Status(ctx, res.RunID)
	if err != nil || !rec.Run.DryRun || rec.Run.Status != StatusDryRun || len(rec.Steps) != 4 {
		t.Errorf("dry run record: %+v %v", rec, err)
	}
	if _, err := e.Run(ctx, playbook, RunOptions{Resume: res.RunID}); ExitCode(err) != 3 {
		t.Errorf("resuming a dry run: %v, want a usage error", err)
	}
}

func testWrongKey(t *testing.T, h *harness) {
	ctx := context.Background()
	serial := h.serial()
	cases := []struct{ name, key, secret string }{
		{"wrong secret", dnslab.SwitchKey, dnslab.NewTSIGSecret()},
		{"unknown key name", "someone-else.", h.env.DNS.World().TSIG[dnslab.SwitchKey]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.key")
			if err := os.WriteFile(bad, []byte(dnslab.TSIGKeyFile(tc.key, tc.secret)), 0o600); err != nil {
				t.Fatal(err)
			}
			e := h.engine(h.config(bad), Options{})
			res, err := e.Run(ctx, playbook, RunOptions{})
			if ExitCode(err) != 1 {
				t.Fatalf("exit %d: %v", ExitCode(err), err)
			}
			var re *RunError
			if !errors.As(err, &re) || re.Step != 1 || len(re.Done) != 0 || !slices.Equal(re.NotDone, []int{1, 2, 3, 4}) {
				t.Fatalf("error %#v", err)
			}
			msg := err.Error()
			for _, want := range []string{"TSIG key " + dns.CanonicalName(tc.key), "nothing was changed", "Done: none. Not done: 1, 2, 3, 4."} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q: %s", want, msg)
				}
			}
			if !strings.Contains(msg, "NOTAUTH") && !strings.Contains(msg, "BADSIG") && !strings.Contains(msg, "BADKEY") {
				t.Errorf("error does not say the key was rejected: %s", msg)
			}
			if res.Status != StatusFailed {
				t.Errorf("status %s", res.Status)
			}
			h.cname("api.shop-example.com.")
			if got := h.serial(); got != serial {
				t.Errorf("serial changed: %d → %d", serial, got)
			}
			if n := len(h.hook.requests()); n != 0 {
				t.Errorf("the webhook ran after a failed step (%d calls)", n)
			}
			if _, held, _ := e.Lock(ctx, playbook); held {
				t.Errorf("a failed run kept the lock")
			}
			if strings.Contains(msg, tc.secret) {
				t.Errorf("the error quotes the secret")
			}
		})
	}
}

func testKilledAndResumed(t *testing.T, h *harness) {
	ctx := context.Background()
	serial := h.serial()
	short := Options{LockStale: 600 * time.Millisecond, Heartbeat: 50 * time.Millisecond}
	e1 := h.engine(nil, short)
	e1.hooks.afterStep = func(i int) error {
		if i == 1 {
			return errCrash
		}
		return nil
	}
	res, err := e1.Run(ctx, playbook, RunOptions{By: "alice"})
	if !errors.Is(err, errCrash) {
		t.Fatalf("want the simulated crash, got %v", err)
	}
	id := res.RunID
	h.cname("api.shop-backup.net.") // step 1 happened
	if n := len(h.hook.requests()); n != 0 {
		t.Fatalf("step 2 ran before the crash")
	}
	e2 := h.engine(nil, short)
	if l, held, _ := e2.Lock(ctx, playbook); !held || l.RunID != id {
		t.Fatalf("the dead run's lock is gone: %+v", l)
	}
	// The dead run's heartbeat is fresh: the lock is not stale yet.
	_, err = e2.Run(ctx, playbook, RunOptions{Resume: id, By: "bob"})
	var refused *RefusedError
	if ExitCode(err) != 2 || !errors.As(err, &refused) || refused.Rule != "lock" || !strings.Contains(err.Error(), fmt.Sprintf("run %d", id)) {
		t.Fatalf("resuming at once: %v (exit %d), want a lock refusal", err, ExitCode(err))
	}
	time.Sleep(700 * time.Millisecond)
	res2, err := e2.Run(ctx, playbook, RunOptions{Resume: id, By: "bob"})
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, h.logs)
	}
	if res2.RunID != id || !res2.Resumed || res2.Status != StatusDone || !res2.Verified || !strings.Contains(res2.TookOver, fmt.Sprintf("run %d", id)) {
		t.Errorf("resumed result: %+v", res2)
	}
	if !res2.Steps[0].Earlier || res2.Steps[0].Status != StepDone || res2.Steps[1].Earlier {
		t.Errorf("resumed steps: %+v", res2.Steps)
	}
	if got := h.serial(); got != serial+1 {
		t.Errorf("serial %d: step 1 was repeated or lost (want %d)", got, serial+1)
	}
	if n := len(h.hook.requests()); n != 1 {
		t.Errorf("%d webhook calls, want 1", n)
	}
	h.cname("api.shop-backup.net.")
	rec, _ := e2.Status(ctx, id)
	if rec.Run.Status != StatusDone || len(rec.Steps) != 4 {
		t.Errorf("record after resume: %+v, %d steps", rec.Run, len(rec.Steps))
	}
	var want []string
	want = append(want, fmt.Sprintf("Failover shop-to-backup started · run %d", id), "Step 1/4 · repoint api · done",
		fmt.Sprintf("Failover shop-to-backup · run %d resumed", id), "Step 2/4 · tell the load balancer · done",
		"Step 3/4 · check api · done", "Step 4/4 · notify", fmt.Sprintf("Failover shop-to-backup · run %d done and verified", id))
	msgs := h.messages()
	if !slices.Equal(titles(msgs), want) {
		t.Errorf("thread:\n%s\nwant:\n%s", strings.Join(titles(msgs), "\n"), strings.Join(want, "\n"))
	}
	if len(msgs) > 2 && !strings.Contains(msgs[2].Text, "took over the stale lock") {
		t.Errorf("the resume message does not say it took the lock over: %q", msgs[2].Text)
	}
}

func testInterruptedAndResumed(t *testing.T, h *harness) {
	h.hook.mu.Lock()
	h.hook.block = make(chan struct{})
	h.hook.mu.Unlock()
	e := h.engine(nil, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(h.hook.requests()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel() // SIGINT while the webhook is in flight
	}()
	res, err := e.Run(ctx, playbook, RunOptions{})
	h.hook.mu.Lock()
	close(h.hook.block)
	h.hook.block = nil
	h.hook.mu.Unlock()
	var re *RunError
	if !errors.As(err, &re) || !re.Interrupted || re.Step != 2 || !slices.Equal(re.Done, []int{1}) || ExitCode(err) != 1 {
		t.Fatalf("interrupted run: %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("nsguard failover run shop-to-backup --resume %d", res.RunID)) {
		t.Errorf("the error does not say how to continue: %v", err)
	}
	rec, _ := e.Status(context.Background(), res.RunID)
	if rec.Run.Status != StatusInterrupted || rec.Steps[1].Status != StepInterrupted {
		t.Errorf("recorded: run %s, step 2 %s", rec.Run.Status, rec.Steps[1].Status)
	}
	if _, held, _ := e.Lock(context.Background(), playbook); held {
		t.Fatalf("an interrupted run kept its lock")
	}
	res2, err := e.Run(context.Background(), playbook, RunOptions{Resume: res.RunID})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if res2.Status != StatusDone || !res2.Steps[0].Earlier || res2.Steps[1].Earlier {
		t.Errorf("resumed: %+v", res2.Steps)
	}
	// The webhook in flight is sent again, with the same idempotency key.
	reqs := h.hook.requests()
	if len(reqs) != 2 || reqs[0].Idempotency != reqs[1].Idempotency {
		t.Errorf("webhook calls: %+v", reqs)
	}
	h.cname("api.shop-backup.net.")
}

func testConcurrentRuns(t *testing.T, h *harness) {
	h.hook.mu.Lock()
	h.hook.block = make(chan struct{})
	h.hook.mu.Unlock()
	e1, e2 := h.engine(nil, Options{}), h.engine(nil, Options{})
	ctx := context.Background()
	type outcome struct {
		res *Result
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		r, err := e1.Run(ctx, playbook, RunOptions{By: "alice"})
		first <- outcome{r, err}
	}()
	for len(h.hook.requests()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	l, held, _ := e2.Lock(ctx, playbook)
	_, err := e2.Run(ctx, playbook, RunOptions{By: "bob"})
	h.hook.mu.Lock()
	close(h.hook.block)
	h.hook.block = nil
	h.hook.mu.Unlock()
	var refused *RefusedError
	if ExitCode(err) != 2 || !errors.As(err, &refused) || refused.Rule != "lock" {
		t.Fatalf("second run: %v (exit %d), want a lock refusal", err, ExitCode(err))
	}
	o := <-first
	if o.err != nil || o.res.Status != StatusDone {
		t.Fatalf("first run: %v", o.err)
	}
	if !held || l.RunID != o.res.RunID || !strings.Contains(err.Error(), fmt.Sprintf("run %d", o.res.RunID)) {
		t.Errorf("the refusal does not name the running run %d: %v (lock %+v)", o.res.RunID, err, l)
	}
	if n := len(h.hook.requests()); n != 1 {
		t.Errorf("%d webhook calls: the refused run ran steps", n)
	}
}

func testRollback(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	res, err := e.Run(ctx, playbook, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.cname("api.shop-backup.net.")
	p, err := e.PlanRollback(ctx, res.RunID, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeRollback || p.Steps[0].Changes[0].Action != ActionChange || p.Safety[0].Rule != RulePrimaryHealthy || p.Safety[0].Status != SafetyPass {
		t.Errorf("rollback plan: %+v / %+v", p.Steps[0], p.Safety)
	}
	rb, err := e.Rollback(ctx, res.RunID, RunOptions{By: "carol", PlanChecksum: p.ShortChecksum()})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Status != StatusDone || !rb.Verified || rb.RunID == res.RunID || rb.Plan.RollbackOf != res.RunID {
		t.Errorf("rollback result: %+v", rb)
	}
	h.cname("api.shop-example.com.")
	// The rollback posts in the failover's thread.
	var rbMsgs int
	for _, m := range h.messages() {
		if m.ThreadKey != ThreadKey(res.RunID) {
			t.Errorf("message %q in thread %q, want the failover's", m.Title, m.ThreadKey)
		}
		if strings.Contains(m.Title, "Rollback") {
			rbMsgs++
		}
	}
	if rbMsgs != 2 {
		t.Errorf("%d rollback start/end messages, want 2", rbMsgs)
	}
	if _, err := e.Rollback(ctx, rb.RunID, RunOptions{}); ExitCode(err) != 3 {
		t.Errorf("rolling back a rollback: %v", err)
	}
	if _, err := e.Rollback(ctx, 9999, RunOptions{}); ExitCode(err) != 3 {
		t.Errorf("rolling back a run that does not exist: %v", err)
	}
}

func testChecksumMismatch(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	p, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	h.setAPI("api.elsewhere.example.")
	_, err = e.Run(ctx, playbook, RunOptions{PlanChecksum: p.ShortChecksum()})
	var refused *RefusedError
	if ExitCode(err) != 2 || !errors.As(err, &refused) || refused.Rule != "plan-checksum" || refused.RunID == 0 {
		t.Fatalf("stale checksum: %v", err)
	}
	h.cname("api.elsewhere.example.")
	if n := len(h.hook.requests()); n != 0 {
		t.Errorf("webhook called")
	}
	if _, err := e.Run(ctx, playbook, RunOptions{PlanChecksum: "abc"}); ExitCode(err) != 2 || !strings.Contains(err.Error(), "at least 12 hex digits") {
		t.Errorf("short checksum: %v", err)
	}
	p2, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Checksum == p.Checksum || !strings.Contains(p2.Steps[0].Changes[0].Before[0], "api.elsewhere.example.") {
		t.Fatalf("the new plan does not show the new state: %+v", p2.Steps[0].Changes)
	}
	if _, err := e.Run(ctx, playbook, RunOptions{PlanChecksum: "sha256:" + p2.Checksum}); err != nil {
		t.Fatalf("with the new checksum: %v", err)
	}
	h.cname("api.shop-backup.net.")
}

func testConcurrentChange(t *testing.T, h *harness) {
	ctx := context.Background()
	e := h.engine(nil, Options{})
	e.hooks.beforeStep = func(_ context.Context, i int) error {
		if i == 1 {
			h.setAPI("api.someone-else.example.")
		}
		return nil
	}
	_, err := e.Run(ctx, playbook, RunOptions{})
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "changed since the plan read them") || !strings.Contains(err.Error(), "NXRRSET") {
		t.Fatalf("want the prerequisite to fail: %v", err)
	}
	h.cname("api.someone-else.example.")
}

func testBackupUnhealthy(t *testing.T, h *harness) {
	ctx := context.Background()
	if err := h.env.DNS.Suspend(ctx, "shop-backup.net"); err != nil {
		t.Fatal(err)
	}
	e := h.engine(nil, Options{})
	p, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Refused() || p.Safety[0].Rule != RuleBackupHealthy || p.Safety[0].Status != SafetyRefuse || !strings.Contains(p.Safety[0].Detail, "DELEGATION_MISSING") {
		t.Fatalf("plan safety: %+v", p.Safety)
	}
	res, err := e.Run(ctx, playbook, RunOptions{By: "alice"})
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "backup-healthy") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("run: %v", err)
	}
	h.cname("api.shop-example.com.")
	if rec, _ := e.Status(ctx, res.RunID); rec == nil || rec.Run.Status != StatusRefused {
		t.Errorf("the refused run is not recorded: %+v", rec)
	}
	if msgs := h.messages(); len(msgs) != 1 || msgs[0].Title != "Failover shop-to-backup refused" || !strings.Contains(msgs[0].Text, "alice tried") {
		t.Errorf("refusal messages: %v", titles(msgs))
	}

	forced, err := e.Run(ctx, playbook, RunOptions{By: "alice", Force: true})
	if err != nil {
		t.Fatalf("forced run: %v", err)
	}
	if !forced.Plan.Force || forced.Plan.Safety[0].Status != SafetyOverridden {
		t.Errorf("forced plan: %+v", forced.Plan.Safety)
	}
	h.cname("api.shop-backup.net.")
	var start string
	for _, m := range h.messages() {
		if strings.Contains(m.Title, "started") {
			start = m.Text
		}
	}
	if !strings.Contains(start, "FORCED with --force by alice") || !strings.Contains(start, "backup-healthy") {
		t.Errorf("the thread does not name --force: %q", start)
	}
	if !strings.Contains(h.logs.String(), "safety rules overridden with --force") {
		t.Errorf("the log does not name --force")
	}
	var text strings.Builder
	forced.Plan.WriteText(&text)
	if !strings.Contains(text.String(), "FORCED: --force overrides backup-healthy") {
		t.Errorf("the plan does not name --force:\n%s", text.String())
	}
	var stored Plan
	rec, _ := e.Status(ctx, forced.RunID)
	if err := json.Unmarshal(rec.Run.Plan, &stored); err != nil || !stored.Force {
		t.Errorf("the recorded plan does not say forced: %v", err)
	}
}

func testBackupNotIndependent(t *testing.T, h *harness) {
	ctx := context.Background()
	if err := h.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	e := h.engine(nil, Options{})
	p, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	ind := p.Safety[1]
	if ind.Rule != RuleBackupIndependent || ind.Status != SafetyRefuse || !strings.Contains(ind.Detail, "registrar") || !strings.Contains(ind.Detail, "MarkMonitor") {
		t.Fatalf("independence: %+v", p.Safety)
	}
	if _, err := e.Run(ctx, playbook, RunOptions{}); ExitCode(err) != 2 {
		t.Fatalf("run: %v", err)
	}
	h.cname("api.shop-example.com.")

	// The backup moves to another (approved) registrar: nothing the
	// hijacked primary fails at is shared any more.
	if err := h.env.Reg.Update("shop-backup.net", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "CSC Corporate Domains, Inc.", "299"
	}); err != nil {
		t.Fatal(err)
	}
	// Registration records are cached beside the store for the
	// registration period: forget them, as time would.
	if err := os.RemoveAll(filepath.Join(h.dir, "registration")); err != nil {
		t.Fatal(err)
	}
	e2 := h.engine(nil, Options{})
	res, err := e2.Run(ctx, playbook, RunOptions{})
	if err != nil {
		t.Fatalf("run with an independent backup: %v", err)
	}
	if ind := res.Plan.Safety[1]; ind.Status != SafetyPass || !strings.Contains(ind.Detail, "independent of what fails") {
		t.Errorf("independence now: %+v", ind)
	}
	h.cname("api.shop-backup.net.")
}

// testPreflightStep: a dns_update that delegates a zone (replaces an NS
// RRset) is checked first as if the delegation were in place: to servers
// that serve the zone it passes, to servers that do not it refuses.
func testPreflightStep(t *testing.T, h *harness) {
	ctx := context.Background()
	if err := h.env.DNS.ServeUndelegated(ctx, "cdn.shop-switch.com", "ns1.provider-b.org", "ns2.provider-b.org"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ns     []string
		status string
		want   string
	}{
		{"to the servers that serve it", []string{"ns1.provider-b.org.", "ns2.provider-b.org."}, SafetyPass, "has no critical finding as delegated so (1 warnings)"},
		{"to servers that do not", []string{"ns1.attacker.net.", "ns2.attacker.net."}, SafetyRefuse, "NS_LAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var recs []string
			for _, n := range tc.ns {
				recs = append(recs, fmt.Sprintf("%q", "cdn.shop-switch.com. 300 IN NS "+n))
			}
			cfg := h.configWith(fmt.Sprintf(`playbooks:
  - name: delegate-cdn
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - name: delegate the cdn zone
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: [%s]}
`, h.primaryAddr(), h.keyFile, strings.Join(recs, ", ")))
			p, err := h.engine(cfg, Options{}).Plan(ctx, "delegate-cdn", false)
			if err != nil {
				t.Fatal(err)
			}
			var pf *SafetyRule
			for i := range p.Safety {
				if p.Safety[i].Rule == RulePreflight {
					pf = &p.Safety[i]
				}
			}
			if pf == nil || pf.Status != tc.status || !strings.Contains(pf.Detail, tc.want) ||
				!strings.Contains(pf.Detail, "cdn.shop-switch.com, pre-flighted as step 1 (delegate the cdn zone) will delegate it, to "+strings.TrimSuffix(tc.ns[0], ".")) {
				t.Fatalf("pre-flight rule: %+v (all: %+v)", pf, p.Safety)
			}
			if p.Refused() != (tc.status == SafetyRefuse) {
				t.Errorf("refused = %v", p.Refused())
			}
			var out strings.Builder
			if err := p.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), strings.ToUpper(tc.status)+strings.Repeat(" ", 10-len(tc.status))+" preflight") {
				t.Errorf("plan text does not show the pre-flight verdict:\n%s", out.String())
			}
		})
	}
}
