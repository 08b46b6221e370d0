package main

import (
	"github.com/spf13/cobra"
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
				return runService(cmd, g, true)
			},
		}
	})
}
