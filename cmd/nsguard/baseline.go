package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "baseline",
			Short: "The approved state of each domain: approve, show, diff",
			Long: `A baseline is the state of a domain someone approved: the delegation (parent NS,
glue, DS), the child's NS set, the watched records and the registration
(registrar, statuses, registry NS). Every later difference is a finding until the
new state is approved. Versions are kept with who approved them, when and why.`,
		}
		cmd.AddCommand(baselineApproveCmd(g), baselineShowCmd(g), baselineDiffCmd(g))
		return cmd
	})
}

// openStore opens the config's store (SQLite or PostgreSQL) for a CLI
// command.
func (g *globals) openStore(cmd *cobra.Command, cfg *config.Config) (store.Store, error) {
	st, err := store.OpenConfig(cmd.Context(), cfg.Store, store.Options{Logger: g.logger(!g.isTTY)})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("opening the store %s: %w", cfg.Store, err))
	}
	return st, nil
}

// storeExists reports whether the config's store is there to read: a
// SQLite file that exists, or any PostgreSQL database (opening it says
// whether it can be reached). Commands that only read a store when the
// daemon has one ask this first.
func storeExists(cfg *config.Config) bool {
	if cfg.Store.Postgres() {
		return true
	}
	_, err := os.Stat(cfg.Store.Path)
	return err == nil
}

// checkWithStore loads the config, opens its store and checks the named
// domains (all of them when none is named) afresh, registration cache
// included: what baseline approve and diff both start from.
func (g *globals) checkWithStore(cmd *cobra.Command, args []string) (store.Store, []checker.Result, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	domains, err := checker.Select(cfg, args)
	if err != nil {
		return nil, nil, withCode(exitUsage, err)
	}
	st, err := g.openStore(cmd, cfg)
	if err != nil {
		return nil, nil, err
	}
	ck, err := checker.New(cfg, checker.Options{Logger: g.logger(!g.isTTY)})
	if err != nil {
		st.Close()
		return nil, nil, withCode(exitUsage, err)
	}
	defer ck.Close()
	bar := newProgress(g.stderr, "checking")
	defer bar.done()
	return st, ck.Run(cmd.Context(), domains, checker.RunOptions{Fresh: true, Progress: bar.update}), nil
}

func diffsOf(d config.Domain, approved, now *baseline.State) []baseline.Diff {
	return append(baseline.DiffDNS(d, approved.DNS, now.DNS), baseline.DiffRegistration(approved.Registration, now.Registration)...)
}

func baselineApproveCmd(g *globals) *cobra.Command {
	var reason, by string
	var force bool
	cmd := &cobra.Command{
		Use:   "approve [DOMAIN...] --reason TEXT",
		Short: "Check the domains now and record what is there as the approved state",
		Long: `Checks each domain (all of the inventory when none is named) afresh — DNS and
registration — shows what changed since the last approved version, and records
the current state as the new version. A domain whose current state has critical
findings (a hijacked delegation, a missing lock) is refused unless --force: approve
planned changes, not incidents.

Posture warnings present now (one DNS provider, every address in one /24, a
registrar or a lock outside policy) are accepted with the state: shown by check,
baseline show and the daily digest, never paged. The command lists them. One that
appears after the approval, or gets worse, pages as usual.`,
		Example: `  nsguard baseline approve shop-example.com --reason "CHG-1234: moved to provider B"
  nsguard baseline approve --reason "initial baseline"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return withCode(exitUsage, errors.New("--reason is required: say why this state is right (a change ticket)"))
			}
			st, results, err := g.checkWithStore(cmd, args)
			if err != nil {
				return err
			}
			defer st.Close()
			who := failover.WhoRan(by)
			refused := 0
			for _, r := range results {
				if err := r.Err(); err != nil {
					refused++
					fmt.Fprintf(g.stdout, "%s: not approved: the domain could not be checked: %v\n", r.Domain.Name, err)
					continue
				}
				var crit []string
				for _, f := range r.Findings {
					if f.Severity == finding.Critical {
						crit = append(crit, f.ID)
					}
				}
				if r.Registration == nil && !force {
					// A baseline without its registration part would never
					// report a transfer or a removed lock.
					refused++
					fmt.Fprintf(g.stdout, "%s: not approved: its registration could not be read (%v); try again, or --force to approve the DNS part alone\n",
						r.Domain.Name, r.RegLookupErr)
					continue
				}
				if len(crit) > 0 && !force {
					refused++
					fmt.Fprintf(g.stdout, "%s: not approved: the current state has critical findings (%s); fix them, or --force\n",
						r.Domain.Name, strings.Join(uniq(crit), ", "))
					continue
				}
				now := baseline.StateOf(r)
				if prev, _, err := baseline.Load(cmd.Context(), st, r.Domain.Name); err == nil {
					for _, d := range diffsOf(r.Domain, prev, now) {
						fmt.Fprintf(g.stdout, "  %s\n", d)
					}
				} else if !errors.Is(err, store.ErrNotFound) {
					return withCode(exitUsage, err)
				}
				b, err := baseline.Save(cmd.Context(), st, now, who, reason, time.Now())
				if err != nil {
					return withCode(exitUsage, err)
				}
				note := ""
				if force && len(crit) > 0 {
					note = " (forced over " + strings.Join(uniq(crit), ", ") + "; critical findings are never accepted and still page)"
				}
				fmt.Fprintf(g.stdout, "%s: approved as version %d by %s: %s%s\n", r.Domain.Name, b.Version, who, reason, note)
				writeAccepted(g.stdout, now.Accepted)
			}
			if refused > 0 {
				return withCode(exitWarning, fmt.Errorf("%d domain(s) not approved", refused))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why this state is right (required)")
	cmd.Flags().StringVar(&by, "by", "", "who approves (default $SUDO_USER, then $USER)")
	cmd.Flags().BoolVar(&force, "force", false, "approve even when the current state has critical findings")
	return cmd
}

func baselineShowCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show [DOMAIN...]",
		Short: "Print the approved state: version, who, when, why, and the data",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			domains, err := checker.Select(cfg, args)
			if err != nil {
				return withCode(exitUsage, err)
			}
			st, err := g.openStore(cmd, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			type shown struct {
				Domain     string          `json:"domain"`
				Version    int             `json:"version,omitempty"`
				ApprovedBy string          `json:"approved_by,omitempty"`
				ApprovedAt time.Time       `json:"approved_at,omitzero"`
				Reason     string          `json:"reason,omitempty"`
				State      *baseline.State `json:"state,omitempty"`
			}
			var all []shown
			missing := 0
			for _, d := range domains {
				s, b, err := baseline.Load(cmd.Context(), st, d.Name)
				if errors.Is(err, store.ErrNotFound) {
					missing++
					all = append(all, shown{Domain: d.Name})
					continue
				}
				if err != nil {
					return withCode(exitUsage, err)
				}
				all = append(all, shown{d.Name, b.Version, b.ApprovedBy, b.ApprovedAt, b.Reason, s})
			}
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			for _, s := range all {
				if s.State == nil {
					fmt.Fprintf(g.stdout, "%s: no approved baseline (nsguard baseline approve %s --reason …)\n\n", s.Domain, s.Domain)
					continue
				}
				fmt.Fprintf(g.stdout, "%s: version %d, approved by %s at %s: %s\n", s.Domain, s.Version, s.ApprovedBy, s.ApprovedAt.UTC().Format(time.RFC3339), s.Reason)
				writeState(g.stdout, s.State)
				fmt.Fprintln(g.stdout)
			}
			if missing > 0 {
				return withCode(exitWarning, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// writeAccepted lists the accepted risk of a state.
func writeAccepted(w io.Writer, acc []baseline.Accepted) {
	if len(acc) == 0 {
		return
	}
	fmt.Fprintf(w, "  accepted risk (shown, never paged; pages again if it gets worse):\n")
	for _, a := range acc {
		subject := ""
		if a.Subject != "" {
			subject = " (" + a.Subject + ")"
		}
		fmt.Fprintf(w, "    %-8s %s%s: %s\n", a.Severity, a.ID, subject, a.Message)
	}
}

func uniq(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func writeState(w io.Writer, s *baseline.State) {
	if d := s.DNS; d != nil {
		fmt.Fprintf(w, "  parent NS (%s)  %s\n", d.ParentZone, strings.Join(d.ParentNS, ", "))
		for _, gl := range d.Glue {
			fmt.Fprintf(w, "  glue           %s %s\n", gl.Name, strings.Join(gl.Addrs, " "))
		}
		if len(d.DS) > 0 {
			fmt.Fprintf(w, "  DS             %s\n", strings.Join(d.DS, "; "))
		}
		for _, c := range d.ChildNS {
			fmt.Fprintf(w, "  child NS       %s: %s\n", c.Server, strings.Join(c.Values, ", "))
		}
		for _, r := range d.Records {
			for _, sv := range r.Servers {
				fmt.Fprintf(w, "  %-14s %s: %s\n", strings.TrimSuffix(r.Name, ".")+" "+r.Type, sv.Server, strings.Join(sv.Values, ", "))
			}
		}
	}
	if r := s.Registration; r != nil {
		fmt.Fprintf(w, "  registrar      %s (IANA %s)\n", r.Registrar, r.IANAID)
		fmt.Fprintf(w, "  statuses       %s\n", strings.Join(r.Statuses, ", "))
		fmt.Fprintf(w, "  registry NS    %s\n", strings.Join(r.Nameservers, ", "))
	}
	writeAccepted(w, s.Accepted)
}

func baselineDiffCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "diff [DOMAIN...]",
		Short: "Check now and show, field by field and server by server, what differs from the approved state",
		Long: `Exit 0 when nothing differs (or only expected fields such as the SOA serial),
1 when the worst difference is a warning, 2 when one is critical, 3 when a domain
could not be checked or has no baseline.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, results, err := g.checkWithStore(cmd, args)
			if err != nil {
				return err
			}
			defer st.Close()
			type domainDiff struct {
				Domain  string          `json:"domain"`
				Version int             `json:"baseline_version,omitempty"`
				Error   string          `json:"error,omitempty"`
				Diffs   []baseline.Diff `json:"diffs"`
			}
			var all []domainDiff
			worst, unknown := finding.OK, false
			for _, r := range results {
				dd := domainDiff{Domain: r.Domain.Name, Diffs: []baseline.Diff{}}
				prev, b, err := baseline.Load(cmd.Context(), st, r.Domain.Name)
				switch {
				case errors.Is(err, store.ErrNotFound):
					dd.Error, unknown = "no approved baseline", true
				case err != nil:
					return withCode(exitUsage, err)
				case r.Err() != nil:
					dd.Error, unknown = r.Err().Error(), true
				default:
					dd.Version = b.Version
					dd.Diffs = append(dd.Diffs, diffsOf(r.Domain, prev, baseline.StateOf(r))...)
					for _, d := range dd.Diffs {
						if !d.Expected && d.Severity > worst {
							worst = d.Severity
						}
					}
				}
				all = append(all, dd)
			}
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			} else {
				for _, dd := range all {
					switch {
					case dd.Error != "":
						fmt.Fprintf(g.stdout, "%s: %s\n", dd.Domain, dd.Error)
					case len(dd.Diffs) == 0:
						fmt.Fprintf(g.stdout, "%s: as approved (version %d)\n", dd.Domain, dd.Version)
					default:
						fmt.Fprintf(g.stdout, "%s: %d difference(s) from version %d\n", dd.Domain, len(dd.Diffs), dd.Version)
						for _, d := range dd.Diffs {
							fmt.Fprintf(g.stdout, "  %s\n", paintDiff(d, g.isTTY))
						}
					}
				}
			}
			switch {
			case worst == finding.Critical:
				return withCode(exitCritical, nil)
			case unknown:
				return withCode(exitUsage, nil)
			case worst == finding.Warning:
				return withCode(exitWarning, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// paintDiff colours a difference on a terminal: DELETE red, CREATE green,
// CHANGE yellow, expected ones dim.
func paintDiff(d baseline.Diff, colour bool) string {
	s := d.String()
	tag := ""
	if d.Expected {
		tag = " (expected)"
	} else if d.Severity > finding.OK {
		tag = " [" + d.Severity.String() + "]"
	}
	if !colour {
		return s + tag
	}
	code := "\x1b[33m"
	switch {
	case d.Expected:
		code = "\x1b[2m"
	case d.Op == baseline.Delete:
		code = "\x1b[31m"
	case d.Op == baseline.Create:
		code = "\x1b[32m"
	}
	return code + s + tag + "\x1b[0m"
}
