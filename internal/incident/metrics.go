package incident

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/internal/store"
)

// metrics are the engine's Prometheus series; the open-incident gauge is
// read from the store at scrape time.
type metrics struct {
	events *prometheus.CounterVec
}

var openDesc = prometheus.NewDesc("nsguard_incidents_open", "Incidents open now by severity (one per domain at most).", []string{"severity"}, nil)

func newMetrics(reg prometheus.Registerer, st store.Store) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nsguard_incident_events_total",
		Help: "Incident transitions: opened, updated (new finding or severity), repeated, resolved, suppressed (held back by a silence), unsilenced (paged when its silence ended).",
	}, []string{"event"})
	for _, c := range []prometheus.Collector{events, openCollector{st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, ev := range []string{"opened", "updated", "repeated", "resolved", "suppressed", "unsilenced"} {
		events.WithLabelValues(ev)
	}
	return &metrics{events: events}, nil
}

func (m *metrics) record(r Result) {
	if m == nil {
		return
	}
	for ev, n := range map[string]int{"opened": r.Opened, "updated": r.Updated, "repeated": r.Repeated, "resolved": r.Resolved, "suppressed": r.Suppressed, "unsilenced": r.Unsilenced} {
		if n > 0 {
			m.events.WithLabelValues(ev).Add(float64(n))
		}
	}
}

type openCollector struct{ st store.Store }

func (openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- openDesc }

func (c openCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	open, err := c.st.Incidents(ctx, store.IncidentFilter{Status: store.IncidentOpen})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	counts := map[string]float64{"critical": 0, "warning": 0, "info": 0}
	for _, inc := range open {
		counts[inc.Severity]++
	}
	for sev, n := range counts {
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, n, sev)
	}
}
