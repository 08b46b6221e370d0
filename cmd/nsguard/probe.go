package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/sdnotify"
	"github.com/nsguard/nsguard/internal/startcheck"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "probe",
			Short: "Run only the DNS checks, as a vantage point of a cluster (a small VM in another region)",
			Long: `Runs the DNS checks on schedules.delegation and stores what it sees, tagged
with cluster.vantage, in the cluster's PostgreSQL store (store.url, .url_file or
.url_env), for the leading daemon to judge across vantage points. A probe never
leads: it pages nobody, looks up no registration and runs no audit. It serves
/metrics, /healthz and /readyz on the listen address (and the status pages,
unless ui.enabled is false). SIGHUP reloads the config; SIGTERM stops it.
docs/ha.md says where to run probes and what they cost.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := g.loadConfig()
				if err != nil {
					return err
				}
				// What `nsguard config check` accepts, as the daemon does.
				if errs := startcheck.Check(cfg); len(errs) > 0 {
					return withCode(exitUsage, fmt.Errorf("invalid config:\n%w", errs))
				}
				log := g.logger(true)
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer signal.Stop(hup)
				reload := make(chan struct{}, 1)
				go func() {
					for range hup {
						select {
						case reload <- struct{}{}:
						default:
						}
					}
				}()
				err = daemon.Run(cmd.Context(), daemon.Options{
					Config: cfg, ConfigPath: g.configPath, Logger: log, Reload: reload, Probe: true,
					Version: version, Commit: commit,
					Notify: func(state string) {
						if state == "ready" {
							if err := sdnotify.Ready(); err != nil {
								log.Warn("sd_notify failed", "state", state, "err", err)
							}
						}
					},
				})
				if err != nil {
					return withCode(exitUsage, err)
				}
				return nil
			},
		}
	})
}
