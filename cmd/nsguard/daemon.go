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
			Use:   "daemon",
			Short: "Run the service: scheduled checks, baseline diffs, incidents, Slack alerts, /metrics",
			Long: `Runs the check classes on their schedules (schedules.delegation, .registration,
.audit), stores every observation, diffs it against the approved baseline, opens
and resolves incidents, and delivers alerts through the persisted outbox. Serves
/metrics, /healthz and /readyz on the listen address. SIGHUP reloads the config
(an invalid one is refused and the running one kept); SIGTERM drains in-flight
cycles and stops. Logs are JSON on stderr.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runService(cmd, g, false)
			},
		}
	})
}

// runService runs `nsguard daemon` (probe false) or `nsguard probe` (probe
// true) until the command's context ends: the same start checks, reloads on
// SIGHUP and systemd notifications for both, so a probe's unit behaves as the
// daemon's does.
func runService(cmd *cobra.Command, g *globals, probe bool) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	// Exactly what `nsguard config check` accepts: every file and variable
	// the config names, all problems at once.
	if errs := startcheck.Check(cfg); len(errs) > 0 {
		return withCode(exitUsage, fmt.Errorf("invalid config:\n%w", errs))
	}
	defer serviceGC()()
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
		Config: cfg, ConfigPath: g.configPath, Logger: log, Reload: reload, Probe: probe,
		Version: version, Commit: commit,
		Notify: func(state string) {
			var err error
			switch state {
			case "ready":
				err = sdnotify.Ready()
			case "reloading":
				err = sdnotify.Reloading()
			case "stopping":
				err = sdnotify.Stopping()
			}
			if err != nil {
				log.Warn("sd_notify failed", "state", state, "err", err)
			}
		},
	})
	if err != nil {
		return withCode(exitUsage, err)
	}
	return nil
}
