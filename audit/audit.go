// Package audit judges the critical-domain inventory as a whole: domains
// that carry too many services (DOMAIN_SHARED), tier-0/1 domains without a
// healthy, independent backup (DOMAIN_UNBACKED), and domains the inventory
// depends on without declaring them (DEPENDENCY_UNDECLARED). It rolls the
// monitor's provider-diversity findings and the registration policy
// findings up per owner, ranks domains by blast radius, and renders the
// result for a terminal, for machines (JSON), for an IP/legal department
// (Markdown), for Graphviz (DOT) and for a daily digest.
//
// The analysis (Analyze) is pure: it takes plain values (Input) and a
// clock, so stored observations and fresh checks feed it alike. Sources
// gather inputs: Fresh runs the monitor, the registry client and the
// dependency walk now; a store-backed Source can stand in front of it.
package audit

import (
	"context"
	"fmt"
	"slices"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Finding IDs this package emits (documented in docs/checks.md).
const (
	IDDomainShared         = "DOMAIN_SHARED"
	IDDomainUnbacked       = "DOMAIN_UNBACKED"
	IDDependencyUndeclared = "DEPENDENCY_UNDECLARED"
)

func init() {
	finding.Register(
		finding.Check{ID: IDDomainShared, Class: "inventory", Default: finding.Warning,
			Title: "more services on one domain than policy allows", Zonemaster: "none"},
		finding.Check{ID: IDDomainUnbacked, Class: "inventory", Default: finding.Warning,
			Title: "a tier-0/1 domain without a healthy, independent backup", Zonemaster: "none"},
		finding.Check{ID: IDDependencyUndeclared, Class: "inventory", Default: finding.Warning,
			Title: "a domain the inventory depends on is not in the inventory", Zonemaster: "none"},
	)
}

// Input is everything the analysis knows about one domain: the latest DNS
// observation with the monitor's findings, the registration record (or
// why there is none) and the dependency edges found from it. Every field
// but Domain may be empty: the analysis says what it could not judge.
type Input struct {
	Domain config.Domain
	// DNS is the monitor's observation; DNSErr says why the domain could
	// not be checked at all (nil DNS and nil DNSErr: not gathered).
	DNS         *monitor.Observation
	DNSFindings []finding.Finding
	DNSErr      error
	// Registration is the registry record; RegErr the lookup error
	// (errors.Is(RegErr, registry.ErrNotRegistered): not registered).
	Registration *registry.Record
	RegErr       error
	// Registrant is the registrant organisation when the caller knows it;
	// empty means "use Registration.Registrant" (see Registrant).
	Registrant string
	// Edges are the dependency edges Walk found from this domain, nil when
	// no walk ran; WalkProblems the lookups that failed during it.
	Edges        []Edge
	WalkProblems []string
}

// Source gathers inputs. It returns inputs for the domains it has data
// for and leaves the others out, so sources can be chained (Gather): the
// store's latest observations first, fresh checks for the rest.
type Source interface {
	Inputs(ctx context.Context, domains []config.Domain) ([]Input, error)
}

// SourceFunc adapts a function to Source: the seam for "load stored
// observations" until the store offers one.
type SourceFunc func(ctx context.Context, domains []config.Domain) ([]Input, error)

// Inputs calls f.
func (f SourceFunc) Inputs(ctx context.Context, domains []config.Domain) ([]Input, error) {
	return f(ctx, domains)
}

// Gather asks each source in turn for the domains still without an input
// and returns one input per domain, in the order given. A domain no source
// knows gets an input with only Domain set (the report says it was not
// checked). A source error stops the gathering: the caller cannot tell a
// partial answer from a complete one.
func Gather(ctx context.Context, domains []config.Domain, sources ...Source) ([]Input, error) {
	have := make(map[string]Input, len(domains))
	missing := domains
	for _, s := range sources {
		if len(missing) == 0 {
			break
		}
		got, err := s.Inputs(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("audit: gathering inputs: %w", err)
		}
		for _, in := range got {
			have[config.CanonicalName(in.Domain.Name)] = in
		}
		var still []config.Domain
		for _, d := range missing {
			if _, ok := have[config.CanonicalName(d.Name)]; !ok {
				still = append(still, d)
			}
		}
		missing = still
	}
	out := make([]Input, len(domains))
	for i, d := range domains {
		in, ok := have[config.CanonicalName(d.Name)]
		if !ok {
			in = Input{Domain: d}
		}
		in.Domain = d
		out[i] = in
	}
	return out, nil
}

// Targets lists what an audit needs data for: every inventory domain, then
// every backup named in the inventory that is not itself an inventory
// entry (checked for the independence matrix only, as a tier-3 domain of
// the primary's owner).
func Targets(cfg *config.Config) []config.Domain {
	out := slices.Clone(cfg.Domains)
	seen := map[string]bool{}
	for _, d := range cfg.Domains {
		seen[config.CanonicalName(d.Name)] = true
	}
	for _, d := range cfg.Domains {
		for _, b := range d.Backups {
			n := config.CanonicalName(b)
			if seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, config.Domain{Name: n, Tier: 3, Owner: d.Owner})
		}
	}
	return out
}
