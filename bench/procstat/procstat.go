// Package procstat reads what the daemon benchmarks report about a running
// nsguard process: its CPU time and peak RSS from /proc, and its DNS cycle
// durations from its /metrics page.
package procstat

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// CPUSeconds is the user plus system CPU time of process pid (0 when it
// cannot be read).
func CPUSeconds(pid int) float64 { return Seconds(Stat(pid), 11, 12) }

// Stat is the fields of /proc/PID/stat after the command name, which may
// hold spaces: the state is field 0, the parent's pid 1, utime 11, stime
// 12, cutime 13, cstime 14. It is nil when the file cannot be read.
func Stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
}

// Seconds adds the clock-tick fields of a Stat at the given indexes, in
// seconds (0 for a nil Stat).
func Seconds(stat []string, fields ...int) float64 {
	total := 0.0
	for _, i := range fields {
		if i < len(stat) {
			v, _ := strconv.ParseFloat(stat[i], 64)
			total += v
		}
	}
	return total / 100 // USER_HZ
}

// PeakRSSMB is process pid's peak resident set (VmHWM) in MiB.
func PeakRSSMB(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// Metrics is the text of the /metrics page nsguard serves on addr
// (host:port), at most 16 MiB; "" when it cannot be read.
func Metrics(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(b)
}

// CycleStats reads the DNS cycle histogram from a /metrics page's text: the
// sum, the count, and the smallest bucket holding every cycle (the slowest
// cycle's bound, "?" when none does).
func CycleStats(metrics string) (sum float64, count int, slowest string) {
	type bucket struct {
		le string
		n  float64
	}
	var buckets []bucket
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.Contains(l, `class="dns"`) {
			continue
		}
		f := strings.Fields(l)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(l, "nsguard_cycle_duration_seconds_sum"):
			sum = v
		case strings.HasPrefix(l, "nsguard_cycle_duration_seconds_count"):
			count = int(v)
		case strings.HasPrefix(l, "nsguard_cycle_duration_seconds_bucket"):
			i := strings.Index(l, `le="`) + 4
			buckets = append(buckets, bucket{l[i : i+strings.Index(l[i:], `"`)], v})
		}
	}
	for _, b := range buckets {
		if int(b.n) >= count {
			return sum, count, b.le + "s"
		}
	}
	return sum, count, "?"
}
