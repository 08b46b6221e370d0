package main

import (
	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
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
