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
	if !storeExists(cfg) {
		return
	}
	st, err := store.OpenConfig(cmd.Context(), cfg.Store, store.Options{Logger: g.logger(!g.isTTY)})
	if err != nil {
		g.logger(!g.isTTY).Warn("cannot read the approved baselines; accepted risk is not marked", "store", cfg.Store.String(), "err", err)
		return
	}
	defer st.Close()
	if err := baseline.MarkAccepted(cmd.Context(), st, results); err != nil {
		g.logger(!g.isTTY).Warn("cannot read the approved baselines; accepted risk is not marked", "store", cfg.Store.String(), "err", err)
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
	if err != nil {
		g.logger(!g.isTTY).Warn("cannot read the approved baselines; accepted risk is not marked", "store", cfg.Store.String(), "err", err)
		return nil
	}
	defer st.Close()
	bs, err := st.LatestBaselines(cmd.Context())
	if err != nil {
		g.logger(!g.isTTY).Warn("cannot read the approved baselines; accepted risk is not marked", "store", cfg.Store.String(), "err", err)
		return nil
	}
	states := map[string]*baseline.State{}
	for _, b := range bs {
		if s, err := baseline.Unmarshal(b.Data); err == nil {
			states[b.Domain] = s
		}
	}
	return func(domain string, fs []finding.Finding) []finding.Finding { return states[domain].MarkAccepted(fs) }
}
