package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// TestPlanProjectsEarlierSteps: a later step touching an RRset an earlier
// step changed is planned (and its prerequisite built) against the state
// the earlier step leaves; CREATE, CHANGE and DELETE each appear, and a
// re-run reports every RRset as in place. The verify step also asks the
// lab's public resolvers.
func TestPlanProjectsEarlierSteps(t *testing.T) {
	h := newHarness(t, nil, 0)
	ctx := context.Background()
	upd := func(records string) string {
		return fmt.Sprintf(`dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, %s}`, h.primaryAddr(), h.keyFile, records)
	}
	cfg := h.configWith(fmt.Sprintf(`playbooks:
  - name: %s
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - name: via the cdn
        %s
      - name: to the backup, add an address, drop www
        %s
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.shop-backup.net, public_resolvers: true, interval: 50ms, timeout: 5s}
      - wait: 10ms
`, playbook,
		upd(`replace: ["api.shop-switch.com. 60 IN CNAME api.shop-cdn.net."]`),
		upd(`replace: ["api.shop-switch.com. 60 IN CNAME api.shop-backup.net.", "lb.shop-switch.com. 300 IN A 198.51.100.20", "lb.shop-switch.com. 300 IN A 198.51.100.21"], delete: ["www.shop-switch.com. CNAME"]`)))
	e := h.engine(cfg, Options{})
	p, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	got := func(sp StepPlan) []string {
		var out []string
		for _, ch := range sp.Changes {
			out = append(out, changeLine(ch))
		}
		return out
	}
	if want := []string{"CHANGE api.shop-switch.com. CNAME: api.shop-example.com. → api.shop-cdn.net."}; !slices.Equal(got(p.Steps[0]), want) {
		t.Errorf("step 1: %v", got(p.Steps[0]))
	}
	want2 := []string{
		"CHANGE api.shop-switch.com. CNAME: api.shop-cdn.net. → api.shop-backup.net.",
		"CREATE lb.shop-switch.com. A: 198.51.100.20, 198.51.100.21",
		"DELETE www.shop-switch.com. CNAME: www.shop-example.com.",
	}
	if !slices.Equal(got(p.Steps[1]), want2) {
		t.Errorf("step 2 is not planned against step 1's result:\n%s", strings.Join(got(p.Steps[1]), "\n"))
	}
	if len(p.Steps[2].Notes) != 4 || !strings.Contains(p.Steps[2].Summary, "and 2 public resolvers") {
		t.Errorf("verify with public resolvers: %s %v", p.Steps[2].Summary, p.Steps[2].Notes)
	}
	res, err := e.Run(ctx, playbook, RunOptions{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.Verified {
		t.Errorf("not verified")
	}
	h.cname("api.shop-backup.net.")
	if a := askCNAME(t, h.env.DNS, h.primaryAddr(), "www.shop-switch.com."); a != "" {
		t.Errorf("www still a CNAME to %s", a)
	}
	again, err := e.Plan(ctx, playbook, false)
	if err != nil {
		t.Fatal(err)
	}
	// Step 1 would change api to the cdn again and step 2 back: the
	// plan says so; the address and the deletion are in place.
	want := []string{
		"CHANGE api.shop-switch.com. CNAME: api.shop-cdn.net. → api.shop-backup.net.",
		"REPORT lb.shop-switch.com. A: already in place: no change",
		"REPORT www.shop-switch.com. CNAME: already absent: no change",
	}
	if again.Steps[0].NoOp || !slices.Equal(got(again.Steps[1]), want) {
		t.Errorf("re-plan: step 1 no-op %v, step 2:\n%s", again.Steps[0].NoOp, strings.Join(got(again.Steps[1]), "\n"))
	}
}

// TestVerifyTimesOut: a verify step that never holds fails with what each
// server still answers, and the run stops there.
func TestVerifyTimesOut(t *testing.T) {
	h := newHarness(t, nil, 0)
	cfg := h.configWith(fmt.Sprintf(`playbooks:
  - name: %s
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - verify: {name: api.shop-switch.com., type: CNAME, expect: "api.nowhere.example.", interval: 50ms, timeout: 300ms}
      - notify: {message: never}
`, playbook))
	e := h.engine(cfg, Options{})
	start := time.Now()
	_, err := e.Run(context.Background(), playbook, RunOptions{})
	var re *RunError
	if !errors.As(err, &re) || re.Step != 1 || !slices.Equal(re.NotDone, []int{1, 2}) {
		t.Fatalf("want step 1 to fail: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "2 of 2 servers still do not answer api.nowhere.example.") ||
		!strings.Contains(msg, "ns2.provider-a.net. (") || !strings.Contains(msg, "answers api.shop-example.com.") {
		t.Errorf("error: %s", msg)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the verify timeout of 300ms took %s", took)
	}
}

// TestLostLockStopsTheRun: a run whose lock another run takes over (it
// was frozen longer than LockStale) stops at once.
func TestLostLockStopsTheRun(t *testing.T) {
	h := newHarness(t, nil, 0)
	h.hook.mu.Lock()
	h.hook.block = make(chan struct{})
	h.hook.mu.Unlock()
	defer func() {
		h.hook.mu.Lock()
		close(h.hook.block)
		h.hook.block = nil
		h.hook.mu.Unlock()
	}()
	e := h.engine(nil, Options{LockStale: time.Minute, Heartbeat: 20 * time.Millisecond})
	ctx := context.Background()
	go func() {
		for len(h.hook.requests()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		// Someone takes the lock as if this run's heartbeat were stale.
		now := time.Now()
		if _, err := h.st.AcquireFailoverLock(ctx, store.FailoverLock{Playbook: playbook, Holder: "intruder", AcquiredAt: now, HeartbeatAt: now}, now.Add(time.Hour)); err != nil {
			t.Errorf("taking the lock over: %v", err)
		}
	}()
	_, err := e.Run(ctx, playbook, RunOptions{})
	var re *RunError
	if !errors.As(err, &re) || !re.Interrupted || re.Step != 2 || !strings.Contains(err.Error(), "lost the failover lock") {
		t.Fatalf("want the run stopped by the lost lock: %v", err)
	}
	if l, held, _ := e.Lock(ctx, playbook); !held || l.Holder != "intruder" {
		t.Errorf("the stopped run released a lock it no longer held: %+v", l)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, 0},
		{&RefusedError{Rule: "lock"}, 2},
		{fmt.Errorf("wrapped: %w", &RefusedError{Rule: RuleBackupHealthy}), 2},
		{fmt.Errorf("%w: x", ErrUnknownPlaybook), 3},
		{fmt.Errorf("%w: x", ErrUsage), 3},
		{&RunError{Err: errors.New("boom")}, 1},
		{fmt.Errorf("%w: x", ErrNotConfirmed), 1},
		{errors.New("store broke"), 1},
	} {
		if got := ExitCode(tc.err); got != tc.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestUnknownPlaybookAndUsage(t *testing.T) {
	h := newHarness(t, nil, 0)
	e := h.engine(nil, Options{})
	ctx := context.Background()
	if _, err := e.Plan(ctx, "nope", false); !errors.Is(err, ErrUnknownPlaybook) || !strings.Contains(err.Error(), "shop-to-backup") {
		t.Errorf("unknown playbook: %v", err)
	}
	if _, err := e.Run(ctx, playbook, RunOptions{Resume: 42}); ExitCode(err) != 3 {
		t.Errorf("resume of a missing run: %v", err)
	}
	if _, err := e.Status(ctx, 0); ExitCode(err) != 3 {
		t.Errorf("status with no run: %v", err)
	}
	// A tsig_file that does not exist is a config error, found by the plan.
	cfg := h.config("/nonexistent/tsig.key")
	if _, err := h.engine(cfg, Options{}).Plan(ctx, playbook, false); ExitCode(err) != 3 || !strings.Contains(err.Error(), "/nonexistent/tsig.key") {
		t.Errorf("missing tsig_file: %v", err)
	}
}

// TestResumeRefusesAChangedPlaybook: finished steps are matched by number,
// so a playbook whose steps changed since the run started is not resumed.
func TestResumeRefusesAChangedPlaybook(t *testing.T) {
	h := newHarness(t, nil, 0)
	ctx := context.Background()
	e := h.engine(nil, Options{})
	e.hooks.beforeStep = func(_ context.Context, i int) error {
		if i == 2 {
			return errors.New("the switch API is down")
		}
		return nil
	}
	res, err := e.Run(ctx, playbook, RunOptions{})
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "the switch API is down") {
		t.Fatalf("want step 2 to fail: %v", err)
	}
	changed := h.configWith(fmt.Sprintf(`playbooks:
  - name: %s
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - notify: {message: "a different playbook now"}
`, playbook))
	_, err = h.engine(changed, Options{}).Run(ctx, playbook, RunOptions{Resume: res.RunID})
	if ExitCode(err) != 3 || !strings.Contains(err.Error(), "changed since run") {
		t.Errorf("resume with changed steps: %v", err)
	}
	// With the playbook as it was, the run resumes from step 2.
	res2, err := h.engine(nil, Options{}).Run(ctx, playbook, RunOptions{Resume: res.RunID})
	if err != nil || !res2.Steps[0].Earlier || res2.Steps[1].Earlier {
		t.Fatalf("resume: %v %+v", err, res2)
	}
}
