// Package incident turns findings into incidents and incidents into
// messages. One incident per domain: it opens when a finding has been in
// `alerts.confirmations` consecutive observations of its check class,
// repeats every `alerts.repeat_interval`, tells the thread about every new
// finding, and resolves, once, when the last finding clears. Silences
// record without paging. Every state change and the messages it causes are
// written in one store transaction, so a crash or a restart neither loses
// nor repeats a page.
package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/notify"
	"github.com/nsguard/nsguard/internal/outbox"
	"github.com/nsguard/nsguard/internal/store"
)

// Policy is the reloadable part of the engine's configuration.
type Policy struct {
	// Confirmations is how many consecutive observations must contain a
	// finding before it pages (alerts.confirmations, at least 1).
	Confirmations int
	// ConfirmationsByClass overrides Confirmations per check class (a
	// daily audit may want 1).
	ConfirmationsByClass map[string]int
	// RepeatInterval is how often an open incident is repeated.
	RepeatInterval time.Duration
	// Slack routes by severity (channels, channel).
	Slack config.Slack
	// Playbooks names the failover playbooks for a domain.
	Playbooks func(domain string) []string
	// ContactSheet returns the registration contact sheet (Markdown) for a
	// domain, or "". It runs inside a store transaction: no network I/O.
	ContactSheet func(domain string) string
	// Acceptable reports whether approving the current state as the new
	// baseline would clear f; such incidents show the accept command.
	Acceptable func(f finding.Finding) bool
}

// PolicyFromConfig reads the policy from a loaded config.
func PolicyFromConfig(cfg *config.Config) Policy {
	return Policy{
		Confirmations:  cfg.Alerts.Confirmations,
		RepeatInterval: cfg.Alerts.RepeatInterval.D(),
		Slack:          cfg.Alerts.Slack,
		Playbooks: func(domain string) []string {
			var out []string
			for _, p := range cfg.PlaybooksFor(domain) {
				out = append(out, p.Name)
			}
			return out
		},
	}
}

// DefaultAcceptable: findings of the "baseline" class and "…_CHANGED" IDs
// are differences from the approved baseline, which approving accepts.
func DefaultAcceptable(f finding.Finding) bool {
	if c, ok := finding.Lookup(f.ID); ok && c.Class == "baseline" {
		return true
	}
	return strings.HasSuffix(f.ID, "_CHANGED")
}

func (p *Policy) validate() error {
	if p.Confirmations < 1 {
		return errors.New("incident: confirmations must be at least 1")
	}
	for c, n := range p.ConfirmationsByClass {
		if n < 1 {
			return fmt.Errorf("incident: confirmations for class %s must be at least 1", c)
		}
	}
	if p.RepeatInterval <= 0 {
		return errors.New("incident: repeat interval must be positive")
	}
	if p.Acceptable == nil {
		p.Acceptable = DefaultAcceptable
	}
	return nil
}

func (p *Policy) confirmations(class string) int {
	if n, ok := p.ConfirmationsByClass[class]; ok {
		return n
	}
	return p.Confirmations
}

// Options wire an Engine.
type Options struct {
	Policy Policy
	Logger *slog.Logger
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// Registerer receives the incident metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnEnqueue is called after a transaction that enqueued messages
	// committed: give it the dispatcher's Kick.
	OnEnqueue func()
}

// Engine is the incident engine. It keeps no state of its own beyond the
// policy: everything is in the store, so any number of restarts resume
// where the last one stopped.
type Engine struct {
	st        store.Store
	policy    atomic.Pointer[Policy]
	now       func() time.Time
	logger    *slog.Logger
	onEnqueue func()
	metrics   *metrics
}

// New builds an Engine.
func New(st store.Store, o Options) (*Engine, error) {
	if st == nil {
		return nil, errors.New("incident: no store")
	}
	p := o.Policy
	if err := p.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := newMetrics(o.Registerer, st)
	if err != nil {
		return nil, err
	}
	e := &Engine{st: st, now: o.Now, logger: o.Logger.With("component", "incident"), onEnqueue: o.OnEnqueue, metrics: m}
	e.policy.Store(&p)
	return e, nil
}

// SetPolicy replaces the policy (config reload). Incidents already open
// keep their findings; new confirmations use the new numbers.
func (e *Engine) SetPolicy(p Policy) error {
	if err := p.validate(); err != nil {
		return err
	}
	e.policy.Store(&p)
	return nil
}

// Result counts what a call did.
type Result struct {
	Opened, Updated, Repeated, Resolved int
	// Suppressed counts pages a silence held back; Unsilenced counts the
	// first pages of incidents whose silence ended.
	Suppressed, Unsilenced int
	// Enqueued counts messages written to the outbox.
	Enqueued int
	// IncidentID is the domain's incident touched by Process (0 if none).
	IncidentID int64
}

func (r *Result) add(o Result) {
	r.Opened += o.Opened
	r.Updated += o.Updated
	r.Repeated += o.Repeated
	r.Resolved += o.Resolved
	r.Suppressed += o.Suppressed
	r.Unsilenced += o.Unsilenced
	r.Enqueued += o.Enqueued
}

// Process records one observation's findings for domain and check class
// ("dns", "registration", "audit"): findings of other classes are left as
// they are, so a DNS observation never resolves a registration incident.
// Pass every finding of the observation, including none at all: absence is
// what clears.
func (e *Engine) Process(ctx context.Context, domain, class string, findings []finding.Finding) (Result, error) {
	domain = config.CanonicalName(domain)
	if domain == "" || class == "" {
		return Result{}, errors.New("incident: process needs a domain and a class")
	}
	// Dedupe by key, keeping the worst: the incident identity is the key.
	byKey := map[string]finding.Finding{}
	for _, f := range findings {
		if f.Severity <= finding.OK {
			continue // "all good" is not a finding to track
		}
		f.Domain = domain
		if old, ok := byKey[f.Key()]; !ok || f.Severity > old.Severity {
			byKey[f.Key()] = f
		}
	}
	// A healthy domain with nothing on record needs no write transaction:
	// the common case, 10,000 times a minute.
	if len(byKey) == 0 {
		active, err := e.st.DomainActive(ctx, domain)
		if err != nil {
			return Result{}, fmt.Errorf("incident: %s: %w", domain, err)
		}
		if !active {
			return Result{}, nil
		}
	}
	now := e.now()
	pol := e.policy.Load()
	var res Result
	err := e.st.InTx(ctx, func(q store.Queries) error {
		states, err := q.FindingStates(ctx, domain)
		if err != nil {
			return err
		}
		var kept []store.FindingState
		seen := map[string]bool{}
		for _, s := range states {
			if s.Class != class {
				kept = append(kept, s)
				continue
			}
			f, ok := byKey[s.Key]
			if !ok {
				// Gone from this observation: the streak is broken.
				if err := q.DeleteFindingState(ctx, domain, class, s.Key); err != nil {
					return err
				}
				continue
			}
			seen[s.Key] = true
			s.Streak++
			s.LastSeen, s.Severity = now, f.Severity.String()
			if s.Data, err = json.Marshal(f); err != nil {
				return err
			}
			if err := q.PutFindingState(ctx, s); err != nil {
				return err
			}
			kept = append(kept, s)
		}
		for k, f := range byKey {
			if seen[k] {
				continue
			}
			data, err := json.Marshal(f)
			if err != nil {
				return err
			}
			s := store.FindingState{Domain: domain, Class: class, Key: k, Severity: f.Severity.String(), Streak: 1, FirstSeen: now, LastSeen: now, Data: data}
			if err := q.PutFindingState(ctx, s); err != nil {
				return err
			}
			kept = append(kept, s)
		}
		res, err = e.evaluate(ctx, q, pol, domain, kept, now, "")
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("incident: %s/%s: %w", domain, class, err)
	}
	e.after(res)
	return res, nil
}

// Tick sends what is due without a new observation: repeats, and the
// first page of incidents whose silence has ended. Call it every few
// seconds to a minute.
func (e *Engine) Tick(ctx context.Context) (Result, error) {
	now := e.now()
	pol := e.policy.Load()
	incs, err := e.st.Incidents(ctx, store.IncidentFilter{Status: store.IncidentOpen})
	if err != nil || len(incs) == 0 {
		return Result{}, err
	}
	sils, err := e.st.Silences(ctx, store.SilenceFilter{ActiveAt: now})
	if err != nil {
		return Result{}, err
	}
	var total Result
	for _, inc := range incs {
		if silenced(sils, inc.Domain) != nil {
			continue
		}
		if !inc.PagedAt.IsZero() && (parseSeverity(inc.Severity) < finding.Warning || now.Sub(inc.LastNotifiedAt) < pol.RepeatInterval) {
			continue
		}
		var res Result
		err := e.st.InTx(ctx, func(q store.Queries) error {
			states, err := q.FindingStates(ctx, inc.Domain)
			if err != nil {
				return err
			}
			res, err = e.evaluate(ctx, q, pol, inc.Domain, states, now, "")
			return err
		})
		if err != nil {
			return total, fmt.Errorf("incident: tick %s: %w", inc.Domain, err)
		}
		total.add(res)
	}
	e.after(total)
	return total, nil
}

// Retire forgets a domain's findings (removed from the inventory) and
// resolves its open incident with reason as the note.
func (e *Engine) Retire(ctx context.Context, domain, reason string) (Result, error) {
	domain = config.CanonicalName(domain)
	now := e.now()
	pol := e.policy.Load()
	var res Result
	err := e.st.InTx(ctx, func(q store.Queries) error {
		states, err := q.FindingStates(ctx, domain)
		if err != nil {
			return err
		}
		for _, s := range states {
			if err := q.DeleteFindingState(ctx, domain, s.Class, s.Key); err != nil {
				return err
			}
		}
		res, err = e.evaluate(ctx, q, pol, domain, nil, now, reason)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("incident: retire %s: %w", domain, err)
	}
	e.after(res)
	return res, nil
}

func (e *Engine) after(res Result) {
	e.metrics.record(res)
	if res.Enqueued > 0 && e.onEnqueue != nil {
		e.onEnqueue()
	}
}

func silenced(sils []store.Silence, domain string) *store.Silence {
	for i := range sils {
		if sils[i].Matches(domain) {
			return &sils[i]
		}
	}
	return nil
}

// entry is one finding within an incident, as kept in incidents.data.
type entry struct {
	Class   string          `json:"class"`
	Key     string          `json:"key"`
	Finding finding.Finding `json:"finding"`
	// Since is when the finding was first observed.
	Since       time.Time `json:"since"`
	ConfirmedAt time.Time `json:"confirmed_at"`
	// Announced: a message has shown this finding.
	Announced bool      `json:"announced,omitempty"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	// ClearReported: a message has said it cleared.
	ClearReported bool `json:"clear_reported,omitempty"`
}

func (en *entry) active() bool { return en.ClearedAt.IsZero() }

// incidentData is the engine's part of an incident row.
type incidentData struct {
	Findings []*entry `json:"findings"`
	// Thread counts thread changes (an escalation to another channel).
	Thread int `json:"thread,omitempty"`
}

func threadKey(id int64, gen int) string {
	if gen == 0 {
		return fmt.Sprintf("incident:%d", id)
	}
	return fmt.Sprintf("incident:%d/%d", id, gen)
}

func ck(class, key string) string { return class + "\x00" + key }

func decodeFinding(s store.FindingState) finding.Finding {
	var f finding.Finding
	_ = json.Unmarshal(s.Data, &f) // written by Process; a bad row shows its key
	if f.ID == "" {
		f.ID = s.Key
	}
	return f
}

func worst(es []*entry) finding.Severity {
	w := finding.OK
	for _, en := range es {
		if en.active() && en.Finding.Severity > w {
			w = en.Finding.Severity
		}
	}
	return w
}

func parseSeverity(s string) finding.Severity {
	v, _ := finding.ParseSeverity(s)
	return v
}

// evaluate brings domain's incident in line with its finding states and
// enqueues what that calls for, all on q (one transaction).
func (e *Engine) evaluate(ctx context.Context, q store.Queries, pol *Policy, domain string, states []store.FindingState, now time.Time, note string) (Result, error) {
	var res Result
	var confirmed []store.FindingState
	present := map[string]store.FindingState{}
	for _, s := range states {
		present[ck(s.Class, s.Key)] = s
		if s.Streak >= pol.confirmations(s.Class) {
			confirmed = append(confirmed, s)
		}
	}
	sils, err := q.Silences(ctx, store.SilenceFilter{ActiveAt: now, Domain: domain})
	if err != nil {
		return res, err
	}
	sil := silenced(sils, domain)

	inc, err := q.OpenIncident(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		if len(confirmed) == 0 {
			return res, nil
		}
		return e.open(ctx, q, pol, domain, confirmed, sil, now)
	}
	if err != nil {
		return res, err
	}
	res.IncidentID = inc.ID
	var data incidentData
	if err := json.Unmarshal(inc.Data, &data); err != nil {
		return res, fmt.Errorf("incident %d: corrupt state: %w", inc.ID, err)
	}

	// Findings already in the incident stay until absent from their class's
	// latest observation (a raised confirmations after a reload must not
	// "resolve" them); new ones join once confirmed.
	idx := map[string]*entry{}
	for _, en := range data.Findings {
		idx[ck(en.Class, en.Key)] = en
		if !en.active() {
			continue
		}
		if s, ok := present[ck(en.Class, en.Key)]; ok {
			en.Finding = decodeFinding(s)
		} else {
			en.ClearedAt = now
		}
	}
	for _, s := range confirmed {
		en := idx[ck(s.Class, s.Key)]
		switch {
		case en == nil:
			en = &entry{Class: s.Class, Key: s.Key, Finding: decodeFinding(s), Since: s.FirstSeen, ConfirmedAt: now}
			data.Findings = append(data.Findings, en)
			idx[ck(s.Class, s.Key)] = en
		case !en.active():
			// Back after clearing: a new occurrence, announced again.
			*en = entry{Class: s.Class, Key: s.Key, Finding: decodeFinding(s), Since: s.FirstSeen, ConfirmedAt: now}
		}
	}
	sortEntries(data.Findings)
	inc.UpdatedAt = now

	cur := worst(data.Findings)
	if cur == finding.OK {
		inc.Status, inc.ResolvedAt = store.IncidentResolved, now
		res.Resolved++
		if !inc.PagedAt.IsZero() {
			// Someone was paged: close the thread for them, silence or not.
			msg := e.message(pol, notify.KindResolved, &inc, &data, now)
			msg.Text = note
			if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
				return res, err
			}
		}
		return res, e.save(ctx, q, &inc, &data)
	}

	hasNew := slices.ContainsFunc(data.Findings, func(en *entry) bool { return en.active() && !en.Announced })
	announced := parseSeverity(inc.Severity)
	switch {
	case sil != nil:
		if inc.PagedAt.IsZero() || hasNew {
			res.Suppressed++
		}
	case inc.PagedAt.IsZero():
		// Opened during a silence that is now over: this is the page.
		inc.Severity, inc.Channel = cur.String(), notify.Route(pol.Slack, cur)
		msg := e.message(pol, notify.KindOpen, &inc, &data, now)
		msg.Text = fmt.Sprintf("Held back by a silence since %s; the silence is over.", inc.OpenedAt.UTC().Format("2006-01-02 15:04 UTC"))
		res.Unsilenced++
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
	case cur > announced && notify.Route(pol.Slack, cur) != inc.Channel:
		// Escalated into a channel the thread is not in: say so in the old
		// thread, then page the new channel with a thread of its own.
		newChannel := notify.Route(pol.Slack, cur)
		msg := e.message(pol, notify.KindUpdate, &inc, &data, now)
		msg.Title = fmt.Sprintf("Escalated to %s: continued in %s", cur, newChannel)
		msg.Findings = nil
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
		data.Thread++
		inc.ThreadKey, inc.Channel, inc.Severity = threadKey(inc.ID, data.Thread), newChannel, cur.String()
		msg = e.message(pol, notify.KindOpen, &inc, &data, now)
		msg.Text = fmt.Sprintf("Escalated from %s: incident #%d, open since %s.", announced, inc.ID, inc.OpenedAt.UTC().Format("2006-01-02 15:04 UTC"))
		res.Updated++
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
	case hasNew || cur > announced:
		inc.Severity = max(cur, announced).String()
		msg := e.message(pol, notify.KindUpdate, &inc, &data, now)
		res.Updated++
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
	case cur >= finding.Warning && now.Sub(inc.LastNotifiedAt) >= pol.RepeatInterval:
		// Info-only incidents (a "baseline needed" notice) are said once,
		// not repeated: a notice that nags is a notice people mute.
		msg := e.message(pol, notify.KindRepeat, &inc, &data, now)
		res.Repeated++
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
	}
	return res, e.save(ctx, q, &inc, &data)
}

// open creates the incident, paging unless silenced.
func (e *Engine) open(ctx context.Context, q store.Queries, pol *Policy, domain string, confirmed []store.FindingState, sil *store.Silence, now time.Time) (Result, error) {
	var res Result
	data := incidentData{}
	for _, s := range confirmed {
		data.Findings = append(data.Findings, &entry{Class: s.Class, Key: s.Key, Finding: decodeFinding(s), Since: s.FirstSeen, ConfirmedAt: now})
	}
	sortEntries(data.Findings)
	cur := worst(data.Findings)
	inc := store.Incident{
		Domain: domain, Status: store.IncidentOpen, Severity: cur.String(), Channel: notify.Route(pol.Slack, cur),
		OpenedAt: now, UpdatedAt: now, Data: json.RawMessage(`{}`),
	}
	id, err := q.CreateIncident(ctx, inc)
	if err != nil {
		return res, err
	}
	inc.ID, inc.ThreadKey = id, threadKey(id, 0)
	res.IncidentID = id
	res.Opened++
	if sil != nil {
		res.Suppressed++
		e.logger.Info("incident opened during a silence; not paging", "domain", domain, "incident", id,
			"silence", sil.ID, "until", sil.End().Format(time.RFC3339))
	} else {
		msg := e.message(pol, notify.KindOpen, &inc, &data, now)
		if err := e.enqueue(ctx, q, msg, &inc, &data, now, &res); err != nil {
			return res, err
		}
	}
	return res, e.save(ctx, q, &inc, &data)
}

func (e *Engine) save(ctx context.Context, q store.Queries, inc *store.Incident, data *incidentData) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	inc.Data = b
	return q.UpdateIncident(ctx, *inc)
}

// enqueue writes msg to the outbox and records that it was sent.
func (e *Engine) enqueue(ctx context.Context, q store.Queries, msg *notify.Message, inc *store.Incident, data *incidentData, now time.Time, res *Result) error {
	if _, err := outbox.Enqueue(ctx, q, msg); err != nil {
		return err
	}
	res.Enqueued++
	inc.Notifications++
	inc.LastNotifiedAt = now
	if inc.PagedAt.IsZero() {
		inc.PagedAt = now
	}
	for _, en := range data.Findings {
		if en.active() {
			en.Announced = true
		} else {
			en.ClearReported = true
		}
	}
	e.logger.Info("alert enqueued", "kind", msg.Kind, "domain", inc.Domain, "incident", inc.ID, "severity", msg.Severity.String(), "findings", len(msg.Findings))
	return nil
}

func sortEntries(es []*entry) {
	slices.SortStableFunc(es, func(a, b *entry) int {
		if c := cmp.Compare(b.Finding.Severity, a.Finding.Severity); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Finding.ID, b.Finding.ID), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Class, b.Class))
	})
}

// message renders the incident as a notify.Message of kind k.
func (e *Engine) message(pol *Policy, k notify.Kind, inc *store.Incident, data *incidentData, now time.Time) *notify.Message {
	m := &notify.Message{
		Kind: k, Domain: inc.Domain, Since: inc.OpenedAt, At: now, IncidentID: inc.ID,
		ThreadKey: inc.ThreadKey, Channel: inc.Channel, Broadcast: k != notify.KindOpen,
	}
	var active, fresh []*entry
	registration, acceptable := false, false
	for _, en := range data.Findings {
		nf := notify.Finding{Finding: en.Finding, Since: en.Since}
		if c, ok := finding.Lookup(en.Finding.ID); ok {
			nf.Title = c.Title
			registration = registration || (en.active() && c.Class == "registration")
		}
		switch {
		case en.active() && !en.Announced && k != notify.KindOpen:
			nf.State = notify.StateNew
		case en.active():
			nf.State = notify.StateOngoing
		default:
			nf.State, nf.ClearedAt = notify.StateCleared, en.ClearedAt
			// Cleared findings are told once in the thread, then only in
			// the resolution; a thread's first message shows what is open.
			if k == notify.KindOpen || (en.ClearReported && k != notify.KindResolved) {
				continue
			}
		}
		if en.active() {
			active = append(active, en)
			if !en.Announced {
				fresh = append(fresh, en)
			}
			registration = registration || en.Class == "registration"
			acceptable = acceptable || pol.Acceptable(en.Finding)
		}
		m.Findings = append(m.Findings, nf)
	}
	m.Severity = worst(data.Findings)
	if k == notify.KindResolved {
		m.Severity = parseSeverity(inc.Severity)
	}
	name := func(en *entry) string {
		t := en.Finding.ID
		if c, ok := finding.Lookup(t); ok && c.Title != "" {
			t = c.Title
		}
		if en.Finding.Subject != "" {
			t += " (" + en.Finding.Subject + ")"
		}
		return t
	}
	more := func(es []*entry) string {
		if len(es) == 0 {
			return ""
		}
		s := name(es[0])
		if len(es) > 1 {
			s += fmt.Sprintf(" and %d more", len(es)-1)
		}
		return s
	}
	switch k {
	case notify.KindOpen:
		m.Title = more(active)
	case notify.KindUpdate:
		if len(fresh) > 0 {
			m.Title = "New: " + more(fresh)
		} else {
			m.Title = "Now " + m.Severity.String() + ": " + more(active)
		}
	case notify.KindRepeat:
		m.Title = fmt.Sprintf("Still open: %s", more(active))
	case notify.KindResolved:
		m.Title = fmt.Sprintf("All %d findings cleared", len(data.Findings))
		if len(data.Findings) == 1 {
			m.Title = "Cleared: " + name(data.Findings[0])
		}
	}
	if k != notify.KindResolved {
		if pol.Playbooks != nil {
			m.Playbooks = pol.Playbooks(inc.Domain)
		}
		if acceptable {
			m.AcceptCommand = notify.AcceptCommand(inc.Domain)
		}
		if registration && pol.ContactSheet != nil {
			m.ContactSheet = pol.ContactSheet(inc.Domain)
		}
	}
	return m
}
