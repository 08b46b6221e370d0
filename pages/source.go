package pages

import (
	"context"
	"errors"
	"time"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/registry"
)

// ErrNotFound is what a Source returns for a row that does not exist.
var ErrNotFound = errors.New("not found")

// Source is everything the pages read: the daemon's memory (the store),
// the running config, and what the daemon computes but does not store.
// StoreSource implements it over store.Store; it is the one file to adapt
// when the store or the incident model changes.
type Source interface {
	// Config is the running configuration: inventory, policy, playbooks.
	Config() *config.Config
	// Latest lists the latest observation of every domain for a check
	// class ("dns", "registration"); decoding is deferred (Observed.Snapshot)
	// so a caller that already holds the snapshot of the same ChangedAt
	// decodes nothing.
	Latest(ctx context.Context, class string) ([]Observed, error)
	// Observation is one domain's latest observation of a class.
	Observation(ctx context.Context, domain, class string) (Observed, error)
	// History lists a domain's distinct past observations of a class
	// since a time, newest first.
	History(ctx context.Context, domain, class string, since time.Time) ([]Observed, error)
	// Baselines lists a domain's approved versions, newest first.
	Baselines(ctx context.Context, domain string) ([]Baseline, error)
	// Changes lists a domain's recorded differences from its baseline
	// since a time, newest first.
	Changes(ctx context.Context, domain string, since time.Time) ([]Change, error)
	// Incidents lists incidents, newest first, without their findings.
	Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error)
	// Incident is one incident with its findings.
	Incident(ctx context.Context, id int64) (Incident, error)
	// Messages are the notifications sent (or waiting) about an incident,
	// oldest first.
	Messages(ctx context.Context, incidentID int64) ([]Message, error)
	// ThreadMessages are the notifications of one thread key (a failover
	// run's thread), oldest first.
	ThreadMessages(ctx context.Context, threadKey string) ([]Message, error)
	// Silences lists the silences in force at a time.
	Silences(ctx context.Context, at time.Time) ([]store.Silence, error)
	// FailoverRuns lists recorded runs with their plans and steps, newest
	// first; offset skips that many.
	FailoverRuns(ctx context.Context, limit, offset int) ([]failover.RunRecord, error)
	// Audit is the latest inventory audit, and whether it is the
	// scheduled one (false: computed from stored observations for the page).
	Audit(ctx context.Context) (*audit.Report, bool, error)
	// Contacts is a domain's emergency contact sheet.
	Contacts(ctx context.Context, domain string) (*registry.ContactSheet, error)
	// RTTs are the response times the latest DNS check measured for a
	// domain (the store keeps observations without them).
	RTTs(domain string) RTTs
	// Feed returns what the daemon observed since the last call, and
	// false when nothing reports observations (the overview then re-reads
	// the store in full each time it refreshes).
	Feed() (Feed, bool)
}

// classKey names one domain's observation of one class.
type classKey struct{ Domain, Class string }

// Feed is what the daemon observed since the pages last asked: when each
// domain was checked, and which observations changed.
type Feed struct {
	Seen  map[classKey]time.Time
	Dirty map[classKey]bool
}

// Observed is one stored observation of a domain.
type Observed struct {
	Domain     string
	Class      string
	ObservedAt time.Time
	// ChangedAt is when the stored data last differed.
	ChangedAt time.Time
	decode    func() (*checker.Snapshot, error)
}

// Snapshot decodes the observation.
func (o Observed) Snapshot() (*checker.Snapshot, error) {
	if o.decode == nil {
		return &checker.Snapshot{}, nil
	}
	return o.decode()
}

// Baseline is one approved version of a domain's state.
type Baseline struct {
	Version    int
	State      *baseline.State
	ApprovedBy string
	ApprovedAt time.Time
	Reason     string
}

// Change is one recorded difference from the approved baseline.
type Change struct {
	At              time.Time
	Class           string
	BaselineVersion int
	Findings        []finding.Finding
}

// Incident states.
const (
	StatusOpen     = store.IncidentOpen
	StatusResolved = store.IncidentResolved
	StatusClosed   = store.IncidentClosed
)

// IncidentFilter selects incidents; zero fields select everything.
type IncidentFilter struct {
	Domain string
	Status string
	Limit  int
	Offset int
}

// Incident is one incident as the pages show it.
type Incident struct {
	ID       int64
	Domain   string
	Status   string
	Severity finding.Severity
	// Title names the problem: its worst finding and how many more.
	Title      string
	Channel    string
	OpenedAt   time.Time
	UpdatedAt  time.Time
	ResolvedAt time.Time
	PagedAt    time.Time
	// Notifications counts the messages the incident caused.
	Notifications int
	// Ack is who acknowledged it, when and why (nil: not acknowledged).
	Ack *Ack
	// Findings are filled by Source.Incident only.
	Findings []IncidentFinding
}

// Open reports whether the incident is still open.
func (i Incident) Open() bool { return i.Status == StatusOpen }

// Ack is an acknowledgement: a person said "I have it".
type Ack struct {
	By     string
	Reason string
	At     time.Time
}

// IncidentFinding is one finding within an incident.
type IncidentFinding struct {
	finding.Finding
	Class       string
	Since       time.Time
	ConfirmedAt time.Time
	// ClearedAt is zero while the finding is present.
	ClearedAt time.Time
}

// Message is one notification from the outbox and how its delivery went.
type Message struct {
	ID          int64
	CreatedAt   time.Time
	Attempts    int
	NextAttempt time.Time
	DeliveredAt time.Time
	DeadAt      time.Time
	LastError   string
	Msg         *notify.Message
}

// RTTs are one domain's latest response times in milliseconds, keyed by
// RTTKey.
type RTTs map[string]float64

// RTTKey names one measurement: transport ("parent", "udp", "tcp"), the
// server's name and address.
func RTTKey(transport, name, addr string) string { return transport + " " + name + " " + addr }
