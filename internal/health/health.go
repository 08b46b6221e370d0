// Package health is the daemon watching itself. A monitor that can fail
// silently is worse than none: when the daemon cannot do its job — its
// store cannot take writes or is damaged, its outbox is stuck, Slack
// refuses it, a check class has not completed a cycle in twice its
// interval — it says so, everywhere at once: /readyz fails with the
// reason, nsguard_up{component} drops to 0, the log says it once per
// change, and Slack gets a message sent straight from memory (the store
// may be what is broken), repeated at most every Options.Repeat. When the
// component recovers, it says that too.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/notify"
)

// Components the daemon watches.
const (
	Store        = "store"
	Outbox       = "outbox"
	Slack        = "slack"
	DNS          = "dns"
	Registration = "registration"
)

// Components lists every component, in the order reports show them.
var Components = []string{Store, Outbox, Slack, DNS, Registration}

// State is one component's health.
type State struct {
	Component string `json:"component"`
	OK        bool   `json:"ok"`
	// Problem says what is wrong, for the operator ("" when OK).
	Problem string `json:"problem,omitempty"`
	// Since is when the component entered this state.
	Since time.Time `json:"since"`
}

// Options wire a Monitor.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Notify sends a message straight to the receiver, without the store;
	// nil sends nothing (the log and readiness still say it).
	Notify func(ctx context.Context, m *notify.Message) error
	// Repeat bounds how often a component still down is said again in
	// Slack (default 1h); every change is said at once.
	Repeat time.Duration
	// Name says which daemon speaks (default the host name).
	Name string
}

type component struct {
	State
	// told is when Slack last heard about this component being down
	// (zero: not told, or not since it recovered).
	told time.Time
	// owed: the last change has not reached Slack yet.
	owed bool
}

// Monitor holds every component's state.
type Monitor struct {
	o      Options
	log    *slog.Logger
	gauge  *prometheus.GaugeVec
	mu     sync.Mutex
	comps  map[string]*component
	sendMu sync.Mutex // one Slack message at a time, in order
}

// New builds a Monitor with every component healthy.
func New(o Options) (*Monitor, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Repeat <= 0 {
		o.Repeat = time.Hour
	}
	if o.Name == "" {
		o.Name, _ = os.Hostname()
	}
	m := &Monitor{o: o, log: o.Logger.With("component", "health"), comps: map[string]*component{}}
	now := o.Now()
	for _, c := range Components {
		m.comps[c] = &component{State: State{Component: c, OK: true, Since: now}}
	}
	if o.Registerer != nil {
		m.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsguard_up",
			Help: "1 when a part of nsguard can do its job, 0 when it cannot (store, outbox, slack, dns, registration); /readyz says why.",
		}, []string{"component"})
		if err := o.Registerer.Register(m.gauge); err != nil {
			return nil, err
		}
		for _, c := range Components {
			m.gauge.WithLabelValues(c).Set(1)
		}
	}
	return m, nil
}

// Set records a component's health: problem "" means healthy. A change
// is logged once and said in Slack; a problem that lasts is said again
// every Repeat. It never blocks on Slack.
func (m *Monitor) Set(name, problem string) {
	now := m.o.Now()
	m.mu.Lock()
	c, ok := m.comps[name]
	if !ok {
		c = &component{State: State{Component: name, OK: true, Since: now}}
		m.comps[name] = c
	}
	ok = problem == ""
	wasOK, prev, since := c.OK, c.Problem, c.Since
	if ok != wasOK {
		c.Since = now
		if ok {
			m.log.Info("recovered", "part", name, "was", prev, "for", now.Sub(since).Round(time.Second).String())
		} else {
			m.log.Error("cannot do its job", "part", name, "problem", problem)
		}
	}
	c.OK, c.Problem = ok, problem
	switch {
	case !ok && wasOK:
		c.owed = true
	case !ok && !c.told.IsZero() && now.Sub(c.told) >= m.o.Repeat:
		c.owed = true // still down: say it again
	case ok && !wasOK:
		c.owed = !c.told.IsZero() // a recovery is news only if the trouble was
	}
	var msg *notify.Message
	if c.owed && m.o.Notify != nil {
		msg = m.message(c, prev, now.Sub(since), now)
		c.owed = false
		if ok {
			c.told = time.Time{}
		} else {
			c.told = now
		}
	}
	m.mu.Unlock()
	if m.gauge != nil {
		v := 0.0
		if ok {
			v = 1
		}
		m.gauge.WithLabelValues(name).Set(v)
	}
	if msg != nil {
		go m.send(name, msg)
	}
}

// send delivers one message straight to Slack; a failure makes the
// message owed again, so the next Set retries it.
func (m *Monitor) send(name string, msg *notify.Message) {
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.o.Notify(ctx, msg); err != nil {
		m.log.Warn("cannot tell Slack about the daemon's health; will try again", "part", name, "err", err)
		m.mu.Lock()
		if c := m.comps[name]; c != nil {
			c.owed = true
			if !c.OK {
				c.told = time.Time{}
			}
		}
		m.mu.Unlock()
	}
}

func (m *Monitor) message(c *component, prev string, lasted time.Duration, now time.Time) *notify.Message {
	msg := &notify.Message{Kind: notify.KindInfo, At: now}
	if c.OK {
		msg.Severity = finding.OK
		msg.Title = fmt.Sprintf("✅ nsguard on %s: %s works again", m.o.Name, c.Component)
		msg.Text = fmt.Sprintf("Monitoring is back after %s: %s was down (%s).", notify.Duration(lasted), c.Component, prev)
		return msg
	}
	msg.Severity = finding.Critical
	msg.Title = fmt.Sprintf("🔴 nsguard on %s cannot do its job: %s", m.o.Name, c.Component)
	msg.Text = fmt.Sprintf("%s since %s. Until this is fixed, problems with the domains may not be paged. "+
		"What to do: docs/operations.md (%s).", c.Problem, c.Since.UTC().Format("2006-01-02 15:04 UTC"), c.Component)
	return msg
}

// States returns every component's state, in Components order.
func (m *Monitor) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]State, 0, len(m.comps))
	for _, c := range m.comps {
		out = append(out, c.State)
	}
	slices.SortFunc(out, func(a, b State) int { return order(a.Component) - order(b.Component) })
	return out
}

func order(c string) int {
	if i := slices.Index(Components, c); i >= 0 {
		return i
	}
	return len(Components)
}

// Problems returns one line per component that cannot do its job.
func (m *Monitor) Problems() []string {
	var out []string
	for _, s := range m.States() {
		if !s.OK {
			out = append(out, fmt.Sprintf("%s: %s (since %s)", s.Component, s.Problem, s.Since.UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// IsOK reports whether one component can do its job.
func (m *Monitor) IsOK(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.comps[name]
	return !ok || c.OK
}

// Problem is what is wrong with one component ("" when nothing).
func (m *Monitor) Problem(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.comps[name]; ok {
		return c.Problem
	}
	return ""
}

// OK reports whether every component can do its job.
func (m *Monitor) OK() bool { return len(m.Problems()) == 0 }

// Summary is the problems in one line, or "ok".
func (m *Monitor) Summary() string {
	if p := m.Problems(); len(p) > 0 {
		return strings.Join(p, "; ")
	}
	return "ok"
}
