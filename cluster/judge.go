package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
)

// VantageDisagrees is the finding for a problem some vantage points see and
// others do not: a hijack or a poisoned resolver visible from one region.
const VantageDisagrees = "VANTAGE_DISAGREES"

func init() {
	finding.Register(finding.Check{ID: VantageDisagrees, Class: "resolver", Default: finding.Warning,
		Title: "vantage points disagree: a problem seen from some regions only", Zonemaster: "none"})
}

// Report is what one vantage point saw of one domain in its latest DNS
// cycle.
type Report struct {
	Vantage string    `json:"-"`
	At      time.Time `json:"-"`
	// Changed is when what the vantage sees last changed (zero when not
	// known).
	Changed time.Time `json:"-"`
	// Err is set when the vantage could not check the domain: it then
	// neither sees nor denies anything.
	Err      string            `json:"error,omitempty"`
	Findings []finding.Finding `json:"findings"`
}

// Quorum is the default number of vantage points that must agree: a
// majority of those that reported.
func Quorum(reported int) int { return reported/2 + 1 }

// Judge merges what the vantage points saw of one domain. A finding seen by
// at least quorum of the vantages that checked the domain passes, marked
// with who saw it and who did not. A finding seen by some but fewer does
// not page as itself: the vantages' disagreement is one VANTAGE_DISAGREES
// finding (its severity: warning, critical when a critical finding is
// seen somewhere), naming who sees what. quorum <= 0 means Quorum(n).
func Judge(domain string, reports []Report, quorum int) []finding.Finding {
	var checked []string
	for _, r := range reports {
		if r.Err == "" {
			checked = append(checked, r.Vantage)
		}
	}
	sort.Strings(checked)
	if len(checked) == 0 {
		return nil
	}
	if quorum <= 0 {
		quorum = Quorum(len(checked))
	}
	type seen struct {
		f    finding.Finding
		from []string
	}
	byKey := map[string]*seen{}
	var order []string
	for _, r := range reports {
		if r.Err != "" {
			continue
		}
		for _, f := range r.Findings {
			k := f.Key()
			s, ok := byKey[k]
			if !ok {
				s = &seen{f: f}
				byKey[k] = s
				order = append(order, k)
			}
			if f.Severity > s.f.Severity {
				s.f.Severity = f.Severity
			}
			if !slices.Contains(s.from, r.Vantage) {
				s.from = append(s.from, r.Vantage)
			}
		}
	}
	var out []finding.Finding
	var minority []*seen
	for _, k := range order {
		s := byKey[k]
		sort.Strings(s.from)
		f := s.f
		f.Domain = domain
		if len(checked) > 1 {
			f.SeenFrom, f.NotSeenFrom = s.from, minus(checked, s.from)
		}
		if len(s.from) >= quorum {
			out = append(out, f)
			continue
		}
		if f.Severity > finding.OK && !f.Accepted {
			minority = append(minority, &seen{f: f, from: s.from})
		}
	}
	if len(minority) > 0 {
		d := finding.Finding{ID: VantageDisagrees, Severity: finding.Warning, Domain: domain}
		var parts []string
		for _, s := range minority {
			if s.f.Severity == finding.Critical {
				d.Severity = finding.Critical
			}
			parts = append(parts, s.f.ID)
			d.Evidence = append(d.Evidence, finding.Evidence{Server: "seen from " + strings.Join(s.from, ", "),
				Query: s.f.ID, Answer: s.f.Message})
			d.SeenFrom = union(d.SeenFrom, s.from)
		}
		d.NotSeenFrom = minus(checked, d.SeenFrom)
		d.Message = fmt.Sprintf("%s seen from %s but not from %s (%d of %d vantage points, fewer than the %d that must agree): "+
			"a hijack, a poisoned resolver or a network problem visible from some regions only",
			strings.Join(parts, ", "), strings.Join(d.SeenFrom, ", "), strings.Join(d.NotSeenFrom, ", "), len(d.SeenFrom), len(checked), quorum)
		out = append(out, d)
	}
	finding.Sort(out)
	return out
}

func minus(all, some []string) []string {
	var out []string
	for _, v := range all {
		if !slices.Contains(some, v) {
			out = append(out, v)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
