package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
)

// DigestRisks is how many risks the daily digest shows.
const DigestRisks = 5

// Digest is the daily summary of an audit, for Slack: counts by finding
// and the five largest risks. It carries content only; delivery (the
// outbox, a notify.Message of kind "digest") is the daemon's.
type Digest struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Domains     int              `json:"domains"`
	Worst       finding.Severity `json:"worst"`
	Critical    int              `json:"critical"`
	Warning     int              `json:"warning"`
	Info        int              `json:"info"`
	Counts      []Count          `json:"counts"`
	Risks       []Risk           `json:"risks"`
	// Notes counts what could not be checked (details in the full report).
	Unchecked int `json:"unchecked"`
	// Accepted counts the findings that are accepted risk (approved with
	// a domain's baseline): never paged, so said here, every day.
	Accepted []Count `json:"accepted"`
}

// Digest builds the digest of the report.
func (r *Report) Digest() Digest {
	d := Digest{
		GeneratedAt: r.GeneratedAt, Domains: r.Summary.Domains, Worst: r.Summary.Worst,
		Critical: r.Summary.Critical, Warning: r.Summary.Warning, Info: r.Summary.Info,
		Counts: r.Summary.ByID, Risks: slices.Clone(r.Risks[:min(DigestRisks, len(r.Risks))]), Unchecked: len(r.Notes),
	}
	if d.Counts == nil {
		d.Counts = []Count{}
	}
	var accepted []finding.Finding
	for _, f := range r.Findings {
		if f.Accepted {
			accepted = append(accepted, f)
		}
	}
	d.Accepted = counts(accepted)
	if d.Accepted == nil {
		d.Accepted = []Count{}
	}
	return d
}

// Title is the digest's one-line headline.
func (d Digest) Title() string {
	if d.Critical+d.Warning == 0 {
		return fmt.Sprintf("Domain inventory audit: all %d domains within policy", d.Domains)
	}
	return fmt.Sprintf("Domain inventory audit: %d critical, %d warning across %d domains", d.Critical, d.Warning, d.Domains)
}

// Markdown is the digest's body in the small Markdown subset the Slack
// receiver converts (headings, **bold**, lists).
func (d Digest) Markdown() string {
	var b strings.Builder
	if len(d.Counts) > 0 {
		b.WriteString("## Findings\n")
		for _, c := range d.Counts {
			fmt.Fprintf(&b, "- **%s** %d on %d domain(s), worst %s\n", c.ID, c.Findings, c.Domains, c.Severity)
		}
	}
	if len(d.Risks) > 0 {
		fmt.Fprintf(&b, "## %d largest risks\n", len(d.Risks))
		for _, k := range d.Risks {
			what := k.Title
			if k.Count > 1 {
				what += fmt.Sprintf(" (%d)", k.Count)
			}
			fmt.Fprintf(&b, "%d. **%s** %s (tier %d, %s): %s. %s\n", k.Rank, strings.ToUpper(k.Severity.String()), k.Domain, k.Tier, dashMD(k.Owner), what, k.Action)
		}
	}
	if len(d.Accepted) > 0 {
		b.WriteString("## Accepted risk (approved with the baseline, never paged)\n")
		for _, c := range d.Accepted {
			fmt.Fprintf(&b, "- **%s** on %d domain(s), %s\n", c.ID, c.Domains, c.Severity)
		}
	}
	if d.Unchecked > 0 {
		fmt.Fprintf(&b, "\n%d item(s) could not be checked; see `nsguard audit`.\n", d.Unchecked)
	}
	b.WriteString("\nFull report: `nsguard audit -o markdown`\n")
	return b.String()
}

// Findings returns one finding per risk (worst of its group), for
// receivers that list findings rather than read text.
func (d Digest) Findings() []finding.Finding {
	out := make([]finding.Finding, 0, len(d.Risks))
	for _, k := range d.Risks {
		out = append(out, finding.Finding{ID: k.ID, Severity: k.Severity, Domain: k.Domain,
			Subject: strings.Join(k.Subjects, ","), Message: k.Message})
	}
	return out
}
