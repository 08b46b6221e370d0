// Command checkbench measures `nsguard check --only dns` against a lab of N
// generated domains: it serves the lab from this process (or real BIND 9)
// and runs the nsguard binary as a child process, so the RSS it reports is
// nsguard's alone. With -ceiling it also measures, before the first run and
// after each run, what the lab's servers answer at most for the same work:
// dnsperf sending the minimal query mix of a domain check to all the lab's
// servers at once, as the very packets nsguard sends (RD clear), and beside
// it as dnsperf's own text input sends the questions (RD set), which BIND
// answers with less. Each run is held against the mean of the two ceilings
// that bracket it, and the target is the median of the runs' fractions
// against the first.
// It prints each run, the medians, and each target's verdict; it exits 1
// when a target is missed.
//
//	go run ./bench/checkbench -nsguard ./nsguard -n 10000 -runs 3
//	go run ./bench/checkbench -nsguard ./nsguard -n 10000 -backend bind -ceiling -min-fraction 0.35 -max-wall 1.5s
//
// With -against OLD it also runs a second build, OLD, right after each run
// of -nsguard on the same lab (the order alternates), and prints how the
// two compare run by run: on a shared 2-core machine whose speed drifts by
// a third and more from minute to minute, only paired runs tell a change
// from noise.
//
//	go run ./bench/checkbench -nsguard ./nsguard -against ./nsguard.old -n 10000 -backend bind -runs 9
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/bench/procstat"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/lab/dnslab"
)

type runResult struct {
	wall      time.Duration
	cpu       time.Duration
	serverCPU time.Duration // named's meanwhile (0: no named)
	rssMB     float64
	domains   int
	queries   int
	perDomain []int // queries per unsigned domain
	perSigned []int
	notOK     int
}

type targets struct {
	maxWall     time.Duration
	minFraction float64
	maxRSS      float64
	maxQueries  int
}

// measureEnv makes checkbench a wrapper that runs its arguments as a
// child and reports the child's wall time and rusage on stderr. nsguard is
// started through it because Go starts children with vfork: the kernel
// then counts the starting process's resident set (this benchmark's, with
// the lab's world and earlier reports in it) in the child's peak RSS.
const measureEnv = "CHECKBENCH_MEASURE"

const measurePrefix = "checkbench-measure:"

func main() {
	if os.Getenv(measureEnv) == "1" {
		os.Exit(measure(os.Args[1:]))
	}
	var (
		n       = flag.Int("n", 1000, "generated domains")
		runs    = flag.Int("runs", 3, "runs (the median is reported)")
		bin     = flag.String("nsguard", "./nsguard", "nsguard binary")
		against = flag.String("against", "", "a second nsguard binary to compare with, run after each run of -nsguard (order alternating)")
		backend = flag.String("backend", "inprocess", "inprocess or bind")
		base    = flag.Int("base", 71, "lab base octet (127.BASE.0.0/16)")
		ceiling = flag.Bool("ceiling", false, "before the first run and after each run, measure the servers' ceiling for the same query mix with dnsperf")
		perfFor = flag.Duration("ceiling-time", 5*time.Second, "how long each dnsperf ceiling run lasts")
		clients = flag.Int("ceiling-clients", 2, "dnsperf -c: clients of each server's dnsperf")
		outst   = flag.Int("ceiling-outstanding", 200, "dnsperf -q: queries in flight of each server's dnsperf")
		t       targets
	)
	flag.DurationVar(&t.maxWall, "max-wall", 0, "target: median wall time at most this (0: none)")
	flag.Float64Var(&t.minFraction, "min-fraction", 0, "target: median domains/s at least this fraction of the dnsperf ceiling (0: none)")
	flag.Float64Var(&t.maxRSS, "max-rss", 0, "target: median peak RSS at most this many MB (0: none)")
	flag.IntVar(&t.maxQueries, "max-queries", 0, "target: an unsigned domain costs at most this many queries (median; 0: none)")
	flag.Parse()
	perfArgs = []string{"-c", strconv.Itoa(*clients), "-q", strconv.Itoa(*outst)}
	ok, err := run(*n, *runs, *bin, *against, *backend, byte(*base), *ceiling, *perfFor, t)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "checkbench: a target was missed")
		os.Exit(1)
	}
}

func run(n, runs int, bin, against, backend string, base byte, ceiling bool, perfFor time.Duration, t targets) (bool, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nsguard-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	opts := dnslab.Options{Base: base, Dir: dir, World: dnslab.BenchWorld(n)}
	if backend == "bind" {
		bindDir := filepath.Join(dir, "bind")
		if err := os.MkdirAll(bindDir, 0o755); err != nil {
			return false, err
		}
		b, err := dnslab.NewBIND(dnslab.BINDOptions{Dir: bindDir})
		if err != nil {
			return false, err
		}
		opts.Backend = b
	}
	start := time.Now()
	lab, err := dnslab.Start(ctx, opts)
	if err != nil {
		return false, err
	}
	defer lab.Close()
	fmt.Printf("lab: %s backend, %d domains (a tenth signed), port %d, ready in %s\n", backend, n, lab.Port(), time.Since(start).Round(time.Millisecond))
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(lab.BenchConfigYAML(filepath.Join(dir, "nsguard.db"))), 0o644); err != nil {
		return false, err
	}
	signed := map[string]bool{}
	for _, d := range lab.World().Domains {
		signed[d.Name] = d.Signed
	}
	var mix *queryMix
	if ceiling {
		if mix, err = writeMix(lab, dir); err != nil {
			return false, err
		}
		fmt.Printf("ceiling: dnsperf, the minimal mix of a domain check (NS at the TLD; SOA, NS and DNSKEY if signed at both name servers; DO bit) — %.2f queries a domain — to all %d servers at once, %s a run; as nsguard's own packets (RD clear), and as dnsperf's text input sends them (RD set)\n",
			mix.perDomain, len(mix.servers), perfFor)
	}
	var results, others []runResult
	named := namedPID(dir)
	// Ceilings and fractions: [0] for nsguard's queries, [1] for dnsperf's
	// own (RD set), which BIND answers without the authority section.
	var ceilings, fractions [2][]float64
	measureCeilings := func() (c, namedPerQuery [2]float64, err error) {
		for k, kind := range []mixKind{nsguardPackets, dnsperfText} {
			if c[k], namedPerQuery[k], err = mix.measure(lab, kind, perfFor, named); err != nil {
				return c, namedPerQuery, err
			}
		}
		return c, namedPerQuery, nil
	}
	// The ceiling is measured before the first run and after each run, and
	// a run is held against the mean of the two that bracket it: on a
	// shared machine whose speed drifts from minute to minute, the capacity
	// just before and just after a run is the best estimate of it during
	// the run.
	var ceilingBefore [2]float64
	if mix != nil {
		c, _, err := measureCeilings()
		if err != nil {
			return false, err
		}
		ceilingBefore = c
		fmt.Printf("       ceiling before run 1: %.0f domain checks/s (dnsperf's own queries, RD set: %.0f)\n", c[0], c[1])
	}
	for i := 0; i < runs; i++ {
		var other runResult
		runOther := func() (err error) {
			other, err = once(against, cfgPath, signed, named)
			return err
		}
		if against != "" && i%2 == 1 {
			if err := runOther(); err != nil {
				return false, err
			}
		}
		r, err := once(bin, cfgPath, signed, named)
		if err != nil {
			return false, err
		}
		if against != "" && i%2 == 0 {
			if err := runOther(); err != nil {
				return false, err
			}
		}
		if against != "" {
			others = append(others, other)
			fmt.Printf("       against %s: %s, CPU %.0f µs/domain (named: %.0f µs/domain); this build's wall is %.2f of it\n", against,
				other.wall.Round(time.Millisecond), float64(other.cpu.Microseconds())/float64(other.domains),
				float64(other.serverCPU.Microseconds())/float64(other.domains), r.wall.Seconds()/other.wall.Seconds())
		}
		results = append(results, r)
		rate := float64(r.domains) / r.wall.Seconds()
		bindCPU := ""
		if named > 0 {
			bindCPU = fmt.Sprintf(" (named: %.0f µs/domain)", float64(r.serverCPU.Microseconds())/float64(r.domains))
		}
		fmt.Printf("run %d: %d domains in %s = %.0f domains/s; CPU %.0f µs/domain%s; %.2f queries/domain (unsigned median %d, signed median %d); peak RSS %.0f MB; not ok %d\n",
			i+1, r.domains, r.wall.Round(time.Millisecond), rate, float64(r.cpu.Microseconds())/float64(r.domains), bindCPU,
			float64(r.queries)/float64(r.domains), median(r.perDomain), median(r.perSigned), r.rssMB, r.notOK)
		if mix != nil {
			after, namedPerQuery, err := measureCeilings()
			if err != nil {
				return false, err
			}
			var c [2]float64
			for k := range c {
				c[k] = (ceilingBefore[k] + after[k]) / 2
				ceilings[k] = append(ceilings[k], c[k])
				fractions[k] = append(fractions[k], rate/c[k])
			}
			perQuery := ""
			if named > 0 {
				// What a query costs named under dnsperf, beside what it
				// cost under nsguard: the servers' share of the 2 cores.
				perQuery = fmt.Sprintf(" (named: %.1f µs a query; %.1f under nsguard; %.1f with RD set)",
					namedPerQuery[0], float64(r.serverCPU.Microseconds())/float64(r.queries), namedPerQuery[1])
			}
			fmt.Printf("       ceiling %.0f domain checks/s (%.0f before, %.0f after)%s: nsguard reaches %.2f of it; of the RD-set ceiling (%.0f), %.2f\n",
				c[0], ceilingBefore[0], after[0], perQuery, rate/c[0], c[1], rate/c[1])
			ceilingBefore = after
		}
	}
	walls := make([]float64, len(results))
	rss := make([]float64, len(results))
	qpd := make([]float64, len(results))
	cpu := make([]float64, len(results))
	unsigned := make([]float64, len(results))
	for i, r := range results {
		walls[i] = r.wall.Seconds()
		rss[i] = r.rssMB
		qpd[i] = float64(r.queries) / float64(r.domains)
		cpu[i] = float64(r.cpu.Microseconds()) / float64(r.domains)
		unsigned[i] = float64(median(r.perDomain))
	}
	mw := medianF(walls)
	rate := float64(n) / mw
	if len(others) > 0 {
		var ow, oc, wr, cr []float64
		for i, o := range others {
			ow = append(ow, o.wall.Seconds())
			oc = append(oc, float64(o.cpu.Microseconds())/float64(o.domains))
			wr = append(wr, walls[i]/o.wall.Seconds())
			cr = append(cr, cpu[i]/oc[i])
		}
		fmt.Printf("against %s, median of %d: %.2f s, CPU %.0f µs/domain; paired ratios (this build / it), median: wall %.3f, CPU %.3f\n",
			against, len(others), medianF(ow), medianF(oc), medianF(wr), medianF(cr))
	}
	fmt.Printf("median of %d: %d domains in %.2f s (%.2f–%.2f) = %.0f domains/s, CPU %.0f µs/domain, %.2f queries/domain, %.0f queries/s, peak RSS %.0f MB\n",
		runs, n, mw, minF(walls), maxF(walls), rate, medianF(cpu), medianF(qpd), medianF(qpd)*float64(n)/mw, medianF(rss))
	ok := true
	verdict := func(name string, pass bool, got, want string) {
		word := "ok"
		if !pass {
			word, ok = "MISSED", false
		}
		fmt.Printf("target %s: %s (want %s): %s\n", name, got, want, word)
	}
	if mix != nil {
		f := medianF(fractions[0])
		fmt.Printf("ceiling median of %d: %.0f domain checks/s (%.0f–%.0f); nsguard reaches %.2f of it (median of the runs' fractions, %.2f–%.2f)\n",
			runs, medianF(ceilings[0]), minF(ceilings[0]), maxF(ceilings[0]), f, minF(fractions[0]), maxF(fractions[0]))
		fmt.Printf("dnsperf's own queries (RD set; BIND answers them without the authority section), median of %d: %.0f domain checks/s (%.0f–%.0f); nsguard reaches %.2f of it (%.2f–%.2f)\n",
			runs, medianF(ceilings[1]), minF(ceilings[1]), maxF(ceilings[1]), medianF(fractions[1]), minF(fractions[1]), maxF(fractions[1]))
		if t.minFraction > 0 {
			verdict("fraction of the dnsperf ceiling", f >= t.minFraction, fmt.Sprintf("%.3f", f), fmt.Sprintf("≥ %.2f", t.minFraction))
		}
	}
	if t.maxWall > 0 {
		verdict("wall time", mw <= t.maxWall.Seconds(), fmt.Sprintf("%.2f s", mw), fmt.Sprintf("≤ %s", t.maxWall))
	}
	if t.maxQueries > 0 {
		verdict("queries per unsigned domain", medianF(unsigned) <= float64(t.maxQueries), fmt.Sprintf("%.0f", medianF(unsigned)), fmt.Sprintf("≤ %d", t.maxQueries))
	}
	if t.maxRSS > 0 {
		verdict("peak RSS", medianF(rss) <= t.maxRSS, fmt.Sprintf("%.0f MB", medianF(rss)), fmt.Sprintf("≤ %.0f MB", t.maxRSS))
	}
	return ok, nil
}

// measure runs args as a child with this process's stdio and prints its
// wall time, CPU time and peak RSS on stderr; it exits with the child's code.
func measure(args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		return 1
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Fprintf(os.Stderr, "%s %d %d %d\n", measurePrefix, wall.Nanoseconds(), ru.Utime.Nano()+ru.Stime.Nano(), ru.Maxrss)
	return cmd.ProcessState.ExitCode()
}

// once runs nsguard check as a child process (through measure) and reads
// its JSON report; it also takes what named (pid; 0: none) spent meanwhile.
func once(bin, cfg string, signed map[string]bool, named int) (runResult, error) {
	self, err := os.Executable()
	if err != nil {
		return runResult{}, err
	}
	cmd := exec.Command(self, bin, "check", "--only", "dns", "-o", "json", "--config", cfg)
	cmd.Env = append(os.Environ(), measureEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	namedBefore := processCPU(named)
	err = cmd.Run()
	serverCPU := processCPU(named) - namedBefore
	i := bytes.LastIndex(errb.Bytes(), []byte(measurePrefix))
	if i < 0 {
		return runResult{}, fmt.Errorf("nsguard check: %v: %s", err, errb.String())
	}
	var wallNS, cpuNS int64
	var maxKB float64
	if _, err := fmt.Sscan(string(errb.Bytes()[i+len(measurePrefix):]), &wallNS, &cpuNS, &maxKB); err != nil {
		return runResult{}, fmt.Errorf("reading the measurement: %w", err)
	}
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
	r := runResult{wall: time.Duration(wallNS), cpu: time.Duration(cpuNS), serverCPU: serverCPU, rssMB: maxKB / 1024, domains: len(rep.Domains), queries: rep.Summary.Queries}
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

// queryMix is the minimal query mix of a domain check, as dnsperf input
// files per lab server: the very packets nsguard sends (RD clear, DO set,
// EDNS0 with a 1,232-octet buffer), and the same questions as dnsperf's
// text input sends them, with RD set.
//
// The two cost the servers differently. BIND answers a query with RD set
// with minimal responses (its default, minimal-responses
// no-auth-recursive): a SOA answer without the zone's NS set (and its
// RRSIG) in the authority section — 137 octets instead of 183 for an
// unsigned zone of the lab, 248 instead of 405 for a signed one. A monitor
// of authoritative servers asks without RD, so the ceiling that counts is
// the first; the second is printed beside it, as the ceiling before it
// was measured with nsguard's own packets.
type queryMix struct {
	servers   []mixServer
	perDomain float64
}

type mixServer struct{ name, packets, text string }

// mixKind is which of the mix's inputs dnsperf sends.
type mixKind bool

const (
	nsguardPackets mixKind = false // nsguard's own queries, RD clear (dnsperf -B)
	dnsperfText    mixKind = true  // dnsperf's text input with -D: RD set
)

func (k mixKind) String() string {
	if k == dnsperfText {
		return "dnsperf's own queries (RD set)"
	}
	return "nsguard's queries (RD clear)"
}

// writeMix writes the mix: each domain's NS at its TLD (the com and net
// domains alternate between the two gtld servers), and SOA, NS and — when
// signed — DNSKEY at both its name servers.
func writeMix(lab *dnslab.Lab, dir string) (*queryMix, error) {
	w := lab.World()
	type input struct {
		packets []byte
		text    strings.Builder
	}
	files := map[string]*input{}
	var order []string
	total := 0
	add := func(server, name string, qtype uint16) error {
		in := files[server]
		if in == nil {
			in = &input{}
			files[server] = in
			order = append(order, server)
		}
		// The query as nsguard's resolver packs it (TestPackQueryIsMiekgs):
		// SetQuestion, RD cleared, SetEdns0 with the DO bit. dnsperf -B
		// reads them framed as on TCP and sets each one's ID.
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.RecursionDesired = false
		m.SetEdns0(resolver.EDNSBufferSize, true)
		b, err := m.Pack()
		if err != nil {
			return err
		}
		in.packets = binary.BigEndian.AppendUint16(in.packets, uint16(len(b)))
		in.packets = append(in.packets, b...)
		in.text.WriteString(name + " " + dns.TypeToString[qtype] + "\n")
		total++
		return nil
	}
	for i, d := range w.Domains {
		tld := "ns1.nic.org"
		if !strings.HasSuffix(d.Name, ".org") {
			tld = []string{"a.gtld-servers.net", "b.gtld-servers.net"}[i%2]
		}
		if err := add(tld, d.Name, dns.TypeNS); err != nil {
			return nil, err
		}
		for _, ns := range d.Nameservers {
			types := []uint16{dns.TypeSOA, dns.TypeNS}
			if d.Signed {
				types = append(types, dns.TypeDNSKEY)
			}
			for _, t := range types {
				if err := add(ns, d.Name, t); err != nil {
					return nil, err
				}
			}
		}
	}
	mix := &queryMix{perDomain: float64(total) / float64(len(w.Domains))}
	for _, s := range order {
		ms := mixServer{name: s, packets: filepath.Join(dir, "mix-"+s+".bin"), text: filepath.Join(dir, "mix-"+s+".txt")}
		if err := os.WriteFile(ms.packets, files[s].packets, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(ms.text, []byte(files[s].text.String()), 0o644); err != nil {
			return nil, err
		}
		mix.servers = append(mix.servers, ms)
	}
	return mix, nil
}

// perfArgs are the dnsperf options of -ceiling-clients and -ceiling-outstanding.
var perfArgs []string

var (
	qpsLine  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lostLine = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

// measure runs one dnsperf per server, all at once, and returns the domain
// checks a second their answers add up to (the queries answered a second
// over all servers divided by the mix's queries a domain) and what a query
// cost named (pid; 0 when not known) meanwhile, in µs. It also prints what
// each server answered.
func (mix *queryMix) measure(lab *dnslab.Lab, kind mixKind, d time.Duration, named int) (float64, float64, error) {
	namedBefore := processCPU(named)
	qps := make([]float64, len(mix.servers))
	lost := make([]string, len(mix.servers))
	errs := make([]error, len(mix.servers))
	var wg sync.WaitGroup
	for i, s := range mix.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"-s", lab.AddrOf(s.name).String(), "-p", strconv.Itoa(lab.Port()), "-l", strconv.Itoa(int(d.Seconds()))}
			if kind == dnsperfText {
				args = append(args, "-d", s.text, "-D")
			} else {
				args = append(args, "-d", s.packets, "-B")
			}
			args = append(args, perfArgs...)
			out, err := exec.Command("dnsperf", args...).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("dnsperf %s: %v: %s", s.name, err, out)
				return
			}
			m := qpsLine.FindSubmatch(out)
			if m == nil {
				errs[i] = fmt.Errorf("dnsperf %s: no rate in its output: %s", s.name, out)
				return
			}
			qps[i], _ = strconv.ParseFloat(string(m[1]), 64)
			if l := lostLine.FindSubmatch(out); l != nil && string(l[1]) != "0" {
				lost[i] = fmt.Sprintf(" (%s lost)", l[1])
			}
		}()
	}
	wg.Wait()
	total := 0.0
	var parts []string
	for i, s := range mix.servers {
		if errs[i] != nil {
			return 0, 0, errs[i]
		}
		total += qps[i]
		parts = append(parts, fmt.Sprintf("%s %.0f%s", s.name, qps[i], lost[i]))
	}
	fmt.Printf("       dnsperf queries/s, %s: %s; total %.0f\n", kind, strings.Join(parts, ", "), total)
	var perQuery float64
	if named > 0 {
		perQuery = float64((processCPU(named) - namedBefore).Microseconds()) / (total * d.Seconds())
	}
	return total / mix.perDomain, perQuery, nil
}

// namedPID finds the lab's named (its config is in dir), or 0.
func namedPID(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == "named" && strings.Contains(string(b), dir) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

// processCPU is the user and system time pid has used so far.
func processCPU(pid int) time.Duration {
	return time.Duration(procstat.CPUSeconds(pid) * float64(time.Second))
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
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func minF(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxF(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
