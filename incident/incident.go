// Package incident turns findings into incidents and incidents into
// messages. An incident is a problem, not a domain: the findings confirmed
// together (in one evaluation, or within alerts.group_window of the
// incident's page) form one incident with one top-level page and one
// thread; a later, unrelated problem on the same domain is another. A
// critical finding never joins a lesser incident: that escalation is a new
// top-level page that links the older thread. An incident repeats until
// someone acknowledges it and resolves when its own findings have been
// absent as many times as it took to confirm them, whatever else is wrong
// with the domain. Accepted risk (posture findings approved with the
// baseline) never pages. Every state change and the messages it causes are
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
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/outbox"
)

// Errors callers branch on.
var (
	// ErrNotOpen: the incident has resolved or closed.
	ErrNotOpen = errors.New("incident is not open")
	// ErrAlreadyAcked: someone acknowledged the incident already.
	ErrAlreadyAcked = errors.New("incident is already acknowledged")
)

// DefaultGroupWindow is how long after its page an incident still takes in
// newly confirmed findings of no higher severity (alerts.group_window).
const DefaultGroupWindow = 5 * time.Minute

// DefaultGroupWait is how long a new incident without a critical finding
// waits before it pages (alerts.group_wait), so findings confirmed moments
// apart — a hijack's resolver view a recheck before its delegation — are
// one page.
const DefaultGroupWait = 30 * time.Second

// Policy is the reloadable part of the engine's configuration.
type Policy struct {
	// Confirmations is how many consecutive observations must contain a
	// finding before it pages, and lack it before it clears
	// (alerts.confirmations, at least 1).
	Confirmations int
	// ConfirmationsByClass overrides Confirmations per check class.
	ConfirmationsByClass map[string]int
	// RepeatInterval is how often an open, unacknowledged incident is
	// repeated.
	RepeatInterval time.Duration
	// GroupWindow: findings confirmed within it after an incident's page,
	// and no worse than the incident, join it instead of paging again.
	GroupWindow time.Duration
	// GroupWait holds the first page of an incident with no critical
	// finding this long; findings confirmed meanwhile join it, and a
	// critical one pages it at once. Alertmanager's group_wait.
	GroupWait time.Duration
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
		GroupWindow:    cfg.Alerts.GroupWindow.D(),
		GroupWait:      cfg.Alerts.GroupWait.D(),
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
	if p.GroupWindow < 0 || p.GroupWait < 0 {
		return errors.New("incident: the group window and wait cannot be negative")
	}
	if p.Acceptable == nil {
		p.Acceptable = DefaultAcceptable
	}
	return nil
}

// holding reports whether a new incident of severity sev, opened at
// opened, still waits for findings to group with before it pages.
func (p *Policy) holding(sev finding.Severity, opened, now time.Time) bool {
	return sev < finding.Critical && now.Sub(opened) < p.GroupWait
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
	Opened, Updated, Cleared, Repeated, Acked, Resolved, Closed int
	// Suppressed counts pages a silence held back; Unsilenced counts the
	// first pages of incidents whose silence ended.
	Suppressed, Unsilenced int
	// Enqueued counts messages written to the outbox; MessageIDs are
	// their outbox IDs (a CLI command waits for them to be delivered).
	Enqueued   int
	MessageIDs []int64
	// Incidents are the IDs of the incidents the call touched.
	Incidents []int64
}

func (r *Result) add(o Result) {
	r.Opened += o.Opened
	r.Updated += o.Updated
	r.Cleared += o.Cleared
	r.Repeated += o.Repeated
	r.Acked += o.Acked
	r.Resolved += o.Resolved
	r.Closed += o.Closed
	r.Suppressed += o.Suppressed
	r.Unsilenced += o.Unsilenced
	r.Enqueued += o.Enqueued
	r.MessageIDs = append(r.MessageIDs, o.MessageIDs...)
	r.Incidents = append(r.Incidents, o.Incidents...)
}

// Process records one observation's findings for domain and check class
// ("dns", "registration"): findings of other classes are left as they are,
// so a DNS observation never resolves a registration incident. Pass every
// finding of the observation, including none at all: absence is what
// clears. Accepted findings are treated as absent.
func (e *Engine) Process(ctx context.Context, domain, class string, findings []finding.Finding) (Result, error) {
	domain = config.CanonicalName(domain)
	if domain == "" || class == "" {
		return Result{}, errors.New("incident: process needs a domain and a class")
	}
	// Dedupe by key, keeping the worst: the finding's identity is the key.
	byKey := map[string]finding.Finding{}
	for _, f := range findings {
		if f.Severity <= finding.OK || f.Accepted {
			continue // "all good" and accepted risk are not findings to track
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
		incs, err := loadOpen(ctx, q, domain)
		if err != nil {
			return err
		}
		inIncident := map[string]bool{}
		for _, inc := range incs {
			for _, en := range inc.data.Findings {
				if en.active() {
					inIncident[ck(en.Class, en.Key)] = true
				}
			}
		}
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
			f, present := byKey[s.Key]
			switch {
			case present:
				seen[s.Key] = true
				if s.Streak == 0 {
					s.Streak = 1 // back before its clear was confirmed
				} else {
					s.Streak++
				}
				s.Absent, s.LastSeen, s.Severity = 0, now, f.Severity.String()
				if s.Data, err = json.Marshal(f); err != nil {
					return err
				}
			case inIncident[ck(class, s.Key)]:
				// Gone, but part of an open incident: count the clean
				// observations until the clear is confirmed.
				s.Streak = 0
				s.Absent++
			default:
				// Gone and paging nobody: the streak is simply broken.
				if err := q.DeleteFindingState(ctx, domain, class, s.Key); err != nil {
					return err
				}
				continue
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
		res, err = e.evaluate(ctx, q, pol, domain, incs, kept, now)
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
	open, err := e.st.OpenIncidents(ctx, "")
	if err != nil || len(open) == 0 {
		return Result{}, err
	}
	sils, err := e.st.Silences(ctx, store.SilenceFilter{ActiveAt: now})
	if err != nil {
		return Result{}, err
	}
	due := map[string]bool{}
	for _, inc := range open {
		if silenced(sils, inc.Domain) != nil {
			continue
		}
		unpaged := inc.PagedAt.IsZero() && !pol.holding(parseSeverity(inc.Severity), inc.OpenedAt, now)
		repeat := !inc.PagedAt.IsZero() && !inc.Acked() && parseSeverity(inc.Severity) >= finding.Warning && now.Sub(inc.LastNotifiedAt) >= pol.RepeatInterval
		if unpaged || repeat {
			due[inc.Domain] = true
		}
	}
	var total Result
	for domain := range due {
		var res Result
		err := e.st.InTx(ctx, func(q store.Queries) error {
			incs, err := loadOpen(ctx, q, domain)
			if err != nil {
				return err
			}
			states, err := q.FindingStates(ctx, domain)
			if err != nil {
				return err
			}
			res, err = e.evaluate(ctx, q, pol, domain, incs, states, now)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("incident: tick %s: %w", domain, err)
		}
		total.add(res)
	}
	e.after(total)
	return total, nil
}

// Ack records that someone has the incident: it stops repeating, a reply
// in its thread says who and why, and its page shows it. It still resolves
// when its findings clear, and a new problem still pages.
func (e *Engine) Ack(ctx context.Context, id int64, by, reason string) (Result, error) {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	if by == "" || reason == "" {
		return Result{}, errors.New("incident: an acknowledgement needs who (--by) and why (--reason)")
	}
	now := e.now()
	pol := e.policy.Load()
	var res Result
	err := e.st.InTx(ctx, func(q store.Queries) error {
		row, err := q.Incident(ctx, id)
		if err != nil {
			return err
		}
		if row.Status != store.IncidentOpen {
			return fmt.Errorf("incident #%d %s at %s: %w", id, row.Status, row.ResolvedAt.UTC().Format(time.RFC3339), ErrNotOpen)
		}
		if row.Acked() {
			return fmt.Errorf("incident #%d was acknowledged by %s at %s (%s): %w", id, row.AckedBy,
				row.AckedAt.UTC().Format(time.RFC3339), row.AckReason, ErrAlreadyAcked)
		}
		inc, err := decode(row)
		if err != nil {
			return err
		}
		inc.AckedAt, inc.AckedBy, inc.AckReason, inc.UpdatedAt = now, by, reason, now
		res.Acked++
		res.Incidents = append(res.Incidents, id)
		if !inc.PagedAt.IsZero() {
			msg := e.message(pol, notify.KindAck, inc, now)
			if err := e.enqueue(ctx, q, msg, inc, now, &res); err != nil {
				return err
			}
			if err := e.enqueueRoot(ctx, q, inc, "acknowledged", now, &res); err != nil {
				return err
			}
		}
		return e.save(ctx, q, inc)
	})
	if err != nil {
		return Result{}, fmt.Errorf("incident: ack #%d: %w", id, err)
	}
	e.logger.Info("incident acknowledged", "incident", id, "by", by)
	e.after(res)
	return res, nil
}

// Retire closes a domain's open incidents (it left the inventory) with
// reason as the note, and forgets its findings. Closed is not resolved:
// nobody saw the problem go away.
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
		incs, err := loadOpen(ctx, q, domain)
		if err != nil {
			return err
		}
		for _, inc := range incs {
			inc.Status, inc.ResolvedAt, inc.UpdatedAt = store.IncidentClosed, now, now
			res.Closed++
			res.Incidents = append(res.Incidents, inc.ID)
			if !inc.PagedAt.IsZero() {
				msg := e.message(pol, notify.KindClosed, inc, now)
				msg.Text = reason
				if err := e.enqueue(ctx, q, msg, inc, now, &res); err != nil {
					return err
				}
				if err := e.enqueueRoot(ctx, q, inc, "closed", now, &res, func(m *notify.Message) { m.Text = reason }); err != nil {
					return err
				}
			}
			if err := e.save(ctx, q, inc); err != nil {
				return err
			}
		}
		return nil
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
	// Peak is the worst severity the incident reached.
	Peak finding.Severity `json:"peak,omitempty"`
	// Root is the page as sent: root updates re-render it with the state.
	Root json.RawMessage `json:"root,omitempty"`
	// HeldSince is when a silence first held the incident's page back.
	HeldSince time.Time `json:"held_since,omitzero"`
}

// incident is a store row with its engine data decoded.
type incident struct {
	store.Incident
	data incidentData
	// fresh: created in this evaluation.
	fresh bool
}

func decode(row store.Incident) (*incident, error) {
	inc := &incident{Incident: row}
	if len(row.Data) > 0 && string(row.Data) != "null" {
		if err := json.Unmarshal(row.Data, &inc.data); err != nil {
			return nil, fmt.Errorf("incident %d: corrupt state: %w", row.ID, err)
		}
	}
	return inc, nil
}

func loadOpen(ctx context.Context, q store.Queries, domain string) ([]*incident, error) {
	rows, err := q.OpenIncidents(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := make([]*incident, 0, len(rows))
	for _, r := range rows {
		inc, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	return out, nil
}

func (inc *incident) active() []*entry {
	var out []*entry
	for _, en := range inc.data.Findings {
		if en.active() {
			out = append(out, en)
		}
	}
	return out
}

func threadKey(id int64) string { return fmt.Sprintf("incident:%d", id) }

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
		if en.Finding.Severity > w {
			w = en.Finding.Severity
		}
	}
	return w
}

func parseSeverity(s string) finding.Severity {
	v, _ := finding.ParseSeverity(s)
	return v
}

// evaluate brings domain's open incidents in line with its finding states,
// groups newly confirmed findings into an incident, and enqueues what that
// calls for, all on q (one transaction).
func (e *Engine) evaluate(ctx context.Context, q store.Queries, pol *Policy, domain string, incs []*incident, states []store.FindingState, now time.Time) (Result, error) {
	var res Result
	stateOf := map[string]store.FindingState{}
	for _, s := range states {
		stateOf[ck(s.Class, s.Key)] = s
	}
	sils, err := q.Silences(ctx, store.SilenceFilter{ActiveAt: now, Domain: domain})
	if err != nil {
		return res, err
	}
	sil := silenced(sils, domain)

	// Each incident's findings: present, cleared (absent as many times as
	// it took to confirm them), or on their way out.
	taken := map[string]bool{}
	for _, inc := range incs {
		for _, en := range inc.active() {
			s, ok := stateOf[ck(en.Class, en.Key)]
			switch {
			case ok && s.Streak > 0:
				en.Finding = decodeFinding(s)
				taken[ck(en.Class, en.Key)] = true
			case ok && s.Absent < pol.confirmations(en.Class):
				taken[ck(en.Class, en.Key)] = true // not cleared yet
			default:
				en.ClearedAt = now
				if ok {
					if err := q.DeleteFindingState(ctx, domain, en.Class, en.Key); err != nil {
						return res, err
					}
				}
			}
		}
	}

	// Newly confirmed findings: one problem. They join the newest open
	// incident not paged yet (it waits for exactly this), or paged within
	// the group window and at least as severe; otherwise they are a new
	// incident with a page of its own.
	var fresh []*entry
	for _, s := range states {
		if s.Streak >= pol.confirmations(s.Class) && !taken[ck(s.Class, s.Key)] {
			fresh = append(fresh, &entry{Class: s.Class, Key: s.Key, Finding: decodeFinding(s), Since: s.FirstSeen, ConfirmedAt: now})
		}
	}
	if len(fresh) > 0 {
		sortEntries(fresh)
		var target *incident
		for i := len(incs) - 1; i >= 0; i-- {
			inc := incs[i]
			if inc.PagedAt.IsZero() || (now.Sub(inc.OpenedAt) <= pol.GroupWindow && worst(fresh) <= worst(inc.active())) {
				target = inc
				break
			}
		}
		if target != nil {
			target.data.Findings = append(target.data.Findings, fresh...)
		} else {
			inc, err := e.create(ctx, q, pol, domain, fresh, now)
			if err != nil {
				return res, err
			}
			incs = append(incs, inc)
		}
	}

	for _, inc := range incs {
		r, err := e.settle(ctx, q, pol, inc, incs, sil, now)
		if err != nil {
			return res, err
		}
		res.add(r)
	}
	return res, nil
}

// create writes a new incident for findings; settle pages it.
func (e *Engine) create(ctx context.Context, q store.Queries, pol *Policy, domain string, fs []*entry, now time.Time) (*incident, error) {
	sev := worst(fs)
	inc := &incident{fresh: true, data: incidentData{Findings: fs, Peak: sev}}
	inc.Incident = store.Incident{
		Domain: domain, Status: store.IncidentOpen, Severity: sev.String(), Title: more(fs),
		Channel: notify.Route(pol.Slack, sev), OpenedAt: now, UpdatedAt: now, Data: json.RawMessage(`{}`),
	}
	id, err := q.CreateIncident(ctx, inc.Incident)
	if err != nil {
		return nil, err
	}
	inc.ID, inc.ThreadKey = id, threadKey(id)
	e.logger.Info("incident opened", "domain", domain, "incident", id, "severity", sev.String(), "findings", len(fs), "title", inc.Title)
	return inc, nil
}

// settle decides what one incident's changes call for, enqueues it and
// saves the incident.
func (e *Engine) settle(ctx context.Context, q store.Queries, pol *Policy, inc *incident, all []*incident, sil *store.Silence, now time.Time) (Result, error) {
	var res Result
	active := inc.active()
	var unannounced, newlyCleared []*entry
	for _, en := range inc.data.Findings {
		switch {
		case en.active() && !en.Announced:
			unannounced = append(unannounced, en)
		case !en.active() && !en.ClearReported:
			newlyCleared = append(newlyCleared, en)
		}
	}
	before := inc.Incident
	if cur := worst(active); cur > finding.OK {
		inc.Severity = cur.String()
		inc.data.Peak = max(inc.data.Peak, cur)
	}
	paged := !inc.PagedAt.IsZero()
	if inc.fresh {
		res.Opened++
	}
	send := func(k notify.Kind, edit func(*notify.Message)) error {
		msg := e.message(pol, k, inc, now)
		if edit != nil {
			edit(msg)
		}
		return e.enqueue(ctx, q, msg, inc, now, &res)
	}

	switch {
	case len(active) == 0:
		inc.Status, inc.ResolvedAt = store.IncidentResolved, now
		res.Resolved++
		if paged {
			// Someone was paged: close the thread for them, silence or not.
			if err := send(notify.KindResolved, nil); err != nil {
				return res, err
			}
			if err := e.enqueueRoot(ctx, q, inc, "resolved", now, &res); err != nil {
				return res, err
			}
		}
		e.logger.Info("incident resolved", "domain", inc.Domain, "incident", inc.ID, "after", now.Sub(inc.OpenedAt).Round(time.Second).String())
	case sil != nil:
		if !paged || len(unannounced) > 0 {
			res.Suppressed++
			if inc.data.HeldSince.IsZero() && !paged {
				inc.data.HeldSince = now
			}
			e.logger.Info("silenced: not paging", "domain", inc.Domain, "incident", inc.ID, "silence", sil.ID, "until", sil.End().Format(time.RFC3339))
		}
	case !paged && pol.holding(worst(active), inc.OpenedAt, now):
		// No critical finding: wait a little for what else confirms.
	case !paged:
		var note string
		if !inc.data.HeldSince.IsZero() {
			// Held back by a silence that is now over: this is the page.
			note = fmt.Sprintf("Held back by a silence since %s; the silence is over.", inc.data.HeldSince.UTC().Format("2006-01-02 15:04 UTC"))
			res.Unsilenced++
		}
		if err := e.page(ctx, q, pol, inc, all, note, now, &res); err != nil {
			return res, err
		}
	default:
		if len(unannounced) > 0 {
			res.Updated++
			if err := send(notify.KindUpdate, func(m *notify.Message) { m.Severity = worst(unannounced) }); err != nil {
				return res, err
			}
		}
		if len(newlyCleared) > 0 {
			res.Cleared++
			if err := send(notify.KindCleared, nil); err != nil {
				return res, err
			}
		}
		if len(unannounced) == 0 && len(newlyCleared) == 0 && !inc.Acked() &&
			worst(active) >= finding.Warning && now.Sub(inc.LastNotifiedAt) >= pol.RepeatInterval {
			// Info-only incidents (a "baseline needed" notice) are said
			// once, not repeated: a notice that nags is a notice people
			// mute.
			res.Repeated++
			if err := send(notify.KindRepeat, nil); err != nil {
				return res, err
			}
		}
	}
	inc.UpdatedAt = now
	if inc.fresh || !sameIncident(before, inc.Incident) || len(unannounced) > 0 || len(newlyCleared) > 0 || res.Enqueued > 0 || res.Suppressed > 0 {
		if err := e.save(ctx, q, inc); err != nil {
			return res, err
		}
	}
	if res.Enqueued > 0 || inc.fresh || inc.Status != store.IncidentOpen {
		res.Incidents = append(res.Incidents, inc.ID)
	}
	return res, nil
}

func sameIncident(a, b store.Incident) bool {
	return a.Status == b.Status && a.Severity == b.Severity && a.Title == b.Title && a.PagedAt.Equal(b.PagedAt)
}

// page enqueues the top-level page and its evidence reply.
func (e *Engine) page(ctx context.Context, q store.Queries, pol *Policy, inc *incident, all []*incident, note string, now time.Time, res *Result) error {
	active := inc.active()
	sortEntries(active)
	sev := worst(active)
	// Findings may have joined while the page waited: name them all.
	inc.Title, inc.Channel = more(active), notify.Route(pol.Slack, sev)
	msg := e.message(pol, notify.KindOpen, inc, now)
	msg.Text = note
	for _, other := range all {
		if other.ID == inc.ID || other.Status != store.IncidentOpen {
			continue
		}
		osev := parseSeverity(other.Severity)
		msg.Related = append(msg.Related, notify.Related{IncidentID: other.ID, Severity: osev, Title: other.Title, ThreadKey: other.ThreadKey, Acked: other.Acked()})
		if osev < sev && note == "" {
			note = fmt.Sprintf("Escalation: incident #%d on this domain is %s.", other.ID, osev)
			msg.Text = note
		}
	}
	root, err := msg.Marshal()
	if err != nil {
		return err
	}
	inc.data.Root = root
	if err := e.enqueue(ctx, q, msg, inc, now, res); err != nil {
		return err
	}
	detail := e.message(pol, notify.KindDetail, inc, now)
	return e.enqueue(ctx, q, detail, inc, now, res)
}

// enqueueRoot re-renders the page with the incident's state, to replace
// the thread's first message in place.
func (e *Engine) enqueueRoot(ctx context.Context, q store.Queries, inc *incident, state string, now time.Time, res *Result, edits ...func(*notify.Message)) error {
	if len(inc.data.Root) == 0 {
		return nil // paged by an older nsguard: the reply says it all
	}
	m, err := notify.Unmarshal(inc.data.Root)
	if err != nil {
		return fmt.Errorf("incident %d: stored page: %w", inc.ID, err)
	}
	m.Kind, m.State, m.At, m.Broadcast = notify.KindRootUpdate, state, now, false
	if state == "resolved" || state == "closed" {
		m.EndedAt = now
	}
	m.AckedBy, m.AckReason, m.AckedAt = inc.AckedBy, inc.AckReason, inc.AckedAt
	for _, ed := range edits {
		ed(m)
	}
	if _, err := enqueueMessage(ctx, q, m, res); err != nil {
		return err
	}
	return nil
}

func (e *Engine) save(ctx context.Context, q store.Queries, inc *incident) error {
	b, err := json.Marshal(inc.data)
	if err != nil {
		return err
	}
	inc.Data = b
	return q.UpdateIncident(ctx, inc.Incident)
}

func enqueueMessage(ctx context.Context, q store.Queries, msg *notify.Message, res *Result) (int64, error) {
	id, err := outbox.Enqueue(ctx, q, msg)
	if err != nil {
		return 0, err
	}
	res.Enqueued++
	res.MessageIDs = append(res.MessageIDs, id)
	return id, nil
}

// enqueue writes msg to the outbox and records that it was sent.
func (e *Engine) enqueue(ctx context.Context, q store.Queries, msg *notify.Message, inc *incident, now time.Time, res *Result) error {
	if _, err := enqueueMessage(ctx, q, msg, res); err != nil {
		return err
	}
	inc.Notifications++
	inc.LastNotifiedAt = now
	if inc.PagedAt.IsZero() {
		inc.PagedAt = now
	}
	for _, en := range inc.data.Findings {
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

func addAll(to, vs []string) []string {
	for _, v := range vs {
		if !slices.Contains(to, v) {
			to = append(to, v)
		}
	}
	slices.Sort(to)
	return to
}

// name is a finding as a title names it: the catalogue's title and subject.
func name(en *entry) string {
	t := en.Finding.ID
	if c, ok := finding.Lookup(t); ok && c.Title != "" {
		t = c.Title
	}
	if en.Finding.Subject != "" {
		t += " (" + en.Finding.Subject + ")"
	}
	return t
}

// more names the first (worst) finding and counts the rest.
func more(es []*entry) string {
	if len(es) == 0 {
		return ""
	}
	s := name(es[0])
	if len(es) > 1 {
		s += fmt.Sprintf(" and %d more", len(es)-1)
	}
	return s
}

// message renders the incident as a notify.Message of kind k.
func (e *Engine) message(pol *Policy, k notify.Kind, inc *incident, now time.Time) *notify.Message {
	m := &notify.Message{
		Kind: k, Domain: inc.Domain, Title: inc.Title, Since: inc.OpenedAt, At: now, IncidentID: inc.ID,
		ThreadKey: inc.ThreadKey, Channel: inc.Channel, State: "open",
		AckedBy: inc.AckedBy, AckReason: inc.AckReason, AckedAt: inc.AckedAt,
	}
	switch k {
	case notify.KindUpdate, notify.KindRepeat, notify.KindResolved, notify.KindClosed:
		// Shown in the channel too: news about a page people saw.
		m.Broadcast = true
	}
	if inc.Acked() {
		m.State = "acknowledged"
	}
	if inc.Status != store.IncidentOpen {
		m.State, m.EndedAt = inc.Status, now
	}
	sortEntries(inc.data.Findings)
	registration, acceptable := false, false
	var activeEntries []*entry
	for _, en := range inc.data.Findings {
		nf := notify.Finding{Finding: en.Finding, Since: en.Since}
		if c, ok := finding.Lookup(en.Finding.ID); ok {
			nf.Title = c.Title
		}
		switch {
		case en.active() && !en.Announced && k != notify.KindOpen && k != notify.KindDetail:
			nf.State = notify.StateNew
		case en.active():
			nf.State = notify.StateOngoing
		default:
			nf.State, nf.ClearedAt = notify.StateCleared, en.ClearedAt
			// Cleared findings are told when they clear and in the
			// resolution; the page and the evidence show what is open.
			if k == notify.KindOpen || k == notify.KindDetail || k == notify.KindUpdate || k == notify.KindRepeat ||
				(en.ClearReported && k == notify.KindCleared) {
				continue
			}
		}
		if en.active() {
			activeEntries = append(activeEntries, en)
			registration = registration || en.Class == "registration"
			acceptable = acceptable || pol.Acceptable(en.Finding)
			// Where it was seen from (a cluster's vantage points): the page
			// says who saw the problem, and who did not.
			m.SeenFrom = addAll(m.SeenFrom, en.Finding.SeenFrom)
			m.NotSeenFrom = addAll(m.NotSeenFrom, en.Finding.NotSeenFrom)
		}
		m.Findings = append(m.Findings, nf)
	}
	m.NotSeenFrom = slices.DeleteFunc(m.NotSeenFrom, func(v string) bool { return slices.Contains(m.SeenFrom, v) })
	m.Severity = worst(activeEntries)
	if m.Severity == finding.OK {
		m.Severity = inc.data.Peak
	}
	if k == notify.KindOpen || k == notify.KindDetail {
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
