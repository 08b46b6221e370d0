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

var openDesc = prometheus.NewDesc("nsguard_incidents_open",
	"Incidents open now, by severity and whether someone acknowledged them.", []string{"severity", "acknowledged"}, nil)

// events are the incident transitions the counter names.
var events = []string{"opened", "updated", "cleared", "repeated", "acknowledged", "resolved", "closed", "suppressed", "unsilenced"}

func newMetrics(reg prometheus.Registerer, st store.Store) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nsguard_incident_events_total",
		Help: "Incident transitions: opened, updated (findings joined), cleared (some findings cleared), repeated, acknowledged, resolved, closed (domain removed), suppressed (held back by a silence), unsilenced (paged when its silence ended).",
	}, []string{"event"})
	for _, c := range []prometheus.Collector{ev, openCollector{st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, e := range events {
		ev.WithLabelValues(e)
	}
	return &metrics{events: ev}, nil
}

func (m *metrics) record(r Result) {
	if m == nil {
		return
	}
	for i, n := range []int{r.Opened, r.Updated, r.Cleared, r.Repeated, r.Acked, r.Resolved, r.Closed, r.Suppressed, r.Unsilenced} {
		if n > 0 {
			m.events.WithLabelValues(events[i]).Add(float64(n))
		}
	}
}

type openCollector struct{ st store.Store }

func (openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- openDesc }

// Collect reads the counts from the store. When the store cannot answer,
// the series is left out rather than failing the whole scrape: the
// daemon's own health gauges say the store is down.
func (c openCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.st.OpenIncidentCounts(ctx)
	if err != nil {
		return
	}
	n := map[[2]string]float64{}
	for _, sev := range []string{"critical", "warning", "info"} {
		for _, acked := range []string{"false", "true"} {
			n[[2]string{sev, acked}] = 0
		}
	}
	for _, cnt := range counts {
		acked := "false"
		if cnt.Acked {
			acked = "true"
		}
		n[[2]string{cnt.Severity, acked}] += float64(cnt.N)
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, v, k[0], k[1])
	}
}
