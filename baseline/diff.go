package baseline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

// Finding IDs raised against the approved baseline.
const (
	BaselineNeeded      = "BASELINE_NEEDED"
	DelegationChanged   = "DELEGATION_CHANGED"
	ChildNSChanged      = "CHILD_NS_CHANGED"
	RegistrationChanged = "REGISTRATION_CHANGED"
	// RecordChanged is shared with the monitor (servers that disagree).
	RecordChanged = "RECORD_CHANGED"
)

func init() {
	finding.Register(
		finding.Check{ID: BaselineNeeded, Class: "baseline", Default: finding.Info,
			Title: "no approved baseline yet", Zonemaster: "none"},
		finding.Check{ID: DelegationChanged, Class: "baseline", Default: finding.Critical,
			Title: "parent NS, glue or DS differ from the approved baseline", Zonemaster: "none"},
		finding.Check{ID: ChildNSChanged, Class: "baseline", Default: finding.Critical,
			Title: "the child's NS set differs from the approved baseline", Zonemaster: "none"},
		finding.Check{ID: RegistrationChanged, Class: "baseline", Default: finding.Critical,
			Title: "registrar, statuses, registry NS or DS differ from the approved baseline", Zonemaster: "none"},
	)
}

// Operations, in DNSControl's words.
const (
	Create = "CREATE"
	Change = "CHANGE"
	Delete = "DELETE"
)

// Diff is one difference from the approved state.
type Diff struct {
	Op     string   `json:"op"`
	Field  string   `json:"field"`
	Server string   `json:"server,omitempty"`
	Old    []string `json:"old,omitempty"`
	New    []string `json:"new,omitempty"`
	// ID is the finding this difference raises ("" when it is expected).
	ID       string           `json:"id,omitempty"`
	Subject  string           `json:"subject,omitempty"`
	Severity finding.Severity `json:"severity"`
	// Expected marks differences that are normal (a new SOA serial).
	Expected bool `json:"expected,omitempty"`
}

func (d Diff) String() string {
	where := d.Field
	if d.Server != "" {
		where += " @ " + d.Server
	}
	switch d.Op {
	case Create:
		return fmt.Sprintf("%s %s: + %s", d.Op, where, join(d.New))
	case Delete:
		return fmt.Sprintf("%s %s: - %s", d.Op, where, join(d.Old))
	}
	return fmt.Sprintf("%s %s: %s → %s", d.Op, where, join(d.Old), join(d.New))
}

// DiffDNS compares the DNS now with the approved DNS state.
func DiffDNS(d config.Domain, approved, now *DNS) []Diff {
	if approved == nil || now == nil {
		return nil
	}
	var out []Diff
	crit := finding.Critical
	out = append(out, setDiff("parent NS", "", approved.ParentNS, now.ParentNS, DelegationChanged, "", crit)...)
	out = append(out, setDiff("DS", "", approved.DS, now.DS, DelegationChanged, "", crit)...)
	glueOld, glueNew := glueMap(approved), glueMap(now)
	for _, name := range keysOf(glueOld, glueNew) {
		out = append(out, setDiff("glue "+name, "", glueOld[name], glueNew[name], DelegationChanged, "", crit)...)
	}
	out = append(out, perServer("parent NS", approved.ParentServers, now.ParentServers, DelegationChanged, "", crit, false)...)
	out = append(out, perServer("child NS", approved.ChildNS, now.ChildNS, ChildNSChanged, "", crit, false)...)
	out = append(out, perServer("SOA serial", approved.Serials, now.Serials, "", "", finding.OK, true)...)
	sev, err := finding.ParseSeverity(d.WatchSeverity)
	if err != nil || sev == finding.OK {
		sev = finding.Warning
	}
	oldRecs := map[string]Record{}
	for _, r := range approved.Records {
		oldRecs[r.Name+"/"+r.Type] = r
	}
	for _, r := range now.Records {
		old, ok := oldRecs[r.Name+"/"+r.Type]
		if !ok {
			continue // a newly watched name: nothing approved to compare with
		}
		subject := strings.TrimSuffix(r.Name, ".") + "/" + r.Type
		out = append(out, perServer("record "+subject, old.Servers, r.Servers, RecordChanged, subject, sev, false)...)
	}
	return out
}

// DiffRegistration compares the registration now with the approved one.
func DiffRegistration(approved, now *Register) []Diff {
	if approved == nil || now == nil {
		return nil
	}
	var out []Diff
	crit := finding.Critical
	if approved.Registrar != now.Registrar || approved.IANAID != now.IANAID {
		out = append(out, Diff{Op: Change, Field: "registrar", Old: []string{registrarText(approved)}, New: []string{registrarText(now)},
			ID: RegistrationChanged, Severity: crit})
	}
	// A status removed (a lock gone) or a hold added is critical; a lock
	// added is a change to approve, not an emergency.
	for _, s := range minus(approved.Statuses, now.Statuses) {
		out = append(out, Diff{Op: Delete, Field: "status", Old: []string{s}, ID: RegistrationChanged, Severity: crit})
	}
	for _, s := range minus(now.Statuses, approved.Statuses) {
		sev := crit
		if strings.HasSuffix(s, "Prohibited") {
			sev = finding.Warning
		}
		out = append(out, Diff{Op: Create, Field: "status", New: []string{s}, ID: RegistrationChanged, Severity: sev})
	}
	out = append(out, setDiff("registry NS", "", approved.Nameservers, now.Nameservers, RegistrationChanged, "", crit)...)
	out = append(out, setDiff("registry DS", "", approved.DS, now.DS, RegistrationChanged, "", crit)...)
	return out
}

// Findings turns the differences into findings: one per ID and subject,
// the worst difference's severity. A difference every server shows is one
// evidence line naming the servers, not a line per server: a hijack seen
// on both .com servers reads once.
func Findings(domain string, diffs []Diff) []finding.Finding {
	type key struct{ id, subject string }
	type group struct {
		d       Diff
		servers []string
	}
	idx := map[key]int{}
	var out []finding.Finding
	var groups [][]*group
	for _, d := range diffs {
		if d.Expected || d.ID == "" {
			continue
		}
		k := key{d.ID, d.Subject}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, finding.Finding{ID: d.ID, Domain: domain, Subject: d.Subject})
			groups = append(groups, nil)
		}
		f := &out[i]
		if d.Severity > f.Severity {
			f.Severity = d.Severity
		}
		var g *group
		for _, have := range groups[i] {
			if have.d.Field == d.Field && have.d.Op == d.Op && join(have.d.Old) == join(d.Old) && join(have.d.New) == join(d.New) {
				g = have
				break
			}
		}
		if g == nil {
			g = &group{d: d}
			groups[i] = append(groups[i], g)
		}
		if d.Server != "" {
			g.servers = append(g.servers, d.Server)
		}
	}
	for i := range out {
		for _, g := range groups[i] {
			out[i].Evidence = append(out[i].Evidence, finding.Evidence{Server: strings.Join(g.servers, ", "), Query: g.d.Field, Answer: approvedNow(g.d)})
		}
		first := groups[i][0].d
		out[i].Message = message(domain, out[i], first, len(groups[i]))
	}
	finding.Sort(out)
	return out
}

// Needed is the single notice for a domain without a baseline.
func Needed(domain string) finding.Finding {
	return finding.Finding{ID: BaselineNeeded, Severity: finding.Info, Domain: domain,
		Message:  fmt.Sprintf("%s has no approved baseline: changes cannot be detected until someone approves its current state (nsguard baseline approve %s --reason \"initial\")", domain, domain),
		Evidence: []finding.Evidence{{Query: "baseline", Answer: "none approved"}}}
}

// message says the first difference in words, and how many more there
// are; the accept command is the page's business, said once there.
func message(domain string, f finding.Finding, first Diff, n int) string {
	what := first.Field + " of " + domain
	if f.ID == RecordChanged {
		what = f.Subject
	}
	var s string
	switch first.Op {
	case Create:
		s = fmt.Sprintf("%s added: %s (approved: none)", what, join(first.New))
	case Delete:
		s = fmt.Sprintf("%s removed: %s", what, join(first.Old))
	default:
		s = fmt.Sprintf("%s changed: approved %s → now %s", what, join(first.Old), join(first.New))
	}
	if n > 1 {
		s += fmt.Sprintf(" (and %d more difference%s)", n-1, plural(n-1))
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func approvedNow(d Diff) string {
	switch d.Op {
	case Create:
		return "approved: (none), now: " + join(d.New)
	case Delete:
		return "approved: " + join(d.Old) + ", now: (none)"
	}
	return "approved: " + join(d.Old) + ", now: " + join(d.New)
}

func setDiff(field, server string, old, now []string, id, subject string, sev finding.Severity) []Diff {
	if sameSet(old, now) {
		return nil
	}
	op := Change
	switch {
	case len(old) == 0:
		op = Create
	case len(now) == 0:
		op = Delete
	}
	return []Diff{{Op: op, Field: field, Server: server, Old: sorted(old), New: sorted(now), ID: id, Subject: subject, Severity: sev}}
}

// perServer compares the servers present in both states; a server that
// stopped answering is the monitor's business (NS_UNREACHABLE), not a change.
func perServer(field string, old, now []ServerValues, id, subject string, sev finding.Severity, expected bool) []Diff {
	o := map[string][]string{}
	for _, s := range old {
		o[s.Server] = s.Values
	}
	var out []Diff
	for _, s := range now {
		prev, ok := o[s.Server]
		if !ok {
			continue
		}
		for _, d := range setDiff(field, s.Server, prev, s.Values, id, subject, sev) {
			d.Expected = expected
			if expected {
				d.ID, d.Severity = "", finding.OK
			}
			out = append(out, d)
		}
	}
	return out
}

func glueMap(d *DNS) map[string][]string {
	m := map[string][]string{}
	for _, g := range d.Glue {
		m[g.Name] = g.Addrs
	}
	return m
}

func keysOf(ms ...map[string][]string) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	return strings.Join(sorted(a), "\x00") == strings.Join(sorted(b), "\x00")
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func registrarText(r *Register) string {
	if r.IANAID != "" {
		return fmt.Sprintf("%s (IANA %s)", r.Registrar, r.IANAID)
	}
	return r.Registrar
}
