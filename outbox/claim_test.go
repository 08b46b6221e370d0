package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/slack"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// sender is one process's view: its own store connections and dispatcher.
func sender(t testing.TB, path, apiURL, owner string, o Options) (*store.SQLite, *Dispatcher) {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := slack.New(slack.Options{Token: token, APIURL: apiURL, Channel: "#dns-oncall", Threads: st})
	if err != nil {
		t.Fatal(err)
	}
	o.Receiver, o.Owner = rcv, owner
	d, err := New(st, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, d
}

// A daemon and a CLI command deliver from one store at the same time, as
// `failover run` beside a running daemon does: every message reaches Slack
// exactly once, each thread in order. Fifty rounds, under -race in CI.
func TestTwoSendersDeliverEachMessageOnce(t *testing.T) {
	rec := slackrecorder.New()
	defer rec.Close()
	for round := range 50 {
		path := filepath.Join(t.TempDir(), "nsguard.db")
		stA, daemon := sender(t, path, rec.URL(), "daemon", Options{PollInterval: 5 * time.Millisecond})
		stB, cli := sender(t, path, rec.URL(), "cli", Options{PollInterval: 5 * time.Millisecond})
		const messages, threads = 24, 4
		var ids []int64
		for i := range messages {
			st := stA
			if i%2 == 1 {
				st = stB // both processes enqueue too
			}
			msg := &notify.Message{Kind: notify.KindInfo, Domain: "shop-example.com", Severity: finding.Warning,
				Title: fmt.Sprintf("r%02d-m%02d", round, i), At: time.Now(), ThreadKey: fmt.Sprintf("r%d-t%d", round, i%threads), Channel: "#dns-oncall"}
			id, err := Enqueue(context.Background(), st, msg)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); daemon.Run(ctx) }()
		go func() {
			defer wg.Done()
			if pending, err := cli.Wait(ctx, ids); err != nil || pending != 0 {
				t.Errorf("round %d: %d pending, %v", round, pending, err)
				for _, id := range ids {
					if m, err := stA.OutboxMessage(context.Background(), id); err == nil && m.DeliveredAt.IsZero() {
						t.Logf("pending %d: thread %q owner %q until %s attempts %d next %s err %q", m.ID, m.ThreadKey, m.ClaimOwner, m.ClaimUntil, m.Attempts, m.NextAttemptAt, m.LastError)
					}
				}
			}
		}()
		// The CLI's wait ends when all is delivered; then stop the daemon.
		for {
			st, err := stA.OutboxStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending == 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		stA.Close()
		stB.Close()

		seen := map[string]int{}
		last := map[string]string{}
		for _, p := range rec.Posts() {
			title := strings.Fields(p.Text)[0]
			if !strings.HasPrefix(title, fmt.Sprintf("r%02d-", round)) {
				continue
			}
			seen[title]++
			thread := p.ThreadTS
			if thread == "" {
				thread = p.TS
			}
			if prev := last[thread]; prev > title {
				t.Errorf("round %d: %s delivered after %s in one thread", round, title, prev)
			}
			last[thread] = title
		}
		if len(seen) != messages {
			t.Fatalf("round %d: %d distinct messages delivered, want %d", round, len(seen), messages)
		}
		for title, n := range seen {
			if n != 1 {
				t.Fatalf("round %d: %s delivered %d times", round, title, n)
			}
		}
	}
}

// TestKilledSenderHelper is the child process of the test below; run
// without its environment it does nothing.
func TestKilledSenderHelper(t *testing.T) {
	path, api := os.Getenv("NSGUARD_TEST_STORE"), os.Getenv("NSGUARD_TEST_SLACK")
	if path == "" {
		return
	}
	_, d := sender(t, path, api, "doomed-sender", Options{Timeout: 2 * time.Second, Lease: 3 * time.Second})
	d.Flush(context.Background()) // killed in the middle of it
}

// A sender killed with SIGKILL while it holds a claim (its request to
// Slack in flight) delays that message by the claim's lease, no more: the
// next sender takes it over. If Slack never took the message, it is sent
// now; if Slack took it just before the kill (the at-least-once window),
// the new sender finds it in Slack by the outbox ID in its metadata and
// does not send it again. Either way it reaches Slack exactly once.
func TestKilledSenderClaimIsTakenOverAfterTheLease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply slackrecorder.Reply
	}{
		{"slack never got it", slackrecorder.Reply{Status: 500}},
		{"slack got it before the kill", slackrecorder.Reply{}},
	} {
		t.Run(tc.name, func(t *testing.T) { killedSender(t, tc.reply) })
	}
}

func killedSender(t *testing.T, first slackrecorder.Reply) {
	rec := slackrecorder.New()
	defer rec.Close()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rec.SetResponder(func(n int, _ string) slackrecorder.Reply {
		if n == 1 {
			once.Do(func() { close(arrived) })
			<-release // the child is killed meanwhile
			return first
		}
		return slackrecorder.Reply{}
	})
	path := filepath.Join(t.TempDir(), "nsguard.db")
	st, d := sender(t, path, rec.URL(), "survivor", Options{})
	defer st.Close()
	msg := &notify.Message{Kind: notify.KindInfo, Domain: "shop-example.com", Severity: finding.Critical, Title: "the page", At: time.Now(), ThreadKey: "t", Channel: "#dns-oncall"}
	id, err := Enqueue(context.Background(), st, msg)
	if err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestKilledSenderHelper$", "-test.count=1")
	child.Env = append(os.Environ(), "NSGUARD_TEST_STORE="+path, "NSGUARD_TEST_SLACK="+rec.URL())
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		child.Process.Kill()
		t.Fatal("the child never sent")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	child.Wait()
	close(release)
	time.Sleep(50 * time.Millisecond) // Slack finishes the call the child made

	m, err := st.OutboxMessage(context.Background(), id)
	if err != nil || m.ClaimOwner != "doomed-sender" {
		t.Fatalf("the killed sender's claim = %+v, %v", m, err)
	}
	// While the claim runs, nobody else sends the message.
	if res, err := d.Flush(context.Background()); err != nil || res.Delivered != 0 {
		t.Fatalf("a running claim was taken over: %+v, %v", res, err)
	}
	var delivered time.Time
	for time.Since(killed) < 10*time.Second {
		res, err := d.Flush(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Delivered == 1 {
			delivered = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if delivered.IsZero() {
		t.Fatal("the message was never delivered after the lease")
	}
	if wait := m.ClaimUntil.Sub(killed); delivered.Sub(killed) < wait-100*time.Millisecond {
		t.Errorf("delivered %s after the kill, before the lease ended (%s)", delivered.Sub(killed), wait)
	}
	t.Logf("settled %s after the kill (lease 3s)", delivered.Sub(killed).Round(10*time.Millisecond))
	var titles []string
	for _, p := range rec.Posts() {
		titles = append(titles, p.Text)
	}
	sort.Strings(titles)
	if len(titles) != 1 || !strings.Contains(titles[0], "the page") {
		t.Fatalf("Slack accepted %q, want the page once", titles)
	}
	// A reply of that thread still finds the thread.
	reply := &notify.Message{Kind: notify.KindInfo, Domain: "shop-example.com", Title: "a reply", At: time.Now(), ThreadKey: "t"}
	if _, err := Enqueue(context.Background(), st, reply); err != nil {
		t.Fatal(err)
	}
	if res, err := d.Flush(context.Background()); err != nil || res.Delivered != 1 {
		t.Fatalf("reply: %+v, %v", res, err)
	}
	if p := rec.Posts(); len(p) != 2 || p[1].ThreadTS != p[0].TS {
		t.Fatalf("the reply is not in the page's thread: %+v", p)
	}
}

// A sender whose fence says it may no longer send (a leader that paused
// while another took over) sends nothing: the message stays pending with
// its claim, for the leader to take over when the claim lapses.
func TestFenceStopsASendAtTheLastMoment(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "one-open")
	fenced := true
	d, err := New(h.st, Options{Receiver: h.d.Receiver(), Logger: h.logger, Now: h.clk.Now, Owner: "paused-leader",
		Fence: func(context.Context) error {
			if fenced {
				return fmt.Errorf("checking the lease: %w", store.ErrFenced)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Flush(context.Background()); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("flush of a fenced sender: %v, want ErrFenced", err)
	}
	if n := len(h.rec.Posts()); n != 0 {
		t.Fatalf("a fenced sender posted %d messages", n)
	}
	if m := h.row(id); !m.DeliveredAt.IsZero() || m.ClaimOwner != "paused-leader" {
		t.Fatalf("message after the refused send: %+v", m)
	}
	fenced = false
	if res, err := d.Flush(context.Background()); err != nil || res.Delivered != 1 {
		t.Fatalf("once allowed: %+v, %v", res, err)
	}
}
