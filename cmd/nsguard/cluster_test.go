//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// clusterLab is a lab, a fake Slack and one PostgreSQL database shared by
// nsguard daemons run as real processes (this test binary re-executed),
// each a vantage point with its own config.
type clusterLab struct {
	env   *labenv.Env
	slack *slackrecorder.Recorder
	url   string
	urlF  string
	lease string
	procs []*daemonProc
}

// daemonProc is one `nsguard daemon` process.
type daemonProc struct {
	name string
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs strings.Builder
	gone chan struct{}
}

func newClusterLab(t *testing.T, lease string) *clusterLab {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	cl := &clusterLab{env: env, slack: slackrecorder.New(), url: pgtest.Database(t), lease: lease}
	t.Cleanup(cl.slack.Close)
	cl.urlF = filepath.Join(env.Dir, "db-url")
	if err := os.WriteFile(cl.urlF, []byte(cl.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(env.Dir, "slack-token")
	if err := os.WriteFile(tok, []byte("xoxb-cluster-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(t, "baseline", "approve", "--reason", "initial", "--config", cl.config(t, "approver")); code != 0 {
		t.Fatalf("approve: exit %d\n%s\n%s", code, out, stderr)
	}
	return cl
}

// config writes the config of the vantage called name and returns its path.
func (cl *clusterLab) config(t *testing.T, name string) string {
	t.Helper()
	extra := fmt.Sprintf(`listen: "127.0.0.1:0"
alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  recheck: 300ms
  repeat_interval: 1h
  group_wait: 1s
  delivery_timeout: 2s
  claim_lease: 5s
schedules: {delegation: "@every 1s", registration: "@every 1h", audit: "@every 24h", jitter: 0s}
ui: {enabled: false}
cluster: {vantage: %s, lease: %s}
`, filepath.Join(cl.env.Dir, "slack-token"), cl.slack.URL(), name, cl.lease)
	y := cl.env.ConfigYAML(extra)
	y = regexp.MustCompile(`(?m)^store: \{path: .*\}$`).ReplaceAllString(y, fmt.Sprintf("store: {url_file: %q}", cl.urlF))
	path := filepath.Join(cl.env.Dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs `nsguard daemon` for vantage name and waits for its address.
func (cl *clusterLab) start(t *testing.T, name string) *daemonProc {
	t.Helper()
	return cl.run(t, name, "daemon")
}

// run runs `nsguard COMMAND` (daemon or probe) for vantage name and waits
// for its address.
func (cl *clusterLab) run(t *testing.T, name, command string) *daemonProc {
	t.Helper()
	p := &daemonProc{name: name, gone: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], command, "--config", cl.config(t, name), "--log-level", "info")
	p.cmd.Env = append(os.Environ(), "NSGUARD_TEST_MAIN=1")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "nsguard daemon started" {
				addr <- rec.Listen
			}
		}
	}()
	go func() { p.cmd.Wait(); close(p.gone) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.gone:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
		}
	})
	select {
	case p.addr = <-addr:
	case <-p.gone:
		t.Fatalf("%s exited at start:\n%s", name, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start:\n%s", name, p.log())
	}
	cl.procs = append(cl.procs, p)
	return p
}

func (p *daemonProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *daemonProc) alive() bool {
	select {
	case <-p.gone:
		return false
	default:
		return true
	}
}

// get returns a path's status and body ("" and 0 when it does not answer).
func (p *daemonProc) get(path string) (int, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// leading reports the process's nsguard_leader gauge (false when it does
// not answer: a stopped process leads nobody it can tell about).
func (p *daemonProc) leading() bool {
	_, m := p.get("/metrics")
	return strings.Contains(m, "\nnsguard_leader 1\n")
}

// leaders returns the live processes whose gauge says they lead.
func (cl *clusterLab) leaders(among ...*daemonProc) []*daemonProc {
	if among == nil {
		among = cl.procs
	}
	var out []*daemonProc
	for _, p := range among {
		if p.alive() && p.leading() {
			out = append(out, p)
		}
	}
	return out
}

// oneLeader waits until exactly one of among leads and returns it and the
// time it took.
func (cl *clusterLab) oneLeader(t *testing.T, within time.Duration, among ...*daemonProc) (*daemonProc, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if ls := cl.leaders(among...); len(ls) == 1 {
			return ls[0], time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no single leader within %s", within)
	return nil, 0
}

func (cl *clusterLab) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, p := range cl.procs {
				t.Logf("%s's log:\n%s", p.name, tail(p.log(), 30))
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pages are Slack's top-level incident messages (not health messages).
func pages(rec *slackrecorder.Recorder) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range rec.Posts() {
		if p.ThreadTS == "" && !strings.Contains(p.Text, "nsguard on ") {
			out = append(out, p)
		}
	}
	return out
}

func replies(rec *slackrecorder.Recorder, ts, want string) int {
	n := 0
	for _, p := range rec.Posts() {
		if p.ThreadTS == ts && strings.Contains(p.Text+string(p.Blocks), want) {
			n++
		}
	}
	return n
}

// The "done when": three daemons with cluster.vantage names share
// one PostgreSQL; nsguard_leader is 1 on exactly one; a hijack is paged
// once, naming at least two vantage points; killing the leader with
// SIGKILL mid-cycle gives a new leader within 30 s (2 × the default 15s
// lease); the resolution arrives in the same thread; nothing reaches
// Slack twice.
func TestClusterDoneWhen(t *testing.T) {
	ctx := context.Background()
	cl := newClusterLab(t, "15s")
	for _, v := range []string{"vantage-fra", "vantage-hk", "vantage-sh"} {
		cl.start(t, v)
	}
	for _, p := range cl.procs {
		cl.waitFor(t, 30*time.Second, p.name+" ready", func() bool { code, _ := p.get("/readyz"); return code == 200 })
	}
	leader, _ := cl.oneLeader(t, 10*time.Second)
	for _, p := range cl.procs {
		_, b := p.get("/readyz")
		t.Logf("%s /readyz: %s", p.name, strings.TrimSpace(b))
	}

	hijacked := time.Now()
	if err := cl.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	cl.waitFor(t, 30*time.Second, "the page", func() bool { return len(pages(cl.slack)) > 0 })
	page := pages(cl.slack)[0]
	seen := regexp.MustCompile(`Seen from ([a-z, -]+)`).FindStringSubmatch(page.Text + string(page.Blocks))
	if seen == nil || strings.Count(seen[1], "vantage-") < 2 || !strings.Contains(page.Text, "[CRITICAL] shop-example.com") {
		t.Fatalf("page = %q\n%s", page.Text, page.Blocks)
	}
	t.Logf("hijack paged after %s: %q; %s", time.Since(hijacked).Round(time.Millisecond), page.Text, seen[0])
	cl.waitFor(t, 10*time.Second, "the evidence reply", func() bool { return replies(cl.slack, page.TS, "*Evidence*") == 1 })

	// Kill the leader outright, mid-cycle (its DNS cycle runs every second).
	killed := time.Now()
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.gone
	next, _ := cl.oneLeader(t, 30*time.Second)
	t.Logf("killed %s with SIGKILL; %s leads after %s (limit 2 × lease = 30s)", leader.name, next.name, time.Since(killed).Round(time.Millisecond))

	restored := time.Now()
	if err := cl.env.DNS.Restore(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	cl.waitFor(t, 30*time.Second, "the resolution in the page's thread", func() bool { return replies(cl.slack, page.TS, "*Resolved*") > 0 })
	t.Logf("restore to resolution: %s", time.Since(restored).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	if ps := pages(cl.slack); len(ps) != 1 {
		t.Errorf("%d pages, want one: %q", len(ps), ps[len(ps)-1].Text)
	}
	if dups, distinct := duplicates(cl.slack); dups != 0 {
		t.Errorf("%d of %d messages reached Slack twice", dups, distinct)
	}
	if ls := cl.leaders(); len(ls) != 1 {
		t.Errorf("%d leaders at the end", len(ls))
	}
}

// The leader is killed (SIGKILL) in the middle of delivering the page:
// Slack has the message, the leader never recorded it. Another replica
// leads within 2 × lease, takes the message over when its claim lapses,
// finds it in Slack and does not send it again; the rest of the thread
// follows, each message once.
func TestClusterLeaderKilledMidDelivery(t *testing.T) {
	ctx := context.Background()
	cl := newClusterLab(t, "3s")
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	cl.slack.SetResponder(func(n int, channel string) slackrecorder.Reply {
		first := false
		once.Do(func() { first = true })
		if first {
			close(inFlight)
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		return slackrecorder.Reply{}
	})
	for _, v := range []string{"vantage-fra", "vantage-hk", "vantage-sh"} {
		cl.start(t, v)
	}
	for _, p := range cl.procs {
		cl.waitFor(t, 30*time.Second, p.name+" ready", func() bool { code, _ := p.get("/readyz"); return code == 200 })
	}
	leader, _ := cl.oneLeader(t, 10*time.Second)
	if err := cl.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the page never reached Slack")
	}
	if !leader.leading() {
		t.Fatal("the leader changed before the kill")
	}
	leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.gone
	close(release) // Slack takes the message its sender no longer waits for
	next, took := cl.oneLeader(t, 2*3*time.Second)
	t.Logf("%s killed mid-delivery; %s leads after %s (limit 2 × lease = 6s)", leader.name, next.name, took.Round(time.Millisecond))
	cl.waitFor(t, 30*time.Second, "the evidence reply", func() bool {
		ps := pages(cl.slack)
		return len(ps) > 0 && replies(cl.slack, ps[0].TS, "*Evidence*") > 0
	})
	if !strings.Contains(next.log(), "Slack already has this message") {
		t.Errorf("%s did not look the message up before sending it again:\n%s", next.name, tail(next.log(), 20))
	}
	time.Sleep(2 * time.Second)
	if ps := pages(cl.slack); len(ps) != 1 {
		t.Errorf("%d pages, want one", len(ps))
	}
	if dups, distinct := duplicates(cl.slack); dups != 0 {
		t.Errorf("%d of %d messages reached Slack twice", dups, distinct)
	}
}

// Two replicas told they lead: the leader is paused (SIGSTOP) in the
// middle of sending the page, its lease lapses, the other ends its
// sessions and leads at the next epoch. Slack takes the page meanwhile.
// When the paused one resumes it still believes it leads: it gets Slack's
// answer and records the delivery — refused by the fence (ErrFenced) —
// and steps down. The new leader takes the message over when its claim
// lapses, finds it in Slack and does not send it again; nothing reaches
// Slack twice and the thread goes on.
func TestClusterPausedLeaderIsFenced(t *testing.T) {
	ctx := context.Background()
	cl := newClusterLab(t, "3s")
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	cl.slack.SetResponder(func(n int, channel string) slackrecorder.Reply {
		first := false
		once.Do(func() { first = true })
		if first {
			close(inFlight)
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		return slackrecorder.Reply{}
	})
	for _, v := range []string{"vantage-fra", "vantage-hk"} {
		cl.start(t, v)
	}
	for _, p := range cl.procs {
		cl.waitFor(t, 30*time.Second, p.name+" ready", func() bool { code, _ := p.get("/readyz"); return code == 200 })
	}
	old, _ := cl.oneLeader(t, 10*time.Second)
	var other *daemonProc
	for _, p := range cl.procs {
		if p != old {
			other = p
		}
	}
	st, err := store.OpenPostgres(ctx, cl.url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before, err := st.LeaderLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the page never reached Slack")
	}
	paused := time.Now()
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	_, took := cl.oneLeader(t, 2*3*time.Second, other)
	t.Logf("%s paused mid-delivery; %s leads after %s (limit 2 × lease = 6s)", old.name, other.name, took.Round(time.Millisecond))
	after, err := st.LeaderLease(ctx)
	if err != nil || after.Epoch != before.Epoch+1 || !strings.HasPrefix(after.Holder, other.name+"/") {
		t.Fatalf("lease after the takeover = %+v, %v; was %+v", after, err, before)
	}
	close(release) // Slack takes the page; its answer waits in the paused leader's socket

	// Both now believe they lead; the paused one wakes.
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	cl.waitFor(t, 10*time.Second, "the old leader to step down", func() bool {
		return strings.Contains(old.log(), "stepped down") && !old.leading()
	})
	t.Logf("%s resumed %s after its pause and stepped down", old.name, time.Since(paused).Round(time.Millisecond))
	cl.waitFor(t, 10*time.Second, "the fence to refuse the resumed leader's record of the delivery", func() bool {
		return strings.Contains(old.log(), "fenced off")
	})
	for _, line := range strings.Split(old.log(), "\n") {
		if strings.Contains(line, "fenced off") {
			t.Logf("refused: %s", line)
		}
	}
	cl.waitFor(t, 30*time.Second, "the evidence reply", func() bool {
		ps := pages(cl.slack)
		return len(ps) > 0 && replies(cl.slack, ps[0].TS, "*Evidence*") > 0
	})
	if !strings.Contains(other.log(), "Slack already has this message") {
		t.Errorf("%s did not look the page up before sending it again", other.name)
	}
	time.Sleep(2 * time.Second)
	// In the database: every delivery recorded is the new leader's, at
	// its epoch; none of the paused one's got in.
	msgs, err := st.OutboxMessages(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, m := range msgs {
		if m.DeliveredAt.IsZero() {
			continue
		}
		delivered++
		if m.ClaimEpoch != after.Epoch {
			t.Errorf("message %d (%s) was recorded as delivered under epoch %d; the new leader's is %d", m.ID, m.Kind, m.ClaimEpoch, after.Epoch)
		}
	}
	if delivered == 0 {
		t.Error("no delivery recorded")
	}
	if ls := cl.leaders(); len(ls) != 1 || ls[0] != other {
		t.Errorf("leaders after the pause: %d", len(ls))
	}
	if ps := pages(cl.slack); len(ps) != 1 {
		t.Errorf("%d pages, want one", len(ps))
	}
	if dups, distinct := duplicates(cl.slack); dups != 0 {
		t.Errorf("%d of %d messages reached Slack twice", dups, distinct)
	}
}

// `nsguard probe` as its own process beside one daemon: it says what it is
// (/readyz names the leader, nsguard_leader is 0), its observations are
// judged (the page is seen from both), and it never leads, not even once
// the daemon is killed and no other replica is left.
func TestClusterProbeProcess(t *testing.T) {
	ctx := context.Background()
	cl := newClusterLab(t, "3s")
	fra := cl.start(t, "vantage-fra")
	sh := cl.run(t, "vantage-sh", "probe")
	for _, p := range cl.procs {
		cl.waitFor(t, 30*time.Second, p.name+" ready", func() bool { code, _ := p.get("/readyz"); return code == 200 })
	}
	if l, _ := cl.oneLeader(t, 10*time.Second); l != fra {
		t.Fatalf("%s leads", l.name)
	}
	if _, b := sh.get("/readyz"); !strings.HasPrefix(b, "ready: probe (vantage vantage-sh), leader is vantage-fra/") {
		t.Fatalf("the probe's /readyz = %q", b)
	}
	if _, m := sh.get("/metrics"); !strings.Contains(m, "\nnsguard_leader 0\n") {
		t.Fatal("the probe's nsguard_leader is not 0")
	}
	if err := cl.env.DNS.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	cl.waitFor(t, 30*time.Second, "the page", func() bool { return len(pages(cl.slack)) > 0 })
	page := pages(cl.slack)[0]
	if all := page.Text + string(page.Blocks); !strings.Contains(all, "Seen from vantage-fra, vantage-sh") {
		t.Fatalf("page = %q\n%s", page.Text, page.Blocks)
	}
	fra.cmd.Process.Signal(syscall.SIGKILL)
	<-fra.gone
	time.Sleep(2 * 3 * time.Second)
	if sh.leading() || strings.Contains(sh.log(), `"msg":"leading"`) {
		t.Fatal("the probe leads")
	}
	if ps := pages(cl.slack); len(ps) != 1 {
		t.Errorf("%d pages, want one", len(ps))
	}
}
