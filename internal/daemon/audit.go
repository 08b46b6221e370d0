package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// StoredSource answers the audit from the latest stored DNS and
// registration observations, for the domains that have both; the
// dependency walk still asks the DNS (one lookup per watched name and NS
// domain), since observations keep answers, not the records behind them.
func StoredSource(q store.Queries, mon *monitor.Monitor) audit.Source {
	return audit.SourceFunc(func(ctx context.Context, domains []config.Domain) ([]audit.Input, error) {
		dns, _, err := checker.Latest(ctx, q, checker.DNS)
		if err != nil {
			return nil, fmt.Errorf("stored DNS observations: %w", err)
		}
		reg, _, err := checker.Latest(ctx, q, checker.Registration)
		if err != nil {
			return nil, fmt.Errorf("stored registration observations: %w", err)
		}
		var out []audit.Input
		for _, d := range domains {
			ds, okD := dns[d.Name]
			rs, okR := reg[d.Name]
			if !okD || !okR {
				continue
			}
			in := audit.Input{Domain: d, DNS: ds.DNS, DNSFindings: ds.Findings, Registration: rs.Registration, Registrant: rs.Registrant}
			if ds.Error != "" {
				in.DNSErr = errors.New(ds.Error)
			}
			switch {
			case rs.NotRegistered:
				in.RegErr = fmt.Errorf("%s: %w", rs.Error, registry.ErrNotRegistered)
			case rs.Error != "":
				in.RegErr = errors.New(rs.Error)
			}
			out = append(out, in)
		}
		if mon != nil && len(out) > 0 {
			audit.WalkAll(ctx, mon.Resolver().NewCycle(), out, 8)
		}
		return out, nil
	})
}
