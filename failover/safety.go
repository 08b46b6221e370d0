package failover

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Safety rules, Route 53 ARC style: evaluated fresh before every run (and
// shown by every plan); a refusing rule stops the run unless --force, which
// the plan, the log and the Slack thread then name.
//
//   - backup-healthy: the backup has no critical finding in a fresh check
//     (DNS and registration).
//   - backup-independent: the backup shares nothing with the primary in
//     the dimensions the primary is failing in. A hijack or a suspension
//     points at the registrar, the registry (TLD) or, for a hold, the
//     registrant; failing name servers or DNSSEC at the DNS provider and
//     its network. A primary with no critical finding fails at nothing,
//     so any backup passes (a drill, or a failure nsguard cannot see).
//   - primary-healthy (rollbacks): the primary, which traffic goes back
//     to, has no critical finding.
//   - preflight: each delegation a step will set up (a dns_update that
//     replaces an NS RRset) is checked first as if it were in place
//     (monitor.Preflight, Zonemaster's undelegated test): no critical
//     finding. A playbook with no such step pre-flights the backup's
//     declared delegation (its declared name servers and DS), the one
//     traffic moves to.
//
// One run per playbook at a time is the lock's rule (lock.go).

// Rule statuses.
const (
	SafetyPass = "pass"
	// SafetyWarn: could not be judged fully; does not refuse.
	SafetyWarn       = "warn"
	SafetyRefuse     = "refuse"
	SafetyOverridden = "overridden"
)

// Rule names.
const (
	RuleBackupHealthy     = "backup-healthy"
	RuleBackupIndependent = "backup-independent"
	RulePrimaryHealthy    = "primary-healthy"
	RulePreflight         = "preflight"
	RuleChecks            = "checks"
)

// SafetyRule is one rule's verdict.
type SafetyRule struct {
	Rule   string `json:"rule"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// applySafety evaluates the rules into p; force turns refusals into
// overrides.
func (e *Engine) applySafety(ctx context.Context, p *Plan, pb config.Playbook, force bool) {
	p.Safety = e.safety(ctx, pb, p.Mode)
	p.Force = force
	if !force {
		return
	}
	for i := range p.Safety {
		if p.Safety[i].Status == SafetyRefuse {
			p.Safety[i].Status = SafetyOverridden
		}
	}
}

func (e *Engine) safety(ctx context.Context, pb config.Playbook, mode string) []SafetyRule {
	if e.check == nil {
		return []SafetyRule{{Rule: RuleChecks, Status: SafetyRefuse, Detail: "no checker configured: the safety rules cannot be evaluated"}}
	}
	primary, ok := e.cfg.Domain(pb.Primary)
	if !ok {
		primary = config.Domain{Name: pb.Primary, Tier: 0, WatchSeverity: "warning"}
	}
	sel, err := checker.Select(e.cfg, []string{pb.Backup})
	if err != nil || len(sel) != 1 {
		return []SafetyRule{{Rule: RuleChecks, Status: SafetyRefuse, Detail: fmt.Sprintf("backup %q: %v", pb.Backup, err)}}
	}
	backup := sel[0]
	res := e.check.Run(ctx, []config.Domain{primary, backup}, checker.RunOptions{})
	if len(res) != 2 {
		return []SafetyRule{{Rule: RuleChecks, Status: SafetyRefuse, Detail: "the fresh check returned no result"}}
	}
	if ctx.Err() != nil {
		return []SafetyRule{{Rule: RuleChecks, Status: SafetyRefuse, Detail: "the fresh check was interrupted: " + ctx.Err().Error()}}
	}
	if mode == ModeRollback {
		st, detail := health(res[0])
		rules := []SafetyRule{{Rule: RulePrimaryHealthy, Status: st, Detail: primary.Name + ", where traffic goes back to, " + detail}}
		return append(rules, e.preflight(ctx, preflightTargets(pb.Rollback, nil))...)
	}
	st, detail := health(res[1])
	rules := []SafetyRule{{Rule: RuleBackupHealthy, Status: st, Detail: backup.Name + " " + detail}}
	rules = append(rules, e.independence(primary, backup, res[0], res[1]))
	return append(rules, e.preflight(ctx, preflightTargets(pb.Steps, &backup))...)
}

// preflightTarget is one delegation to check before the run sets it up.
type preflightTarget struct {
	domain string
	pf     *monitor.Preflight
	// what says where the delegation comes from.
	what string
}

// preflightTargets finds the delegations steps set up: every NS RRset a
// dns_update replaces, with the addresses and DS the same step gives for
// it. With none, the backup's declared delegation (when it declares one).
func preflightTargets(steps []config.Step, backup *config.Domain) []preflightTarget {
	var out []preflightTarget
	for i, st := range steps {
		u := st.DNSUpdate
		if u == nil {
			continue
		}
		var recs []dns.RR
		for _, s := range u.Replace {
			if rr, err := dns.NewRR(s); err == nil && rr != nil {
				rr.Header().Name = dns.CanonicalName(rr.Header().Name)
				recs = append(recs, rr)
			}
		}
		byOwner := map[string]*monitor.Preflight{}
		var owners []string
		for _, rr := range recs {
			ns, ok := rr.(*dns.NS)
			if !ok {
				continue
			}
			pf := byOwner[ns.Hdr.Name]
			if pf == nil {
				pf = &monitor.Preflight{}
				byOwner[ns.Hdr.Name] = pf
				owners = append(owners, ns.Hdr.Name)
			}
			pf.NS = append(pf.NS, resolver.NameServer{Name: dns.CanonicalName(ns.Ns)})
		}
		for _, owner := range owners {
			pf := byOwner[owner]
			for j := range pf.NS {
				pf.NS[j].Addrs = stepAddrs(recs, pf.NS[j].Name)
			}
			for _, rr := range recs {
				if ds, ok := rr.(*dns.DS); ok && ds.Hdr.Name == owner {
					pf.DS = append(pf.DS, fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest)))
				}
			}
			name := st.Name
			if name == "" {
				name = st.Kind()
			}
			out = append(out, preflightTarget{domain: strings.TrimSuffix(owner, "."), pf: pf,
				what: fmt.Sprintf("as step %d (%s) will delegate it, to %s", i+1, name, nsNames(pf))})
		}
	}
	if len(out) > 0 || backup == nil || len(backup.Nameservers) == 0 {
		return out
	}
	pf := &monitor.Preflight{DS: backup.DS}
	for _, n := range backup.Nameservers {
		pf.NS = append(pf.NS, resolver.NameServer{Name: dns.CanonicalName(dns.Fqdn(n))})
	}
	return []preflightTarget{{domain: backup.Name, pf: pf,
		what: fmt.Sprintf("with its declared delegation to %s (no step changes NS)", nsNames(pf))}}
}

func stepAddrs(recs []dns.RR, name string) []netip.Addr {
	var out []netip.Addr
	for _, rr := range recs {
		if rr.Header().Name != name {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out = append(out, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

func nsNames(pf *monitor.Preflight) string {
	var names []string
	for _, ns := range pf.NS {
		names = append(names, strings.TrimSuffix(ns.Name, "."))
	}
	return strings.Join(names, ", ")
}

// preflight checks each target's delegation as if it were in place and
// judges it as backup-healthy judges a fresh check.
func (e *Engine) preflight(ctx context.Context, targets []preflightTarget) []SafetyRule {
	if len(targets) == 0 {
		return nil
	}
	var domains []config.Domain
	byName := map[string]*monitor.Preflight{}
	for _, t := range targets {
		sel, err := checker.Select(e.cfg, []string{t.domain})
		if err != nil || len(sel) != 1 {
			return []SafetyRule{{Rule: RulePreflight, Status: SafetyRefuse, Detail: fmt.Sprintf("%s: %v", t.domain, err)}}
		}
		domains = append(domains, sel[0])
		byName[sel[0].Name] = t.pf
	}
	res := e.check.Run(ctx, domains, checker.RunOptions{Classes: []string{checker.DNS},
		Preflight: func(d string) *monitor.Preflight { return byName[d] }})
	if len(res) != len(targets) || ctx.Err() != nil {
		return []SafetyRule{{Rule: RulePreflight, Status: SafetyRefuse, Detail: "the pre-flight check did not complete"}}
	}
	var rules []SafetyRule
	for i, t := range targets {
		st, detail := health(res[i])
		rules = append(rules, SafetyRule{Rule: RulePreflight, Status: st,
			Detail: fmt.Sprintf("%s, pre-flighted %s: %s", t.domain, t.what, strings.Replace(detail, "in a fresh check", "as delegated so", 1))})
	}
	return rules
}

// health judges one domain's fresh check.
func health(r checker.Result) (string, string) {
	if r.DNSErr != nil {
		return SafetyRefuse, "could not be checked: " + r.DNSErr.Error()
	}
	var crit []string
	warnings := 0
	for _, f := range r.Findings {
		switch f.Severity {
		case finding.Critical:
			s := f.ID
			if f.Subject != "" {
				s += " (" + f.Subject + ")"
			}
			if !slices.Contains(crit, s) {
				crit = append(crit, s)
			}
		case finding.Warning:
			warnings++
		}
	}
	if len(crit) > 0 {
		return SafetyRefuse, "has critical findings in a fresh check: " + strings.Join(crit, ", ")
	}
	return SafetyPass, fmt.Sprintf("has no critical finding in a fresh check (%d warnings)", warnings)
}

// failureDims says which independence dimensions a critical finding
// points at: what the backup must not share.
var failureDims = map[string][]string{
	monitor.DelegationMissing:       {audit.DimRegistrar, audit.DimTLD, audit.DimRegistrant},
	monitor.NSNotAsDeclared:         {audit.DimRegistrar, audit.DimTLD},
	monitor.DSNotAsDeclared:         {audit.DimRegistrar, audit.DimTLD},
	monitor.ParentServersDisagree:   {audit.DimTLD},
	monitor.ParentServerError:       {audit.DimTLD},
	monitor.GlueMissing:             {audit.DimRegistrar, audit.DimTLD},
	monitor.GlueMismatch:            {audit.DimRegistrar, audit.DimTLD},
	registry.IDStatusHold:           {audit.DimRegistrar, audit.DimTLD, audit.DimRegistrant},
	registry.IDRegistrarNotApproved: {audit.DimRegistrar},
	registry.IDLockMissing:          {audit.DimRegistrar},
	registry.IDExpirySoon:           {audit.DimRegistrar},
	registry.IDRegistryNSMismatch:   {audit.DimRegistrar, audit.DimTLD},
}

// classDims covers the checks not named above by their class.
var classDims = map[string][]string{
	"nameserver": {audit.DimNSProvider, audit.DimNSNetwork},
	"dnssec":     {audit.DimNSProvider},
	"records":    {audit.DimNSProvider},
}

var dimWords = map[string]string{
	audit.DimRegistrar:  "registrar",
	audit.DimNSProvider: "DNS provider",
	audit.DimNSNetwork:  "name server network",
	audit.DimTLD:        "TLD registry",
	audit.DimRegistrant: "registrant",
}

// failing maps each dimension the primary is failing in to the finding
// IDs that say so.
func failing(r checker.Result) map[string][]string {
	out := map[string][]string{}
	add := func(dims []string, id string) {
		for _, d := range dims {
			if !slices.Contains(out[d], id) {
				out[d] = append(out[d], id)
			}
		}
	}
	if r.DNSErr != nil {
		add(classDims["nameserver"], "DNS not checkable")
	}
	for _, f := range r.Findings {
		if f.Severity != finding.Critical {
			continue
		}
		if dims, ok := failureDims[f.ID]; ok {
			add(dims, f.ID)
		} else if c, ok := finding.Lookup(f.ID); ok {
			add(classDims[c.Class], f.ID)
		}
	}
	return out
}

func (e *Engine) independence(primary, backup config.Domain, pr, br checker.Result) SafetyRule {
	rule := SafetyRule{Rule: RuleBackupIndependent}
	fails := failing(pr)
	// The audit's independence matrix for this one pair.
	mini := *e.cfg
	p := primary
	p.Backups = []string{backup.Name}
	mini.Domains = []config.Domain{p}
	rep := audit.Analyze(&mini, []audit.Input{
		{Domain: p, DNS: pr.DNS, DNSFindings: pr.Findings, DNSErr: pr.DNSErr, Registration: pr.Registration},
		{Domain: backup, DNS: br.DNS, DNSFindings: br.Findings, DNSErr: br.DNSErr, Registration: br.Registration},
	}, e.now())
	var row audit.BackupCheck
	for _, b := range rep.Backups {
		if b.Backup == config.CanonicalName(backup.Name) {
			row = b
		}
	}
	if len(fails) == 0 {
		rule.Status = SafetyPass
		rule.Detail = primary.Name + " has no critical finding: it fails at nothing the backup could share"
		var shared []string
		for _, c := range row.Cells {
			if c.Status == audit.CellShared {
				shared = append(shared, dimWords[c.Dimension]+" ("+c.Shared+")")
			}
		}
		if len(shared) > 0 {
			rule.Detail += "; note they share the " + strings.Join(shared, ", the ")
		}
		return rule
	}
	var refuse, unknown, fine []string
	dims := make([]string, 0, len(fails))
	for d := range fails {
		dims = append(dims, d)
	}
	sort.Slice(dims, func(i, j int) bool {
		return slices.Index(audit.Dimensions, dims[i]) < slices.Index(audit.Dimensions, dims[j])
	})
	for _, d := range dims {
		why := strings.Join(fails[d], ", ")
		c := row.Cell(d)
		switch c.Status {
		case audit.CellShared:
			refuse = append(refuse, fmt.Sprintf("%s fails at its %s (%s) and %s shares it (%s)", primary.Name, dimWords[d], why, backup.Name, c.Shared))
		case audit.CellIndependent:
			fine = append(fine, fmt.Sprintf("%s (%s vs %s)", dimWords[d], c.Primary, c.Backup))
		default:
			unknown = append(unknown, fmt.Sprintf("could not compare the %s the primary fails at (%s)", dimWords[d], why))
		}
	}
	switch {
	case len(refuse) > 0:
		rule.Status, rule.Detail = SafetyRefuse, strings.Join(refuse, "; ")
	case len(unknown) > 0:
		rule.Status, rule.Detail = SafetyWarn, strings.Join(unknown, "; ")
	default:
		rule.Status = SafetyPass
		rule.Detail = backup.Name + " is independent of what fails on " + primary.Name + ": " + strings.Join(fine, ", ")
	}
	return rule
}
