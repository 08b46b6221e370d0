package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/finding"
)

// Metrics are the cluster's series: which role this process has.
type Metrics struct {
	leader    prometheus.Gauge
	epoch     prometheus.Gauge
	elections prometheus.Counter
	judged    *prometheus.CounterVec
}

// NewMetrics registers the cluster's series on reg (nil registers none).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nsguard_leader",
			Help: "1 on the replica that leads (judges findings, pages, runs registration and audit cycles), 0 on the others and on probes; a single SQLite node always leads.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nsguard_leader_epoch",
			Help: "The leader's epoch (its fencing token) while this replica leads; 0 otherwise and on a single node.",
		}),
		elections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nsguard_leader_elections_total",
			Help: "Times this replica became the leader.",
		}),
		judged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsguard_vantage_verdicts_total",
			Help: "Domains the leader judged across vantage points, by outcome: agree (every vantage that checked saw the same), disagree (VANTAGE_DISAGREES), unchecked (no vantage could check).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"agree", "disagree", "unchecked"} {
		m.judged.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.leader, m.epoch, m.elections, m.judged} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// SetRole records whether this process leads, and at which epoch.
func (m *Metrics) SetRole(leading bool, epoch int64) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
	m.epoch.Set(float64(epoch))
}

// Verdict counts one judged domain.
func (m *Metrics) Verdict(v Verdict) {
	if m == nil {
		return
	}
	switch {
	case v.Checked == 0:
		m.judged.WithLabelValues("unchecked").Inc()
	case disagrees(v.Findings):
		m.judged.WithLabelValues("disagree").Inc()
	default:
		m.judged.WithLabelValues("agree").Inc()
	}
}

func disagrees(fs []finding.Finding) bool {
	for _, f := range fs {
		if f.ID == VantageDisagrees {
			return true
		}
	}
	return false
}
