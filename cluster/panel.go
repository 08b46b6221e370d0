package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
)

// Encode is the report a vantage stores beside its observation
// (store.Observation.Report): its findings, or why it could not check.
func Encode(checkErr error, fs []finding.Finding) json.RawMessage {
	r := Report{Findings: fs}
	if checkErr != nil {
		r.Err = checkErr.Error()
	}
	if r.Findings == nil {
		r.Findings = []finding.Finding{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		// A finding is plain data; this cannot happen. Say the vantage
		// could not check rather than that it saw nothing.
		b, _ = json.Marshal(Report{Err: "encoding the report: " + err.Error(), Findings: []finding.Finding{}})
	}
	return b
}

// Decode reads the reports of observations (store.VantageObservations).
// A row without a report (written before the cluster existed) or with one
// that does not decode neither sees nor denies: it counts as a vantage
// that could not check.
func Decode(obs []store.Observation) []Report {
	out := make([]Report, 0, len(obs))
	for _, o := range obs {
		r := Report{Vantage: o.Vantage, At: o.ObservedAt}
		if len(o.Report) == 0 {
			r.Err = "no report"
		} else if err := json.Unmarshal(o.Report, &r); err != nil {
			r.Err = fmt.Sprintf("unreadable report: %v", err)
		}
		r.Vantage, r.At, r.Changed = o.Vantage, o.ObservedAt, o.ChangedAt
		out = append(out, r)
	}
	return out
}

// Panel is the leader's view of one check class across the vantage
// points: each vantage's latest report of a domain made within Window (a
// vantage silent for longer has left the panel), judged with Quorum.
type Panel struct {
	Store  store.Queries
	Class  string
	Window time.Duration
	// Quorum as alerts.quorum: 0 means a majority of the panel's vantages
	// that could check.
	Quorum int
	// Live, when set, says which vantages are alive (a heartbeat lately):
	// a stopped one's last report neither sees nor denies, whatever its
	// age.
	Live func(vantage string) bool
}

// Verdict is what the panel concluded about one domain.
type Verdict struct {
	Domain string
	// Findings is the judged result: what passed the quorum, marked with
	// who saw it, and one VANTAGE_DISAGREES for what did not.
	Findings []finding.Finding
	// Checked counts the vantages whose reports were judged (they could
	// check, and reported since the recheck asked for); zero means no
	// verdict, and nothing may clear.
	Checked int
	// Quorum is the number of vantages that had to agree.
	Quorum int
	// Unsettled (outside a recheck round): the vantages disagree, and one
	// of them has not looked since another saw a change — a hijack one
	// vantage saw moments ago, a restore. Judging now would count a view
	// that predates the change as a denial (a hijack as a regional
	// disagreement, a restore as still hijacked from elsewhere); the
	// leader asks every vantage to look now and judges that instead.
	Unsettled bool
	// Reports are the panel's reports, by vantage.
	Reports []Report
}

// Judge reads the vantages' latest reports of domain and judges them.
// With fresh set (a recheck round) only reports made since fresh are
// votes; older ones neither see nor deny, but their vantages still count
// towards the majority a finding needs, so a round some vantages missed
// cannot page what one region alone sees.
func (p Panel) Judge(ctx context.Context, domain string, now, fresh time.Time) (Verdict, error) {
	obs, err := p.Store.VantageObservations(ctx, domain, p.Class, now.Add(-p.Window))
	if err != nil {
		return Verdict{Domain: domain}, err
	}
	v := Verdict{Domain: domain}
	panel := 0
	for _, r := range Decode(obs) {
		if p.Live != nil && !p.Live(r.Vantage) {
			continue
		}
		if r.Err == "" {
			panel++
			if r.At.Before(fresh) {
				r.Err = "no report since the recheck"
			}
		}
		if r.Err == "" {
			v.Checked++
		}
		v.Reports = append(v.Reports, r)
	}
	v.Quorum = p.Quorum
	if v.Quorum <= 0 {
		v.Quorum = Quorum(panel)
	}
	if v.Checked > 0 {
		v.Findings = Judge(domain, v.Reports, v.Quorum)
	}
	v.Unsettled = fresh.IsZero() && unsettled(v.Reports)
	return v, nil
}

// unsettled reports whether the reports that checked disagree on what
// they see and one of them is older than another's latest change.
func unsettled(rs []Report) bool {
	var newest time.Time
	var sets []string
	for _, r := range rs {
		if r.Err != "" {
			continue
		}
		if r.Changed.After(newest) {
			newest = r.Changed
		}
		var keys []string
		for _, f := range r.Findings {
			if f.Severity > finding.OK && !f.Accepted {
				keys = append(keys, f.Key())
			}
		}
		sort.Strings(keys)
		sets = append(sets, strings.Join(keys, "\n"))
	}
	disagree := false
	for _, s := range sets[min(1, len(sets)):] {
		disagree = disagree || s != sets[0]
	}
	if !disagree {
		return false
	}
	for _, r := range rs {
		if r.Err == "" && r.At.Before(newest) {
			return true
		}
	}
	return false
}

// Behind returns the vantages on the panel (reported within Window)
// whose latest report of domain is older than since: the ones a recheck
// round still waits for. A vantage whose latest report says it could not
// check (partitioned: its probes time out) is not waited for — it would
// only say so again, at the end of a whole domain's timeout.
func (p Panel) Behind(ctx context.Context, domain string, since, now time.Time) ([]string, error) {
	obs, err := p.Store.VantageObservations(ctx, domain, p.Class, now.Add(-p.Window))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range Decode(obs) {
		if (p.Live != nil && !p.Live(r.Vantage)) || r.Err != "" {
			continue
		}
		if r.At.Before(since) {
			out = append(out, r.Vantage)
		}
	}
	sort.Strings(out)
	return out, nil
}
