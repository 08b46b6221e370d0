//go:build linux

package daemon_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// The fault-injection suite: the daemon under the failures operators
// meet, checked for the one property that matters — it never looks healthy
// while it cannot do its job, and it says so in Slack. Store faults need a
// file system of their own (a small tmpfs): the tests run as root, as the
// whole suite does (BIND needs it too).

// smallFS mounts a tmpfs of size bytes for one test.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the fault-injection tests mount a tmpfs: run them as root (make test as root, as CI does)")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file until the file system is full, and returns a function
// that frees the space again.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// Then byte by byte: no partial page left for SQLite either.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func fastHealth(o *daemon.Options) {
	o.HealthInterval = 200 * time.Millisecond
	o.HealthRepeat = time.Hour
}

// healthPosts are the daemon's own health messages (sent straight to
// Slack, never through the store).
func healthPosts(rec *slackrecorder.Recorder, want string) []slackrecorder.Post {
	var out []slackrecorder.Post
	for _, p := range rec.Posts() {
		if strings.Contains(p.Text, "nsguard on ") && strings.Contains(p.Text+string(p.Blocks), want) {
			out = append(out, p)
		}
	}
	return out
}

func metric(t *testing.T, addr, line string) bool {
	t.Helper()
	return strings.Contains(body(t, addr, "/metrics"), "\n"+line+"\n")
}

// Full disk: the daemon is not ready and Slack is told within a minute
// (here, within a health interval); when space returns it says so, and the
// lock removal it could not record meanwhile pages.
func TestFullDiskIsNotReadyAndSaysSo(t *testing.T) {
	dir := smallFS(t, "8m")
	r := newRigOn(t, labenv.Options{Dir: dir}, "@every 1s", "1h", "@every 1s")
	r.tune = fastHealth
	r.approveAll()
	run := r.start()

	free := fill(t, dir)
	filled := time.Now()
	if err := r.env.Reg.Update("shop-example.com", func(d *reglab.Domain) {
		var keep []string
		for _, st := range d.Statuses {
			if st != "serverTransferProhibited" {
				keep = append(keep, st)
			}
		}
		d.Statuses = keep
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the degraded message in Slack", func() bool { return len(healthPosts(r.slack, "cannot do its job: store")) > 0 })
	told := time.Since(filled)
	msg := healthPosts(r.slack, "cannot do its job: store")[0]
	if !strings.Contains(msg.Text+string(msg.Blocks), "disk is full") {
		t.Errorf("the degraded message does not say why: %s %s", msg.Text, msg.Blocks)
	}
	if code := get(run.addr, "/readyz"); code != 503 || !strings.Contains(body(t, run.addr, "/readyz"), "store: cannot write to the store") {
		t.Errorf("/readyz = %d %q on a full disk", code, body(t, run.addr, "/readyz"))
	}
	if !metric(t, run.addr, `nsguard_up{component="store"} 0`) {
		t.Errorf("nsguard_up{component=\"store\"} is not 0:\n%s", grep(body(t, run.addr, "/metrics"), "nsguard_up"))
	}
	if get(run.addr, "/healthz") != 200 {
		t.Error("/healthz failed: a restart would not free the disk")
	}
	t.Logf("disk full → Slack told in %s", told.Round(10*time.Millisecond))
	if n := strings.Count(r.logs.String(), `"msg":"cannot do its job"`); n != 1 {
		t.Errorf("the log says it %d times, want once per change", n)
	}

	free()
	waitFor(t, 30*time.Second, "the recovery message", func() bool { return len(healthPosts(r.slack, "store works again")) > 0 })
	waitFor(t, 30*time.Second, "the lock removal's page", func() bool {
		for _, p := range topLevel(r.slack.Posts()) {
			if strings.Contains(string(p.Blocks), "serverTransferProhibited") {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "ready again", func() bool { return get(run.addr, "/readyz") == 200 })
	noDuplicates(t, r.slack.Posts())
}

// A store on a read-only file system (a volume mounted wrong; a running
// file system cannot turn read-only under open files on Linux, so the
// daemon starts on one): it either refuses to start, saying why, or runs
// not ready and says so — never ready and blind.
func TestReadOnlyStore(t *testing.T) {
	dir := smallFS(t, "16m")
	r := newRigOn(t, labenv.Options{Dir: dir}, "@every 1s", "1h", "@every 1h")
	r.approveAll()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "") })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	ln := listen(t)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: r.cfg, ConfigPath: r.cfgPath, Listener: ln, HealthInterval: 200 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(r.logs, nil))})
	}()
	select {
	case err := <-done:
		if err == nil || store.Classify(err) != store.FaultReadOnly || !strings.Contains(err.Error(), r.cfg.Store.Path) {
			t.Fatalf("start on a read-only store: %v (want a clear refusal naming the file)", err)
		}
		t.Logf("refused at start: %v", err)
	case <-time.After(3 * time.Second):
		addr := ln.Addr().String()
		if code := get(addr, "/readyz"); code != 503 || !strings.Contains(body(t, addr, "/readyz"), "read-only") {
			t.Fatalf("running on a read-only store: /readyz %d %q", code, body(t, addr, "/readyz"))
		}
		cancel()
		<-done
	}
}

// A corrupt store at start is a clear error naming the file and how to
// restore it; nothing runs blind.
func TestCorruptStoreAtStartRefuses(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.approveAll()
	st, err := store.Open(context.Background(), r.cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // enough pages that the middle of the file is data
		if err := st.Heartbeat(context.Background(), strings.Repeat("x", 300)+string(rune('a'+i%26))+strings.Repeat("y", i), time.Now(), "padding"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	f, err := os.OpenFile(r.cfg.Store.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, 16<<10)
	rand.Read(junk)
	f.WriteAt(junk, fi.Size()/3)
	f.Close()

	err = daemon.Run(context.Background(), daemon.Options{Config: r.cfg, ConfigPath: r.cfgPath})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), r.cfg.Store.Path) || !strings.Contains(err.Error(), "nsguard store restore") {
		t.Fatalf("start on a corrupt store: %v", err)
	}
	if len(r.slack.Posts()) != 0 {
		t.Fatal("a refused start sent something")
	}
}

// Slack refusing nsguard for good (a revoked token): not ready, and the
// reason is Slack's own.
func TestSlackRefusingForGoodIsNotReady(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.tune = fastHealth
	r.approveAll()
	r.slack.SetResponder(func(int, string) slackrecorder.Reply { return slackrecorder.Reply{Error: "invalid_auth"} })
	run := r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "not ready", func() bool { return get(run.addr, "/readyz") == 503 })
	if b := body(t, run.addr, "/readyz"); !strings.Contains(b, "slack: Slack refuses nsguard's messages for good") || !strings.Contains(b, "invalid_auth") {
		t.Fatalf("/readyz = %q", b)
	}
	if !metric(t, run.addr, `nsguard_up{component="slack"} 0`) {
		t.Error("nsguard_up{component=\"slack\"} is not 0")
	}
}

// Slack slow and failing for a while: the outbox is stuck, said on
// /readyz; it recovers when Slack does, and nothing is lost or doubled.
func TestSlackDownMakesTheOutboxStuck(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.tune = func(o *daemon.Options) {
		fastHealth(o)
		o.OutboxStuckAfter, o.SlackFailingAfter = 2*time.Second, 2*time.Second
	}
	r.approveAll()
	var down = make(chan struct{})
	r.slack.SetResponder(func(int, string) slackrecorder.Reply {
		select {
		case <-down:
			return slackrecorder.Reply{}
		default:
			time.Sleep(300 * time.Millisecond) // slow, then failing
			return slackrecorder.Reply{Status: 503}
		}
	})
	run := r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "not ready", func() bool {
		b := body(t, run.addr, "/readyz")
		return strings.Contains(b, "outbox:") && strings.Contains(b, "http 503")
	})
	close(down)
	waitFor(t, 30*time.Second, "ready again", func() bool { return get(run.addr, "/readyz") == 200 })
	waitFor(t, 10*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
	noDuplicates(t, r.slack.Posts())
}

// A storm of SIGHUPs during cycles: every reload is applied or refused
// cleanly, the hijack pages once, nothing is paged twice.
func TestSIGHUPStormDuringCycles(t *testing.T) {
	r := newRig(t, "@every 1s", "1h")
	r.approveAll()
	run := r.start()
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Second)
	sent := 0
	for time.Now().Before(deadline) {
		select {
		case run.reload <- struct{}{}:
			sent++
		default:
		}
		time.Sleep(time.Duration(10+sent%40) * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "the page", func() bool { return len(topLevel(r.slack.Posts())) > 0 })
	time.Sleep(2 * time.Second)
	if tl := topLevel(r.slack.Posts()); len(tl) != 1 {
		t.Fatalf("%d pages after %d reloads, want 1", len(tl), sent)
	}
	noDuplicates(t, r.slack.Posts())
	if get(run.addr, "/readyz") != 200 {
		t.Fatalf("not ready after the storm: %s", body(t, run.addr, "/readyz"))
	}
	t.Logf("%d reloads during cycles", strings.Count(r.logs.String(), `"msg":"config reloaded"`))
}

// A store damaged under a running daemon: the first error a cycle meets
// runs quick_check, and the daemon stops looking healthy: not ready, the
// reason on /readyz, Slack told, /metrics still served.
func TestCorruptStoreWhileRunning(t *testing.T) {
	r := newRigWith(t, "@every 1s", "1h", "@every 1s")
	r.tune = func(o *daemon.Options) {
		fastHealth(o)
		o.IntegrityInterval = time.Second
	}
	r.approveAll()
	run := r.start()
	// History for a domain: a store of some pages.
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	f, err := os.OpenFile(r.cfg.Store.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, fi.Size()/2)
	rand.Read(junk)
	f.WriteAt(junk, fi.Size()/4)
	f.Close()
	corrupted := time.Now()
	if err := r.env.DNS.Hijack(context.Background(), "pay-example.org"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "not ready with the store corrupt", func() bool {
		return strings.Contains(body(t, run.addr, "/readyz"), "corrupt")
	})
	t.Logf("corrupted → not ready in %s", time.Since(corrupted).Round(10*time.Millisecond))
	waitFor(t, 10*time.Second, "Slack told", func() bool { return len(healthPosts(r.slack, "is corrupt")) > 0 })
	if code := get(run.addr, "/metrics"); code != 200 {
		t.Errorf("/metrics answered %d with a corrupt store", code)
	}
}
