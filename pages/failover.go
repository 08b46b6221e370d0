package pages

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/internal/store"
)

// runsPerPage bounds the runs shown with their steps.
const runsPerPage = 20

type playbookView struct {
	config.Playbook
	Steps    []string
	Rollback []string
}

type stepView struct {
	store.FailoverStep
	Plan *failover.StepPlan
}

type runView struct {
	failover.RunRecord
	Mode     string
	Steps    []stepView
	Verified bool
	Thread   []messageView
}

type failoverData struct {
	Playbooks  []playbookView
	Runs       []runView
	Page       int
	Prev, Next string
}

func (p *Pages) failover(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cfg := p.o.Source.Config()
	d := failoverData{Page: 1}
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 1 {
		d.Page = min(n, 10000)
	}
	for _, pb := range cfg.Playbooks {
		v := playbookView{Playbook: pb}
		for _, s := range pb.Steps {
			v.Steps = append(v.Steps, describeStep(s))
		}
		for _, s := range pb.Rollback {
			v.Rollback = append(v.Rollback, describeStep(s))
		}
		d.Playbooks = append(d.Playbooks, v)
	}
	runs, err := p.o.Source.FailoverRuns(ctx, runsPerPage+1, (d.Page-1)*runsPerPage)
	if err != nil {
		p.storeFailed(w, r, "the failover runs", err)
		return
	}
	if len(runs) > runsPerPage {
		runs = runs[:runsPerPage]
		d.Next = p.base + "/failover?page=" + strconv.Itoa(d.Page+1)
	}
	if d.Page > 1 {
		d.Prev = p.base + "/failover?page=" + strconv.Itoa(d.Page-1)
	}
	for _, rec := range runs {
		v := runView{RunRecord: rec, Mode: "failover"}
		recorded := map[int]store.FailoverStep{}
		for _, s := range rec.Steps {
			recorded[s.Index] = s
		}
		verifies, verified := 0, 0
		if rec.Plan != nil {
			if rec.Plan.Mode == failover.ModeRollback {
				v.Mode = fmt.Sprintf("rollback of run %d", rec.Plan.RollbackOf)
			}
			for i := range rec.Plan.Steps {
				sp := &rec.Plan.Steps[i]
				s, ok := recorded[sp.Index]
				if !ok {
					s = store.FailoverStep{Index: sp.Index, Kind: sp.Kind, Name: sp.Name, Status: "not run"}
				}
				v.Steps = append(v.Steps, stepView{FailoverStep: s, Plan: sp})
			}
		} else {
			for _, s := range rec.Steps {
				v.Steps = append(v.Steps, stepView{FailoverStep: s})
			}
		}
		for _, s := range v.Steps {
			if s.Kind == "verify" {
				verifies++
				if s.Status == failover.StepDone {
					verified++
				}
			}
		}
		v.Verified = rec.Run.Status == failover.StatusDone && verifies > 0 && verified == verifies
		msgs, err := p.o.Source.ThreadMessages(ctx, "failover:"+strconv.FormatInt(rec.Run.ID, 10))
		if err != nil {
			p.storeFailed(w, r, "the failover threads", err)
			return
		}
		v.Thread = messageViews(msgs)
		d.Runs = append(d.Runs, v)
	}
	p.render(w, r, http.StatusOK, "failover", "Failover", "failover", false, d)
}

// describeStep says what a playbook step does without anything secret: a
// webhook shows its host only (URLs, headers and bodies can carry
// credentials), a dns_update its zone, server and records (the TSIG key
// stays in its file).
func describeStep(s config.Step) string {
	name := ""
	if s.Name != "" {
		name = fmt.Sprintf("%q: ", s.Name)
	}
	switch {
	case s.DNSUpdate != nil:
		u := s.DNSUpdate
		var parts []string
		for _, rr := range u.Replace {
			parts = append(parts, "replace "+rr)
		}
		for _, rr := range u.Delete {
			parts = append(parts, "delete "+rr)
		}
		return fmt.Sprintf("%sdns_update of zone %s at %s, TSIG-signed: %s", name, u.Zone, u.Server, strings.Join(parts, "; "))
	case s.Webhook != nil:
		host := "(an invalid URL)"
		if pu, err := url.Parse(s.Webhook.URL); err == nil && pu.Host != "" {
			host = pu.Scheme + "://" + pu.Host + "/…"
		}
		method := s.Webhook.Method
		if method == "" {
			method = "POST"
		}
		return fmt.Sprintf("%swebhook %s %s", name, method, host)
	case s.Verify != nil:
		v := s.Verify
		where := "the zone's authoritative servers"
		if len(v.Servers) > 0 {
			where = strings.Join(v.Servers, ", ")
		}
		if v.PublicResolvers {
			where += " and the public resolvers"
		}
		return fmt.Sprintf("%sverify %s %s answers %s on %s", name, v.Name, v.Type, v.Expect, where)
	case s.Wait != nil:
		return fmt.Sprintf("%swait %s", name, *s.Wait)
	case s.Notify != nil:
		return fmt.Sprintf("%snotify the run's Slack thread: %q", name, s.Notify.Message)
	}
	return name + "(unknown step)"
}
