package pages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/registry"
)

// This file is the only one that knows how the store and the incident
// engine keep things: a change of schema or of the incident model is
// adapted here, and the pages follow.

// StoreSourceOptions wire a StoreSource.
type StoreSourceOptions struct {
	Store store.Store
	// Config returns the running config (it changes on SIGHUP).
	Config func() *config.Config
	// ContactSheet builds a domain's contact sheet; the daemon passes its
	// registry client's, which answers from the caches the registration
	// cycle filled. Nil: the page says there is none.
	ContactSheet func(ctx context.Context, domain string) (*registry.ContactSheet, error)
	// ComputeAudit analyses the inventory from the stored observations; it
	// stands in until the first scheduled audit has run. Nil: the page
	// says no audit has run yet.
	ComputeAudit func(ctx context.Context) (*audit.Report, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// StoreSource is the pages' Source over store.Store, plus what the daemon
// hands it as it goes: the response times of the latest DNS checks (the
// store keeps observations without them) and the latest scheduled audit.
type StoreSource struct {
	o StoreSourceOptions

	mu  sync.Mutex
	rtt map[string]RTTs
	// fed says the daemon reports its observations (Observed); seen and
	// dirty are what it reported since the pages last asked (Feed).
	fed   bool
	seen  map[classKey]time.Time
	dirty map[classKey]bool

	auditMu        sync.Mutex // one computation at a time
	report         *audit.Report
	reportSched    bool
	reportComputed time.Time

	idx messageIndex
}

// auditComputedTTL is how long a report computed for the page is reused.
const auditComputedTTL = 5 * time.Minute

// contactsTimeout bounds a contact sheet lookup: the registry client
// answers from its caches in steady state, and a page must not hang on a
// registry that does not answer.
const contactsTimeout = 2 * time.Second

// NewStoreSource builds a StoreSource.
func NewStoreSource(o StoreSourceOptions) *StoreSource {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &StoreSource{o: o, rtt: map[string]RTTs{}, seen: map[classKey]time.Time{}, dirty: map[classKey]bool{},
		idx: messageIndex{byIncident: map[int64][]int64{}, byThread: map[string][]int64{}}}
}

// Observed tells the pages the daemon stored an observation (changed: its
// data differ from the previous one), so the overview re-reads only what
// changed instead of every domain's observation. A DNS observation's
// response times are kept too: the store keeps observations without them.
// Nil-safe, so the daemon can call it with the pages turned off.
func (s *StoreSource) Observed(domain, class string, at time.Time, changed bool, dns *monitor.Observation) {
	if s == nil {
		return
	}
	if dns != nil {
		s.ObserveDNS(dns)
	}
	k := classKey{config.CanonicalName(domain), class}
	s.mu.Lock()
	s.fed = true
	s.seen[k] = at
	if changed {
		s.dirty[k] = true
	}
	s.mu.Unlock()
}

// Feed implements Source.
func (s *StoreSource) Feed() (Feed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fed {
		return Feed{}, false
	}
	f := Feed{Seen: s.seen, Dirty: s.dirty}
	s.seen, s.dirty = map[classKey]time.Time{}, map[classKey]bool{}
	return f, true
}

// ObserveDNS records the response times of a DNS check. Nil-safe, so the
// daemon can call it with the pages turned off.
func (s *StoreSource) ObserveDNS(o *monitor.Observation) {
	if s == nil || o == nil {
		return
	}
	r := make(RTTs, len(o.Parent.Servers)+2*len(o.Servers))
	for _, p := range o.Parent.Servers {
		if p.RTTMS > 0 {
			r[RTTKey("parent", p.Name, p.Addr)] = p.RTTMS
		}
	}
	for _, sv := range o.Servers {
		if sv.UDP.RTTMS > 0 {
			r[RTTKey("udp", sv.Name, sv.Addr)] = sv.UDP.RTTMS
		}
		if sv.TCP.RTTMS > 0 {
			r[RTTKey("tcp", sv.Name, sv.Addr)] = sv.TCP.RTTMS
		}
	}
	name := config.CanonicalName(o.Domain)
	s.mu.Lock()
	s.rtt[name] = r
	s.mu.Unlock()
}

// SetAudit records the latest scheduled audit. Nil-safe.
func (s *StoreSource) SetAudit(r *audit.Report) {
	if s == nil || r == nil {
		return
	}
	s.auditMu.Lock()
	s.report, s.reportSched = r, true
	s.auditMu.Unlock()
}

// Config implements Source.
func (s *StoreSource) Config() *config.Config { return s.o.Config() }

// RTTs implements Source.
func (s *StoreSource) RTTs(domain string) RTTs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rtt[domain]
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return err
}

func observed(o store.Observation) Observed {
	data := o.Data
	return Observed{Domain: o.Domain, Class: o.Class, ObservedAt: o.ObservedAt, ChangedAt: o.ChangedAt,
		decode: func() (*checker.Snapshot, error) {
			var sn checker.Snapshot
			if err := json.Unmarshal(data, &sn); err != nil {
				return nil, fmt.Errorf("decoding the %s observation of %s: %w", o.Class, o.Domain, err)
			}
			return &sn, nil
		}}
}

// Latest implements Source.
func (s *StoreSource) Latest(ctx context.Context, class string) ([]Observed, error) {
	obs, err := s.o.Store.LatestObservations(ctx, class)
	if err != nil {
		return nil, err
	}
	out := make([]Observed, len(obs))
	for i, o := range obs {
		out[i] = observed(o)
	}
	return out, nil
}

// Observation implements Source.
func (s *StoreSource) Observation(ctx context.Context, domain, class string) (Observed, error) {
	o, err := s.o.Store.LatestObservation(ctx, domain, class)
	if err != nil {
		return Observed{}, notFound(err)
	}
	return observed(o), nil
}

// historyLimit bounds the observations a timeline reads per class.
const historyLimit = 200

// History implements Source.
func (s *StoreSource) History(ctx context.Context, domain, class string, since time.Time) ([]Observed, error) {
	obs, err := s.o.Store.ObservationHistory(ctx, domain, class, historyLimit)
	if err != nil {
		return nil, err
	}
	var out []Observed
	for _, o := range obs {
		if o.ObservedAt.Before(since) {
			break
		}
		o.ChangedAt = o.ObservedAt
		out = append(out, observed(o))
	}
	return out, nil
}

// Baselines implements Source.
func (s *StoreSource) Baselines(ctx context.Context, domain string) ([]Baseline, error) {
	bs, err := s.o.Store.Baselines(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := make([]Baseline, 0, len(bs))
	for _, b := range bs {
		st, err := baseline.Unmarshal(b.Data)
		if err != nil {
			return nil, fmt.Errorf("decoding baseline %d of %s: %w", b.Version, domain, err)
		}
		out = append(out, Baseline{Version: b.Version, State: st, ApprovedBy: b.ApprovedBy, ApprovedAt: b.ApprovedAt, Reason: b.Reason})
	}
	return out, nil
}

// Changes implements Source.
func (s *StoreSource) Changes(ctx context.Context, domain string, since time.Time) ([]Change, error) {
	cs, err := s.o.Store.Changes(ctx, domain, historyLimit)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, c := range cs {
		if c.DetectedAt.Before(since) {
			break
		}
		ch := Change{At: c.DetectedAt, Class: c.Class, BaselineVersion: c.BaselineVersion}
		_ = json.Unmarshal(c.Data, &ch.Findings) // written by the daemon; a bad row shows no findings
		out = append(out, ch)
	}
	return out, nil
}

func incidentOf(i store.Incident, withFindings bool) Incident {
	sev, _ := finding.ParseSeverity(i.Severity)
	out := Incident{ID: i.ID, Domain: i.Domain, Status: i.Status, Severity: sev, Title: i.Title, Channel: i.Channel,
		OpenedAt: i.OpenedAt, UpdatedAt: i.UpdatedAt, ResolvedAt: i.ResolvedAt, PagedAt: i.PagedAt, Notifications: i.Notifications}
	if i.Acked() {
		out.Ack = &Ack{By: i.AckedBy, Reason: i.AckReason, At: i.AckedAt}
	}
	if withFindings {
		// The engine's own view: a bad row shows no findings rather than
		// no incident.
		if v, err := incident.ViewOf(i); err == nil {
			for _, f := range v.Findings {
				out.Findings = append(out.Findings, IncidentFinding{Finding: f.Finding, Class: f.Class, Since: f.Since, ConfirmedAt: f.ConfirmedAt, ClearedAt: f.ClearedAt})
			}
		}
	}
	return out
}

// Incidents implements Source.
func (s *StoreSource) Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	limit := f.Limit
	if limit > 0 {
		limit += f.Offset
	}
	is, err := s.o.Store.Incidents(ctx, store.IncidentFilter{Domain: f.Domain, Status: f.Status, Limit: limit})
	if err != nil {
		return nil, err
	}
	if f.Offset >= len(is) {
		return nil, nil
	}
	is = is[f.Offset:]
	out := make([]Incident, len(is))
	for i, inc := range is {
		out[i] = incidentOf(inc, false)
	}
	return out, nil
}

// Incident implements Source.
func (s *StoreSource) Incident(ctx context.Context, id int64) (Incident, error) {
	i, err := s.o.Store.Incident(ctx, id)
	if err != nil {
		return Incident{}, notFound(err)
	}
	return incidentOf(i, true), nil
}

// Silences implements Source.
func (s *StoreSource) Silences(ctx context.Context, at time.Time) ([]store.Silence, error) {
	return s.o.Store.Silences(ctx, store.SilenceFilter{ActiveAt: at})
}

// FailoverRuns implements Source: each run as failover.Status reads it
// back (plan, steps, and the lock while the run holds it).
func (s *StoreSource) FailoverRuns(ctx context.Context, limit, offset int) ([]failover.RunRecord, error) {
	runs, err := s.o.Store.FailoverRuns(ctx, "", limit+offset)
	if err != nil {
		return nil, err
	}
	if offset >= len(runs) {
		return nil, nil
	}
	var out []failover.RunRecord
	for _, run := range runs[offset:] {
		rec := failover.RunRecord{Run: run}
		var p failover.Plan
		if err := json.Unmarshal(run.Plan, &p); err == nil && p.Playbook != "" {
			rec.Plan = &p
		}
		if rec.Steps, err = s.o.Store.FailoverSteps(ctx, run.ID); err != nil {
			return nil, err
		}
		if l, err := s.o.Store.FailoverLock(ctx, run.Playbook); err == nil && l.RunID == run.ID {
			rec.Lock = &l
		}
		out = append(out, rec)
	}
	return out, nil
}

// Audit implements Source.
func (s *StoreSource) Audit(ctx context.Context) (*audit.Report, bool, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	if s.report != nil && (s.reportSched || s.o.Now().Sub(s.reportComputed) < auditComputedTTL) {
		return s.report, s.reportSched, nil
	}
	if s.o.ComputeAudit == nil {
		return nil, false, nil
	}
	r, err := s.o.ComputeAudit(ctx)
	if err != nil {
		return nil, false, err
	}
	s.report, s.reportSched, s.reportComputed = r, false, s.o.Now()
	return r, false, nil
}

// Contacts implements Source.
func (s *StoreSource) Contacts(ctx context.Context, domain string) (*registry.ContactSheet, error) {
	if s.o.ContactSheet == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, contactsTimeout)
	defer cancel()
	return s.o.ContactSheet(ctx, domain)
}

// messageIndex maps incidents and thread keys to outbox message IDs. The
// store can list the outbox only in ID order; the index reads each new
// message once and keeps only IDs, so a page reads just its own messages.
type messageIndex struct {
	mu         sync.Mutex
	after      int64
	byIncident map[int64][]int64
	byThread   map[string][]int64
}

const indexBatch = 1000

func (s *StoreSource) refreshIndex(ctx context.Context) error {
	x := &s.idx
	for {
		rows, err := s.o.Store.OutboxMessages(ctx, x.after, indexBatch)
		if err != nil {
			return err
		}
		for _, r := range rows {
			x.after = r.ID
			if r.ThreadKey != "" {
				x.byThread[r.ThreadKey] = append(x.byThread[r.ThreadKey], r.ID)
			}
			var m struct {
				IncidentID int64 `json:"incident_id"`
			}
			_ = json.Unmarshal(r.Payload, &m)
			if m.IncidentID == 0 {
				m.IncidentID = incidentOfThread(r.ThreadKey)
			}
			if m.IncidentID != 0 {
				x.byIncident[m.IncidentID] = append(x.byIncident[m.IncidentID], r.ID)
			}
		}
		if len(rows) < indexBatch {
			return nil
		}
	}
}

// incidentOfThread reads the incident engine's thread keys,
// "incident:ID" and "incident:ID/GENERATION".
func incidentOfThread(key string) int64 {
	rest, ok := strings.CutPrefix(key, "incident:")
	if !ok {
		return 0
	}
	rest, _, _ = strings.Cut(rest, "/")
	id, _ := strconv.ParseInt(rest, 10, 64)
	return id
}

func (s *StoreSource) messages(ctx context.Context, pick func(*messageIndex) []int64) ([]Message, error) {
	s.idx.mu.Lock()
	err := s.refreshIndex(ctx)
	ids := append([]int64(nil), pick(&s.idx)...)
	s.idx.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(ids))
	for _, id := range ids {
		r, err := s.o.Store.OutboxMessage(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // pruned
		}
		if err != nil {
			return nil, err
		}
		out = append(out, messageOf(r))
	}
	return out, nil
}

func messageOf(r store.OutboxMessage) Message {
	m, err := notify.Unmarshal(r.Payload)
	if err != nil {
		m = &notify.Message{Kind: notify.Kind(r.Kind), Title: "(this message could not be read: " + err.Error() + ")"}
	}
	return Message{ID: r.ID, CreatedAt: r.CreatedAt, Attempts: r.Attempts, NextAttempt: r.NextAttemptAt,
		DeliveredAt: r.DeliveredAt, DeadAt: r.DeadAt, LastError: r.LastError, Msg: m}
}

// Messages implements Source: the store files messages under their
// incident; the index adds those an older nsguard sent before it did.
func (s *StoreSource) Messages(ctx context.Context, incidentID int64) ([]Message, error) {
	rows, err := s.o.Store.IncidentMessages(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return s.messages(ctx, func(x *messageIndex) []int64 { return x.byIncident[incidentID] })
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		out = append(out, messageOf(r))
	}
	return out, nil
}

// ThreadMessages implements Source.
func (s *StoreSource) ThreadMessages(ctx context.Context, threadKey string) ([]Message, error) {
	return s.messages(ctx, func(x *messageIndex) []int64 { return x.byThread[threadKey] })
}
