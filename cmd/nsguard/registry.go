package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/registry"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "registry",
			Short: "Registration data: RDAP first, WHOIS where a registry has no RDAP",
		}
		cmd.AddCommand(registryLookupCmd(g))
		return cmd
	})
}

func registryLookupCmd(g *globals) *cobra.Command {
	var (
		output  string
		fresh   bool
		cached  bool
		withRaw bool
	)
	cmd := &cobra.Command{
		Use:   "lookup DOMAIN",
		Short: "Show a domain's normalised registration record and which servers it came from",
		Long: `Looks DOMAIN up over RDAP (IANA bootstrap, then the registrar's RDAP server), or
over WHOIS for registries without RDAP, and prints the normalised record: registrar,
EPP statuses, dates, registry name servers, DNSSEC, and every server asked.

The registries are asked now. --cached accepts a record younger than the
registration period from the cache (registry.cache_dir, or beside store.path)
and says how old it is. Exit 0 when a record was read, 2 when the registry
says the domain is not registered, 3 when nothing could be read.`,
		Example: `  nsguard registry lookup shop-example.com
  nsguard registry lookup example.cn -o json | jq .expiry`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("unknown output %q (want table or json)", output))
			}
			if fresh {
				fmt.Fprintln(g.stderr, "nsguard: --fresh is deprecated: the registry is asked by default; --cached allows the cache")
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			client, err := registry.New(cfg, registry.Options{Logger: g.logger(!g.isTTY)})
			if err != nil {
				return withCode(exitUsage, err)
			}
			lookup := client.Refresh
			if cached && !withRaw {
				// Caches keep no raw answers: showing them means asking again.
				lookup = client.Lookup
			}
			rec, err := lookup(cmd.Context(), args[0])
			switch {
			case errors.Is(err, registry.ErrInvalidDomain):
				return withCode(exitUsage, err)
			case errors.Is(err, registry.ErrNotRegistered):
				return withCode(exitCritical, err)
			case err != nil:
				return withCode(exitUsage, err)
			}
			if !withRaw {
				rec.Raw = ""
			}
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rec)
			}
			writeRegistryRecord(g.stdout, rec, client.Bootstrap(), time.Now())
			if rec.Raw != "" {
				fmt.Fprintf(g.stdout, "\nRaw answers:\n%s\n", rec.Raw)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&cached, "cached", false, "accept a record younger than the registration period from the cache")
	// --fresh was the way to skip the cache before asking became the
	// default; scripts that pass it keep working (the note goes to stderr,
	// never into -o json).
	cmd.Flags().BoolVar(&fresh, "fresh", false, "ask the registry now (the default)")
	cmd.Flags().MarkHidden("fresh")
	cmd.Flags().BoolVar(&withRaw, "raw", false, "include the raw answers (bounded to 64 KiB; asks the registry again)")
	return cmd
}

// writeRegistryRecord prints a record for a terminal: one field a line,
// the servers asked at the end.
func writeRegistryRecord(w io.Writer, rec *registry.Record, boot registry.BootstrapInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	row("Domain", rec.Domain)
	fetched := "fetched " + date(rec.FetchedAt)
	if note := rec.CacheNote(now); note != "" {
		fetched += ", " + note
	}
	row("Source", fmt.Sprintf("%s %s (%s)", rec.Source, rec.Server, fetched))
	if rec.Stale != "" {
		row("STALE", rec.Stale)
	}
	row("Registrar", rec.Registrar.String())
	row("  abuse", strings.TrimSpace(rec.Registrar.AbuseEmail+"  "+rec.Registrar.AbusePhone))
	if rec.Registrar.URL != "" {
		row("  web", rec.Registrar.URL)
	}
	if rec.Registrar.Server != "" {
		row("  asked", rec.Registrar.Server)
	}
	row("Statuses", strings.Join(rec.Statuses, ", "))
	if len(rec.OtherStatuses) > 0 {
		row("Other statuses", strings.Join(rec.OtherStatuses, ", ")+" (no EPP equivalent)")
	}
	row("Created", date(rec.Created))
	row("Updated", date(rec.Updated))
	if rec.Expiry.IsZero() {
		row("Expiry", "unknown: "+rec.ExpiryNote)
	} else {
		days := int(rec.Expiry.Sub(now).Hours() / 24)
		row("Expiry", fmt.Sprintf("%s (%d days)", date(rec.Expiry), days))
		if !rec.RegistryExpiry.IsZero() {
			row("  registry", date(rec.RegistryExpiry))
		}
		if !rec.RegistrarExpiry.IsZero() {
			row("  registrar", date(rec.RegistrarExpiry))
		}
	}
	row("Name servers", strings.Join(rec.Nameservers, ", "))
	dnssec := "unsigned"
	if rec.DNSSEC.DelegationSigned {
		dnssec = "signed delegation"
		if len(rec.DNSSEC.DS) > 0 {
			dnssec += ": DS " + strings.Join(rec.DNSSEC.DS, "; ")
		}
	}
	row("DNSSEC", dnssec)
	if len(rec.Redacted) > 0 {
		row("Redacted", strings.Join(rec.Redacted, ", "))
	}
	for i, n := range rec.ParseNotes {
		k := ""
		if i == 0 {
			k = "Read"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, n)
	}
	if boot.Source != "" && !boot.FetchedAt.IsZero() {
		row("RDAP bootstrap", fmt.Sprintf("%s (fetched %s, %s old)", boot.Source, date(boot.FetchedAt),
			now.Sub(boot.FetchedAt).Round(time.Minute)))
	}
	tw.Flush()
	if len(rec.Trail) > 0 {
		fmt.Fprintln(w, "\nServers asked:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range rec.Trail {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Protocol, a.Server, a.Query, a.Result)
		}
		tw.Flush()
	}
}
