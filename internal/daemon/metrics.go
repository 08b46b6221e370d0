package daemon

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's own series; the incident engine and the outbox
// register theirs on the same registry.
type metrics struct {
	duration    *prometheus.HistogramVec
	cycles      *prometheus.CounterVec
	queries     prometheus.Counter
	findings    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	reloads     *prometheus.CounterVec

	mu       sync.Mutex
	byClass  map[string]map[[2]string]int
	previous map[[2]string]bool
}

func newMetrics(reg *prometheus.Registry, version, commit string) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nsguard_cycle_duration_seconds", Help: "How long a check cycle took, by class.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"class"}),
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsguard_cycles_total", Help: "Check cycles by class and result (error: no domain could be checked).",
		}, []string{"class", "result"}),
		queries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nsguard_dns_queries_total", Help: "DNS queries sent.",
		}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsguard_findings", Help: "Current findings by ID and severity (latest cycle of each class).",
		}, []string{"id", "severity"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsguard_domain_last_success_timestamp_seconds", Help: "When a domain was last checked successfully, by class.",
		}, []string{"domain", "class"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsguard_config_reloads_total", Help: "SIGHUP reloads by result (applied, refused).",
		}, []string{"result"}),
		byClass:  map[string]map[[2]string]int{},
		previous: map[[2]string]bool{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nsguard_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit},
	})
	build.Set(1)
	for _, class := range []string{"dns", "registration", "audit"} {
		for _, r := range []string{"ok", "error"} {
			m.cycles.WithLabelValues(class, r)
		}
	}
	m.reloads.WithLabelValues("applied")
	m.reloads.WithLabelValues("refused")
	reg.MustRegister(m.duration, m.cycles, m.queries, m.findings, m.lastSuccess, m.reloads, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setFindings replaces one class's share of the findings gauge; series that
// fell to zero are set to zero rather than vanishing, so alert rules see
// the drop.
func (m *metrics) setFindings(class string, counts map[[2]string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byClass[class] = counts
	total := map[[2]string]int{}
	for _, c := range m.byClass {
		for k, n := range c {
			total[k] += n
		}
	}
	for k := range m.previous {
		if _, ok := total[k]; !ok {
			m.findings.WithLabelValues(k[0], k[1]).Set(0)
		}
	}
	for k, n := range total {
		m.findings.WithLabelValues(k[0], k[1]).Set(float64(n))
		m.previous[k] = true
	}
}
