package main

import (
	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

// markAccepted marks the findings each domain's approved baseline accepted
// as risk, when there is a store to read them from. A check on a machine
// without the daemon's store has no baseline: nothing is accepted, and
// saying so is not worth an error.
func (g *globals) markAccepted(cmd *cobra.Command, cfg *config.Config, results []checker.Result) {
	if accept := g.acceptedMarker(cmd, cfg); accept != nil {
		for i := range results {
			results[i].Findings = accept(results[i].Domain.Name, results[i].Findings)
		}
	}
}

// acceptedMarker returns what markAccepted does, for one domain at a time
// (a streamed check): the approved baselines are read once, now. It is nil
// when there is no store or its baselines cannot be read (logged).
func (g *globals) acceptedMarker(cmd *cobra.Command, cfg *config.Config) func(domain string, fs []finding.Finding) []finding.Finding {
	if !storeExists(cfg) {
		return nil
	}
	st, err := store.OpenConfig(cmd.Context(), cfg.Store, store.Options{Logger: g.logger(!g.isTTY)})
	if err == nil {
		defer st.Close()
		var states map[string]*baseline.State
		if states, err = baseline.Latest(cmd.Context(), st); err == nil {
			return func(domain string, fs []finding.Finding) []finding.Finding { return states[domain].MarkAccepted(fs) }
		}
	}
	g.logger(!g.isTTY).Warn("cannot read the approved baselines; accepted risk is not marked", "store", cfg.Store.String(), "err", err)
	return nil
}
