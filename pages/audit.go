package pages

import (
	"net/http"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/finding"
)

// auditRows bounds each table of the audit page; the whole report is
// `nsguard audit -o markdown`.
const auditRows = 100

type matrixRow struct {
	audit.BackupCheck
	Cells []audit.Cell
}

type auditData struct {
	Report    *audit.Report
	Scheduled bool
	Dims      []string
	Titles    map[string]string
	Risks     []audit.Risk
	Findings  []finding.Finding
	Matrix    []matrixRow
	Shared    []audit.SharedDomain
	Undecl    []audit.Undeclared
	Radius    []audit.DomainSummary
	Notes     []string
	Cut       map[string]int
	// More counts the dependents left out of each Undecl row.
	More []int
}

// dependentsShown bounds the dependents listed per undeclared domain.
const dependentsShown = 10

func (p *Pages) audit(w http.ResponseWriter, r *http.Request) {
	rep, sched, err := p.o.Source.Audit(r.Context())
	if err != nil {
		p.storeFailed(w, r, "the observations for the audit", err)
		return
	}
	d := auditData{Report: rep, Scheduled: sched, Dims: audit.Dimensions, Titles: audit.DimensionTitle, Cut: map[string]int{}}
	if rep != nil {
		d.Risks = capped(rep.Risks, "risks", d.Cut)
		d.Findings = capped(rep.Findings, "findings", d.Cut)
		for _, b := range capped(rep.Backups, "matrix", d.Cut) {
			row := matrixRow{BackupCheck: b}
			for _, dim := range audit.Dimensions {
				row.Cells = append(row.Cells, b.Cell(dim))
			}
			d.Matrix = append(d.Matrix, row)
		}
		d.Shared = capped(rep.Shared, "shared", d.Cut)
		for _, u := range capped(rep.Undeclared, "undeclared", d.Cut) {
			// A provider's domain can be depended on by thousands.
			if len(u.Dependents) > dependentsShown {
				d.More = append(d.More, len(u.Dependents)-dependentsShown)
				u.Dependents = u.Dependents[:dependentsShown]
			} else {
				d.More = append(d.More, 0)
			}
			d.Undecl = append(d.Undecl, u)
		}
		d.Radius = rep.Domains[:min(10, len(rep.Domains))]
		d.Notes = capped(rep.Notes, "notes", d.Cut)
	}
	p.render(w, r, http.StatusOK, "audit", "Audit", "audit", false, d)
}

// capped returns at most auditRows of l and notes how many were left out.
func capped[T any](l []T, name string, cut map[string]int) []T {
	if len(l) > auditRows {
		cut[name] = len(l) - auditRows
		return l[:auditRows]
	}
	return l
}
