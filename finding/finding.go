// Package finding is the vocabulary every nsguard check speaks: a Finding
// with a stable ID, a severity and its evidence, and the catalogue of IDs
// that docs/checks.md, the config and the code all name the same way.
package finding

import (
	"fmt"
	"sort"
	"strings"
)

// Severity orders findings; the zero value is OK.
type Severity int

const (
	OK Severity = iota
	Info
	Warning
	Critical
)

var severityNames = []string{"ok", "info", "warning", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads "info", "warning" or "critical" (and "ok").
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return OK, fmt.Errorf("unknown severity %q", s)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ExitCode maps the worst severity to the Nagios plugin convention.
func (s Severity) ExitCode() int {
	switch s {
	case Critical:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// Evidence is one observation backing a finding: who was asked what, and
// what they answered.
type Evidence struct {
	Server string `json:"server,omitempty"`
	Query  string `json:"query,omitempty"`
	Answer string `json:"answer"`
}

func (e Evidence) String() string {
	var b strings.Builder
	if e.Server != "" {
		b.WriteString(e.Server)
	}
	if e.Query != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(e.Query)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Answer)
	return b.String()
}

// Finding is one problem found about one domain.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Domain   string   `json:"domain"`
	// Subject narrows the finding inside the domain (a server, a name), so
	// two findings with one ID stay distinct incidents.
	Subject  string     `json:"subject,omitempty"`
	Message  string     `json:"message"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Accepted marks a posture finding that was present, at this severity
	// or worse, when a person approved the domain's baseline: accepted
	// risk, shown and digested, never paged.
	Accepted bool `json:"accepted,omitempty"`
	// SeenFrom and NotSeenFrom name the vantage points that did and did
	// not see the finding (a cluster of probes; empty on a single node).
	SeenFrom    []string `json:"seen_from,omitempty"`
	NotSeenFrom []string `json:"not_seen_from,omitempty"`
}

// Key identifies the finding across observations (incident identity).
func (f Finding) Key() string {
	return f.Domain + "|" + f.ID + "|" + f.Subject
}

// Sort orders findings worst first, then by domain, ID and subject, so
// output is stable.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Domain != b.Domain {
			return a.Domain < b.Domain
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Subject < b.Subject
	})
}

// Worst returns the highest severity among fs (OK when empty).
func Worst(fs []Finding) Severity {
	w := OK
	for _, f := range fs {
		if f.Severity > w {
			w = f.Severity
		}
	}
	return w
}

// IDs returns the sorted, de-duplicated IDs of fs.
func IDs(fs []Finding) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		if !seen[f.ID] {
			seen[f.ID] = true
			out = append(out, f.ID)
		}
	}
	sort.Strings(out)
	return out
}

// Merge folds findings with the same Key into one: the worst severity, the
// messages joined, all evidence kept. Two checks can say the same thing (the
// monitor's "servers disagree" and the baseline's "differs from approved"
// for one watched record); an incident must see one finding.
func Merge(fs []Finding) []Finding {
	idx := map[string]int{}
	var out []Finding
	for _, f := range fs {
		i, ok := idx[f.Key()]
		if !ok {
			idx[f.Key()] = len(out)
			out = append(out, f)
			continue
		}
		m := &out[i]
		if f.Severity > m.Severity {
			m.Severity = f.Severity
		}
		if f.Message != "" && !strings.Contains(m.Message, f.Message) {
			m.Message += "; " + f.Message
		}
		m.Evidence = append(m.Evidence, f.Evidence...)
	}
	Sort(out)
	return out
}
