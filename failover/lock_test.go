package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/reglab"
)

// TestMain lets a test run a failover in a child process of its own (this
// test binary again), so that the process can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if path := os.Getenv("NSGUARD_TEST_FAILOVER_CHILD"); path != "" {
		os.Exit(failoverChild(path))
	}
	os.Exit(m.Run())
}

// failoverChild runs the playbook of the config at path as "carol", as
// `nsguard failover run` would; the parent holds its webhook step and
// kills it there.
func failoverChild(path string) int {
	ctx := context.Background()
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	st, err := store.Open(ctx, cfg.Store.Path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer st.Close()
	ck, err := checker.New(cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer ck.Close()
	e, err := New(cfg, Options{Store: st, Checker: ck})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer e.Close()
	_, err = e.Run(ctx, playbook, RunOptions{By: "carol"})
	fmt.Fprintln(os.Stderr, "the child's run ended:", err)
	return ExitCode(err)
}

// testKilledWithSIGKILL: a run in another process, killed with -9 in its
// webhook step, leaves its lock with a fresh heartbeat. While that process
// lives the lock is refused, naming the run and who started it; once it is
// gone, --resume takes the lock over at once (not after LockStale) and
// finishes the run.
func testKilledWithSIGKILL(t *testing.T, h *harness) {
	ctx := context.Background()
	path := h.writeConfig()
	h.hook.mu.Lock()
	h.hook.block = make(chan struct{})
	h.hook.mu.Unlock()
	unblock := func() {
		h.hook.mu.Lock()
		defer h.hook.mu.Unlock()
		if h.hook.block != nil {
			close(h.hook.block)
			h.hook.block = nil
		}
	}
	defer unblock()

	var childErr bytes.Buffer
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "NSGUARD_TEST_FAILOVER_CHILD="+path)
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.After(60 * time.Second)
	for len(h.hook.requests()) == 0 {
		select {
		case err := <-exited:
			t.Fatalf("the child run ended before its webhook step: %v\n%s", err, childErr.String())
		case <-deadline:
			child.Process.Kill()
			t.Fatalf("the child run never reached its webhook step\n%s", childErr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}

	// Two minutes of staleness: only the process being gone can free it.
	e := h.engine(nil, Options{LockStale: 2 * time.Minute})
	l, held, err := e.Lock(ctx, playbook)
	if err != nil || !held || l.PID != child.Process.Pid || l.RunID == 0 {
		t.Fatalf("the child's lock: %+v held=%v err=%v", l, held, err)
	}
	id := l.RunID
	_, err = e.Run(ctx, playbook, RunOptions{Resume: id, By: "dave"})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Rule != "lock" {
		t.Fatalf("resume while the child runs: %v, want a lock refusal", err)
	}
	t.Logf("while the child runs: %v", err)
	for _, want := range []string{fmt.Sprintf("run %d by carol", id), fmt.Sprintf("process %d on %s", child.Process.Pid, thisMachine()), "running on this machine"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}

	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the child was not killed: %v", err)
	}
	unblock()

	start := time.Now()
	res, err := e.Run(ctx, playbook, RunOptions{Resume: id, By: "dave"})
	if err != nil {
		t.Fatalf("resume after kill -9: %v\n%s", err, h.logs)
	}
	t.Logf("after kill -9, resumed in %s: %s", time.Since(start).Round(time.Millisecond), res.TookOver)
	if took := time.Since(start); took > time.Minute {
		t.Errorf("resuming took %s: it waited for the lock to go stale", took)
	}
	if res.RunID != id || !res.Resumed || res.Status != StatusDone {
		t.Errorf("resumed: %+v", res)
	}
	for _, want := range []string{fmt.Sprintf("the lock of run %d by carol", id), fmt.Sprintf("process %d", child.Process.Pid), "that process is gone"} {
		if !strings.Contains(res.TookOver, want) {
			t.Errorf("took-over note %q does not say %q", res.TookOver, want)
		}
	}
	reqs := h.hook.requests()
	if len(reqs) != 2 || reqs[0].Idempotency != reqs[1].Idempotency {
		t.Errorf("webhook calls: %+v", reqs)
	}
	h.cname("api.shop-backup.net.")
}

// TestLockTakeover: who may take over a lock left behind, at once or only
// once it is stale, and what the refusal says. The holder is a real
// process (sleep) on this machine, killed in the test, or a row from
// another machine; none has a run number yet (it was planning).
func TestLockTakeover(t *testing.T) {
	h := newHarness(t, nil, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		host     string
		alive    bool
		takeover bool
		says     []string
	}{
		{name: "process gone on this machine", host: thisMachine(), takeover: true,
			says: []string{"that process is gone", "a run not started yet"}},
		{name: "process alive on this machine", host: thisMachine(), alive: true,
			says: []string{"a run not started yet (being planned or waiting for confirmation)", "its process is running on this machine"}},
		{name: "another machine, its pid gone here", host: "elsewhere [0badc0de]",
			says: []string{"a run not started yet", "on elsewhere [0badc0de]", "it is on another machine, so it is taken over only once its heartbeat is 1m0s old"}},
		{name: "same host name, another boot or PID namespace", host: strings.SplitN(thisMachine(), " ", 2)[0] + " [0badc0de]",
			says: []string{"it is on another machine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sleep := exec.Command("sleep", "60")
			if err := sleep.Start(); err != nil {
				t.Fatal(err)
			}
			pid := sleep.Process.Pid
			defer sleep.Process.Kill()
			if !tc.alive {
				sleep.Process.Signal(syscall.SIGKILL)
				sleep.Wait()
			}
			now := time.Now()
			holder := fmt.Sprintf("other:%d:feedf00d", pid)
			if _, err := h.st.AcquireFailoverLock(ctx, store.FailoverLock{Playbook: playbook, Holder: holder, PID: pid, Host: tc.host,
				AcquiredAt: now, HeartbeatAt: now}, now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			defer h.st.ReleaseFailoverLock(ctx, playbook, holder)
			e := h.engine(nil, Options{LockStale: time.Minute})
			lk, _, err := e.lock(ctx, playbook)
			if tc.takeover {
				if err != nil {
					t.Fatalf("not taken over: %v", err)
				}
				defer lk.release(ctx)
				for _, w := range tc.says {
					if !strings.Contains(lk.tookOver, w) {
						t.Errorf("took-over note %q does not say %q", lk.tookOver, w)
					}
				}
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Rule != "lock" {
				t.Fatalf("got %v, want a lock refusal", err)
			}
			for _, w := range append(tc.says, fmt.Sprintf("process %d on %s, holder %s", pid, tc.host, holder)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "run 0") {
				t.Errorf("the refusal names run 0: %v", err)
			}
			if tc.alive {
				// Killed, it is taken over at once.
				sleep.Process.Signal(syscall.SIGKILL)
				sleep.Wait()
				lk, _, err := e.lock(ctx, playbook)
				if err != nil {
					t.Fatalf("after kill -9: %v", err)
				}
				lk.release(ctx)
			}
		})
	}
}

// TestLockTakeoverAfterStaleness: from another machine, a lock is taken
// over once its heartbeat is LockStale old, and the note says why.
func TestLockTakeoverAfterStaleness(t *testing.T) {
	h := newHarness(t, nil, 0)
	ctx := context.Background()
	now := time.Now()
	if _, err := h.st.AcquireFailoverLock(ctx, store.FailoverLock{Playbook: playbook, Holder: "elsewhere:1:0", PID: 1, Host: "elsewhere [0badc0de]",
		RunID: 7, AcquiredAt: now, HeartbeatAt: now}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	e := h.engine(nil, Options{LockStale: 400 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	if _, _, err := e.lock(ctx, playbook); err == nil || !strings.Contains(err.Error(), "run 7 (process 1 on elsewhere [0badc0de]") {
		t.Fatalf("a fresh lock from another machine: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	lk, _, err := e.lock(ctx, playbook)
	if err != nil {
		t.Fatalf("a stale lock was not taken over: %v", err)
	}
	defer lk.release(ctx)
	if !strings.Contains(lk.tookOver, "took over the stale lock of run 7") || !strings.Contains(lk.tookOver, "older than 400ms") {
		t.Errorf("took-over note: %q", lk.tookOver)
	}
}
