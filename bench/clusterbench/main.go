// Command clusterbench measures nsguard past one machine against a single
// node, in one run: N lab domains on a schedule, first one `nsguard
// daemon` on a SQLite file, then three replicas (each a vantage point) on
// one PostgreSQL database, the same lab, the same baseline. The lab (DNS
// and registration), a fake Slack and PostgreSQL (pgtest: Debian's server
// in a temporary directory) run in this process; the daemons are child
// processes. For each setup it hijacks a random domain at a random moment,
// times the page, and resets, several times; it reads each daemon's DNS
// cycle times, CPU and memory, and the database's load over the hijack
// runs: transactions, rows, buffer traffic and WAL per second from
// pg_stat_database and pg_stat_wal; for SQLite, what the daemon wrote to
// disk (/proc/PID/io). It prints medians and exits 1 when a target is
// missed: a median page latency above interval + 5 s, a hijack paged more
// than once, a cycle slower than the interval.
//
//	go build -o nsguard ./cmd/nsguard
//	go run ./bench/clusterbench -nsguard ./nsguard -n 10000 -interval 1m -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nsguard/nsguard/bench/procstat"
	"github.com/nsguard/nsguard/internal/store/pgtest"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

func main() {
	var (
		n        = flag.Int("n", 10000, "generated domains")
		runs     = flag.Int("runs", 3, "hijacks to time per setup")
		bin      = flag.String("nsguard", "./nsguard", "nsguard binary")
		interval = flag.Duration("interval", time.Minute, "delegation schedule")
		replicas = flag.Int("replicas", 3, "replicas on PostgreSQL")
		base     = flag.Int("base", 74, "lab base octet")
	)
	flag.Parse()
	missed, err := run(*n, *runs, *replicas, *bin, *interval, byte(*base))
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
	if len(missed) > 0 {
		fmt.Println("TARGETS MISSED:")
		for _, m := range missed {
			fmt.Println("  " + m)
		}
		os.Exit(1)
	}
	fmt.Println("every target met")
}

// bench is the lab and what both setups share.
type bench struct {
	ctx      context.Context
	bin      string
	dir      string
	env      *labenv.Env
	slack    *slackrecorder.Recorder
	interval time.Duration
	runs     int
	extra    string
	missed   []string
}

// proc is one daemon process.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// result is one setup's figures.
type result struct {
	name        string
	latencies   []time.Duration
	cycleMeans  []float64 // seconds, per daemon
	cycleMax    []string
	cpu         float64 // share of one core, all daemons
	rssMB       []float64
	wall        float64
	dbCPU       float64 // PostgreSQL's share of one core
	txPerSec    float64
	rowsRead    float64
	rowsWritten float64
	bufBytes    float64 // shared-buffer traffic, bytes/s (hits and reads × 8 KiB)
	walBytes    float64
	diskBytes   float64 // SQLite: what the daemon wrote to disk, bytes/s
	pages       map[string]int
}

func run(n, runs, replicas int, bin string, interval time.Duration, base byte) ([]string, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nsguard-clusterbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env, err := labenv.Start(ctx, labenv.Options{Dir: dir, DNS: dnslab.Options{Base: base, World: dnslab.BenchWorld(n)}})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	b := &bench{ctx: ctx, bin: bin, dir: dir, env: env, slack: slackrecorder.New(), interval: interval, runs: runs}
	defer b.slack.Close()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("xoxb-bench\n"), 0o600); err != nil {
		return nil, err
	}
	b.extra = fmt.Sprintf(`alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  recheck: 5s
schedules: {delegation: "@every %s", registration: "@every 6h", audit: "0 9 * * *", jitter: 0s}
ui: {enabled: false}
`, tokenFile, b.slack.URL(), interval)

	// One baseline for both setups: approved into the SQLite file, copied
	// to PostgreSQL before the single node writes anything more.
	single := b.config("single", "", "")
	start := time.Now()
	if out, err := exec.Command(bin, "baseline", "approve", "--config", single, "--reason", "bench", "--by", "bench").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("baseline approve: %v: %s", err, tail(out))
	}
	fmt.Printf("lab: %d domains; baseline approved in %s\n", n, time.Since(start).Round(time.Second))
	srv, err := pgtest.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	defer srv.Stop()
	if err := srv.Admin(ctx, func(c *pgx.Conn) error { _, err := c.Exec(ctx, "CREATE DATABASE nsguard"); return err }); err != nil {
		return nil, err
	}
	urlFile := filepath.Join(dir, "db-url")
	if err := os.WriteFile(urlFile, []byte(srv.URL("nsguard")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "store", "migrate", "--from", "sqlite:"+env.StorePath(), "--to-file", urlFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("store migrate: %v: %s", err, tail(out))
	}
	fmt.Printf("PostgreSQL %s started; the baseline copied into it\n\n", srv.Version)

	var results []*result
	r, err := b.setup("single node, SQLite", []string{single}, nil)
	if err != nil {
		return nil, err
	}
	results = append(results, r)
	var cfgs []string
	for i := range replicas {
		cfgs = append(cfgs, b.config(fmt.Sprintf("vantage-%d", i+1), urlFile, fmt.Sprintf("vantage-%d", i+1)))
	}
	r, err = b.setup(fmt.Sprintf("%d replicas, PostgreSQL", replicas), cfgs, srv)
	if err != nil {
		return nil, err
	}
	results = append(results, r)
	report(results, interval, n)
	for _, r := range results {
		if med := median(r.latencies); med > interval+5*time.Second {
			b.missed = append(b.missed, fmt.Sprintf("%s: median page latency %s > interval + 5 s", r.name, med.Round(10*time.Millisecond)))
		}
		for v, c := range r.pages {
			if c != 1 {
				b.missed = append(b.missed, fmt.Sprintf("%s: %s paged %d times", r.name, v, c))
			}
		}
		for i, m := range r.cycleMeans {
			if m > interval.Seconds() {
				b.missed = append(b.missed, fmt.Sprintf("%s: daemon %d's mean DNS cycle %.1f s is longer than the interval", r.name, i+1, m))
			}
		}
	}
	return b.missed, nil
}

// config writes one daemon's config: the SQLite store, or the PostgreSQL
// URL in urlFile with a vantage name.
func (b *bench) config(name, urlFile, vantage string) string {
	y := b.env.ConfigYAML(b.extra + fmt.Sprintf("listen: 127.0.0.1:%d\n", freePort()))
	if urlFile != "" {
		y = regexp.MustCompile(`(?m)^store: \{path: .*\}$`).ReplaceAllString(y, fmt.Sprintf("store: {url_file: %q}", urlFile))
		y += fmt.Sprintf("cluster: {vantage: %s}\n", vantage)
	}
	p := filepath.Join(b.dir, name+".yaml")
	os.WriteFile(p, []byte(y), 0o644)
	return p
}

// setup runs one set of daemons, times the hijacks, and stops them.
func (b *bench) setup(name string, cfgs []string, srv *pgtest.Server) (*result, error) {
	fmt.Printf("== %s\n", name)
	r := &result{name: name, pages: map[string]int{}}
	var procs []*proc
	exitedAll := make(chan struct{}, len(cfgs))
	exited := make(chan string, len(cfgs))
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Signal(os.Interrupt)
		}
		for range procs {
			<-exitedAll
		}
	}()
	for _, cfg := range cfgs {
		nm := strings.TrimSuffix(filepath.Base(cfg), ".yaml")
		p := &proc{name: nm, cmd: exec.Command(b.bin, "daemon", "--config", cfg)}
		logf, err := os.Create(filepath.Join(b.dir, nm+".log"))
		if err != nil {
			return nil, err
		}
		p.cmd.Stderr = logf
		if err := p.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { p.cmd.Wait(); exited <- p.name; exitedAll <- struct{}{} }()
		m := regexp.MustCompile(`(?m)^listen: (.*)$`).FindStringSubmatch(readFile(cfg))
		p.addr = m[1]
		procs = append(procs, p)
	}
	started := time.Now()
	for _, p := range procs {
		for get(p.addr, "/readyz") != 200 {
			select {
			case who := <-exited:
				return nil, fmt.Errorf("%s exited: %s", who, tail([]byte(readFile(filepath.Join(b.dir, who+".log")))))
			default:
			}
			if time.Since(started) > 10*time.Minute {
				return nil, fmt.Errorf("%s not ready after 10 minutes", p.name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Printf("ready (first DNS cycle%s) in %s\n", map[bool]string{true: " of every replica", false: " and registration"}[len(procs) > 1], time.Since(started).Round(100*time.Millisecond))
	// A cycle of settling: the first cycles are not what a running
	// cluster costs.
	time.Sleep(b.interval)

	cpu0 := 0.0
	for _, p := range procs {
		cpu0 += procstat.CPUSeconds(p.cmd.Process.Pid)
	}
	var db0 dbStats
	var dbCPU0, disk0 float64
	if srv != nil {
		db0 = readDB(b.ctx, srv)
		dbCPU0 = serverCPUSeconds(srv.PID())
	} else {
		disk0 = writeBytes(procs[0].cmd.Process.Pid)
	}
	wall0 := time.Now()

	domains := b.env.DNS.World().Domains
	for i := 0; i < b.runs; i++ {
		time.Sleep(time.Duration(rand.Int64N(int64(b.interval))))
		victim := domains[rand.IntN(len(domains))].Name
		before := len(b.slack.Posts())
		at := time.Now()
		if err := b.env.DNS.Hijack(b.ctx, victim); err != nil {
			return nil, err
		}
		deadline := at.Add(3 * b.interval)
		for countPages(b.slack, before, victim) == 0 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s: no page for %s within %s", name, victim, 3*b.interval)
			}
			time.Sleep(50 * time.Millisecond)
		}
		l := time.Since(at)
		r.latencies = append(r.latencies, l)
		fmt.Printf("run %d: hijack of %s paged after %s\n", i+1, victim, l.Round(10*time.Millisecond))
		// A second page would come within the recheck rounds.
		time.Sleep(15 * time.Second)
		r.pages[victim] = countPages(b.slack, before, victim)
		b.env.DNS.Reset(b.ctx)
	}

	r.wall = time.Since(wall0).Seconds()
	cpu := -cpu0
	for _, p := range procs {
		cpu += procstat.CPUSeconds(p.cmd.Process.Pid)
		sum, count, slowest := procstat.CycleStats(procstat.Metrics(p.addr))
		if count > 0 {
			r.cycleMeans = append(r.cycleMeans, sum/float64(count))
		}
		r.cycleMax = append(r.cycleMax, slowest)
		r.rssMB = append(r.rssMB, procstat.PeakRSSMB(p.cmd.Process.Pid))
	}
	r.cpu = cpu / r.wall
	if srv != nil {
		db1 := readDB(b.ctx, srv)
		r.dbCPU = (serverCPUSeconds(srv.PID()) - dbCPU0) / r.wall
		r.txPerSec = float64(db1.xacts-db0.xacts) / r.wall
		r.rowsRead = float64(db1.rowsRead-db0.rowsRead) / r.wall
		r.rowsWritten = float64(db1.rowsWritten-db0.rowsWritten) / r.wall
		r.bufBytes = float64(db1.blocks-db0.blocks) * 8192 / r.wall
		r.walBytes = float64(db1.wal-db0.wal) / r.wall
		leaders := 0
		for _, p := range procs {
			if strings.Contains("\n"+procstat.Metrics(p.addr), "\nnsguard_leader 1\n") {
				leaders++
			}
		}
		if leaders != 1 {
			b.missed = append(b.missed, fmt.Sprintf("%s: %d leaders at the end", name, leaders))
		}
	} else {
		r.diskBytes = (writeBytes(procs[0].cmd.Process.Pid) - disk0) / r.wall
	}
	fmt.Println()
	return r, nil
}

func report(rs []*result, interval time.Duration, n int) {
	fmt.Printf("== %d domains, DNS every %s, confirmations 2, recheck 5s (medians)\n", n, interval)
	fmt.Printf("%-26s %-34s %-28s %-12s %-10s\n", "setup", "hijack → page (min–max)", "DNS cycle, mean per daemon", "daemon CPU", "peak RSS")
	for _, r := range rs {
		sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
		lat := fmt.Sprintf("%s (%s–%s)", median(r.latencies).Round(100*time.Millisecond), r.latencies[0].Round(100*time.Millisecond), r.latencies[len(r.latencies)-1].Round(100*time.Millisecond))
		var cyc []string
		for _, m := range r.cycleMeans {
			cyc = append(cyc, fmt.Sprintf("%.1fs", m))
		}
		var rss []string
		for _, m := range r.rssMB {
			rss = append(rss, fmt.Sprintf("%.0f", m))
		}
		fmt.Printf("%-26s %-34s %-28s %-12s %-10s\n", r.name, lat, strings.Join(cyc, " "), fmt.Sprintf("%.1f%%", 100*r.cpu), strings.Join(rss, "/")+" MB")
	}
	fmt.Println()
	fmt.Println("database load over the hijack runs:")
	for _, r := range rs {
		if r.txPerSec > 0 {
			fmt.Printf("  %s: %.0f transactions/s (%.1f per domain per cycle), %.0f rows read/s, %.0f rows written/s, shared buffers %.1f MB/s, WAL %.1f KB/s (%.0f bytes per domain per cycle), PostgreSQL CPU %.1f%% of one core\n",
				r.name, r.txPerSec, r.txPerSec*interval.Seconds()/float64(n), r.rowsRead, r.rowsWritten, r.bufBytes/1e6, r.walBytes/1e3, r.walBytes*interval.Seconds()/float64(n), 100*r.dbCPU)
		} else {
			fmt.Printf("  %s: the daemon wrote %.1f KB/s to disk (%.0f bytes per domain per cycle)\n", r.name, r.diskBytes/1e3, r.diskBytes*interval.Seconds()/float64(n))
		}
	}
	fmt.Printf("target: median hijack → page ≤ interval + 5 s = %s; each hijack paged once; mean cycle inside the interval\n", interval+5*time.Second)
}

type dbStats struct{ xacts, rowsRead, rowsWritten, blocks, wal int64 }

func readDB(ctx context.Context, srv *pgtest.Server) dbStats {
	var s dbStats
	_ = srv.Admin(ctx, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_returned + tup_fetched, tup_inserted + tup_updated + tup_deleted,
			blks_hit + blks_read FROM pg_stat_database WHERE datname = 'nsguard'`).Scan(&s.xacts, &s.rowsRead, &s.rowsWritten, &s.blocks); err != nil {
			return err
		}
		var wal float64
		err := c.QueryRow(ctx, `SELECT wal_bytes FROM pg_stat_wal`).Scan(&wal)
		s.wal = int64(wal)
		return err
	})
	return s
}

func countPages(rec *slackrecorder.Recorder, after int, domain string) int {
	posts := rec.Posts()
	n := 0
	for _, p := range posts[min(after, len(posts)):] {
		if p.ThreadTS == "" && strings.Contains(p.Text, domain) {
			n++
		}
	}
	return n
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func get(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serverCPUSeconds is the CPU time of the postmaster and its children
// (the backends, which it forks), those that exited included (its
// children's time, cutime and cstime).
func serverCPUSeconds(pid int) float64 {
	total := procstat.Seconds(procstat.Stat(pid), 13, 14)
	parent := strconv.Itoa(pid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procstat.Stat(p); f != nil && (p == pid || f[1] == parent) {
			total += procstat.Seconds(f, 11, 12)
		}
	}
	return total
}

func writeBytes(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "write_bytes:") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, "write_bytes:")), 64)
			return v
		}
	}
	return 0
}

// freePort asks the kernel for a port nobody listens on.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 20000 + rand.IntN(20000)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
