package checker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/lab/dnslab"
)

// The lab of BenchmarkCheckDNS runs in a helper process (this test binary,
// started again with labEnv set), so the CPU time and the allocations the
// benchmark reports are nsguard's alone, not the lab servers'.
const (
	labEnv     = "NSGUARD_BENCH_LAB"     // "N backend base dir" in the helper
	backendEnv = "NSGUARD_BENCH_BACKEND" // inprocess (default) or bind
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(labEnv); spec != "" {
		os.Exit(serveLab(spec))
	}
	os.Exit(m.Run())
}

// serveLab runs a bench lab until its stdin closes: it writes the config
// nsguard uses to DIR/bench.yaml and says "ready" on stdout.
func serveLab(spec string) int {
	var n, base int
	var backend, dir string
	if _, err := fmt.Sscan(spec, &n, &backend, &base, &dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench lab: bad spec:", err)
		return 2
	}
	opts := dnslab.Options{Base: byte(base), Dir: dir, World: dnslab.BenchWorld(n)}
	if backend == "bind" {
		b, err := dnslab.NewBIND(dnslab.BINDOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench lab:", err)
			return 1
		}
		opts.Backend = b
	}
	lab, err := dnslab.Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench lab:", err)
		return 1
	}
	defer lab.Close()
	cfg := lab.BenchConfigYAML(filepath.Join(dir, "nsguard.db"))
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(cfg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench lab:", err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startLabProcess starts the helper and returns the config's path.
func startLabProcess(b *testing.B, n int) string {
	b.Helper()
	backend, base := os.Getenv(backendEnv), 71
	if backend == "" {
		backend = "inprocess"
	}
	if backend == "bind" {
		base = 72 // the bench base: no test uses it
	}
	dir := b.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s %d %s", labEnv, n, backend, base, dir))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		b.Fatalf("bench lab did not start: %q %v", line, err)
	}
	return filepath.Join(dir, "bench.yaml")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckDNS is `nsguard check --only dns -o json` without the
// process: load the config of N lab domains, check them all with each
// domain's JSON written as it is done (cycle-ms includes the JSON). It
// reports per domain what nsguard itself spends (CPU time and
// allocations), the queries it sends, and how long each stage takes.
//
//	go test -run '^$' -bench CheckDNS -benchtime 3x ./internal/checker
//	NSGUARD_BENCH_BACKEND=bind /work/bin/nsrun go test -run '^$' -bench 'CheckDNS/domains=10000' -benchtime 3x ./internal/checker
func BenchmarkCheckDNS(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("domains="+strconv.Itoa(n), func(b *testing.B) {
			cfgPath := startLabProcess(b, n)
			ctx := context.Background()
			// The collector as nsguard check sets it (cmd/nsguard batchGC).
			defer debug.SetGCPercent(debug.SetGCPercent(400))
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
			var loadT, cycleT time.Duration
			queries := 0
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				cfg, err := config.Load(cfgPath)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				ck, err := checker.New(cfg, checker.Options{})
				if err != nil {
					b.Fatal(err)
				}
				// As nsguard check --only dns -o json: each domain's JSON is
				// written as it is done.
				js := checker.NewJSONStream(io.Discard, false)
				ck.Run(ctx, cfg.Domains, checker.RunOptions{Classes: []string{checker.DNS}, OnResult: js.Add})
				ck.Close()
				sum, err := js.Close(time.Since(t1))
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if sum.OK != n {
					b.Fatalf("%d of %d domains ok: %+v", sum.OK, n, sum)
				}
				loadT += t1.Sub(t0)
				cycleT += t2.Sub(t1)
				queries += sum.Queries
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&ms1)
			per := float64(b.N * n)
			b.ReportMetric(per/b.Elapsed().Seconds(), "domains/s")
			b.ReportMetric(float64(cpu.Microseconds())/per, "cpu-µs/domain")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/per, "allocs/domain")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/per, "B/domain")
			b.ReportMetric(float64(queries)/per, "queries/domain")
			b.ReportMetric(float64(loadT.Milliseconds())/float64(b.N), "load-ms")
			b.ReportMetric(float64(cycleT.Milliseconds())/float64(b.N), "cycle-ms")
		})
	}
}
