package pages

import (
	"cmp"
	"errors"
	"html"
	"net/http"
	"slices"
	"strconv"

	"github.com/nsguard/nsguard/notify"
)

// incidentsPerPage bounds the recent incidents listed at once.
const incidentsPerPage = 50

// openShown bounds the open incidents listed; the overview (state filter)
// pages through all of them.
const openShown = 100

type incidentsData struct {
	Open       []Incident
	OpenTotal  int
	OpenMore   int
	Recent     []Incident
	Page       int
	Prev, Next string
}

func (p *Pages) incidents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := incidentsData{Page: 1}
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 1 {
		d.Page = min(n, 10000)
	}
	var err error
	if d.Open, err = p.o.Source.Incidents(ctx, IncidentFilter{Status: StatusOpen}); err != nil {
		p.storeFailed(w, r, "the incidents", err)
		return
	}
	// The most severe first, then the newest.
	slices.SortStableFunc(d.Open, func(a, b Incident) int { return cmp.Compare(b.Severity, a.Severity) })
	d.OpenTotal = len(d.Open)
	if len(d.Open) > openShown {
		d.OpenMore = len(d.Open) - openShown
		d.Open = d.Open[:openShown]
	}
	// One more than a page tells whether there is a next page.
	recent, err := p.o.Source.Incidents(ctx, IncidentFilter{Status: StatusResolved, Limit: incidentsPerPage + 1, Offset: (d.Page - 1) * incidentsPerPage})
	if err != nil {
		p.storeFailed(w, r, "the incidents", err)
		return
	}
	if len(recent) > incidentsPerPage {
		recent = recent[:incidentsPerPage]
		d.Next = p.base + "/incidents?page=" + strconv.Itoa(d.Page+1)
	}
	if d.Page > 1 {
		d.Prev = p.base + "/incidents?page=" + strconv.Itoa(d.Page-1)
	}
	d.Recent = recent
	p.render(w, r, http.StatusOK, "incidents", "Incidents", "incidents", true, d)
}

type messageView struct {
	Message
	Blocks   []slackBlock
	Fallback string
	// Delivery is "delivered", "pending" or "dead".
	Delivery string
}

type incidentData struct {
	Incident Incident
	Active   []IncidentFinding
	Cleared  []IncidentFinding
	Messages []messageView
}

func (p *Pages) incident(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		p.fail(w, r, http.StatusNotFound, "Incidents are numbered 1, 2, 3 …; there is no such incident.")
		return
	}
	ctx := r.Context()
	inc, err := p.o.Source.Incident(ctx, id)
	if errors.Is(err, ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, "There is no incident #"+strconv.FormatInt(id, 10)+".")
		return
	}
	if err != nil {
		p.storeFailed(w, r, "the incident", err)
		return
	}
	d := incidentData{Incident: inc}
	for _, f := range inc.Findings {
		if f.ClearedAt.IsZero() {
			d.Active = append(d.Active, f)
		} else {
			d.Cleared = append(d.Cleared, f)
		}
	}
	msgs, err := p.o.Source.Messages(ctx, id)
	if err != nil {
		p.storeFailed(w, r, "the incident's messages", err)
		return
	}
	d.Messages = messageViews(msgs)
	p.render(w, r, http.StatusOK, "incident", "Incident #"+strconv.FormatInt(id, 10)+" · "+inc.Domain, "incidents", true, d)
}

func messageViews(msgs []Message) []messageView {
	out := make([]messageView, 0, len(msgs))
	for _, m := range msgs {
		v := messageView{Message: m, Blocks: slackView(m.Msg), Fallback: html.UnescapeString(notify.Text(m.Msg)), Delivery: "pending"}
		switch {
		case !m.DeliveredAt.IsZero():
			v.Delivery = "delivered"
		case !m.DeadAt.IsZero():
			v.Delivery = "dead"
		}
		out = append(out, v)
	}
	return out
}
