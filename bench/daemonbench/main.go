// Command daemonbench measures `nsguard daemon` against N lab domains: the
// lab (DNS and registration) and a fake Slack run in this process, the
// daemon as a child process. It approves the baseline, starts the daemon,
// then repeatedly hijacks a random domain at a random moment and times how
// long until Slack hears of it, resetting in between. It prints CPU share,
// peak RSS, cycle times and the latency median.
//
//	go run ./bench/daemonbench -nsguard ./nsguard -n 10000 -interval 1m -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nsguard/nsguard/bench/procstat"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

func main() {
	var (
		n        = flag.Int("n", 10000, "generated domains")
		runs     = flag.Int("runs", 3, "hijacks to time")
		bin      = flag.String("nsguard", "./nsguard", "nsguard binary")
		interval = flag.Duration("interval", time.Minute, "delegation schedule")
		base     = flag.Int("base", 73, "lab base octet")
		maxRSS   = flag.Float64("max-rss", 200, "target: the daemon's peak RSS at most this many MB (0: none)")
		maxLat   = flag.Duration("max-latency", 0, "target: median hijack-to-Slack latency at most this (default: interval + 5s)")
	)
	flag.Parse()
	if *maxLat == 0 {
		*maxLat = *interval + 5*time.Second
	}
	ok, err := run(*n, *runs, *bin, *interval, byte(*base), *maxRSS, *maxLat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "daemonbench: a target was missed")
		os.Exit(1)
	}
}

func run(n, runs int, bin string, interval time.Duration, base byte, maxRSS float64, maxLat time.Duration) (bool, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nsguard-daemonbench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	env, err := labenv.Start(ctx, labenv.Options{Dir: dir, DNS: dnslab.Options{Base: base, World: dnslab.BenchWorld(n)}})
	if err != nil {
		return false, err
	}
	defer env.Close()
	slack := slackrecorder.New()
	defer slack.Close()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("xoxb-bench\n"), 0o600)
	extra := fmt.Sprintf(`listen: 127.0.0.1:0
alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  recheck: 5s
schedules: {delegation: "@every %s", registration: "@every 6h", audit: "0 9 * * *", jitter: 0s}
`, tokenFile, slack.URL(), interval)
	cfg, err := env.WriteConfig(extra)
	if err != nil {
		return false, err
	}
	// listen: 127.0.0.1:0 is fine for the daemon but we need its address.
	port := freePort()
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "listen: 127.0.0.1:0", "listen: 127.0.0.1:"+port, 1)), 0o644)

	start := time.Now()
	out, err := exec.Command(bin, "baseline", "approve", "--config", cfg, "--reason", "bench", "--by", "bench").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("baseline approve: %v: %s", err, tail(out))
	}
	fmt.Printf("lab: %d domains; baseline approved in %s\n", n, time.Since(start).Round(time.Second))

	cmd := exec.Command(bin, "daemon", "--config", cfg)
	logf, _ := os.Create(filepath.Join(dir, "daemon.log"))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return false, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	addr := "127.0.0.1:" + port
	started := time.Now()
	for get(addr, "/readyz") != 200 {
		if time.Since(started) > 5*time.Minute {
			return false, fmt.Errorf("daemon not ready after 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("daemon ready (first DNS and registration cycles) in %s\n", time.Since(started).Round(100*time.Millisecond))
	cpu0, wall0 := procstat.CPUSeconds(cmd.Process.Pid), time.Now()

	var lat []time.Duration
	domains := env.DNS.World().Domains
	for i := 0; i < runs; i++ {
		time.Sleep(time.Duration(rand.Int64N(int64(interval))))
		victim := domains[rand.IntN(len(domains))].Name
		before := len(slack.Posts())
		at := time.Now()
		if err := env.DNS.Hijack(ctx, victim); err != nil {
			return false, err
		}
		deadline := at.Add(3 * interval)
		for !posted(slack, before, victim) {
			if time.Now().After(deadline) {
				return false, fmt.Errorf("no page for %s within %s", victim, 3*interval)
			}
			time.Sleep(50 * time.Millisecond)
		}
		l := time.Since(at)
		lat = append(lat, l)
		fmt.Printf("run %d: hijack of %s paged after %s\n", i+1, victim, l.Round(10*time.Millisecond))
		env.DNS.Reset(ctx)
	}
	wall := time.Since(wall0).Seconds()
	cpu := procstat.CPUSeconds(cmd.Process.Pid) - cpu0
	sum, count, max := procstat.CycleStats(procstat.Metrics(addr))
	rss := procstat.PeakRSSMB(cmd.Process.Pid)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	med := lat[len(lat)/2]
	fmt.Printf("daemon over %.0f s: CPU %.1f%% of one core, peak RSS %.0f MB; DNS cycles: %d, mean %.1f s, slowest bucket ≤ %s (interval %s)\n",
		wall, 100*cpu/wall, rss, count, sum/float64(count), max, interval)
	fmt.Printf("hijack-to-Slack latency: median %s over %d runs (min %s, max %s)\n",
		med.Round(10*time.Millisecond), len(lat), lat[0].Round(10*time.Millisecond), lat[len(lat)-1].Round(10*time.Millisecond))
	ok := true
	verdict := func(name string, pass bool, got, want string) {
		word := "ok"
		if !pass {
			word, ok = "MISSED", false
		}
		fmt.Printf("target %s: %s (want %s): %s\n", name, got, want, word)
	}
	verdict("hijack-to-Slack latency (median)", med <= maxLat, med.Round(10*time.Millisecond).String(), "≤ "+maxLat.String())
	if maxRSS > 0 {
		verdict("peak RSS", rss <= maxRSS, fmt.Sprintf("%.0f MB", rss), fmt.Sprintf("≤ %.0f MB", maxRSS))
	}
	return ok, nil
}

func posted(rec *slackrecorder.Recorder, after int, domain string) bool {
	posts := rec.Posts()
	for _, p := range posts[min(after, len(posts)):] {
		if strings.Contains(p.Text, domain) {
			return true
		}
	}
	return false
}

func get(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metricsText is the daemon's /metrics page ("" when it cannot be read).
func freePort() string {
	return strconv.Itoa(20000 + rand.IntN(20000))
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
