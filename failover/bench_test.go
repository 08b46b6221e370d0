//go:build linux

package failover

import (
	"context"
	"testing"

	"github.com/nsguard/nsguard/lab/dnslab/labtest"
)

// Figures for the README: go test -run '^$' -bench . -benchtime 20x ./failover/

func benchLab(b *testing.B, bind bool) *harness {
	if bind {
		return newHarness(b, labtest.Backend(b), bindBase)
	}
	return newHarness(b, nil, 0)
}

// BenchmarkPlan: reading the records, the verify step's servers and the
// fresh check of primary and backup for the safety rules.
func BenchmarkPlan(b *testing.B) {
	for _, bind := range []bool{false, true} {
		b.Run(map[bool]string{false: "in-process", true: "BIND"}[bind], func(b *testing.B) {
			h := benchLab(b, bind)
			e := h.engine(nil, Options{})
			for b.Loop() {
				if _, err := e.Plan(context.Background(), playbook, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFailoverAndRollback: one iteration is a whole failover run
// (update, webhook, verification on both servers, message) and its
// rollback, each with its plan and safety rules, recorded in SQLite.
func BenchmarkFailoverAndRollback(b *testing.B) {
	for _, bind := range []bool{false, true} {
		b.Run(map[bool]string{false: "in-process", true: "BIND"}[bind], func(b *testing.B) {
			h := benchLab(b, bind)
			e := h.engine(nil, Options{})
			ctx := context.Background()
			for b.Loop() {
				res, err := e.Run(ctx, playbook, RunOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Rollback(ctx, res.RunID, RunOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
