package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/internal/store"
)

// metrics are the outbox's Prometheus series. Depth is read from the store
// at scrape time, so it is right even for messages a CLI command or the
// previous process enqueued.
type metrics struct {
	deliveries *prometheus.CounterVec
	failures   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

var (
	pendingDesc = prometheus.NewDesc("nsguard_outbox_depth",
		"Messages waiting for delivery (outbox depth).", nil, nil)
	deadDesc = prometheus.NewDesc("nsguard_outbox_dead_letters",
		"Messages that failed with a non-retryable error and will not be sent.", nil, nil)
	oldestDesc = prometheus.NewDesc("nsguard_outbox_oldest_pending_age_seconds",
		"Age of the oldest pending message; 0 when none is pending.", nil, nil)
	upDesc = prometheus.NewDesc("nsguard_outbox_stats_up",
		"1 if the outbox could be read at scrape time.", nil, nil)
)

func newMetrics(reg prometheus.Registerer, st store.Store) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nsguard_outbox_deliveries_total",
		Help: "Delivery attempts by receiver and result (delivered, retry, dead).",
	}, []string{"receiver", "result"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nsguard_outbox_delivery_failures_total",
		Help: "Failed delivery attempts by receiver and whether they will be retried (retry) or not (dead).",
	}, []string{"receiver", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nsguard_outbox_delivery_duration_seconds",
		Help:    "Time one delivery attempt took.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"receiver"})
	for _, c := range []prometheus.Collector{deliveries, failures, duration, depthCollector{st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &metrics{deliveries: deliveries, failures: failures, duration: duration}, nil
}

// init exposes zeroes for a receiver, so alerting on rate() works at once.
func (m *metrics) init(receiver string) {
	if m == nil {
		return
	}
	for _, r := range []string{"delivered", "retry", "dead"} {
		m.deliveries.WithLabelValues(receiver, r)
	}
	for _, r := range []string{"retry", "dead"} {
		m.failures.WithLabelValues(receiver, r)
	}
}

func (m *metrics) count(receiver string, o outcome) {
	if m == nil {
		return
	}
	r := map[outcome]string{delivered: "delivered", retried: "retry", dead: "dead"}[o]
	m.deliveries.WithLabelValues(receiver, r).Inc()
	if o != delivered {
		m.failures.WithLabelValues(receiver, r).Inc()
	}
}

func (m *metrics) observe(receiver string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(receiver).Observe(d.Seconds())
}

type depthCollector struct{ st store.Store }

func (depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- deadDesc
	ch <- oldestDesc
	ch <- upDesc
}

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.st.OutboxStats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, time.Since(st.OldestPending).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.Dead))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
