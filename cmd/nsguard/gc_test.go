package main

import (
	"runtime/debug"
	"testing"
)

// TestServiceGC: the daemon and the probe collect at serviceGCPercent
// unless GOGC is set, and the setting comes back when they end.
func TestServiceGC(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{
		{"", serviceGCPercent},
		{"200", 100}, // GOGC in the environment: left to the runtime (this test's 100)
	} {
		t.Setenv("GOGC", tc.env)
		before := debug.SetGCPercent(100)
		restore := serviceGC()
		got := debug.SetGCPercent(100) // reads it, and sets it back to 100…
		debug.SetGCPercent(got)        // …then as serviceGC left it
		restore()
		after := debug.SetGCPercent(before)
		if got != tc.want {
			t.Errorf("GOGC=%q: the collector's target is %d, want %d", tc.env, got, tc.want)
		}
		if after != 100 {
			t.Errorf("GOGC=%q: after restore the target is %d, want 100 as before", tc.env, after)
		}
	}
}
