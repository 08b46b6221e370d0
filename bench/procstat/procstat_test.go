package procstat

import (
	"os"
	"testing"
)

func TestCycleStats(t *testing.T) {
	for _, tt := range []struct {
		name, metrics string
		sum           float64
		count         int
		slowest       string
	}{
		{"two cycles", `# HELP nsguard_cycle_duration_seconds How long a check cycle took, by class.
nsguard_cycle_duration_seconds_bucket{class="dns",le="1"} 0
nsguard_cycle_duration_seconds_bucket{class="dns",le="2.5"} 1
nsguard_cycle_duration_seconds_bucket{class="dns",le="5"} 2
nsguard_cycle_duration_seconds_bucket{class="dns",le="+Inf"} 2
nsguard_cycle_duration_seconds_sum{class="dns"} 5.5
nsguard_cycle_duration_seconds_count{class="dns"} 2
nsguard_cycle_duration_seconds_sum{class="registration"} 99
nsguard_cycle_duration_seconds_count{class="registration"} 7
`, 5.5, 2, "5s"},
		{"no dns cycles", "nsguard_up 1\n", 0, 0, "?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sum, count, slowest := CycleStats(tt.metrics)
			if sum != tt.sum || count != tt.count || slowest != tt.slowest {
				t.Errorf("CycleStats = %v, %d, %q; want %v, %d, %q", sum, count, slowest, tt.sum, tt.count, tt.slowest)
			}
		})
	}
}

func TestOwnProcess(t *testing.T) {
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	if x == 0 {
		t.Fatal("loop optimised away")
	}
	if cpu := CPUSeconds(os.Getpid()); cpu <= 0 {
		t.Errorf("CPUSeconds of this busy process = %v, want > 0", cpu)
	}
	if rss := PeakRSSMB(os.Getpid()); rss < 1 {
		t.Errorf("PeakRSSMB of this process = %v MiB, want ≥ 1", rss)
	}
	if CPUSeconds(-1) != 0 || PeakRSSMB(-1) != 0 {
		t.Error("a process that does not exist should read as 0")
	}
}
