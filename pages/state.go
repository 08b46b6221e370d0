package pages

import (
	"fmt"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
)

// States a domain can be in on the overview, most urgent first in the
// order the page sorts them.
const (
	StateCritical     = "critical"
	StateWarning      = "warning"
	StateStale        = "stale"
	StateAcknowledged = "acknowledged"
	StateSilenced     = "silenced"
	StateOK           = "ok"
)

// States lists the states in the order the page shows them.
var States = []string{StateCritical, StateWarning, StateStale, StateAcknowledged, StateSilenced, StateOK}

func stateRank(s string) int {
	for i, x := range States {
		if x == s {
			return len(States) - i
		}
	}
	return 0
}

// staleAfter is how old the latest DNS observation may be before nsguard
// says it is not watching the domain: three schedule intervals, and never
// less than two minutes (a slow cycle is not an outage).
func staleAfter(cfg *config.Config, now time.Time) time.Duration {
	d := 2 * time.Minute
	if s, err := config.CronParser.Parse(cfg.Schedules.Delegation); err == nil {
		first := s.Next(now)
		if iv := s.Next(first).Sub(first); 3*iv > d {
			d = 3 * iv
		}
	}
	return d + cfg.Schedules.Jitter.D()
}

// domainState is what the overview says about one domain.
type domainState struct {
	State string
	// Worst is the worst finding now or of an open incident.
	Worst finding.Severity
	// Why explains stale, silenced and acknowledged.
	Why string
}

// stateOf decides a domain's state. Stale wins (nsguard does not know),
// then a silence, then acknowledged incidents, then the worst severity.
func stateOf(dns *part, reg *part, open []Incident, sil *store.Silence, now time.Time, stale time.Duration) domainState {
	var st domainState
	if dns != nil {
		st.Worst = dns.worst
	}
	if reg != nil {
		st.Worst = max(st.Worst, reg.worst)
	}
	allAcked := len(open) > 0
	for _, i := range open {
		st.Worst = max(st.Worst, i.Severity)
		if i.Ack == nil {
			allAcked = false
		}
	}
	switch {
	case dns == nil:
		st.State, st.Why = StateStale, "not checked yet"
	case dns.err != "":
		st.State, st.Why = StateStale, "the last DNS check failed: "+dns.err
	case now.Sub(dns.observedAt) > stale:
		st.State, st.Why = StateStale, fmt.Sprintf("last checked %s ago (expected every few minutes at most)", ago(now.Sub(dns.observedAt)))
	case sil != nil:
		st.State, st.Why = StateSilenced, fmt.Sprintf("silenced until %s by %s: %s", sil.End().UTC().Format(timeFormat), sil.CreatedBy, sil.Reason)
	case allAcked:
		a := open[0].Ack
		st.State, st.Why = StateAcknowledged, fmt.Sprintf("acknowledged by %s: %s", a.By, a.Reason)
	case st.Worst >= finding.Critical:
		st.State = StateCritical
	case st.Worst == finding.Warning:
		st.State = StateWarning
	default:
		st.State = StateOK
	}
	return st
}

// silenceFor returns the silence in force for domain, if any.
func silenceFor(sils []store.Silence, domain string, now time.Time) *store.Silence {
	for i := range sils {
		if sils[i].Matches(domain) && sils[i].Active(now) {
			return &sils[i]
		}
	}
	return nil
}
