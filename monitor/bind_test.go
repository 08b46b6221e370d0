//go:build linux

package monitor_test

import (
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/dnslab/labtest"
)

// bindBase is this package's BIND lab: 127.60.0.0/16. go test runs packages
// in parallel, and each BIND lab needs its own addresses (lab/dnslab's
// tests use 61 and 62).
const bindBase = 60

func startBINDLab(t *testing.T) (*dnslab.Lab, *dnslab.BIND, *config.Config) {
	t.Helper()
	b := labtest.Backend(t)
	lab, cfg := startLab(t, dnslab.Options{Base: bindBase, Backend: b})
	return lab, b, cfg
}

func TestHealthyBINDLabHasNoFindings(t *testing.T) {
	lab, _, cfg := startBINDLab(t)
	for name, r := range check(t, cfg) {
		if len(r.Findings) > 0 {
			t.Errorf("%s: want no findings, got:%s", name, describe(r.Findings))
		}
		if r.Observation == nil || len(r.Observation.Parent.NS) == 0 {
			t.Errorf("%s: observation has no delegation", name)
		}
	}
	// BIND answered for every zone: the lab's own servers only played the
	// public resolvers.
	w := lab.World()
	for _, h := range w.Hosts {
		if n := lab.QueriesAt(h.Addr); n != 0 {
			t.Errorf("the in-process lab answered %d queries at %s (%s): BIND should have", n, h.Addr, h.Name)
		}
	}
	var resolved int64
	for _, r := range w.Resolvers {
		resolved += lab.QueriesAt(r)
	}
	if resolved == 0 {
		t.Error("no query reached the lab's public resolvers: the resolver view was not checked")
	}
}

func TestScenariosBIND(t *testing.T) {
	lab, b, cfg := startBINDLab(t)
	runScenarios(t, lab, cfg)
	s := b.Stats()
	if s.Syncs > 0 {
		t.Logf("BIND: %d syncs, %d named starts, %s per sync on average", s.Syncs, s.Starts, s.TotalSync/time.Duration(s.Syncs))
	}
}

func TestUncheckableBIND(t *testing.T) {
	lab, _, cfg := startBINDLab(t)
	runUncheckable(t, lab, cfg)
}

func TestPreflightBIND(t *testing.T) {
	lab, _, cfg := startBINDLab(t)
	runPreflights(t, lab, cfg)
}
