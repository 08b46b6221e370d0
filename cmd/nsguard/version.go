package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print nsguard's version and commit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintf(g.stdout, "nsguard %s (commit %s, %s)\n", version, commit, runtime.Version())
				return nil
			},
		}
	})
}
