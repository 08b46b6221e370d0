package failover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/resolver"
)

// Modes of a run.
const (
	ModeFailover = "failover"
	ModeRollback = "rollback"
)

// Actions in a plan: DNSControl's vocabulary. REPORT is a step that
// changes no record (a webhook, a verification, a wait, a message) or a
// record that is already as the step wants it.
const (
	ActionCreate = "CREATE"
	ActionChange = "CHANGE"
	ActionDelete = "DELETE"
	ActionReport = "REPORT"
)

// Plan is what a run will do, read from the servers now: every step, the
// exact records before and after, and the safety rules' verdicts.
type Plan struct {
	Playbook    string `json:"playbook"`
	Primary     string `json:"primary"`
	Backup      string `json:"backup"`
	Description string `json:"description,omitempty"`
	// Mode is "failover" (the playbook's steps) or "rollback" (its
	// rollback steps, undoing run RollbackOf).
	Mode       string       `json:"mode"`
	RollbackOf int64        `json:"rollback_of,omitempty"`
	Steps      []StepPlan   `json:"steps"`
	Safety     []SafetyRule `json:"safety"`
	// Force says --force overrides the refusing rules (their status is
	// "overridden").
	Force bool `json:"force,omitempty"`
	// Checksum is sha256 over the canonical plan: the playbook, the mode,
	// each step's configuration and the records before → after. It
	// leaves out the time, the safety verdicts and what verify steps see
	// now, so the same intended change has the same checksum.
	Checksum string    `json:"checksum"`
	ReadAt   time.Time `json:"read_at"`
	// Warnings are things worth knowing that refuse nothing.
	Warnings []string `json:"warnings,omitempty"`
}

// StepPlan is one step of a plan.
type StepPlan struct {
	// Index is 1-based, as steps are shown and recorded.
	Index int    `json:"index"`
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	// Action is REPORT for steps that change no record, else CHANGE.
	Action  string `json:"action"`
	Summary string `json:"summary"`
	// Changes are a dns_update step's RRsets, before → after.
	Changes []Change `json:"changes,omitempty"`
	// NoOp says the step has nothing to change (a dns_update whose
	// records are all in place already).
	NoOp bool `json:"no_op,omitempty"`
	// Notes are details read now (what a verify step's servers answer).
	Notes []string `json:"notes,omitempty"`

	step   config.Step
	update *updatePlan
	verify *verifyPlan
	hook   *webhookPlan
	note   *notifyPlan
}

// Change is one RRset a dns_update step changes.
type Change struct {
	Action string   `json:"action"`
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Before []string `json:"before,omitempty"`
	After  []string `json:"after,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// Refusals are the safety rules that refuse (or, forced, were overridden).
func (p *Plan) Refusals() []SafetyRule {
	var out []SafetyRule
	for _, r := range p.Safety {
		if r.Status == SafetyRefuse || r.Status == SafetyOverridden {
			out = append(out, r)
		}
	}
	return out
}

// Refused reports whether the run would be refused.
func (p *Plan) Refused() bool {
	for _, r := range p.Safety {
		if r.Status == SafetyRefuse {
			return true
		}
	}
	return false
}

// ShortChecksum is the checksum's first 12 hex digits, enough to pass
// to --plan-checksum.
func (p *Plan) ShortChecksum() string {
	if len(p.Checksum) < 12 {
		return p.Checksum
	}
	return p.Checksum[:12]
}

// MinChecksumPrefix is the shortest --plan-checksum accepted.
const MinChecksumPrefix = 12

// Matches reports whether sum (the full checksum or a prefix of at least
// MinChecksumPrefix hex digits, "sha256:" allowed) names this plan.
func (p *Plan) Matches(sum string) bool {
	sum = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(sum), "sha256:"))
	return len(sum) >= MinChecksumPrefix && strings.HasPrefix(p.Checksum, sum)
}

// checksum hashes the canonical plan.
func (p *Plan) checksum() string {
	type step struct {
		Index   int             `json:"i"`
		Kind    string          `json:"k"`
		Name    string          `json:"n"`
		Config  json.RawMessage `json:"c"`
		Changes []Change        `json:"x,omitempty"`
	}
	type canon struct {
		V          int    `json:"v"`
		Playbook   string `json:"p"`
		Primary    string `json:"a"`
		Backup     string `json:"b"`
		Mode       string `json:"m"`
		RollbackOf int64  `json:"r"`
		Steps      []step `json:"s"`
	}
	c := canon{V: 1, Playbook: p.Playbook, Primary: p.Primary, Backup: p.Backup, Mode: p.Mode, RollbackOf: p.RollbackOf}
	for _, s := range p.Steps {
		cfg, _ := json.Marshal(s.step)
		var changes []Change
		for _, ch := range s.Changes {
			changes = append(changes, Change{Action: ch.Action, Name: ch.Name, Type: ch.Type, Before: ch.Before, After: ch.After})
		}
		c.Steps = append(c.Steps, step{Index: s.Index, Kind: s.Kind, Name: s.Name, Config: cfg, Changes: changes})
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// rrsetKey names one RRset of one zone on one server.
type rrsetKey struct {
	server string
	name   string
	rtype  uint16
}

// planner builds a plan: it reads records once and projects the effect of
// earlier steps, so a later step that touches the same RRset is planned
// against the state the earlier one leaves.
type planner struct {
	e         *Engine
	pb        config.Playbook
	cycle     *resolver.Cycle
	projected map[rrsetKey][]dns.RR
	// zones are the dns_update zones of the playbook, for verify steps.
	zones []string
}

// Plan reads the records the playbook's steps change and evaluates the
// safety rules now. force marks refusing rules as overridden.
func (e *Engine) Plan(ctx context.Context, name string, force bool) (*Plan, error) {
	pb, err := e.playbook(name)
	if err != nil {
		return nil, err
	}
	p, err := e.buildPlan(ctx, pb, ModeFailover, 0)
	if err != nil {
		return nil, err
	}
	e.applySafety(ctx, p, pb, force)
	return p, nil
}

// PlanRollback plans the rollback of run id.
func (e *Engine) PlanRollback(ctx context.Context, id int64, force bool) (*Plan, error) {
	pb, err := e.rollbackTarget(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := e.buildPlan(ctx, pb, ModeRollback, id)
	if err != nil {
		return nil, err
	}
	e.applySafety(ctx, p, pb, force)
	return p, nil
}

func (e *Engine) buildPlan(ctx context.Context, pb config.Playbook, mode string, rollbackOf int64) (*Plan, error) {
	steps := pb.Steps
	if mode == ModeRollback {
		steps = pb.Rollback
	}
	p := &Plan{Playbook: pb.Name, Primary: pb.Primary, Backup: pb.Backup, Description: pb.Description,
		Mode: mode, RollbackOf: rollbackOf, ReadAt: e.now().UTC().Truncate(time.Second), Safety: []SafetyRule{}}
	pl := &planner{e: e, pb: pb, cycle: e.res.NewCycle(), projected: map[rrsetKey][]dns.RR{}}
	for _, s := range steps {
		if s.DNSUpdate != nil {
			pl.zones = append(pl.zones, dns.Fqdn(s.DNSUpdate.Zone))
		}
	}
	verifies := 0
	for i, s := range steps {
		sp := StepPlan{Index: i + 1, Name: s.Name, Kind: s.Kind(), Action: ActionReport, step: s}
		if sp.Name == "" {
			sp.Name = sp.Kind
		}
		var err error
		switch {
		case s.DNSUpdate != nil:
			err = pl.planUpdate(ctx, &sp, s.DNSUpdate)
		case s.Webhook != nil:
			err = pl.planWebhook(&sp, s.Webhook)
		case s.Verify != nil:
			verifies++
			err = pl.planVerify(ctx, &sp, s.Verify)
		case s.Wait != nil:
			sp.Summary = fmt.Sprintf("wait %s", *s.Wait)
		case s.Notify != nil:
			err = pl.planNotify(&sp, s.Notify)
		default:
			err = fmt.Errorf("%w: step has no kind", ErrUsage)
		}
		if err != nil {
			return nil, fmt.Errorf("planning %s step %d (%s): %w", mode, sp.Index, sp.Name, err)
		}
		p.Steps = append(p.Steps, sp)
	}
	if verifies == 0 {
		p.Warnings = append(p.Warnings, "no verify step: nsguard cannot tell whether the switch took effect")
	}
	p.Checksum = p.checksum()
	return p, nil
}

// templateData is what webhook and notify templates see.
type templateData struct {
	Playbook, Primary, Backup, By, Mode string
	// RunID is a string so the plan can show "<run id>" before a run exists.
	RunID string
}
