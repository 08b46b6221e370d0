package incident

import (
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
)

// View is an incident as `nsguard incident list|show`, the pages and the
// daemon's API show it: the store row with the engine's findings decoded.
// Its JSON is stable for scripts.
type View struct {
	ID     int64  `json:"id"`
	Domain string `json:"domain"`
	// State is "open", "acknowledged", "resolved" or "closed".
	State         string        `json:"state"`
	Severity      string        `json:"severity"`
	Peak          string        `json:"peak_severity"`
	Title         string        `json:"title"`
	OpenedAt      time.Time     `json:"opened_at"`
	PagedAt       time.Time     `json:"paged_at,omitzero"`
	AckedAt       time.Time     `json:"acked_at,omitzero"`
	AckedBy       string        `json:"acked_by,omitempty"`
	AckReason     string        `json:"ack_reason,omitempty"`
	EndedAt       time.Time     `json:"ended_at,omitzero"`
	Notifications int           `json:"notifications"`
	Findings      []FindingView `json:"findings"`
}

// FindingView is one finding of an incident.
type FindingView struct {
	Class string `json:"class"`
	// State is "open" or "cleared".
	State       string          `json:"state"`
	Title       string          `json:"title,omitempty"`
	Finding     finding.Finding `json:"finding"`
	Since       time.Time       `json:"since"`
	ConfirmedAt time.Time       `json:"confirmed_at"`
	ClearedAt   time.Time       `json:"cleared_at,omitzero"`
}

// ViewOf decodes an incident row.
func ViewOf(row store.Incident) (View, error) {
	inc, err := decode(row)
	if err != nil {
		return View{}, err
	}
	v := View{
		ID: row.ID, Domain: row.Domain, State: row.Status, Severity: row.Severity, Peak: row.Severity, Title: row.Title,
		OpenedAt: row.OpenedAt, PagedAt: row.PagedAt, AckedAt: row.AckedAt, AckedBy: row.AckedBy, AckReason: row.AckReason,
		EndedAt: row.ResolvedAt, Notifications: row.Notifications, Findings: []FindingView{},
	}
	if row.Status == store.IncidentOpen && row.Acked() {
		v.State = "acknowledged"
	}
	if inc.data.Peak > finding.OK {
		v.Peak = inc.data.Peak.String()
	}
	sortEntries(inc.data.Findings)
	for _, en := range inc.data.Findings {
		fv := FindingView{Class: en.Class, State: "open", Finding: en.Finding, Since: en.Since, ConfirmedAt: en.ConfirmedAt, ClearedAt: en.ClearedAt}
		if !en.active() {
			fv.State = "cleared"
		}
		if c, ok := finding.Lookup(en.Finding.ID); ok {
			fv.Title = c.Title
		}
		v.Findings = append(v.Findings, fv)
	}
	return v, nil
}
