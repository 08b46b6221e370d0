//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// signalLab is a lab, a slow Slack that counts the calls in flight, and a
// config with fast schedules.
type signalLab struct {
	env      *labenv.Env
	slack    *slackrecorder.Recorder
	cfg      string
	store    string
	inFlight atomic.Int32
}

func newSignalLab(t *testing.T) *signalLab {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	sl := &signalLab{env: env, slack: slackrecorder.New(), store: env.StorePath()}
	t.Cleanup(sl.slack.Close)
	sl.slack.SetResponder(func(int, string) slackrecorder.Reply {
		sl.inFlight.Add(1)
		defer sl.inFlight.Add(-1)
		time.Sleep(150 * time.Millisecond) // a slow Slack: kills land mid-call
		return slackrecorder.Reply{}
	})
	tok := env.Dir + "/slack-token"
	if err := os.WriteFile(tok, []byte("xoxb-signal-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`listen: "127.0.0.1:0"
alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  recheck: 200ms
  repeat_interval: 1h
  delivery_timeout: 2s
  claim_lease: 3s
schedules: {delegation: "@every 1s", registration: "@every 1h", audit: "@every 24h", jitter: 0s}
ui: {enabled: false}
`, tok, sl.slack.URL())
	if sl.cfg, err = env.WriteConfig(extra); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(t, "baseline", "approve", "--reason", "initial", "--config", sl.cfg); code != 0 {
		t.Fatalf("approve: exit %d\n%s\n%s", code, out, stderr)
	}
	return sl
}

// daemon starts nsguard daemon as a child process.
func (sl *signalLab) daemon(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "daemon", "--config", sl.cfg, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "NSGUARD_TEST_MAIN=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// settled waits until the store has no pending message and no open
// incident: everything the story caused has been delivered.
func (sl *signalLab) settled(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		st, err := store.Open(context.Background(), sl.store, store.Options{})
		if err == nil {
			ob, _ := st.OutboxStats(context.Background())
			open, _ := st.CountOpenIncidents(context.Background())
			st.Close()
			if ob.Pending == 0 && open == 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the story did not settle: messages still pending or incidents still open")
}

// duplicates counts messages Slack got more than once, and the distinct
// ones. Edits of a page are not counted: the same edit twice changes
// nothing anyone sees.
func duplicates(rec *slackrecorder.Recorder) (dups, distinct int) {
	seen := map[string]int{}
	for _, p := range rec.Posts() {
		seen[p.ThreadTS+"\x00"+p.Text]++
	}
	for _, n := range seen {
		dups += n - 1
	}
	return dups, len(seen)
}

// story plays a hijack and a restore of two domains while the daemon is
// stopped by sig twenty times at random moments, then lets it finish. It
// returns how many stops landed while a Slack call was in flight.
func (sl *signalLab) story(t *testing.T, sig syscall.Signal) (midCall int) {
	t.Helper()
	ctx := context.Background()
	steps := map[int]func() error{
		2:  func() error { return sl.env.DNS.Hijack(ctx, "shop-example.com") },
		6:  func() error { return sl.env.DNS.Hijack(ctx, "pay-example.org") },
		11: func() error { return sl.env.DNS.Restore(ctx, "shop-example.com") },
		15: func() error { return sl.env.DNS.Restore(ctx, "pay-example.org") },
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range 20 {
		if step := steps[i]; step != nil {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		cmd := sl.daemon(t)
		if i%2 == 0 {
			// Aim at a Slack call when there is one to aim at: the stop
			// that matters lands while a message is on its way.
			wait := time.Now().Add(4 * time.Second)
			for sl.inFlight.Load() == 0 && time.Now().Before(wait) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Duration(rng.IntN(140)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond)
		}
		if sl.inFlight.Load() > 0 {
			midCall++
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if sig == syscall.SIGTERM && err != nil {
				t.Fatalf("stop %d: the daemon exited with %v after SIGTERM", i+1, err)
			}
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("stop %d: the daemon did not exit", i+1)
		}
	}
	cmd := sl.daemon(t)
	sl.settled(t, 60*time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return midCall
}

// checkStory: both incidents paged and resolved, nothing lost.
func checkStory(t *testing.T, rec *slackrecorder.Recorder) {
	t.Helper()
	var pages, resolved int
	for _, p := range rec.Posts() {
		if p.ThreadTS == "" && strings.Contains(p.Text, "[CRITICAL]") {
			pages++
		}
		if strings.Contains(p.Text, "[RESOLVED]") {
			resolved++
		}
	}
	if pages < 2 || resolved < 2 {
		t.Errorf("%d pages and %d resolutions for two hijacks", pages, resolved)
	}
}

// Twenty SIGTERMs at random moments while Slack is slow: every message
// reaches Slack exactly once.
func TestSIGTERMNeverSendsTwice(t *testing.T) {
	sl := newSignalLab(t)
	midCall := sl.story(t, syscall.SIGTERM)
	dups, distinct := duplicates(sl.slack)
	t.Logf("20 SIGTERMs, %d during a Slack call: %d messages, %d duplicates", midCall, distinct, dups)
	if midCall == 0 {
		t.Error("no stop landed during a Slack call: the test proved nothing")
	}
	if dups != 0 {
		t.Errorf("%d message(s) delivered twice across clean stops", dups)
	}
	checkStory(t, sl.slack)
}

// Twenty SIGKILLs at random moments, half of them aimed at a Slack call
// in flight: nothing is lost, and nothing is sent twice — a message whose
// sender died between Slack's answer and recording it is found in Slack
// by the next sender (its outbox ID rides in the message's metadata) and
// not sent again.
func TestSIGKILLSendsEachMessageOnce(t *testing.T) {
	sl := newSignalLab(t)
	midCall := sl.story(t, syscall.SIGKILL)
	dups, distinct := duplicates(sl.slack)
	t.Logf("20 SIGKILLs, %d during a Slack call: %d messages, %d duplicates", midCall, distinct, dups)
	if midCall == 0 {
		t.Error("no kill landed during a Slack call: the test proved nothing")
	}
	if dups != 0 {
		t.Errorf("%d message(s) delivered twice across %d kills during a Slack call", dups, midCall)
	}
	checkStory(t, sl.slack)
}
