package main

import (
	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/demo"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		var victim string
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Play the story on an in-process simulated Internet (no network, no root): healthy, hijack, caught",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := demo.Run(cmd.Context(), demo.Options{Out: g.stdout, Colour: g.isTTY, Victim: victim}); err != nil {
					return withCode(exitWarning, err)
				}
				return nil
			},
		}
		cmd.Flags().StringVar(&victim, "victim", "shop-example.com", "the lab domain the attacker hijacks")
		return cmd
	})
}
