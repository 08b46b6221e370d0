package checker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

// Report is a check run's output: stable JSON for scripts, a table for people.
type Report struct {
	Domains []DomainReport `json:"domains"`
	Summary Summary        `json:"summary"`
}

// DomainReport is one domain in a Report.
type DomainReport struct {
	Domain       string            `json:"domain"`
	Tier         int               `json:"tier"`
	Owner        string            `json:"owner,omitempty"`
	Status       string            `json:"status"` // ok, info, warning, critical, error
	Error        string            `json:"error,omitempty"`
	Findings     []finding.Finding `json:"findings"`
	DNS          any               `json:"dns,omitempty"`
	Registration any               `json:"registration,omitempty"`
	// registrationCached says the registration data came from the cache
	// and how old it is ("cached 3h12m ago"), for the table; the JSON
	// carries it in the record's cached and cache_age fields.
	registrationCached string
	registrationAt     time.Time
}

// Summary counts a Report.
type Summary struct {
	Total    int `json:"total"`
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	OK       int `json:"ok"`
	Errors   int `json:"errors"`
	// Accepted counts findings that are accepted risk (present when the
	// baseline was approved): shown, but not in Status or the exit code.
	Accepted   int     `json:"accepted"`
	Queries    int     `json:"dns_queries"`
	DurationMS float64 `json:"duration_ms"`
}

// NewReport summarises results.
func NewReport(results []Result, took time.Duration) *Report {
	rep := &Report{Domains: []DomainReport{}}
	for _, r := range results {
		dr := DomainReport{Domain: r.Domain.Name, Tier: r.Domain.Tier, Owner: r.Domain.Owner, Findings: r.Findings}
		if dr.Findings == nil {
			dr.Findings = []finding.Finding{}
		}
		if r.DNS != nil {
			dr.DNS = r.DNS
			rep.Summary.Queries += r.DNS.Queries
		}
		if r.Registration != nil {
			rec := *r.Registration
			rec.Raw = "" // bounded, but noise in a report
			dr.Registration = rec
			if rec.Cached {
				dr.registrationCached = "cached " + rec.CacheAge + " ago"
				dr.registrationAt = rec.FetchedAt
			}
		}
		worst := finding.OK
		for _, f := range r.Findings {
			if f.Accepted {
				rep.Summary.Accepted++
			} else if f.Severity > worst {
				worst = f.Severity
			}
		}
		dr.Status = worst.String()
		if err := r.Err(); err != nil {
			dr.Error = err.Error()
			rep.Summary.Errors++
			if worst < finding.Critical {
				dr.Status = "error"
			}
		}
		switch worst {
		case finding.Critical:
			rep.Summary.Critical++
		case finding.Warning:
			rep.Summary.Warning++
		default:
			if dr.Error == "" {
				rep.Summary.OK++
			}
		}
		rep.Domains = append(rep.Domains, dr)
	}
	rep.Summary.Total = len(results)
	rep.Summary.DurationMS = float64(took.Microseconds()) / 1000
	return rep
}

// WriteJSON writes the report as json.Encoder with a two-space indent
// would, byte for byte, one domain at a time: the whole report is never
// in memory as JSON (26 MB for 10,000 domains, and as much again for the
// indented copy).
func (r *Report) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var compact, out bytes.Buffer
	enc := json.NewEncoder(&compact)
	indented := func(v any, prefix string) error {
		compact.Reset()
		if err := enc.Encode(v); err != nil {
			return err
		}
		// Encode ends with a newline, which Indent would keep.
		out.Reset()
		if err := json.Indent(&out, bytes.TrimSuffix(compact.Bytes(), []byte("\n")), prefix, "  "); err != nil {
			return err
		}
		_, err := bw.Write(out.Bytes())
		return err
	}
	bw.WriteString("{\n  \"domains\": [")
	for i := range r.Domains {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		if err := indented(&r.Domains[i], "    "); err != nil {
			return err
		}
	}
	if len(r.Domains) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("],\n  \"summary\": ")
	if err := indented(&r.Summary, "  "); err != nil {
		return err
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}

// ExitCode follows the Nagios convention: critical beats everything; a domain that could not be checked
// is UNKNOWN (3) unless something is critical; then warning; then ok.
func (r *Report) ExitCode() int {
	switch {
	case r.Summary.Critical > 0:
		return 2
	case r.Summary.Errors > 0:
		return 3
	case r.Summary.Warning > 0:
		return 1
	}
	return 0
}

const (
	ansiRed    = "\x1b[31;1m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

func colourFor(status string) string {
	switch status {
	case "critical", "error":
		return ansiRed
	case "warning":
		return ansiYellow
	case "ok", "info":
		return ansiGreen
	}
	return ""
}

// writeTable prints one block per domain, worst domains first, the worst
// finding first inside each, one evidence line per finding (all with -v).
func (r *Report) WriteTable(w io.Writer, cfg *config.Config, verbose, colour bool) {
	paint := func(code, s string) string {
		if !colour || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	order := map[string]int{"critical": 0, "error": 1, "warning": 2, "info": 3, "ok": 4}
	doms := append([]DomainReport(nil), r.Domains...)
	sortStable(doms, func(a, b DomainReport) bool { return order[a.Status] < order[b.Status] })
	width := 0
	for _, d := range doms {
		width = max(width, len(d.Domain))
	}
	for _, d := range doms {
		head := fmt.Sprintf("%-*s  %s", width, d.Domain, paint(colourFor(d.Status), strings.ToUpper(d.Status)))
		meta := fmt.Sprintf("tier %d", d.Tier)
		if d.Owner != "" {
			meta += ", owner " + d.Owner
		}
		if pbs := cfg.PlaybooksFor(d.Domain); len(pbs) > 0 && d.Status == "critical" {
			meta += ", playbook " + pbs[0].Name
		}
		fmt.Fprintf(w, "%s  %s\n", head, paint(ansiDim, "("+meta+")"))
		if d.Error != "" {
			fmt.Fprintf(w, "    %s %s\n", paint(ansiRed, "ERROR"), d.Error)
		}
		if d.registrationCached != "" {
			fmt.Fprintf(w, "    %s\n", paint(ansiDim, fmt.Sprintf("registration data %s (fetched %s)",
				d.registrationCached, d.registrationAt.UTC().Format(time.RFC3339))))
		}
		for _, f := range d.Findings {
			sev := strings.ToUpper(f.Severity.String())
			id := f.ID
			if f.Subject != "" {
				id += " [" + f.Subject + "]"
			}
			colourSev := f.Severity.String()
			if f.Accepted {
				// Accepted risk: shown, dimmed, and said so.
				colourSev, id = "", id+" (accepted risk)"
			}
			fmt.Fprintf(w, "    %s %s  %s\n", paint(colourFor(colourSev), fmt.Sprintf("%-8s", sev)), id, f.Message)
			ev := f.Evidence
			if !verbose && len(ev) > 1 {
				ev = ev[:1]
			}
			for _, e := range ev {
				fmt.Fprintf(w, "             %s\n", paint(ansiDim, e.String()))
			}
			if !verbose && len(f.Evidence) > 1 {
				fmt.Fprintf(w, "             %s\n", paint(ansiDim, fmt.Sprintf("(+%d more evidence lines: -v)", len(f.Evidence)-1)))
			}
		}
	}
	s := r.Summary
	accepted := ""
	if s.Accepted > 0 {
		accepted = fmt.Sprintf(" (%d accepted %s not counted)", s.Accepted, plural(s.Accepted, "finding", "findings"))
	}
	fmt.Fprintf(w, "\n%d domains: %d critical, %d warning, %d ok, %d not checked%s — %d DNS queries in %.0f ms\n",
		s.Total, s.Critical, s.Warning, s.OK, s.Errors, accepted, s.Queries, s.DurationMS)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortStable[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
