package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{Use: "config", Short: "Work with the config file"}
		cmd.AddCommand(&cobra.Command{
			Use:   "check FILE",
			Short: "Validate a config file: every problem with file, line and field; exit 3 when invalid",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := config.Load(args[0])
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("invalid config:\n%w", err))
				}
				fmt.Fprintf(g.stdout, "%s: ok (%d domains, %d playbooks)\n", args[0], len(cfg.Domains), len(cfg.Playbooks))
				return nil
			},
		})
		return cmd
	})
}
