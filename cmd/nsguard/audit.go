package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

func init() {
	commands = append(commands, newAuditCmd)
}

func newAuditCmd(g *globals) *cobra.Command {
	var output string
	var fresh bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit the inventory: shared, unbacked and out-of-policy domains, undeclared dependencies",
		Long: `Judges the critical-domain inventory as a whole:

  DOMAIN_SHARED          more services on one domain than policy.max_services_per_domain,
                         with the split to suggest; domains ranked by blast radius
                         (services weighted by tier: 8, 4, 2, 1 for tiers 0 to 3)
  DOMAIN_UNBACKED        a tier-0/1 domain without a backup, or whose backups are
                         unregistered, expiring, failing their checks, or not
                         independent (same registrar, DNS provider, NS network,
                         TLD or registrant): the independence matrix shows why
  DEPENDENCY_UNDECLARED  a domain the inventory depends on (NS names, CNAME targets
                         and MX hosts of watched names, one level further) that
                         is not in the inventory

plus the provider-diversity (NS_SINGLE_PROVIDER, NS_SAME_PREFIX) and registration
policy findings, rolled up per owner. Every domain and every backup is judged
on the daemon's latest stored observations when there are some (--fresh to
check everything now), else checked now (DNS, RDAP/WHOIS, the dependency walk).

Outputs: table (terminal), json, markdown (a report for the owners and the
IP/legal department), dot (the dependency graph for Graphviz).
Exit codes as check: 0 ok, 1 warning, 2 critical, 3 could not run (bad config,
or a domain could not be checked at all).`,
		Example: `  nsguard audit
  nsguard audit -o markdown > audit.md
  nsguard audit -o dot | dot -Tsvg -o dependencies.svg
  nsguard audit -o json | jq '.backups[] | select(.verdict != "independent")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "md" {
				output = "markdown"
			}
			if !slices.Contains(audit.Formats, output) {
				return withCode(exitUsage, fmt.Errorf("unknown output %q (want %s)", output, strings.Join(audit.Formats, ", ")))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			log := g.logger(!g.isTTY)
			mon, err := monitor.New(cfg, monitor.Options{Logger: log})
			if err != nil {
				return withCode(exitUsage, err)
			}
			defer mon.Close()
			reg, err := registry.New(cfg, registry.Options{Logger: log})
			if err != nil {
				return withCode(exitUsage, err)
			}
			// The daemon's latest observations first (when a store exists);
			// fresh checks for the domains it has not observed.
			var sources []audit.Source
			if storeExists(cfg) && !fresh {
				st, err := g.openStore(cmd, cfg)
				if err != nil {
					return err
				}
				defer st.Close()
				sources = append(sources, daemon.StoredSource(st, mon))
			}
			bar := newProgress(g.stderr, "auditing")
			sources = append(sources, &audit.Fresh{Monitor: mon, Registry: reg, Logger: log,
				Progress: func(phase string, done, total int) { bar.update(done, total) }})
			inputs, err := audit.Gather(cmd.Context(), audit.Targets(cfg), sources...)
			bar.done()
			if err != nil {
				return withCode(exitUsage, err)
			}
			rep := audit.Analyze(cfg, inputs, time.Now())
			if err := audit.Render(g.stdout, rep, output); err != nil {
				return withCode(exitUsage, err)
			}
			if code := rep.ExitCode(); code != exitOK {
				if code == exitUsage {
					return withCode(code, fmt.Errorf("%d domain(s) could not be checked; see the notes in the report", rep.Summary.Errors))
				}
				return withCode(code, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(audit.Formats, ", "))
	cmd.Flags().BoolVar(&fresh, "fresh", false, "check every domain now instead of using stored observations")
	return cmd
}
