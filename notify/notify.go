// Package notify is nsguard's message model and its receivers' contract: a
// Message says what happened to which domain, what was approved and what is
// there now, since when, and what to do (the failover playbook, the accept
// command, the contact sheet). Receivers (notify/slack, notify/webhook)
// deliver one Message and say whether a failure is worth retrying; the
// outbox decides when.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

// Kind is what a message is about.
type Kind string

const (
	// KindOpen pages: a new incident, a top-level message that starts its
	// thread. Short: what, where, since when, what to do.
	KindOpen Kind = "open"
	// KindDetail is the page's first reply: every finding with its
	// evidence, server by server, and the contact sheet.
	KindDetail Kind = "detail"
	// KindUpdate: findings that joined an open incident.
	KindUpdate Kind = "update"
	// KindCleared: some of the incident's findings cleared, others remain.
	KindCleared Kind = "cleared"
	// KindRepeat: the incident is still open, unacknowledged, after
	// repeat_interval.
	KindRepeat Kind = "repeat"
	// KindAck: someone acknowledged the incident.
	KindAck Kind = "ack"
	// KindResolved: every finding of the incident cleared.
	KindResolved Kind = "resolved"
	// KindClosed: the incident ended without resolving (its domain was
	// removed from the inventory).
	KindClosed Kind = "closed"
	// KindRootUpdate rewrites the thread's first message in place
	// (chat.update) to show the incident's state: acknowledged, resolved.
	// Receivers that cannot edit skip it.
	KindRootUpdate Kind = "root_update"
	// KindFailover: a failover run's progress.
	KindFailover Kind = "failover"
	// KindDigest: a periodic summary (audit).
	KindDigest Kind = "digest"
	// KindInfo: anything else worth saying once.
	KindInfo Kind = "info"
)

// FindingState is where a finding stands within its incident.
type FindingState string

const (
	// StateNew: first announced in this message.
	StateNew FindingState = "new"
	// StateOngoing: announced before, still present.
	StateOngoing FindingState = "ongoing"
	// StateCleared: no longer observed.
	StateCleared FindingState = "cleared"
)

// Finding is a finding as a message shows it.
type Finding struct {
	finding.Finding
	// Title is the catalogue's title for ID ("" when unregistered).
	Title string       `json:"title,omitempty"`
	State FindingState `json:"state,omitempty"`
	// Since is when the finding was first observed (not confirmed).
	Since time.Time `json:"since"`
	// ClearedAt is set for StateCleared.
	ClearedAt time.Time `json:"cleared_at,omitzero"`
}

// Message is one notification. It is stored in the outbox as JSON, so the
// fields are the wire format between nsguard versions: add, don't rename.
type Message struct {
	Kind     Kind             `json:"kind"`
	Domain   string           `json:"domain,omitempty"`
	Severity finding.Severity `json:"severity"`
	Title    string           `json:"title"`
	// Text is free text (failover progress, digests, notes such as "was
	// silenced until …"), rendered as Slack mrkdwn after escaping.
	Text     string    `json:"text,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	// Since is when the incident opened.
	Since time.Time `json:"since,omitzero"`
	// At is when the message was created.
	At time.Time `json:"at"`
	// IncidentID is the store's incident ID (0 for other kinds).
	IncidentID int64 `json:"incident_id,omitempty"`
	// Playbooks are failover playbooks whose primary is Domain.
	Playbooks []string `json:"playbooks,omitempty"`
	// AcceptCommand accepts a planned change as the new baseline.
	AcceptCommand string `json:"accept_command,omitempty"`
	// ContactSheet is Markdown: who to call about the registration.
	ContactSheet string `json:"contact_sheet,omitempty"`
	// ThreadKey groups messages into one thread; the first message with a
	// key starts it. Empty: a standalone message.
	ThreadKey string `json:"thread_key,omitempty"`
	// Channel is where a thread's first message goes (later ones follow
	// the thread). Empty means the receiver's default.
	Channel string `json:"channel,omitempty"`
	// Broadcast also shows a thread reply in the channel.
	Broadcast bool `json:"broadcast,omitempty"`

	// State is the incident's state when the message was made: "open",
	// "acknowledged", "resolved", "closed" (root updates show it).
	State string `json:"state,omitempty"`
	// AckedBy, AckReason and AckedAt say who took the incident.
	AckedBy   string    `json:"acked_by,omitempty"`
	AckReason string    `json:"ack_reason,omitempty"`
	AckedAt   time.Time `json:"acked_at,omitzero"`
	// EndedAt is when the incident resolved or closed.
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Related are the domain's other open incidents (an escalation links
	// the older thread).
	Related []Related `json:"related,omitempty"`
	// SeenFrom and NotSeenFrom name the vantage points that did and did
	// not see the problem (clusters; empty on a single node).
	SeenFrom    []string `json:"seen_from,omitempty"`
	NotSeenFrom []string `json:"not_seen_from,omitempty"`

	// OutboxID is the message's outbox row, set by the sender at delivery
	// (not stored in the payload). Receivers that can tag what they post
	// with it do, so a later sender can find it.
	OutboxID int64 `json:"-"`
	// MaybeSent: a sender that died may have delivered this message
	// already; a receiver that can look first does, and does not send it
	// twice.
	MaybeSent bool `json:"-"`
}

// Related is another incident a message points to.
type Related struct {
	IncidentID int64            `json:"incident_id"`
	Severity   finding.Severity `json:"severity"`
	Title      string           `json:"title"`
	// ThreadKey finds the incident's thread; a receiver that can link to
	// it does.
	ThreadKey string `json:"thread_key,omitempty"`
	Acked     bool   `json:"acked,omitempty"`
	// URL links to the incident's thread; receivers that can make one
	// (Slack's chat.getPermalink) set it just before rendering.
	URL string `json:"url,omitempty"`
}

// IsIncident reports whether the message is about an incident (as opposed
// to a failover run, a digest or a note).
func (m *Message) IsIncident() bool {
	switch m.Kind {
	case KindOpen, KindDetail, KindUpdate, KindCleared, KindRepeat, KindAck, KindResolved, KindClosed, KindRootUpdate:
		return true
	}
	return false
}

// Marshal encodes the message for the outbox.
func (m *Message) Marshal() (json.RawMessage, error) { return json.Marshal(m) }

// Unmarshal decodes an outbox payload.
func Unmarshal(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	return &m, nil
}

// PlanCommand is how a message tells someone to start a failover: read
// the plan first (it prints the checksum the run needs), as the runbook
// says.
func PlanCommand(name string) string { return "nsguard failover plan " + name }

// AckCommand is how a message tells someone to take the incident.
func AckCommand(id int64) string {
	return fmt.Sprintf("nsguard incident ack %d --by NAME --reason \"…\"", id)
}

// ShowCommand prints an incident with all its evidence.
func ShowCommand(id int64) string { return fmt.Sprintf("nsguard incident show %d", id) }

// AcceptCommand is how a message tells someone to accept a planned change.
func AcceptCommand(domain string) string {
	return fmt.Sprintf("nsguard baseline approve %s --reason \"…\"", domain)
}

// Receiver delivers messages, Alertmanager style: retry says whether the
// same message may succeed later (rate limits, 5xx, network); a false
// retry with an error dead-letters it.
type Receiver interface {
	Name() string
	Notify(ctx context.Context, msg *Message) (retry bool, err error)
}

// Error is a delivery failure whose text is safe to log and store: the
// receiver removed tokens and webhook URLs before building it.
type Error struct {
	Receiver string
	// Reason is short and stable: "channel_not_found", "http 503",
	// "rate limited", "network".
	Reason string
	// Retry mirrors Notify's retry result.
	Retry bool
	// RetryAfter is the server's requested wait (HTTP 429 Retry-After).
	RetryAfter time.Duration
	// Detail adds context (already redacted).
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Receiver)
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Detail != "" && e.Detail != e.Reason {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// RetryAfter returns the wait a receiver's error asks for (0 if none).
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Redact replaces every secret in s with "[redacted]". Receivers pass the
// texts of third-party errors through it: slack-go's webhook errors, for
// one, embed the webhook URL, which is itself the credential.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// Route picks the channel for a severity: alerts.slack.channels[severity],
// else alerts.slack.channel, else the channel of the nearest higher
// severity (config allows a critical channel alone).
func Route(s config.Slack, sev finding.Severity) string {
	if c := s.Channels[sev.String()]; c != "" {
		return c
	}
	if s.Channel != "" {
		return s.Channel
	}
	for up := sev + 1; up <= finding.Critical; up++ {
		if c := s.Channels[up.String()]; c != "" {
			return c
		}
	}
	return ""
}

// LogReceiver "delivers" to the log: the receiver when no Slack is
// configured, so incidents still leave a trace and the outbox drains.
type LogReceiver struct{ Logger *slog.Logger }

// Name implements Receiver.
func (LogReceiver) Name() string { return "log" }

// Notify implements Receiver.
func (r LogReceiver) Notify(_ context.Context, m *Message) (bool, error) {
	l := r.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Info("alert", "kind", m.Kind, "domain", m.Domain, "severity", m.Severity.String(), "title", m.Title,
		"findings", len(m.Findings), "thread", m.ThreadKey)
	return false, nil
}

// ParseRetryAfter reads an HTTP Retry-After value, delta-seconds or an
// HTTP-date (RFC 9110 10.2.3); 0 when absent or unreadable. Capped at an
// hour so a broken proxy cannot park the outbox for days.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 3600 {
			n = 3600
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, time.Hour)
}
