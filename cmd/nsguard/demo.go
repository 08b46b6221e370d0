package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/demo"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		var interval, hold time.Duration
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "The whole story on an in-process simulated Internet (no network, no root): hijack, page, failover, verified, resolved",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := demo.Run(cmd.Context(), demo.Options{Out: g.stdout, Colour: g.isTTY, Interval: interval, Hold: hold}); err != nil {
					return withCode(exitWarning, err)
				}
				return nil
			},
		}
		cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "the daemon's delegation check interval in the demo")
		cmd.Flags().DurationVar(&hold, "hold", time.Minute, "keep the status pages up this long at the end (0s: exit at once)")
		return cmd
	})
}
