package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// TierWeights weigh one service by its domain's tier for the blast radius:
// each tier counts half the one above it, so one tier-0 service weighs as
// much as eight tier-3 ones. Tier 0 is what the company cannot run without
// for an hour (payments, log-in, the shop); tier 3 a nice-to-have.
var TierWeights = [4]int{8, 4, 2, 1}

// BlastRadius is what losing d costs: its services, each weighted by d's
// tier. A domain with no services listed counts as one service (it is in
// the inventory for a reason).
func BlastRadius(d config.Domain) int {
	t := min(max(d.Tier, 0), 3)
	return max(1, len(d.Services)) * TierWeights[t]
}

// rolledUp are the monitor findings the audit rolls up per owner.
var rolledUp = []string{monitor.NSSingleProvider, monitor.NSSamePrefix}

// Report is the outcome of an audit. Its JSON is stable: lists are sorted.
type Report struct {
	GeneratedAt time.Time     `json:"generated_at"`
	Policy      PolicySummary `json:"policy"`
	Summary     Summary       `json:"summary"`
	// Findings are every finding reported, worst first: the inventory's
	// own, the provider-diversity findings and the registration policy
	// findings of inventory domains.
	Findings []finding.Finding `json:"findings"`
	// Domains are the inventory domains, largest blast radius first.
	Domains []DomainSummary `json:"domains"`
	Owners  []OwnerSummary  `json:"owners"`
	// Shared are the domains over policy.max_services_per_domain, largest
	// blast radius first, each with a suggested split.
	Shared []SharedDomain `json:"shared"`
	// Backups is the independence matrix: one row per primary × backup.
	Backups []BackupCheck `json:"backups"`
	// Undeclared lists every registrable domain the inventory depends on
	// without declaring it, with what depends on it and how.
	Undeclared []Undeclared `json:"undeclared"`
	Graph      Graph        `json:"graph"`
	// Risks are the findings grouped per domain and ID, ranked: severity,
	// then blast radius. The digest shows the first five.
	Risks []Risk `json:"risks"`
	// Notes say what could not be judged (a domain not checked, a
	// dependency walk cut short).
	Notes []string `json:"notes,omitempty"`

	// backupsOf indexes Backups by primary (set by Analyze; a report read
	// back from JSON scans instead).
	backupsOf map[string][]int
}

// PolicySummary is the part of the policy the audit judged against.
type PolicySummary struct {
	MaxServicesPerDomain int                 `json:"max_services_per_domain"`
	ApprovedRegistrars   []string            `json:"approved_registrars"`
	RequiredLocks        map[string][]string `json:"required_locks,omitempty"`
	// ExpiryWarning and ExpiryCritical are written the config's way ("90d").
	ExpiryWarning  string `json:"expiry_warning"`
	ExpiryCritical string `json:"expiry_critical"`
	TierWeights    [4]int `json:"tier_weights"`
}

// Summary counts the findings.
type Summary struct {
	Domains  int `json:"domains"`
	Owners   int `json:"owners"`
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	Info     int `json:"info"`
	// Errors counts inventory domains whose DNS could not be checked at all.
	Errors int              `json:"errors"`
	Worst  finding.Severity `json:"worst"`
	// ByID counts findings per ID, sorted by ID.
	ByID []Count `json:"by_id"`
}

// Count is how many findings of one ID, on how many domains.
type Count struct {
	ID       string           `json:"id"`
	Title    string           `json:"title"`
	Severity finding.Severity `json:"severity"` // the worst of them
	Findings int              `json:"findings"`
	Domains  int              `json:"domains"`
}

// DomainSummary is one inventory domain as the audit saw it.
type DomainSummary struct {
	Name        string           `json:"name"`
	Tier        int              `json:"tier"`
	Owner       string           `json:"owner"`
	Services    []string         `json:"services"`
	Backups     []string         `json:"backups,omitempty"`
	BlastRadius int              `json:"blast_radius"`
	Registrar   string           `json:"registrar,omitempty"`
	Expiry      time.Time        `json:"expiry,omitzero"`
	Worst       finding.Severity `json:"worst"`
	// FindingIDs are the IDs reported for the domain, sorted.
	FindingIDs []string `json:"finding_ids,omitempty"`
	// Unchecked says which inputs were missing ("dns: …", "registration: …").
	Unchecked []string `json:"unchecked,omitempty"`
}

// OwnerSummary rolls one owner's domains and findings up.
type OwnerSummary struct {
	Owner    string            `json:"owner"`
	Domains  []string          `json:"domains"`
	Worst    finding.Severity  `json:"worst"`
	Counts   []Count           `json:"counts"`
	Findings []finding.Finding `json:"findings"`
}

// SharedDomain is a domain over the services limit.
type SharedDomain struct {
	Domain      string           `json:"domain"`
	Tier        int              `json:"tier"`
	Owner       string           `json:"owner"`
	Services    []string         `json:"services"`
	Limit       int              `json:"limit"`
	BlastRadius int              `json:"blast_radius"`
	Severity    finding.Severity `json:"severity"`
	Split       Split            `json:"split"`
}

// Undeclared is a domain depended on but not in the inventory.
type Undeclared struct {
	Domain     string      `json:"domain"`
	Dependents []Dependent `json:"dependents"`
}

// Dependent is an inventory domain that depends on an undeclared one.
type Dependent struct {
	Domain string `json:"domain"`
	Owner  string `json:"owner"`
	Tier   int    `json:"tier"`
	// Paths are the chains of records that make the dependency, each
	// "a CNAME b → b CNAME c".
	Paths []string `json:"paths"`
}

// Graph is the dependency graph: registrable domains and what links them.
type Graph struct {
	Nodes []Node      `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// Node kinds.
const (
	NodeInventory  = "inventory"
	NodeBackup     = "backup"     // named as a backup, not an inventory entry
	NodeUndeclared = "undeclared" // depended on, not declared
	NodeDeclared   = "external"   // depended on and declared elsewhere (a backup)
)

// Node is one domain of the graph.
type Node struct {
	Name  string           `json:"name"`
	Kind  string           `json:"kind"`
	Tier  int              `json:"tier"` // -1 outside the inventory
	Owner string           `json:"owner,omitempty"`
	Worst finding.Severity `json:"worst"`
}

// GraphEdge is one dependency between two domains, all records merged.
type GraphEdge struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Kind    string   `json:"kind"`
	Records []string `json:"records,omitempty"`
}

// Risk is one domain's findings of one ID, ranked.
type Risk struct {
	Rank        int              `json:"rank"`
	Severity    finding.Severity `json:"severity"`
	Domain      string           `json:"domain"`
	Owner       string           `json:"owner"`
	Tier        int              `json:"tier"`
	ID          string           `json:"id"`
	Title       string           `json:"title"`
	Count       int              `json:"count"`
	Subjects    []string         `json:"subjects,omitempty"`
	Message     string           `json:"message"`
	Action      string           `json:"action"`
	BlastRadius int              `json:"blast_radius"`
}

// ExitCode follows `nsguard check`: 2 when a finding is critical, else 3
// when an inventory domain could not be checked at all, else 1 for a
// warning, else 0.
func (r *Report) ExitCode() int {
	switch {
	case r.Summary.Worst == finding.Critical:
		return 2
	case r.Summary.Errors > 0:
		return 3
	}
	return r.Summary.Worst.ExitCode()
}

// analysis is the working state of one Analyze call.
type analysis struct {
	cfg       *config.Config
	now       time.Time
	inputs    map[string]*Input
	inventory map[string]*config.Domain
	declared  map[string]bool
	backupOf  map[string][]string
	findings  map[string][]finding.Finding
}

// Analyze judges the inventory. It is pure: the same config, inputs and
// clock give the same report. Inputs for domains outside the inventory
// (backups gathered for the matrix) are used for the matrix only.
func Analyze(cfg *config.Config, inputs []Input, now time.Time) *Report {
	a := &analysis{
		cfg: cfg, now: now,
		inputs:    make(map[string]*Input, len(inputs)),
		inventory: make(map[string]*config.Domain, len(cfg.Domains)),
		declared:  make(map[string]bool, len(cfg.Domains)),
		backupOf:  map[string][]string{},
		findings:  make(map[string][]finding.Finding, len(cfg.Domains)),
	}
	for i := range inputs {
		a.inputs[config.CanonicalName(inputs[i].Domain.Name)] = &inputs[i]
	}
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		n := config.CanonicalName(d.Name)
		a.inventory[n] = d
		a.declared[n] = true
		for _, b := range d.Backups {
			bn := config.CanonicalName(b)
			a.declared[bn] = true
			a.backupOf[bn] = append(a.backupOf[bn], n)
		}
	}
	r := &Report{
		GeneratedAt: now.UTC().Truncate(time.Second),
		Policy: PolicySummary{
			MaxServicesPerDomain: a.limit(),
			ApprovedRegistrars:   nonNil(cfg.Policy.ApprovedRegistrars),
			RequiredLocks:        cfg.Policy.RequiredLocks,
			ExpiryWarning:        cfg.Policy.Expiry.Warning.String(),
			ExpiryCritical:       cfg.Policy.Expiry.Critical.String(),
			TierWeights:          TierWeights,
		},
		Findings: []finding.Finding{}, Domains: []DomainSummary{}, Owners: []OwnerSummary{},
		Shared: []SharedDomain{}, Backups: []BackupCheck{}, Undeclared: []Undeclared{}, Risks: []Risk{},
		Graph: Graph{Nodes: []Node{}, Edges: []GraphEdge{}},
	}
	undeclared := map[string]map[string]*Dependent{}
	for i := range cfg.Domains {
		d := cfg.Domains[i]
		name := config.CanonicalName(d.Name)
		in := a.input(name)
		var rows []BackupCheck
		for _, b := range d.Backups {
			bn := config.CanonicalName(b)
			rows = append(rows, a.checkBackup(in, bn, a.inputs[bn]))
		}
		r.Backups = append(r.Backups, rows...)
		if sd, f := a.shared(d); f != nil {
			r.Shared = append(r.Shared, sd)
			a.add(*f)
		}
		if f := a.unbacked(d, rows); f != nil {
			a.add(*f)
		}
		for _, f := range a.undeclaredDeps(in, undeclared) {
			a.add(f)
		}
		for _, f := range in.DNSFindings {
			if slices.Contains(rolledUp, f.ID) {
				f.Domain = name
				a.add(f)
			}
		}
		if in.Registration != nil || in.RegErr != nil {
			var delegation []string
			if in.DNS != nil {
				delegation = in.DNS.Parent.NS
			}
			for _, f := range registry.Evaluate(in.Registration, in.RegErr, d, cfg, delegation, now) {
				f.Domain = name
				a.add(f)
			}
		}
		r.Notes = append(r.Notes, a.notes(name, in)...)
	}
	for _, fs := range a.findings {
		r.Findings = append(r.Findings, fs...)
	}
	finding.Sort(r.Findings)
	r.Domains = a.domainSummaries()
	r.Owners = a.owners()
	r.Summary = a.summary(r.Findings, len(r.Owners))
	sort.SliceStable(r.Shared, func(i, j int) bool {
		if r.Shared[i].BlastRadius != r.Shared[j].BlastRadius {
			return r.Shared[i].BlastRadius > r.Shared[j].BlastRadius
		}
		return r.Shared[i].Domain < r.Shared[j].Domain
	})
	r.backupsOf = map[string][]int{}
	for i, b := range r.Backups {
		r.backupsOf[b.Primary] = append(r.backupsOf[b.Primary], i)
	}
	r.Undeclared = flattenUndeclared(undeclared)
	r.Graph = a.graph()
	r.Risks = a.risks(r, r.Findings)
	return r
}

func (a *analysis) limit() int { return max(1, a.cfg.Policy.MaxServicesPerDomain) }

// input returns the input of an inventory domain (an empty one when none
// was gathered).
func (a *analysis) input(name string) Input {
	if in, ok := a.inputs[name]; ok {
		c := *in
		c.Domain = *a.inventory[name]
		return c
	}
	return Input{Domain: *a.inventory[name]}
}

func (a *analysis) add(f finding.Finding) {
	a.findings[f.Domain] = append(a.findings[f.Domain], f)
}

// shared judges DOMAIN_SHARED: warning over the limit, critical when a
// tier-0 domain carries more than twice the limit.
func (a *analysis) shared(d config.Domain) (SharedDomain, *finding.Finding) {
	lim, n := a.limit(), len(d.Services)
	if n <= lim {
		return SharedDomain{}, nil
	}
	name := config.CanonicalName(d.Name)
	sev := finding.Warning
	if d.Tier == 0 && n > 2*lim {
		sev = finding.Critical
	}
	split := SuggestSplit(d.Services, lim)
	sd := SharedDomain{Domain: name, Tier: d.Tier, Owner: d.Owner, Services: d.Services, Limit: lim,
		BlastRadius: BlastRadius(d), Severity: sev, Split: split}
	f := &finding.Finding{
		ID: IDDomainShared, Severity: sev, Domain: name,
		Message: fmt.Sprintf("%s carries %d services, more than the %d policy allows: one incident on this domain takes all of them down. What to do: split it: %s.",
			name, n, lim, splitText(name, split)),
		Evidence: []finding.Evidence{
			{Query: name + " services", Answer: fmt.Sprintf("%d: %s", n, strings.Join(d.Services, ", "))},
			{Query: "policy.max_services_per_domain", Answer: fmt.Sprint(lim)},
			{Query: "blast radius", Answer: fmt.Sprintf("%d (%d services × tier %d weight %d)", sd.BlastRadius, max(1, n), d.Tier, TierWeights[min(max(d.Tier, 0), 3)])},
		},
	}
	return sd, f
}

func splitText(name string, s Split) string {
	parts := []string{"keep " + strings.Join(s.Keep, ", ") + " on " + name}
	for i, m := range s.Move {
		dest := "a new domain"
		if i > 0 {
			dest = "another new domain"
		}
		parts = append(parts, "move "+strings.Join(m, ", ")+" to "+dest)
	}
	return strings.Join(parts, "; ")
}

// unbacked judges DOMAIN_UNBACKED for tier 0 (critical) and tier 1
// (warning). A domain that is itself another inventory domain's backup
// is the redundancy and needs none of its own.
func (a *analysis) unbacked(d config.Domain, rows []BackupCheck) *finding.Finding {
	name := config.CanonicalName(d.Name)
	if d.Tier > 1 || len(a.backupOf[name]) > 0 {
		return nil
	}
	sev := finding.Warning
	if d.Tier == 0 {
		sev = finding.Critical
	}
	f := &finding.Finding{ID: IDDomainUnbacked, Severity: sev, Domain: name}
	services := "its services"
	if len(d.Services) > 0 {
		services = "its services (" + strings.Join(d.Services, ", ") + ")"
	}
	if len(rows) == 0 {
		f.Message = fmt.Sprintf("%s is tier %d and has no backup domain: if it is lost (hijacked, suspended, expired, or its DNS provider fails) %s have nowhere to fail over to. "+
			"What to do: register a backup domain at another approved registrar, on other DNS providers, under another TLD and in the name of another group entity; list it under backups: and write a failover playbook.",
			name, d.Tier, services)
		f.Evidence = []finding.Evidence{{Query: name + " backups", Answer: fmt.Sprintf("none declared; tier %d requires one", d.Tier)}}
		return f
	}
	var problems, actions []string
	for _, bc := range rows {
		if bc.Usable() {
			return nil
		}
		problems = append(problems, bc.Backup+": "+strings.Join(bc.Reasons(), "; "))
		actions = append(actions, backupActions(name, bc)...)
		for _, h := range bc.Health {
			f.Evidence = append(f.Evidence, finding.Evidence{Query: bc.Backup + " health", Answer: h})
		}
		for _, c := range bc.Cells {
			if c.Status == CellShared {
				f.Evidence = append(f.Evidence, finding.Evidence{Query: bc.Backup + " " + DimensionTitle[c.Dimension],
					Answer: fmt.Sprintf("shared: %s (primary %s; backup %s)", c.Shared, c.Primary, c.Backup)})
			}
		}
	}
	f.Message = fmt.Sprintf("%s (tier %d) has no usable backup, so %s have nowhere safe to fail over to. %s. What to do: %s.",
		name, d.Tier, services, strings.Join(problems, ". "), strings.Join(actions, "; "))
	return f
}

// backupActions says what fixes each reason a backup does not count.
func backupActions(primary string, bc BackupCheck) []string {
	var out []string
	for _, h := range bc.Health {
		switch {
		case strings.HasPrefix(h, "not registered"):
			out = append(out, "register "+bc.Backup+" now, before someone else does")
		case strings.HasPrefix(h, "registration expire"):
			out = append(out, "renew "+bc.Backup+" and turn on auto-renew")
		case strings.HasPrefix(h, "registration status"):
			out = append(out, "have the registrar lift the hold on "+bc.Backup)
		default:
			out = append(out, "repair "+bc.Backup+"'s delegation and name servers")
		}
	}
	for _, c := range bc.Cells {
		if c.Status != CellShared {
			continue
		}
		switch c.Dimension {
		case DimRegistrar:
			out = append(out, "transfer "+bc.Backup+" to another approved registrar than "+primary+"'s")
		case DimNSProvider:
			out = append(out, "move "+bc.Backup+" to a DNS provider "+primary+" does not use")
		case DimNSNetwork:
			out = append(out, "host "+bc.Backup+"'s name servers in networks "+primary+"'s do not use")
		case DimTLD:
			out = append(out, "use a backup under another TLD than ."+tld(primary))
		case DimRegistrant:
			out = append(out, "register "+bc.Backup+" in the name of another group entity")
		}
	}
	return out
}

// undeclaredDeps judges DEPENDENCY_UNDECLARED for one inventory domain D:
// a domain X D depends on directly that is not declared, and one level
// further, a domain Y that X depends on when X is undeclared, or when X
// is declared but X's own walk did not find Y (a CNAME chain through X).
// One finding per undeclared domain; the paths are the evidence.
func (a *analysis) undeclaredDeps(in Input, acc map[string]map[string]*Dependent) []finding.Finding {
	root := config.CanonicalName(in.Domain.Name)
	paths := map[string][]string{}
	var order []string
	note := func(to, path string) {
		if _, ok := paths[to]; !ok {
			order = append(order, to)
		}
		if !slices.Contains(paths[to], path) {
			paths[to] = append(paths[to], path)
		}
	}
	byFrom := map[string][]Edge{}
	for _, e := range in.Edges {
		if e.Depth == 1 {
			if !a.declared[e.To] {
				note(e.To, e.Record)
			}
		} else {
			byFrom[e.From] = append(byFrom[e.From], e)
		}
	}
	for _, e1 := range in.Edges {
		if e1.Depth != 1 {
			continue
		}
		for _, e2 := range byFrom[e1.To] {
			if a.declared[e2.To] || e2.To == root {
				continue
			}
			// Through a declared domain: its own audit reports what its own
			// walk finds; only what the chain through it adds is D's.
			if a.declared[e1.To] && a.walkFinds(e1.To, e2.To) {
				continue
			}
			// NS edges at level 2 belong to X as a whole; CNAME edges only
			// to the host D points at.
			if e2.Kind == EdgeCNAME && e1.Kind == EdgeNS {
				continue
			}
			if e2.Kind == EdgeCNAME && !strings.HasPrefix(e2.Record, strings.TrimSuffix(e1.Host, ".")+" ") {
				continue
			}
			note(e2.To, e1.Record+" → "+e2.Record)
		}
	}
	var out []finding.Finding
	d := in.Domain
	for _, to := range order {
		ps := paths[to]
		f := finding.Finding{
			ID: IDDependencyUndeclared, Severity: finding.Warning, Domain: root, Subject: to,
			Message: fmt.Sprintf("%s depends on %s (%s), which is not in the inventory: nobody watches its registration or DNS, and if it lapses or breaks, %s breaks with it. "+
				"What to do: add %s to the inventory (owner, tier, backups), or move the dependency to a domain that is watched.",
				root, to, ps[0], root, to),
		}
		for _, p := range ps {
			f.Evidence = append(f.Evidence, finding.Evidence{Query: "dependency", Answer: p})
		}
		out = append(out, f)
		if acc[to] == nil {
			acc[to] = map[string]*Dependent{}
		}
		acc[to][root] = &Dependent{Domain: root, Owner: d.Owner, Tier: d.Tier, Paths: ps}
	}
	return out
}

// walkFinds reports whether domain x's own walk has an edge to y.
func (a *analysis) walkFinds(x, y string) bool {
	in, ok := a.inputs[x]
	if !ok {
		return false
	}
	for _, e := range in.Edges {
		if e.To == y {
			return true
		}
	}
	return false
}

func flattenUndeclared(m map[string]map[string]*Dependent) []Undeclared {
	out := make([]Undeclared, 0, len(m))
	for to, deps := range m {
		u := Undeclared{Domain: to}
		for _, d := range deps {
			u.Dependents = append(u.Dependents, *d)
		}
		sort.Slice(u.Dependents, func(i, j int) bool { return u.Dependents[i].Domain < u.Dependents[j].Domain })
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Dependents) != len(out[j].Dependents) {
			return len(out[i].Dependents) > len(out[j].Dependents)
		}
		return out[i].Domain < out[j].Domain
	})
	return out
}

// notes says what could not be judged for one inventory domain.
func (a *analysis) notes(name string, in Input) []string {
	var out []string
	for _, u := range unchecked(in) {
		out = append(out, name+": "+u)
	}
	if len(in.WalkProblems) > 0 {
		p := in.WalkProblems
		more := ""
		if len(p) > 3 {
			p, more = p[:3], fmt.Sprintf(" (and %d more)", len(in.WalkProblems)-3)
		}
		out = append(out, fmt.Sprintf("%s: dependency walk incomplete: %s%s", name, strings.Join(p, "; "), more))
	}
	return out
}

func unchecked(in Input) []string {
	var out []string
	switch {
	case in.DNSErr != nil:
		out = append(out, "dns: could not be checked: "+in.DNSErr.Error())
	case in.DNS == nil:
		out = append(out, "dns: not checked")
	}
	if in.Registration == nil && in.RegErr == nil {
		out = append(out, "registration: not checked")
	}
	if in.Edges == nil {
		out = append(out, "dependencies: not walked")
	}
	return out
}

func (a *analysis) domainSummaries() []DomainSummary {
	out := make([]DomainSummary, 0, len(a.cfg.Domains))
	for _, d := range a.cfg.Domains {
		name := config.CanonicalName(d.Name)
		in := a.input(name)
		fs := a.findings[name]
		ds := DomainSummary{
			Name: name, Tier: d.Tier, Owner: d.Owner, Services: nonNil(d.Services), Backups: d.Backups,
			BlastRadius: BlastRadius(d), Worst: finding.Worst(fs), FindingIDs: finding.IDs(fs), Unchecked: unchecked(in),
		}
		if in.Registration != nil {
			ds.Registrar = in.Registration.Registrar.String()
			ds.Expiry = in.Registration.Expiry
		}
		out = append(out, ds)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].BlastRadius != out[j].BlastRadius {
			return out[i].BlastRadius > out[j].BlastRadius
		}
		if out[i].Tier != out[j].Tier {
			return out[i].Tier < out[j].Tier
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// noOwner is how a domain without an owner is filed.
const noOwner = "(no owner)"

func ownerOf(d config.Domain) string {
	if strings.TrimSpace(d.Owner) == "" {
		return noOwner
	}
	return d.Owner
}

func (a *analysis) owners() []OwnerSummary {
	byOwner := map[string]*OwnerSummary{}
	var names []string
	for _, d := range a.cfg.Domains {
		o := ownerOf(d)
		s, ok := byOwner[o]
		if !ok {
			s = &OwnerSummary{Owner: o, Findings: []finding.Finding{}}
			byOwner[o] = s
			names = append(names, o)
		}
		name := config.CanonicalName(d.Name)
		s.Domains = append(s.Domains, name)
		s.Findings = append(s.Findings, a.findings[name]...)
	}
	out := make([]OwnerSummary, 0, len(names))
	for _, n := range names {
		s := byOwner[n]
		sort.Strings(s.Domains)
		finding.Sort(s.Findings)
		s.Worst = finding.Worst(s.Findings)
		s.Counts = counts(s.Findings)
		out = append(out, *s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Worst != out[j].Worst {
			return out[i].Worst > out[j].Worst
		}
		if len(out[i].Findings) != len(out[j].Findings) {
			return len(out[i].Findings) > len(out[j].Findings)
		}
		return out[i].Owner < out[j].Owner
	})
	return out
}

func counts(fs []finding.Finding) []Count {
	by := map[string]*Count{}
	doms := map[string]map[string]bool{}
	for _, f := range fs {
		c, ok := by[f.ID]
		if !ok {
			c = &Count{ID: f.ID}
			if chk, ok := finding.Lookup(f.ID); ok {
				c.Title = chk.Title
			}
			by[f.ID] = c
			doms[f.ID] = map[string]bool{}
		}
		c.Findings++
		if f.Severity > c.Severity {
			c.Severity = f.Severity
		}
		doms[f.ID][f.Domain] = true
	}
	out := make([]Count, 0, len(by))
	for id, c := range by {
		c.Domains = len(doms[id])
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *analysis) summary(fs []finding.Finding, owners int) Summary {
	s := Summary{Domains: len(a.cfg.Domains), Owners: owners, Worst: finding.Worst(fs), ByID: counts(fs)}
	for _, d := range a.cfg.Domains {
		if in := a.input(config.CanonicalName(d.Name)); in.DNS == nil || in.DNSErr != nil {
			s.Errors++
		}
	}
	for _, f := range fs {
		switch f.Severity {
		case finding.Critical:
			s.Critical++
		case finding.Warning:
			s.Warning++
		case finding.Info:
			s.Info++
		}
	}
	return s
}

func (a *analysis) graph() Graph {
	g := Graph{Nodes: []Node{}, Edges: []GraphEdge{}}
	nodes := map[string]*Node{}
	node := func(name string) *Node {
		if n, ok := nodes[name]; ok {
			return n
		}
		n := &Node{Name: name, Tier: -1}
		switch d, ok := a.inventory[name]; {
		case ok:
			n.Kind, n.Tier, n.Owner, n.Worst = NodeInventory, d.Tier, d.Owner, finding.Worst(a.findings[name])
		case len(a.backupOf[name]) > 0:
			n.Kind = NodeBackup
		case a.declared[name]:
			n.Kind = NodeDeclared
		default:
			n.Kind = NodeUndeclared
		}
		nodes[name] = n
		return n
	}
	type key struct{ from, to, kind string }
	edges := map[key]*GraphEdge{}
	edge := func(from, to, kind, rec string) {
		node(from)
		node(to)
		k := key{from, to, kind}
		e, ok := edges[k]
		if !ok {
			e = &GraphEdge{From: from, To: to, Kind: kind}
			edges[k] = e
		}
		if rec != "" && !slices.Contains(e.Records, rec) {
			e.Records = append(e.Records, rec)
		}
	}
	for _, d := range a.cfg.Domains {
		name := config.CanonicalName(d.Name)
		node(name)
		for _, b := range d.Backups {
			edge(name, config.CanonicalName(b), EdgeBackup, "")
		}
		if in, ok := a.inputs[name]; ok {
			for _, e := range in.Edges {
				edge(e.From, e.To, e.Kind, e.Record)
			}
		}
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].Name < g.Nodes[j].Name })
	for _, e := range edges {
		sort.Strings(e.Records)
		g.Edges = append(g.Edges, *e)
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		x, y := g.Edges[i], g.Edges[j]
		if x.From != y.From {
			return x.From < y.From
		}
		if x.To != y.To {
			return x.To < y.To
		}
		return x.Kind < y.Kind
	})
	return g
}

// risks groups findings per domain and ID and ranks them: severity first,
// then the domain's blast radius, then how many findings the group holds.
func (a *analysis) risks(rep *Report, fs []finding.Finding) []Risk {
	type key struct{ domain, id string }
	by := map[key]*Risk{}
	var order []key
	for _, f := range fs {
		if f.Severity < finding.Warning {
			continue
		}
		k := key{f.Domain, f.ID}
		r, ok := by[k]
		if !ok {
			d := a.inventory[f.Domain]
			r = &Risk{Severity: f.Severity, Domain: f.Domain, ID: f.ID, Message: f.Message, Action: rep.Action(f)}
			if d != nil {
				r.Owner, r.Tier, r.BlastRadius = d.Owner, d.Tier, BlastRadius(*d)
			}
			r.Title = title(f.ID)
			by[k] = r
			order = append(order, k)
		}
		r.Count++
		if f.Subject != "" {
			r.Subjects = append(r.Subjects, f.Subject)
		}
		if f.Severity > r.Severity {
			r.Severity = f.Severity
		}
	}
	out := make([]Risk, 0, len(order))
	for _, k := range order {
		r := by[k]
		if len(r.Subjects) > 1 {
			// One action for the group: "set serverDeleteProhibited, serverUpdateProhibited".
			r.Action = rep.Action(finding.Finding{ID: r.ID, Severity: r.Severity, Domain: r.Domain,
				Subject: strings.Join(r.Subjects, ", "), Message: r.Message})
		}
		out = append(out, *r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Severity != y.Severity {
			return x.Severity > y.Severity
		}
		if x.BlastRadius != y.BlastRadius {
			return x.BlastRadius > y.BlastRadius
		}
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		if x.Domain != y.Domain {
			return x.Domain < y.Domain
		}
		return x.ID < y.ID
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}
