// Package demo plays nsguard's story on a simulated Internet with no
// network and no root: a healthy check, a hijack at the registry, the check
// that catches it.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/dnslab"
	"github.com/nsguard/nsguard/internal/labenv"
	"github.com/nsguard/nsguard/internal/reglab"
	"github.com/nsguard/nsguard/monitor"
)

// Options configure a demo run.
type Options struct {
	Out    io.Writer
	Colour bool
	Logger *slog.Logger
	// Victim is the domain the attacker hijacks.
	Victim string
}

// Run plays the story and returns an error when nsguard did not catch the
// hijack (the demo doubles as a smoke test).
func Run(ctx context.Context, opts Options) error {
	if opts.Victim == "" {
		opts.Victim = "shop-example.com"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	env, err := labenv.Start(ctx, labenv.Options{})
	if err != nil {
		return fmt.Errorf("demo: starting the lab: %w", err)
	}
	defer env.Close()
	cfg, err := env.Config("")
	if err != nil {
		return fmt.Errorf("demo: lab config: %w", err)
	}
	ck, err := checker.New(cfg, checker.Options{Logger: opts.Logger, HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer ck.Close()

	w := env.DNS.World()
	fmt.Fprintf(out, "nsguard demo — a simulated Internet in-process: %d DNS servers on 127.%d.0.0/16 port %d, RDAP and WHOIS on 127.0.0.1.\n",
		len(w.Hosts)+len(w.Resolvers), w.Base, env.DNS.Port())
	fmt.Fprintf(out, "Inventory: %d critical domains. Config: what `nsguard check --config FILE` would read.\n\n", len(cfg.Domains))

	step := func(n int, s string) { fmt.Fprintf(out, "── %d. %s\n\n", n, s) }
	check := func() []checker.Result {
		start := time.Now()
		res := ck.Run(ctx, cfg.Domains, checker.RunOptions{})
		checker.NewReport(res, time.Since(start)).WriteTable(out, cfg, false, opts.Colour)
		fmt.Fprintln(out)
		return res
	}

	step(1, "nsguard check on the healthy lab")
	for _, r := range check() {
		if r.Worst() >= finding.Warning || r.Err() != nil {
			return fmt.Errorf("demo: the healthy lab should be clean, but %s is %s", r.Domain.Name, r.Worst())
		}
	}

	step(2, fmt.Sprintf("an attacker changes %s's delegation at the registry to ns1/ns2.attacker.net", opts.Victim))
	if err := env.DNS.Hijack(ctx, opts.Victim); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "   the %s servers now refer resolvers to the attacker; the real providers still serve the real zone.\n\n", zoneOf(env.DNS, opts.Victim))

	step(3, "nsguard check again")
	caught := false
	for _, r := range check() {
		if r.Domain.Name != opts.Victim {
			continue
		}
		for _, f := range r.Findings {
			if f.ID == monitor.NSNotAsDeclared && f.Severity == finding.Critical {
				caught = true
			}
		}
	}
	if !caught {
		return fmt.Errorf("demo: the hijack of %s was not reported as %s", opts.Victim, monitor.NSNotAsDeclared)
	}
	fmt.Fprintf(out, "Caught: %s is CRITICAL with %s — the parent servers' answers are the evidence; `nsguard check` exits 2.\n", opts.Victim, monitor.NSNotAsDeclared)
	return nil
}

func zoneOf(l *dnslab.Lab, domain string) string {
	w := l.World()
	return dnslabZoneName(w.ParentOf(domain))
}

func dnslabZoneName(z string) string {
	if len(z) > 1 {
		return "." + z[:len(z)-1]
	}
	return z
}
