package outbox

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/slack"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

const token = "xoxb-1111-2222-SECRETtokenVALUE"

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type harness struct {
	t      *testing.T
	path   string
	st     *store.SQLite
	rec    *slackrecorder.Recorder
	clk    *clock
	logs   *syncBuffer
	logger *slog.Logger
	reg    *prometheus.Registry
	d      *Dispatcher
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "nsguard.db"), rec: slackrecorder.New(), clk: &clock{t: t0}, logs: &syncBuffer{}}
	t.Cleanup(h.rec.Close)
	h.logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.start()
	return h
}

// start opens the store and builds a dispatcher: the daemon starting up.
func (h *harness) start() {
	h.t.Helper()
	st, err := store.Open(context.Background(), h.path, store.Options{Logger: h.logger})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	rcv, err := slack.New(slack.Options{Token: token, APIURL: h.rec.URL(), Channel: "#dns-oncall", Threads: st, Logger: h.logger, Now: h.clk.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	d, err := New(st, Options{Receiver: rcv, Logger: h.logger, Now: h.clk.Now, Registerer: h.reg})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st, h.d = st, d
}

// restart closes the store and starts again on the same file.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

func (h *harness) enqueue(kind notify.Kind, thread, channel, title string) int64 {
	h.t.Helper()
	msg := &notify.Message{Kind: kind, Domain: "shop-example.com", Severity: finding.Critical, Title: title, At: h.clk.Now(), ThreadKey: thread, Channel: channel, Broadcast: kind != notify.KindOpen}
	id, err := Enqueue(context.Background(), h.st, msg)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) flush() Result {
	h.t.Helper()
	res, err := h.d.Flush(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) row(id int64) store.OutboxMessage {
	h.t.Helper()
	m, err := h.st.OutboxMessage(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func titles(posts []slackrecorder.Post) []string {
	var out []string
	for _, p := range posts {
		out = append(out, strings.TrimSuffix(strings.SplitN(p.Text, ": ", 2)[1], " (still open)"))
	}
	return out
}

func TestDeliveredInOrderAfterSlackOutage(t *testing.T) {
	h := newHarness(t)
	h.rec.SetResponder(func(n int, _ string) slackrecorder.Reply {
		if n <= 3 {
			return slackrecorder.Reply{Status: 500}
		}
		return slackrecorder.Reply{}
	})
	open1 := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "one-open")
	h.enqueue(notify.KindRepeat, "incident:1", "#dns-oncall", "one-repeat")
	h.enqueue(notify.KindResolved, "incident:1", "#dns-oncall", "one-resolved")
	h.enqueue(notify.KindOpen, "incident:2", "#dns-oncall", "two-open")

	// Slack is down: each thread's head fails, nothing behind it is tried.
	if res := h.flush(); res.Retried != 2 || res.Delivered != 0 {
		t.Fatalf("first pass = %+v; want 2 retries", res)
	}
	if got := h.row(open1); got.Attempts != 1 || !got.NextAttemptAt.Equal(t0.Add(2*time.Second)) || got.LastError != "slack: http 500" {
		t.Fatalf("after one failure: %+v", got)
	}
	// Before the back-off ends, nothing is sent.
	h.clk.Add(time.Second)
	if res := h.flush(); res != (Result{}) || h.rec.Calls() != 2 {
		t.Fatalf("during back-off: %+v, %d calls", res, h.rec.Calls())
	}
	h.clk.Add(time.Second)
	h.flush() // call 3 fails (thread 1, second back-off 4s), call 4 delivers thread 2
	h.clk.Add(4 * time.Second)
	if res := h.flush(); res.Delivered != 3 {
		t.Fatalf("after recovery: %+v", res)
	}

	posts := h.rec.Posts()
	if got, want := fmt.Sprint(titles(posts)), "[two-open one-open one-repeat one-resolved]"; got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	root := posts[1]
	if root.ThreadTS != "" {
		t.Fatalf("thread root posted as a reply: %+v", root)
	}
	for _, p := range posts[2:] {
		if p.ThreadTS != root.TS || p.Channel != root.ChannelID || !p.Broadcast {
			t.Fatalf("reply %q: thread_ts %q channel %q broadcast %v; want thread %q in %q, broadcast", p.Text, p.ThreadTS, p.Channel, p.Broadcast, root.TS, root.ChannelID)
		}
	}
	if got := h.row(open1); got.Attempts != 3 || got.DeliveredAt.IsZero() {
		t.Fatalf("delivered row: %+v", got)
	}
	if c := h.d.Counters(); c.Delivered != 4 || c.Retried != 3 || c.Dead != 0 {
		t.Fatalf("counters = %+v", c)
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP nsguard_outbox_depth Messages waiting for delivery (outbox depth).
# TYPE nsguard_outbox_depth gauge
nsguard_outbox_depth 0
# HELP nsguard_outbox_delivery_failures_total Failed delivery attempts by receiver and whether they will be retried (retry) or not (dead).
# TYPE nsguard_outbox_delivery_failures_total counter
nsguard_outbox_delivery_failures_total{receiver="slack",result="dead"} 0
nsguard_outbox_delivery_failures_total{receiver="slack",result="retry"} 3
`), "nsguard_outbox_depth", "nsguard_outbox_delivery_failures_total"); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	h := newHarness(t)
	h.rec.SetResponder(func(n int, _ string) slackrecorder.Reply {
		if n == 1 {
			return slackrecorder.Reply{Status: 429, RetryAfter: "30"}
		}
		return slackrecorder.Reply{}
	})
	a := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "a")
	h.enqueue(notify.KindOpen, "incident:2", "#dns-oncall", "b")

	if res := h.flush(); res.Retried != 1 || h.rec.Calls() != 1 {
		t.Fatalf("first pass: %+v, %d calls; want one 429 and then a pause", res, h.rec.Calls())
	}
	if got := h.d.PausedUntil(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("paused until %s, want %s", got, t0.Add(30*time.Second))
	}
	if got := h.row(a); !got.NextAttemptAt.Equal(t0.Add(30*time.Second)) || !strings.Contains(got.LastError, "rate limited") {
		t.Fatalf("rate-limited row: %+v", got)
	}
	h.clk.Add(29 * time.Second)
	if h.flush(); h.rec.Calls() != 1 {
		t.Fatalf("sent during the Retry-After pause: %d calls", h.rec.Calls())
	}
	h.clk.Add(time.Second)
	if res := h.flush(); res.Delivered != 2 {
		t.Fatalf("after the pause: %+v", res)
	}
	if got := fmt.Sprint(titles(h.rec.Posts())); got != "[a b]" {
		t.Fatalf("order = %s", got)
	}
}

func TestNonRetryableDeadLettersWithoutBlocking(t *testing.T) {
	h := newHarness(t)
	h.rec.SetResponder(func(_ int, channel string) slackrecorder.Reply {
		if channel == "#gone" {
			return slackrecorder.Reply{Error: "channel_not_found"}
		}
		return slackrecorder.Reply{}
	})
	dead1 := h.enqueue(notify.KindOpen, "incident:1", "#gone", "lost-open")
	dead2 := h.enqueue(notify.KindRepeat, "incident:1", "#gone", "lost-repeat")
	h.enqueue(notify.KindOpen, "incident:2", "#dns-oncall", "fine-open")
	h.enqueue(notify.KindRepeat, "incident:2", "#dns-oncall", "fine-repeat")

	res := h.flush()
	if res.Dead != 2 || res.Delivered != 2 {
		t.Fatalf("flush = %+v; want 2 dead, 2 delivered", res)
	}
	for _, id := range []int64{dead1, dead2} {
		if got := h.row(id); got.DeadAt.IsZero() || got.LastError != "slack: channel_not_found" || got.Attempts != 1 {
			t.Fatalf("dead row %d: %+v", id, got)
		}
	}
	if got := fmt.Sprint(titles(h.rec.Posts())); got != "[fine-open fine-repeat]" {
		t.Fatalf("delivered %s", got)
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP nsguard_outbox_dead_letters Messages that failed with a non-retryable error and will not be sent.
# TYPE nsguard_outbox_dead_letters gauge
nsguard_outbox_dead_letters 2
# HELP nsguard_outbox_deliveries_total Delivery attempts by receiver and result (delivered, retry, dead).
# TYPE nsguard_outbox_deliveries_total counter
nsguard_outbox_deliveries_total{receiver="slack",result="dead"} 2
nsguard_outbox_deliveries_total{receiver="slack",result="delivered"} 2
nsguard_outbox_deliveries_total{receiver="slack",result="retry"} 0
`), "nsguard_outbox_dead_letters", "nsguard_outbox_deliveries_total"); err != nil {
		t.Fatal(err)
	}
}

func TestRestartSendsNothingTwice(t *testing.T) {
	h := newHarness(t)
	h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "open")
	h.enqueue(notify.KindRepeat, "incident:1", "#dns-oncall", "repeat")
	if res := h.flush(); res.Delivered != 2 {
		t.Fatalf("flush = %+v", res)
	}
	h.restart()
	h.enqueue(notify.KindResolved, "incident:1", "#dns-oncall", "resolved")
	if res := h.flush(); res.Delivered != 1 {
		t.Fatalf("after restart = %+v; want only the new message", res)
	}
	posts := h.rec.Posts()
	if got := fmt.Sprint(titles(posts)); got != "[open repeat resolved]" {
		t.Fatalf("posts = %s", got)
	}
	// The thread survived the restart: the new message replies in it.
	if posts[2].ThreadTS != posts[0].TS {
		t.Fatalf("reply after restart went to thread %q, want %q", posts[2].ThreadTS, posts[0].TS)
	}
}

// A SIGTERM while Slack is answering: Run returns only after the answer is
// recorded, so the next process does not send it again.
func TestShutdownMidDeliveryRecordsIt(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	inFlight := make(chan struct{}, 1)
	h.rec.SetResponder(func(int, string) slackrecorder.Reply {
		inFlight <- struct{}{}
		<-release
		return slackrecorder.Reply{}
	})
	id := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "open")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.d.Run(ctx) }()
	<-inFlight
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := h.row(id); got.DeliveredAt.IsZero() {
		t.Fatalf("message delivered during shutdown is not recorded: %+v", got)
	}
	h.rec.SetResponder(nil)
	h.restart()
	if res := h.flush(); res != (Result{}) || h.rec.Calls() != 1 {
		t.Fatalf("after restart: %+v, %d calls; want nothing sent again", res, h.rec.Calls())
	}
}

func TestRunDeliversWhenKicked(t *testing.T) {
	h := newHarness(t)
	// A long poll interval: only Kick can explain a quick delivery.
	d, err := New(h.st, Options{Receiver: notify.LogReceiver{Logger: h.logger}, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	id := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "open")
	d.Kick()
	deadline := time.Now().Add(10 * time.Second)
	for h.row(id).DeliveredAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("kicked message not delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTokenNeverLogged(t *testing.T) {
	h := newHarness(t)
	// A port with nothing listening, for a network error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String() + "/api/"
	l.Close()

	failures := []slackrecorder.Reply{{Status: 500}, {Error: "invalid_auth"}, {Status: 429, RetryAfter: "1"}, {Error: "not_authed"}}
	h.rec.SetResponder(func(n int, _ string) slackrecorder.Reply {
		if n <= len(failures) {
			return failures[n-1]
		}
		return slackrecorder.Reply{}
	})
	for i := range 6 {
		h.enqueue(notify.KindOpen, fmt.Sprint("incident:", i), "#dns-oncall", fmt.Sprint("m", i))
	}
	for range 5 {
		h.flush()
		h.clk.Add(10 * time.Second)
	}
	// And a receiver pointed at nothing.
	rcv, err := slack.New(slack.Options{Token: token, APIURL: deadURL, Channel: "#x", Threads: h.st, Logger: h.logger})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(h.st, Options{Receiver: rcv, Logger: h.logger, Now: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	netID := h.enqueue(notify.KindOpen, "incident:net", "#x", "net")
	if _, err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	row := h.row(netID)
	if row.LastError == "" || !strings.Contains(row.LastError, "network") {
		t.Fatalf("network failure not recorded: %+v", row)
	}

	logs := h.logs.String()
	if !strings.Contains(logs, "invalid_auth") || !strings.Contains(logs, "http 500") {
		t.Fatalf("expected failures in the log, got:\n%s", logs)
	}
	if strings.Contains(logs, token) || strings.Contains(logs, "SECRETtoken") {
		t.Fatalf("token in the log:\n%s", logs)
	}
	all, err := h.st.OutboxMessages(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if strings.Contains(m.LastError, "SECRETtoken") || strings.Contains(string(m.Payload), "SECRETtoken") {
			t.Fatalf("token stored in outbox row %d: %+v", m.ID, m)
		}
	}
	// The token did reach Slack, so the test could have failed.
	if posts := h.rec.Posts(); len(posts) == 0 || posts[0].Token != token {
		t.Fatalf("recorder did not see the token: %+v", posts)
	}
}

func TestCorruptPayloadDeadLetters(t *testing.T) {
	h := newHarness(t)
	id, err := h.st.Enqueue(context.Background(), store.OutboxMessage{CreatedAt: t0, Kind: "open", ThreadKey: "x", Payload: []byte(`{"kind":`)})
	if err != nil {
		t.Fatal(err)
	}
	if res := h.flush(); res.Dead != 1 {
		t.Fatalf("flush = %+v", res)
	}
	if got := h.row(id); !strings.HasPrefix(got.LastError, "corrupt payload") {
		t.Fatalf("row = %+v", got)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 2 * time.Second, Max: time.Minute, Factor: 2}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 2 * time.Second}, {1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second}, {6, time.Minute}, {1000, time.Minute}} {
		if got := b.Delay(tc.attempt); got != tc.want {
			t.Errorf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

func TestNewReceiverFromConfig(t *testing.T) {
	// Neither token nor webhook: the log receiver, so the outbox drains.
	r, err := NewReceiver(configSlack(""), nil, slog.New(slog.DiscardHandler))
	if err != nil || r.Name() != "log" {
		t.Fatalf("receiver = %v, %v", r, err)
	}
	t.Setenv("NSGUARD_TEST_TOKEN", "")
	_, err = NewReceiver(configSlack("NSGUARD_TEST_TOKEN"), nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "NSGUARD_TEST_TOKEN") {
		t.Fatalf("missing token: err = %v", err)
	}
}

func configSlack(tokenEnv string) config.Slack {
	return config.Slack{TokenEnv: tokenEnv, Channel: "#dns-oncall"}
}

func TestSetReceiver(t *testing.T) {
	h := newHarness(t)
	h.d.SetReceiver(notify.LogReceiver{Logger: h.logger})
	id := h.enqueue(notify.KindOpen, "incident:1", "#dns-oncall", "open")
	if res := h.flush(); res.Delivered != 1 || h.rec.Calls() != 0 {
		t.Fatalf("flush = %+v, %d Slack calls; want delivery to the log", res, h.rec.Calls())
	}
	if h.row(id).DeliveredAt.IsZero() || !strings.Contains(h.logs.String(), `"msg":"alert"`) {
		t.Fatal("not delivered to the log")
	}
	if got := testutil.ToFloat64(h.d.metrics.deliveries.WithLabelValues("log", "delivered")); got != 1 {
		t.Fatalf("log deliveries = %v", got)
	}
}
