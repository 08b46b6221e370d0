// Command checkbench measures `nsguard check` against a lab of N generated
// domains: it serves the lab in this process and runs the nsguard binary as
// a child process, so the RSS it reports is nsguard's alone. It prints each
// run and the median of the runs.
//
//	go run ./bench/checkbench -nsguard ./nsguard -n 10000 -runs 3
//	go run ./bench/checkbench -nsguard ./nsguard -n 1000 -backend bind -dnsperf
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nsguard/nsguard/lab/dnslab"
)

type runResult struct {
	wall      time.Duration
	rssMB     float64
	domains   int
	queries   int
	perDomain []int // queries per unsigned domain
	perSigned []int
	notOK     int
}

func main() {
	var (
		n       = flag.Int("n", 1000, "generated domains")
		runs    = flag.Int("runs", 3, "runs (the median is reported)")
		bin     = flag.String("nsguard", "./nsguard", "nsguard binary")
		backend = flag.String("backend", "inprocess", "inprocess or bind")
		base    = flag.Int("base", 71, "lab base octet (127.BASE.0.0/16)")
		perf    = flag.Bool("dnsperf", false, "also measure the lab servers' raw capacity with dnsperf")
	)
	flag.Parse()
	if err := run(*n, *runs, *bin, *backend, byte(*base), *perf); err != nil {
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		os.Exit(1)
	}
}

func run(n, runs int, bin, backend string, base byte, perf bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nsguard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := dnslab.Options{Base: base, Dir: dir, World: dnslab.BenchWorld(n)}
	if backend == "bind" {
		b, err := dnslab.NewBIND(dnslab.BINDOptions{})
		if err != nil {
			return err
		}
		opts.Backend = b
	}
	start := time.Now()
	lab, err := dnslab.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer lab.Close()
	fmt.Printf("lab: %s backend, %d domains (a tenth signed), port %d, ready in %s\n", backend, n, lab.Port(), time.Since(start).Round(time.Millisecond))
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(lab.ConfigYAML(filepath.Join(dir, "nsguard.db"), "")), 0o644); err != nil {
		return err
	}
	signed := map[string]bool{}
	for _, d := range lab.World().Domains {
		signed[d.Name] = d.Signed
	}
	var results []runResult
	for i := 0; i < runs; i++ {
		r, err := once(bin, cfgPath, signed)
		if err != nil {
			return err
		}
		results = append(results, r)
		fmt.Printf("run %d: %d domains in %s = %.0f domains/s; %.2f queries/domain (unsigned median %d, signed median %d); peak RSS %.0f MB; not ok %d\n",
			i+1, r.domains, r.wall.Round(time.Millisecond), float64(r.domains)/r.wall.Seconds(),
			float64(r.queries)/float64(r.domains), median(r.perDomain), median(r.perSigned), r.rssMB, r.notOK)
	}
	walls := make([]float64, len(results))
	rss := make([]float64, len(results))
	qpd := make([]float64, len(results))
	for i, r := range results {
		walls[i] = r.wall.Seconds()
		rss[i] = r.rssMB
		qpd[i] = float64(r.queries) / float64(r.domains)
	}
	mw := medianF(walls)
	fmt.Printf("median of %d: %d domains in %.2f s = %.0f domains/s, %.2f queries/domain, %.0f queries/s, peak RSS %.0f MB\n",
		runs, n, mw, float64(n)/mw, medianF(qpd), medianF(qpd)*float64(n)/mw, medianF(rss))
	if perf {
		return dnsperf(lab, n, dir, medianF(qpd)*float64(n)/mw)
	}
	return nil
}

// once runs nsguard check as a child process and reads its JSON report.
func once(bin, cfg string, signed map[string]bool) (runResult, error) {
	cmd := exec.Command(bin, "check", "--only", "dns", "-o", "json", "--config", cfg)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil && out.Len() == 0 {
		return runResult{}, fmt.Errorf("nsguard check: %v: %s", err, errb.String())
	}
	var rep struct {
		Domains []struct {
			Domain string `json:"domain"`
			Status string `json:"status"`
			Error  string `json:"error"`
			DNS    struct {
				Queries int `json:"queries"`
			} `json:"dns"`
			Findings []struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			} `json:"findings"`
		} `json:"domains"`
		Summary struct {
			Queries int `json:"dns_queries"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return runResult{}, fmt.Errorf("reading the report: %w", err)
	}
	r := runResult{wall: wall, domains: len(rep.Domains), queries: rep.Summary.Queries}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssMB = float64(ru.Maxrss) / 1024
	}
	for _, d := range rep.Domains {
		if d.Status != "ok" {
			r.notOK++
			for _, f := range d.Findings {
				fmt.Fprintf(os.Stderr, "  %s: %s %s\n", d.Domain, f.ID, f.Message)
			}
			if d.Error != "" {
				fmt.Fprintf(os.Stderr, "  %s: error %s\n", d.Domain, d.Error)
			}
		}
		if signed[d.Domain] {
			r.perSigned = append(r.perSigned, d.DNS.Queries)
		} else {
			r.perDomain = append(r.perDomain, d.DNS.Queries)
		}
	}
	return r, nil
}

// dnsperf measures the raw capacity of the lab's busiest servers: the com
// TLD server (parent questions) and a provider server (child questions).
func dnsperf(lab *dnslab.Lab, n int, dir string, nsguardQPS float64) error {
	w := lab.World()
	targets := []struct{ server, qtype string }{{"a.gtld-servers.net", "NS"}, {"ns1.provider-a.net", "SOA"}}
	for _, t := range targets {
		var b strings.Builder
		for _, d := range w.Domains {
			if strings.HasSuffix(d.Name, ".com") || t.qtype == "SOA" {
				fmt.Fprintf(&b, "%s %s\n", d.Name, t.qtype)
			}
		}
		qf := filepath.Join(dir, "queries-"+t.qtype)
		if err := os.WriteFile(qf, []byte(b.String()), 0o644); err != nil {
			return err
		}
		addr := lab.AddrOf(t.server).String()
		out, err := exec.Command("dnsperf", "-s", addr, "-p", fmt.Sprint(lab.Port()), "-d", qf, "-l", "10", "-c", "4").CombinedOutput()
		if err != nil {
			return fmt.Errorf("dnsperf: %v: %s", err, out)
		}
		qps := ""
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "Queries per second") {
				qps = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "Queries per second:"))
			}
		}
		fmt.Printf("dnsperf %s (%s, %s queries): %s queries/s\n", t.server, addr, t.qtype, qps)
	}
	fmt.Printf("nsguard's whole-cycle query rate: %.0f queries/s (over all servers)\n", nsguardQPS)
	return nil
}

func median(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}

func medianF(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
