// Package store is nsguard's persistence: observations, approved baselines,
// change history, incident state, the alert outbox, Slack threads, silences
// and the failover audit trail, behind one interface. The SQLite backend
// (Open) keeps everything in one file; the PostgreSQL backend (OpenPostgres)
// lets several replicas share one database. Both run the same portable
// queries through database/sql; OpenConfig opens whichever the config names.
//
// Payloads that belong to other packages (observations, baselines, changes,
// outbox messages) are opaque JSON here, so the store imports nothing of
// nsguard and every package can depend on it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule was broken (a second open incident for
	// a domain, a step recorded twice).
	ErrConflict = errors.New("conflict")
	// ErrLocked: the failover lock is held by someone else.
	ErrLocked = errors.New("locked")
	// ErrClaimLost: an outbox message is no longer claimed by the caller
	// (its claim lapsed and another sender took it over).
	ErrClaimLost = errors.New("outbox claim lost")
	// ErrBusy: another writer held the database longer than the busy
	// timeout, or the database aborted the transaction to resolve a
	// conflict (a deadlock); nothing was written, and trying again later
	// is safe.
	ErrBusy = errors.New("database busy")
	// ErrFenced: a write of the leader's was refused because this process
	// no longer leads (the lease row names another epoch), or never did:
	// another replica took over, and what this one meant to write is its
	// to decide now. See Fenced.
	ErrFenced = errors.New("fenced off: another replica leads now")
)

// Observation is the latest result of one check class for one domain, as
// one vantage point saw it.
type Observation struct {
	Domain string
	// Class is the observation's check class as the scheduler names it
	// ("dns", "registration", "audit").
	Class string
	// Vantage names the replica or probe that observed (cluster.vantage);
	// "" on a single node.
	Vantage    string
	ObservedAt time.Time
	// ChangedAt is when Data last differed from the previous observation
	// (set by the store).
	ChangedAt time.Time
	Data      json.RawMessage
	// Report is the vantage's verdict in short (its findings, or why it
	// could not check), for the leader to judge without decoding Data;
	// opaque JSON here, empty when none was written.
	Report json.RawMessage
}

// Recheck is the leader's request that every vantage check a domain
// again at DueAt (a finding not confirmed yet, or vantages that disagree).
type Recheck struct {
	Domain string
	Class  string
	DueAt  time.Time
}

// LeaderLease is the leadership row: who leads, at which epoch (the
// fencing token, bumped on every takeover) and until when, unless renewed.
// Times are the database's clock.
type LeaderLease struct {
	Holder     string
	Epoch      int64
	AcquiredAt time.Time
	RenewedAt  time.Time
	ExpiresAt  time.Time
	// Now is the database's clock when the row was read (zero when read
	// through Queries.LeaderLease, which uses no database clock).
	Now time.Time
}

// Expired reports whether the lease has lapsed at the database's time
// (or at now, when the row carries none).
func (l LeaderLease) Expired(now time.Time) bool {
	if !l.Now.IsZero() {
		now = l.Now
	}
	return !now.Before(l.ExpiresAt)
}

// Baseline is one approved version of a domain's state.
type Baseline struct {
	Domain     string
	Version    int
	Data       json.RawMessage
	ApprovedBy string
	ApprovedAt time.Time
	Reason     string
}

// Change is one recorded difference from the approved baseline.
type Change struct {
	ID              int64
	Domain          string
	Class           string
	DetectedAt      time.Time
	BaselineVersion int
	Data            json.RawMessage
}

// FindingState counts how many consecutive observations of its class have
// contained a finding: the incident engine's confirmation counter.
type FindingState struct {
	Domain   string
	Class    string
	Key      string
	Severity string
	Streak   int
	// Absent counts consecutive observations without the finding; such a
	// row is kept (with Streak 0) only while the finding belongs to an open
	// incident, which resolves when Absent reaches the confirmations.
	Absent    int
	FirstSeen time.Time
	LastSeen  time.Time
	// Data is the latest finding, as JSON.
	Data json.RawMessage
}

// Incident statuses.
const (
	IncidentOpen     = "open"
	IncidentResolved = "resolved"
	// IncidentClosed: ended without resolving (the domain was removed from
	// the inventory).
	IncidentClosed = "closed"
)

// Incident is one problem on one domain: the findings confirmed together,
// open until they have all cleared. A domain may have several.
type Incident struct {
	ID     int64
	Domain string
	Status string
	// Severity is the worst severity among the incident's findings still
	// present (the last one, once resolved).
	Severity string
	// Title is a one-line summary for lists and pages.
	Title string
	// ThreadKey names the Slack thread the incident's messages go to.
	ThreadKey string
	Channel   string
	OpenedAt  time.Time
	UpdatedAt time.Time
	// ResolvedAt, PagedAt and LastNotifiedAt are zero until they happen.
	ResolvedAt     time.Time
	PagedAt        time.Time
	LastNotifiedAt time.Time
	Notifications  int
	// AckedAt is when someone acknowledged the incident (zero if nobody
	// has): it stops repeating, and still resolves.
	AckedAt   time.Time
	AckedBy   string
	AckReason string
	// Data is the incident engine's own state (the findings it includes).
	Data json.RawMessage
}

// Acked reports whether someone acknowledged the incident.
func (i Incident) Acked() bool { return !i.AckedAt.IsZero() }

// IncidentFilter selects incidents; zero fields select everything.
type IncidentFilter struct {
	Domain string
	Status string
	Limit  int
}

// IncidentCount is how many open incidents have a severity and ack state.
type IncidentCount struct {
	Severity string
	Acked    bool
	N        int
}

// OutboxMessage is one notification waiting for (or past) delivery.
type OutboxMessage struct {
	ID        int64
	CreatedAt time.Time
	Kind      string
	Channel   string
	// ThreadKey orders delivery: messages with the same key are delivered
	// strictly in ID order. Empty means "no ordering constraint".
	ThreadKey string
	Payload   json.RawMessage
	// IncidentID is the incident the message is about (0 for none).
	IncidentID    int64
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   time.Time
	DeadAt        time.Time
	LastError     string
	// ClaimOwner is the sender that claimed the message ("" when none);
	// the claim lapses at ClaimUntil. ClaimEpoch is the leader's fencing
	// token at claim time.
	ClaimOwner string
	ClaimUntil time.Time
	ClaimEpoch int64
	// TakenOverFrom is set by ClaimDue when the message was claimed by
	// another sender whose claim lapsed: that sender may have sent it
	// before it died, so the new one should look before sending again.
	TakenOverFrom string
}

// Claim asks for the messages due at Now that are first in line for their
// thread, claimed for Owner until Until: any number of senders can share
// one outbox and each message is sent by one of them.
type Claim struct {
	Owner string
	Epoch int64
	Now   time.Time
	Until time.Time
	Limit int
}

// OutboxStats summarises the outbox for metrics and the Run loop.
type OutboxStats struct {
	Pending int
	Dead    int
	// OldestPending is the creation time of the oldest pending message.
	OldestPending time.Time
	// NextAttempt is the earliest next_attempt_at among pending messages.
	NextAttempt time.Time
}

// SlackThread remembers where a thread key's first message landed.
type SlackThread struct {
	Key       string
	Channel   string
	TS        string
	CreatedAt time.Time
}

// Silence suppresses pages for one domain, or every domain ("*").
type Silence struct {
	ID        int64
	Domain    string
	CreatedBy string
	Reason    string
	CreatedAt time.Time
	StartsAt  time.Time
	EndsAt    time.Time
	// ExpiredAt is set when someone ended the silence early.
	ExpiredAt time.Time
}

// AllDomains is the silence domain that matches every domain.
const AllDomains = "*"

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool {
	return s.ExpiredAt.IsZero() && !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// End is when the silence stops being in force.
func (s Silence) End() time.Time {
	if !s.ExpiredAt.IsZero() && s.ExpiredAt.Before(s.EndsAt) {
		return s.ExpiredAt
	}
	return s.EndsAt
}

// Matches reports whether the silence covers domain (canonical form).
func (s Silence) Matches(domain string) bool {
	return s.Domain == AllDomains || s.Domain == domain
}

// SilenceFilter selects silences; ActiveAt zero means "any time".
type SilenceFilter struct {
	ActiveAt time.Time
	Domain   string
}

// FailoverRun is one playbook execution (or dry run), for the audit trail.
type FailoverRun struct {
	ID         int64
	Playbook   string
	StartedBy  string
	StartedAt  time.Time
	FinishedAt time.Time
	DryRun     bool
	Plan       json.RawMessage
	Checksum   string
	Status     string
	Error      string
}

// FailoverStep is one step of a run.
type FailoverStep struct {
	RunID      int64
	Index      int
	Name       string
	Kind       string
	Request    string
	Response   string
	Status     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// FailoverLock is the per-playbook lock row; a holder whose heartbeat is
// older than the stale age can be taken over.
type FailoverLock struct {
	Playbook    string
	Holder      string
	PID         int
	Host        string
	RunID       int64
	AcquiredAt  time.Time
	HeartbeatAt time.Time
}

// HeartbeatRow is one owner's latest heartbeat.
type HeartbeatRow struct {
	Owner string
	At    time.Time
	Info  string
}

// PruneResult counts what Prune removed.
type PruneResult struct {
	Outbox  int64
	History int64
}

// Queries is every read and write, usable on the store directly or inside
// a transaction (Store.InTx).
type Queries interface {
	// PutObservation stores obs as its vantage's latest for its domain and
	// class and appends it to the history when it differs from that
	// vantage's previous one.
	PutObservation(ctx context.Context, obs Observation) (changed bool, err error)
	// LatestObservation is the newest observation of domain and class from
	// any vantage (on a single node: the only one).
	LatestObservation(ctx context.Context, domain, class string) (Observation, error)
	// LatestObservations returns the newest observation of every domain for
	// class, from whichever vantage observed it last.
	LatestObservations(ctx context.Context, class string) ([]Observation, error)
	// VantageObservations returns the latest observation of domain from
	// each vantage that observed it at or after since, by vantage, with
	// Report but without Data: what the leader judges.
	VantageObservations(ctx context.Context, domain, class string, since time.Time) ([]Observation, error)
	// ObservationHistory returns distinct past observations, newest first
	// (every vantage's; Vantage says whose).
	ObservationHistory(ctx context.Context, domain, class string, limit int) ([]Observation, error)
	// PruneVantages deletes the latest observations of vantages that have
	// not reported since before (a replaced pod, a retired probe) and
	// recheck requests older than that; a single node's ('') stay.
	PruneVantages(ctx context.Context, before time.Time) (int64, error)

	// RequestRechecks asks every vantage to check domains of class again
	// at due (one row per domain, the latest request wins).
	RequestRechecks(ctx context.Context, class string, domains []string, due time.Time) error
	// Rechecks returns the requests of class due after after, soonest first.
	Rechecks(ctx context.Context, class string, after time.Time) ([]Recheck, error)
	// LastObserved is when any domain of class was last observed (zero
	// when never): a new leader asks whether a cycle is due.
	LastObserved(ctx context.Context, class string) (time.Time, error)
	// LeaderLease reads the leadership row (ErrNotFound before anyone led).
	LeaderLease(ctx context.Context) (LeaderLease, error)

	// ApproveBaseline stores b as the domain's next version and returns it
	// with Version set.
	ApproveBaseline(ctx context.Context, b Baseline) (Baseline, error)
	LatestBaseline(ctx context.Context, domain string) (Baseline, error)
	// LatestBaselines returns the latest version of every domain's baseline.
	LatestBaselines(ctx context.Context) ([]Baseline, error)
	// UnconfirmedDomains returns the domains holding a finding of class and
	// one of severities seen fewer than confirmations times in a row, or an
	// incident's finding of class absent fewer than confirmations times in a
	// row (a clear not yet confirmed): the domains worth a quick re-check.
	UnconfirmedDomains(ctx context.Context, class string, confirmations int, severities []string) ([]string, error)
	// Baselines returns every version of domain, newest first.
	Baselines(ctx context.Context, domain string) ([]Baseline, error)

	AddChange(ctx context.Context, c Change) (int64, error)
	// Changes returns domain's changes, newest first ("" = all domains).
	Changes(ctx context.Context, domain string, limit int) ([]Change, error)

	// DomainActive reports whether domain has finding states or an open incident.
	DomainActive(ctx context.Context, domain string) (bool, error)
	FindingStates(ctx context.Context, domain string) ([]FindingState, error)
	PutFindingState(ctx context.Context, s FindingState) error
	DeleteFindingState(ctx context.Context, domain, class, key string) error

	CreateIncident(ctx context.Context, inc Incident) (int64, error)
	UpdateIncident(ctx context.Context, inc Incident) error
	Incident(ctx context.Context, id int64) (Incident, error)
	// OpenIncidents returns domain's open incidents, oldest first ("" = every
	// domain's).
	OpenIncidents(ctx context.Context, domain string) ([]Incident, error)
	// Incidents returns matching incidents, newest first.
	Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error)
	CountOpenIncidents(ctx context.Context) (int, error)
	// OpenIncidentCounts counts open incidents by severity and ack state.
	OpenIncidentCounts(ctx context.Context) ([]IncidentCount, error)

	Enqueue(ctx context.Context, m OutboxMessage) (int64, error)
	// ClaimDue claims, oldest first, the pending messages due at c.Now that
	// are first in line for their thread key and not claimed by another
	// sender whose claim is still running, and returns them. Claiming is
	// one transaction, so two senders never hold the same message.
	ClaimDue(ctx context.Context, c Claim) ([]OutboxMessage, error)
	OutboxMessage(ctx context.Context, id int64) (OutboxMessage, error)
	// OutboxMessages returns messages in ID order (delivered and dead too).
	OutboxMessages(ctx context.Context, afterID int64, limit int) ([]OutboxMessage, error)
	// LastOutboxID is the highest message ID so far (0 when none): a
	// command notes it, then knows which messages it caused.
	LastOutboxID(ctx context.Context) (int64, error)
	// IncidentMessages returns an incident's messages in ID order.
	IncidentMessages(ctx context.Context, incidentID int64) ([]OutboxMessage, error)
	// MarkDelivered, MarkRetry and MarkDead record an attempt's outcome for
	// the message's claim owner and release the claim; ErrClaimLost when
	// owner no longer holds it.
	MarkDelivered(ctx context.Context, id int64, owner string, attempts int, at time.Time) error
	MarkRetry(ctx context.Context, id int64, owner string, attempts int, next time.Time, lastErr string) error
	MarkDead(ctx context.Context, id int64, owner string, attempts int, at time.Time, lastErr string) error
	// Requeue makes a dead message pending again, due at at.
	Requeue(ctx context.Context, id int64, at time.Time) error
	OutboxStats(ctx context.Context) (OutboxStats, error)

	SlackThread(ctx context.Context, key string) (SlackThread, error)
	PutSlackThread(ctx context.Context, t SlackThread) error

	AddSilence(ctx context.Context, s Silence) (int64, error)
	Silence(ctx context.Context, id int64) (Silence, error)
	// Silences returns matching silences, newest first.
	Silences(ctx context.Context, f SilenceFilter) ([]Silence, error)
	// ExpireSilence ends silence id at at; ErrNotFound if there is none,
	// and an error if it already ended.
	ExpireSilence(ctx context.Context, id int64, at time.Time) error

	CreateFailoverRun(ctx context.Context, r FailoverRun) (int64, error)
	UpdateFailoverRun(ctx context.Context, r FailoverRun) error
	FailoverRun(ctx context.Context, id int64) (FailoverRun, error)
	FailoverRuns(ctx context.Context, playbook string, limit int) ([]FailoverRun, error)
	PutFailoverStep(ctx context.Context, s FailoverStep) error
	FailoverSteps(ctx context.Context, runID int64) ([]FailoverStep, error)
	// AcquireFailoverLock takes the playbook's lock when it is free, held by
	// the same holder, or stale (heartbeat before staleBefore). It returns
	// the lock as it now stands; ErrLocked (with the holder's lock) when
	// someone else holds it.
	AcquireFailoverLock(ctx context.Context, l FailoverLock, staleBefore time.Time) (FailoverLock, error)
	HeartbeatFailoverLock(ctx context.Context, playbook, holder string, at time.Time) error
	ReleaseFailoverLock(ctx context.Context, playbook, holder string) error
	FailoverLock(ctx context.Context, playbook string) (FailoverLock, error)

	// Heartbeat records that owner is alive at at (info: free text such as
	// a version). It is a real write: its failure is how a daemon learns
	// the store cannot take writes.
	Heartbeat(ctx context.Context, owner string, at time.Time, info string) error
	// Heartbeats returns every owner's latest heartbeat.
	Heartbeats(ctx context.Context) ([]HeartbeatRow, error)

	// Prune deletes delivered outbox messages and observation history older
	// than before; latest observations, baselines and incidents stay.
	Prune(ctx context.Context, before time.Time) (PruneResult, error)
}

// Store is a Queries with transactions and a lifetime.
type Store interface {
	Queries
	// InTx runs fn in one read-write transaction: committed when fn returns
	// nil, rolled back otherwise. fn must use only the Queries it is given.
	// Writer transactions run one at a time, across processes too (SQLite:
	// BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so what fn reads
	// stays true until it commits, and fn runs exactly once. Waiting longer
	// than Options.BusyTimeout for another writer fails with ErrBusy.
	InTx(ctx context.Context, fn func(q Queries) error) error
	// SchemaVersion is the highest migration applied.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}
