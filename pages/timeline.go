package pages

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

// timeline is the domain page's 30 days drawn as an SVG on the server:
// one lane each for incidents, differences from the baseline, changes of
// what nsguard observed, and people's actions (approvals, silences,
// failover runs). Events lists the same as text, for screen readers and
// for reading.
type timeline struct {
	Width, Height int
	PlotX, PlotW  int
	Start, End    time.Time
	Lanes         []lane
	Bars          []bar
	Marks         []mark
	Ticks         []tick
	Events        []event
}

type lane struct {
	Label      string
	Y, TextY   int
	LineY      int
	LineX2     int
	HasContent bool
}

type bar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type mark struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type tick struct {
	X     int
	Label string
}

type event struct {
	At    time.Time
	Lane  string
	Class string
	Text  string
}

const (
	tlWidth  = 960
	tlPlotX  = 150
	tlLaneH  = 30
	tlTop    = 26
	tlBarH   = 14
	tlMarkW  = 4
	tlMaxObs = 100
)

const (
	laneIncidents = "Incidents"
	laneChanges   = "Baseline differences"
	laneObserved  = "Observed changes"
	lanePeople    = "Approvals, silences, failover"
)

func (p *Pages) buildTimeline(r *http.Request, domain string, since, now time.Time, bases []Baseline, incs []Incident, sils []store.Silence) (*timeline, error) {
	ctx := r.Context()
	tl := &timeline{Width: tlWidth, PlotX: tlPlotX, PlotW: tlWidth - tlPlotX - 10, Start: since, End: now}
	names := []string{laneIncidents, laneChanges, laneObserved, lanePeople}
	laneY := map[string]int{}
	for i, n := range names {
		y := tlTop + i*tlLaneH
		laneY[n] = y
		tl.Lanes = append(tl.Lanes, lane{Label: n, Y: y, TextY: y + tlBarH - 2, LineY: y + tlBarH/2, LineX2: tlWidth - 10})
	}
	tl.Height = tlTop + len(names)*tlLaneH + 4
	span := now.Sub(since)
	x := func(t time.Time) int {
		if t.Before(since) {
			t = since
		}
		if t.After(now) {
			t = now
		}
		return tlPlotX + int(float64(tl.PlotW)*float64(t.Sub(since))/float64(span))
	}
	for d := 0; d <= timelineDays; d += 5 {
		t := since.Add(time.Duration(d) * 24 * time.Hour)
		label := t.UTC().Format("Jan 2")
		if d == timelineDays {
			label = "now"
		}
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: label})
	}
	addMark := func(ln string, at time.Time, class, text string) {
		if at.Before(since) {
			return
		}
		tl.Marks = append(tl.Marks, mark{X: x(at) - tlMarkW/2, Y: laneY[ln], W: tlMarkW, H: tlBarH, Class: class, Title: at.UTC().Format(timeFormat) + " · " + text})
		tl.Events = append(tl.Events, event{At: at, Lane: ln, Class: class, Text: text})
	}
	addBar := func(ln string, from, to time.Time, class, text string) {
		if !to.IsZero() && to.Before(since) {
			return
		}
		end := to
		if end.IsZero() {
			end = now
		}
		x0, x1 := x(from), x(end)
		tl.Bars = append(tl.Bars, bar{X: x0, Y: laneY[ln], W: max(x1-x0, tlMarkW), H: tlBarH, Class: class, Title: text})
		tl.Events = append(tl.Events, event{At: from, Lane: ln, Class: class, Text: text})
	}

	for _, i := range incs {
		text := fmt.Sprintf("incident #%d (%s) opened", i.ID, i.Severity)
		if i.ResolvedAt.IsZero() {
			text += ", still open"
		} else {
			text += fmt.Sprintf(", resolved %s after %s", i.ResolvedAt.UTC().Format(timeFormat), ago(i.ResolvedAt.Sub(i.OpenedAt)))
		}
		if i.Ack != nil {
			text += fmt.Sprintf("; acknowledged by %s %s", i.Ack.By, i.Ack.At.UTC().Format(timeFormat))
		}
		addBar(laneIncidents, i.OpenedAt, i.ResolvedAt, "sev-"+i.Severity.String(), text)
	}
	changes, err := p.o.Source.Changes(ctx, domain, since)
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		var ids []string
		for _, f := range c.Findings {
			ids = append(ids, f.ID)
		}
		addMark(laneChanges, c.At, "sev-"+max(finding.Info, finding.Worst(c.Findings)).String(), fmt.Sprintf("%s differs from baseline v%d: %s", c.Class, c.BaselineVersion, strings.Join(slices.Compact(ids), ", ")))
	}
	for _, class := range []string{checker.DNS, checker.Registration} {
		hist, err := p.o.Source.History(ctx, domain, class, since)
		if err != nil {
			return nil, err
		}
		if len(hist) > tlMaxObs {
			hist = hist[:tlMaxObs]
		}
		for _, h := range hist {
			addMark(laneObserved, h.ObservedAt, "obs", "what nsguard observes of the "+class+" changed")
		}
	}
	for _, b := range bases {
		addMark(lanePeople, b.ApprovedAt, "person", fmt.Sprintf("baseline v%d approved by %s: %s", b.Version, b.ApprovedBy, b.Reason))
	}
	for _, s := range sils {
		if s.Matches(domain) {
			addBar(lanePeople, s.StartsAt, s.End(), "silence", fmt.Sprintf("silenced by %s until %s: %s", s.CreatedBy, s.End().UTC().Format(timeFormat), s.Reason))
		}
	}
	cfg := p.o.Source.Config()
	runs, err := p.o.Source.FailoverRuns(ctx, 20, 0)
	if err != nil {
		return nil, err
	}
	for _, rr := range runs {
		pb, ok := cfg.Playbook(rr.Run.Playbook)
		if !ok || (config.CanonicalName(pb.Primary) != domain && config.CanonicalName(pb.Backup) != domain) {
			continue
		}
		addMark(lanePeople, rr.Run.StartedAt, "person", fmt.Sprintf("failover run %d of %s by %s: %s", rr.Run.ID, rr.Run.Playbook, rr.Run.StartedBy, rr.Run.Status))
	}
	for i := range tl.Lanes {
		ln := tl.Lanes[i].Label
		for _, e := range tl.Events {
			if e.Lane == ln {
				tl.Lanes[i].HasContent = true
				break
			}
		}
	}
	slices.SortStableFunc(tl.Events, func(a, b event) int { return b.At.Compare(a.At) })
	return tl, nil
}
