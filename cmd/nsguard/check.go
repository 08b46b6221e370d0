package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/checker"
)

func init() {
	commands = append(commands, newCheckCmd)
}

func newCheckCmd(g *globals) *cobra.Command {
	var (
		output  string
		only    string
		verbose bool
		cached  bool
	)
	cmd := &cobra.Command{
		Use:   "check [DOMAIN...]",
		Short: "Check the critical domains once: delegation, name servers, DNSSEC, records, registration",
		Long: `Checks each domain of the inventory (or the DOMAINs given; a name outside the
inventory is checked as an ad-hoc tier-3 domain) once and prints the findings,
worst first. Exit codes follow the Nagios plugin convention: 0 ok, 1 warning,
2 critical, 3 could not run (bad config, or a domain could not be checked at all).
Findings the domain's approved baseline accepted as risk (posture warnings present
at approval) are shown as accepted and do not count toward the status or exit code.

Registration data is asked of the registries now: a registrar transfer or a
lock removed a minute ago shows. --cached accepts a record younger than the
registration period from the cache the daemon and earlier runs keep (what a
monitoring system running check every minute should do); findings judged on
cached data say so and how old it is.`,
		Example: `  nsguard check --config /etc/nsguard/nsguard.yaml
  nsguard check shop-example.com -o json | jq '.domains[0].findings'
  nsguard check --only dns
  nsguard check --cached   # every minute from a monitoring system`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("unknown output %q (want table or json)", output))
			}
			var classes []string
			switch only {
			case "":
			case checker.DNS, checker.Registration:
				classes = []string{only}
			default:
				return withCode(exitUsage, fmt.Errorf("unknown --only %q (want dns or registration)", only))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			domains, err := checker.Select(cfg, args)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if len(domains) == 0 {
				return withCode(exitUsage, fmt.Errorf("no domains to check: the inventory in %s is empty", cfg.File))
			}
			ck, err := checker.New(cfg, checker.Options{Logger: g.logger(!g.isTTY)})
			if err != nil {
				return withCode(exitUsage, err)
			}
			defer ck.Close()
			start := time.Now()
			bar := newProgress(g.stderr, "checking")
			results := ck.Run(cmd.Context(), domains, checker.RunOptions{Classes: classes, Progress: bar.update, Fresh: !cached})
			bar.done()
			g.markAccepted(cmd, cfg, results)
			rep := checker.NewReport(results, time.Since(start))
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.WriteTable(g.stdout, cfg, verbose, g.isTTY)
			}
			if code := rep.ExitCode(); code != exitOK {
				return withCode(code, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&only, "only", "", "run one check class: dns or registration")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every evidence line (the table shows the first)")
	cmd.Flags().BoolVar(&cached, "cached", false, "accept registration data from the cache (younger than schedules.registration) instead of asking the registries now")
	return cmd
}
