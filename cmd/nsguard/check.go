package main

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/monitor"
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
		nsFlags []string
		dsFlags []string
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
cached data say so and how old it is.

With --ns (and --ds), one DOMAIN is pre-flighted: checked as if its parent
delegated it to those name servers with that DS, without asking the parent
(Zonemaster's undelegated test). Run it before moving to a new DNS provider
or before a failover that changes NS. --ns NAME/ADDR gives a name's address
(glue; repeat the flag for more); a name inside DOMAIN needs one.`,
		Example: `  nsguard check --config /etc/nsguard/nsguard.yaml
  nsguard check shop-example.com -o json | jq '.domains[0].findings'
  nsguard check --only dns
  nsguard check --cached   # every minute from a monitoring system
  nsguard check shop-example.com --ns ns1.newdns.net --ns ns2.newdns.org
  nsguard check example.com --ns ns1.example.com/192.0.2.53 --ns ns2.example.net --ds "12345 13 2 ABCD…"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			defer batchGC()()
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
			if len(dsFlags) > 0 && len(nsFlags) == 0 {
				return withCode(exitUsage, fmt.Errorf("--ds needs --ns: a pre-flight checks the delegation you give, name servers and DS"))
			}
			if len(nsFlags) > 0 {
				if len(args) != 1 {
					return withCode(exitUsage, fmt.Errorf("--ns pre-flights one domain: give exactly one DOMAIN"))
				}
				if only == checker.Registration {
					return withCode(exitUsage, fmt.Errorf("--ns pre-flights the DNS: it cannot go with --only registration"))
				}
				classes = []string{checker.DNS}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			domains, err := checker.Select(cfg, args)
			if err != nil {
				return withCode(exitUsage, err)
			}
			var preflight *monitor.Preflight
			if len(nsFlags) > 0 {
				if preflight, err = parsePreflight(domains[0].Name, nsFlags, dsFlags); err != nil {
					return withCode(exitUsage, err)
				}
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
			perDomain := len(classes)
			if perDomain == 0 {
				perDomain = 2 // dns and registration
			}
			bar.expect(len(domains) * perDomain)
			opts := checker.RunOptions{Classes: classes, Progress: bar.update, Fresh: !cached}
			if preflight != nil {
				opts.Preflight = func(string) *monitor.Preflight { return preflight }
			}
			var rep *checker.Report
			if len(classes) == 1 && classes[0] == checker.DNS {
				// A DNS-only run reports each domain as soon as it is done and
				// keeps none of their observations: 10,000 domains would hold
				// 100 MB until the end. JSON goes out as it comes, unless it
				// would cross the progress bar on a terminal; the table needs
				// none encoded.
				var out io.Writer
				var held bytes.Buffer
				if output == "json" {
					out = g.stdout
					if g.isTTY {
						out = &held
					}
				}
				stream := checker.NewJSONStream(out, output != "json")
				accept := g.acceptedMarker(cmd, cfg)
				opts.OnResult = func(r checker.Result) {
					if accept != nil {
						r.Findings = accept(r.Domain.Name, r.Findings)
					}
					stream.Add(r)
				}
				ck.Run(cmd.Context(), domains, opts)
				bar.done()
				if _, err := stream.Close(time.Since(start)); err != nil {
					return err
				}
				if _, err := held.WriteTo(g.stdout); err != nil {
					return err
				}
				rep = stream.Report()
			} else {
				results := ck.Run(cmd.Context(), domains, opts)
				bar.done()
				g.markAccepted(cmd, cfg, results)
				rep = checker.NewReport(results, time.Since(start))
				if output == "json" {
					if err := rep.WriteJSON(g.stdout); err != nil {
						return err
					}
				}
			}
			if output != "json" {
				if preflight != nil {
					fmt.Fprintf(g.stdout, "Pre-flight: %s as if its parent delegated it to %s%s (the parent is not asked; public resolvers still see the real delegation)\n\n",
						domains[0].Name, preflightText(preflight), dsText(preflight))
				}
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
	cmd.Flags().StringArrayVar(&nsFlags, "ns", nil, "pre-flight: a name server NAME or NAME/ADDR of the delegation to check (repeatable)")
	cmd.Flags().StringArrayVar(&dsFlags, "ds", nil, `pre-flight: a DS record "keytag algorithm digesttype digest" (repeatable)`)
	return cmd
}

// parsePreflight reads --ns NAME[/ADDR] and --ds flags into a delegation;
// a name given twice gathers its addresses.
func parsePreflight(domain string, nsFlags, dsFlags []string) (*monitor.Preflight, error) {
	pf := &monitor.Preflight{}
	index := map[string]int{}
	for _, f := range nsFlags {
		name, addrText, hasAddr := strings.Cut(strings.TrimSpace(f), "/")
		fqdn := dns.CanonicalName(name)
		if _, ok := dns.IsDomainName(fqdn); !ok || name == "" || dns.CountLabel(fqdn) < 2 {
			return nil, fmt.Errorf("--ns %q: %q is not a host name (want NAME or NAME/ADDR)", f, name)
		}
		i, seen := index[fqdn]
		if !seen {
			i = len(pf.NS)
			index[fqdn] = i
			pf.NS = append(pf.NS, resolver.NameServer{Name: fqdn})
		}
		if hasAddr {
			a, err := netip.ParseAddr(addrText)
			if err != nil {
				return nil, fmt.Errorf("--ns %q: %q is not an IP address", f, addrText)
			}
			pf.NS[i].Addrs = append(pf.NS[i].Addrs, a.Unmap())
		}
	}
	for _, d := range dsFlags {
		ds, err := config.ParseDS(domain, d)
		if err != nil {
			return nil, fmt.Errorf("--ds %q: %w", d, err)
		}
		pf.DS = append(pf.DS, fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest)))
	}
	return pf, nil
}

func preflightText(pf *monitor.Preflight) string {
	var parts []string
	for _, ns := range pf.NS {
		p := strings.TrimSuffix(ns.Name, ".")
		for _, a := range ns.Addrs {
			p += "/" + a.String()
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

func dsText(pf *monitor.Preflight) string {
	if len(pf.DS) == 0 {
		return " with no DS"
	}
	return " with DS " + strings.Join(pf.DS, "; ")
}
