package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/outbox"
)

// Run statuses (store.FailoverRun.Status).
const (
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	StatusRefused     = "refused"
	StatusDryRun      = "dry-run"
)

// Step statuses (store.FailoverStep.Status).
const (
	StepRunning     = "running"
	StepDone        = "done"
	StepNoOp        = "no-op"
	StepFailed      = "failed"
	StepInterrupted = "interrupted"
	// StepSkipped: a dry run's step, shown and not executed.
	StepSkipped = "skipped"
)

// RunOptions configure one run.
type RunOptions struct {
	// By names who runs it (WhoRan gives the usual default).
	By string
	// DryRun plans, evaluates the rules and records the run, and changes
	// nothing: no lock, no update, no webhook, no message.
	DryRun bool
	// Force runs despite refusing safety rules, and says so everywhere.
	Force bool
	// PlanChecksum, when set, refuses the run unless the plan read now has
	// this checksum (or a prefix of at least 12 hex digits of it).
	PlanChecksum string
	// Resume continues run Resume (interrupted or failed) without
	// repeating its finished steps. Only for Run.
	Resume int64
	// Confirm is asked after the plan and the rules, before any change,
	// with the lock held; false stops the run with ErrNotConfirmed. Nil
	// means confirmed (the CLI's --yes).
	Confirm func(ctx context.Context, p *Plan) (bool, error)
	// Progress hears each step start and finish.
	Progress func(Event)
}

// Event is a step starting (Result nil) or finishing.
type Event struct {
	Step   *StepPlan
	Result *StepResult
	// Total is the number of steps in the plan.
	Total int
}

// StepResult is what one step did.
type StepResult struct {
	Index      int       `json:"index"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Request    string    `json:"request,omitempty"`
	Response   string    `json:"response,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Earlier says the step finished in an earlier attempt of a resumed run.
	Earlier bool `json:"earlier,omitempty"`
}

// Result is what a run did.
type Result struct {
	RunID  int64        `json:"run_id"`
	Status string       `json:"status"`
	By     string       `json:"by"`
	Plan   *Plan        `json:"plan"`
	Steps  []StepResult `json:"steps"`
	// Verified says every verify step of the plan succeeded.
	Verified bool `json:"verified"`
	Resumed  bool `json:"resumed,omitempty"`
	// TookOver describes a stale lock the run took over.
	TookOver string `json:"took_over,omitempty"`
	Error    string `json:"error,omitempty"`
}

// runCtx is one run's identity, for steps and messages.
type runCtx struct {
	plan    *Plan
	runID   int64
	by      string
	data    templateData
	thread  string
	channel string
	now     func() time.Time
}

// ThreadKey is the Slack thread of run id: a rollback posts in the thread
// of the run it undoes.
func ThreadKey(id int64) string { return fmt.Sprintf("failover:%d", id) }

func (rc *runCtx) message(sev finding.Severity, title, text string) *notify.Message {
	return &notify.Message{Kind: notify.KindFailover, Domain: rc.plan.Primary, Severity: sev, Title: title, Text: text,
		At: rc.now().UTC(), ThreadKey: rc.thread, Channel: rc.channel}
}

// Run runs the playbook called name: lock, plan, safety rules, confirm,
// steps. The error is a *RefusedError (nothing changed), a *RunError
// (what was and was not done) or ErrUsage/ErrUnknownPlaybook/ErrNotConfirmed.
func (e *Engine) Run(ctx context.Context, name string, opts RunOptions) (*Result, error) {
	if err := e.needStore(); err != nil {
		return nil, err
	}
	pb, err := e.playbook(name)
	if err != nil {
		return nil, err
	}
	if opts.Resume == 0 {
		return e.execute(ctx, pb, ModeFailover, 0, opts, nil)
	}
	if opts.DryRun {
		return nil, fmt.Errorf("%w: --resume and --dry-run do not go together", ErrUsage)
	}
	prior, err := e.st.FailoverRun(ctx, opts.Resume)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: there is no run %d to resume", ErrUsage, opts.Resume)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case prior.Playbook != pb.Name:
		return nil, fmt.Errorf("%w: run %d is of playbook %s, not %s", ErrUsage, prior.ID, prior.Playbook, pb.Name)
	case prior.DryRun || prior.Status == StatusDryRun:
		return nil, fmt.Errorf("%w: run %d was a dry run and changed nothing: start a new run", ErrUsage, prior.ID)
	case prior.Status == StatusDone:
		return nil, fmt.Errorf("%w: run %d is done: nothing to resume", ErrUsage, prior.ID)
	case prior.Status == StatusRefused:
		return nil, fmt.Errorf("%w: run %d was refused and changed nothing: start a new run", ErrUsage, prior.ID)
	}
	var stored Plan
	if err := json.Unmarshal(prior.Plan, &stored); err != nil {
		return nil, fmt.Errorf("failover: run %d's recorded plan cannot be read: %w", prior.ID, err)
	}
	mode := stored.Mode
	if mode != ModeRollback {
		mode = ModeFailover
	}
	// Finished steps are matched by number: the playbook must still have
	// the steps the run started with.
	steps := pb.Steps
	if mode == ModeRollback {
		steps = pb.Rollback
	}
	same := len(steps) == len(stored.Steps)
	for i := 0; same && i < len(steps); i++ {
		name := steps[i].Name
		if name == "" {
			name = steps[i].Kind()
		}
		same = stored.Steps[i].Kind == steps[i].Kind() && stored.Steps[i].Name == name
	}
	if !same {
		return nil, fmt.Errorf("%w: playbook %s's %s steps changed since run %d started: resuming could skip or repeat the wrong steps; start a new run (its plan shows what is in place)",
			ErrUsage, pb.Name, mode, prior.ID)
	}
	return e.execute(ctx, pb, mode, stored.RollbackOf, opts, &prior)
}

// Rollback runs the rollback steps of run id's playbook, to undo it.
func (e *Engine) Rollback(ctx context.Context, id int64, opts RunOptions) (*Result, error) {
	if opts.Resume != 0 {
		return nil, fmt.Errorf("%w: resume a rollback with: nsguard failover run PLAYBOOK --resume RUN", ErrUsage)
	}
	pb, err := e.rollbackTarget(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.execute(ctx, pb, ModeRollback, id, opts, nil)
}

func (e *Engine) rollbackTarget(ctx context.Context, id int64) (config.Playbook, error) {
	if err := e.needStore(); err != nil {
		return config.Playbook{}, err
	}
	r, err := e.st.FailoverRun(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return config.Playbook{}, fmt.Errorf("%w: there is no run %d", ErrUsage, id)
	}
	if err != nil {
		return config.Playbook{}, err
	}
	pb, err := e.playbook(r.Playbook)
	if err != nil {
		return pb, err
	}
	var stored Plan
	_ = json.Unmarshal(r.Plan, &stored)
	switch {
	case len(pb.Rollback) == 0:
		return pb, fmt.Errorf("%w: playbook %s has no rollback steps", ErrUsage, pb.Name)
	case r.DryRun || r.Status == StatusDryRun || r.Status == StatusRefused:
		return pb, fmt.Errorf("%w: run %d changed nothing: there is nothing to roll back", ErrUsage, id)
	case stored.Mode == ModeRollback:
		return pb, fmt.Errorf("%w: run %d is a rollback itself: to move to the backup again, run the playbook", ErrUsage, id)
	}
	return pb, nil
}

func (e *Engine) execute(ctx context.Context, pb config.Playbook, mode string, rollbackOf int64, opts RunOptions, prior *store.FailoverRun) (*Result, error) {
	by := WhoRan(opts.By)
	log := e.log.With("playbook", pb.Name, "mode", mode, "by", by)
	res := &Result{By: by, Steps: []StepResult{}}
	rctx := ctx
	var lk *heldLock
	abandoned := false
	if !opts.DryRun {
		var err error
		if lk, rctx, err = e.lock(ctx, pb.Name); err != nil {
			log.Warn("failover refused: locked", "err", err)
			return nil, err
		}
		defer func() {
			if !abandoned {
				lk.release(ctx)
			}
		}()
		res.TookOver = lk.tookOver
	}

	plan, err := e.buildPlan(rctx, pb, mode, rollbackOf)
	if err != nil {
		return nil, err
	}
	e.applySafety(rctx, plan, pb, opts.Force)
	res.Plan = plan
	if opts.PlanChecksum != "" && !plan.Matches(opts.PlanChecksum) {
		reason := fmt.Sprintf("the plan read now has checksum %s, not the %s that was reviewed: the records or the playbook changed since; read the plan again",
			plan.ShortChecksum(), strings.TrimPrefix(strings.TrimSpace(opts.PlanChecksum), "sha256:"))
		if len(strings.TrimPrefix(strings.TrimSpace(opts.PlanChecksum), "sha256:")) < MinChecksumPrefix {
			reason = fmt.Sprintf("--plan-checksum needs at least %d hex digits of the checksum `failover plan` printed", MinChecksumPrefix)
		}
		return res, e.refused(ctx, res, opts, prior, &RefusedError{Playbook: pb.Name, Rule: "plan-checksum", Reasons: []string{reason}})
	}
	if plan.Refused() {
		rerr := &RefusedError{Playbook: pb.Name, Rule: "safety"}
		for _, r := range plan.Refusals() {
			rerr.Rules = append(rerr.Rules, r.Rule)
			rerr.Reasons = append(rerr.Reasons, r.Rule+": "+r.Detail)
		}
		log.Warn("failover refused by safety rules", "rules", rerr.Rules)
		return res, e.refused(ctx, res, opts, prior, rerr)
	}
	if over := plan.Refusals(); len(over) > 0 {
		var rules []string
		for _, r := range over {
			rules = append(rules, r.Rule)
		}
		log.Warn("safety rules overridden with --force", "rules", rules)
	}
	if opts.DryRun {
		return e.dryRun(ctx, res)
	}
	if opts.Confirm != nil {
		ok, err := opts.Confirm(rctx, plan)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("%w: failover %s was not run; nothing was changed", ErrNotConfirmed, pb.Name)
		}
	}

	// The run record and the first message of its thread, together.
	rc := &runCtx{plan: plan, by: by, channel: pb.SlackChannel, now: e.now}
	done := map[int]StepResult{}
	start := e.now()
	if prior == nil {
		planJSON, _ := json.Marshal(plan)
		run := store.FailoverRun{Playbook: pb.Name, StartedBy: by, StartedAt: start.UTC(), Plan: planJSON, Checksum: plan.Checksum, Status: StatusRunning}
		err = e.st.InTx(ctx, func(q store.Queries) error {
			id, err := q.CreateFailoverRun(ctx, run)
			if err != nil {
				return err
			}
			rc.runID = id
			rc.thread = ThreadKey(id)
			if mode == ModeRollback {
				rc.thread = ThreadKey(rollbackOf)
			}
			rc.data = templateData{Playbook: pb.Name, Primary: pb.Primary, Backup: pb.Backup, By: by, Mode: mode, RunID: fmt.Sprint(id)}
			_, err = outbox.Enqueue(ctx, q, rc.message(finding.Warning, startTitle(plan, id), startText(plan, id, by, res.TookOver)))
			return err
		})
		if err != nil {
			return res, fmt.Errorf("failover: recording the run: %w", err)
		}
	} else {
		res.Resumed = true
		rc.runID = prior.ID
		rc.thread = ThreadKey(prior.ID)
		if mode == ModeRollback {
			rc.thread = ThreadKey(rollbackOf)
		}
		rc.data = templateData{Playbook: pb.Name, Primary: pb.Primary, Backup: pb.Backup, By: by, Mode: mode, RunID: fmt.Sprint(prior.ID)}
		steps, err := e.st.FailoverSteps(ctx, prior.ID)
		if err != nil {
			return res, err
		}
		for _, s := range steps {
			if s.Status == StepDone || s.Status == StepNoOp {
				done[s.Index] = StepResult{Index: s.Index, Name: s.Name, Kind: s.Kind, Status: s.Status, Request: s.Request,
					Response: s.Response, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, Earlier: true}
			}
		}
		err = e.st.InTx(ctx, func(q store.Queries) error {
			if err := q.UpdateFailoverRun(ctx, store.FailoverRun{ID: prior.ID, Status: StatusRunning}); err != nil {
				return err
			}
			_, err := outbox.Enqueue(ctx, q, rc.message(finding.Warning, fmt.Sprintf("Failover %s · run %d resumed", pb.Name, prior.ID),
				resumeText(plan, by, done, res.TookOver)))
			return err
		})
		if err != nil {
			return res, fmt.Errorf("failover: recording the resumption: %w", err)
		}
	}
	e.kickOutbox()
	res.RunID = rc.runID
	log = log.With("run", rc.runID)
	if err := lk.setRun(ctx, rc.runID); err != nil {
		log.Warn("recording the run in the lock", "err", err)
	}
	log.Info("failover run started", "checksum", plan.ShortChecksum(), "force", plan.Force, "resumed", res.Resumed, "steps", len(plan.Steps))

	var doneIdx []int
	for i := range plan.Steps {
		sp := &plan.Steps[i]
		if r, ok := done[sp.Index]; ok {
			res.Steps = append(res.Steps, r)
			doneIdx = append(doneIdx, sp.Index)
			if opts.Progress != nil {
				opts.Progress(Event{Step: sp, Result: &r, Total: len(plan.Steps)})
			}
			continue
		}
		if opts.Progress != nil {
			opts.Progress(Event{Step: sp, Total: len(plan.Steps)})
		}
		sr, stepErr := e.runStep(rctx, rc, sp)
		if opts.Progress != nil {
			opts.Progress(Event{Step: sp, Result: &sr, Total: len(plan.Steps)})
		}
		res.Steps = append(res.Steps, sr)
		if stepErr != nil {
			return res, e.stop(ctx, rctx, rc, res, sp, doneIdx, stepErr, log)
		}
		doneIdx = append(doneIdx, sp.Index)
		if e.hooks.afterStep != nil {
			if err := e.hooks.afterStep(sp.Index); err != nil {
				// As if the process died here: no record, no release.
				abandoned = true
				lk.abandon()
				return res, err
			}
		}
	}

	res.Status = StatusDone
	res.Verified = verified(plan, res.Steps)
	took := e.now().Sub(start).Round(time.Millisecond)
	title := fmt.Sprintf("Failover %s · run %d done", pb.Name, rc.runID)
	text := fmt.Sprintf("%s → %s in %s.", pb.Primary, pb.Backup, took)
	if mode == ModeRollback {
		title = fmt.Sprintf("Rollback of run %d · run %d done", rollbackOf, rc.runID)
		text = fmt.Sprintf("traffic is back on %s, in %s.", pb.Primary, took)
	}
	if res.Verified {
		title += " and verified"
	} else {
		text += " No verify step: check by hand that the switch took effect."
	}
	err = e.st.InTx(ctx, func(q store.Queries) error {
		if err := q.UpdateFailoverRun(ctx, store.FailoverRun{ID: rc.runID, FinishedAt: e.now().UTC(), Status: StatusDone}); err != nil {
			return err
		}
		m := rc.message(finding.OK, title, text)
		m.Broadcast = true
		_, err := outbox.Enqueue(ctx, q, m)
		return err
	})
	e.kickOutbox()
	if err != nil {
		return res, fmt.Errorf("failover: every step is done but recording the end of run %d failed: %w", rc.runID, err)
	}
	log.Info("failover run done", "verified", res.Verified, "took", took.String())
	return res, nil
}

// runStep executes one step and records it (with its message) before and
// after.
func (e *Engine) runStep(ctx context.Context, rc *runCtx, sp *StepPlan) (StepResult, error) {
	rec := context.WithoutCancel(ctx)
	sr := StepResult{Index: sp.Index, Name: sp.Name, Kind: sp.Kind, Status: StepRunning, StartedAt: e.now().UTC()}
	row := store.FailoverStep{RunID: rc.runID, Index: sp.Index, Name: sp.Name, Kind: sp.Kind, Status: StepRunning, StartedAt: sr.StartedAt}
	if err := e.st.PutFailoverStep(rec, row); err != nil {
		sr.Status, sr.Error = StepFailed, "recording the step: "+err.Error()
		return sr, fmt.Errorf("recording step %d before running it: %w", sp.Index, err)
	}
	var err error
	if e.hooks.beforeStep != nil {
		err = e.hooks.beforeStep(ctx, sp.Index)
	}
	status := StepDone
	if err == nil {
		sr.Request, sr.Response, status, err = e.execStep(ctx, rc, sp)
	}
	sr.FinishedAt = e.now().UTC()
	sr.Status = status
	if err != nil {
		sr.Status = StepFailed
		if ctx.Err() != nil {
			sr.Status = StepInterrupted
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ctx.Err()) {
				err = cause
			}
		}
		sr.Error = err.Error()
	}
	row.Request, row.Response, row.Status, row.Error, row.FinishedAt = sr.Request, sr.Response, sr.Status, sr.Error, sr.FinishedAt
	var msgs []*notify.Message
	if sp.Kind != "notify" || err != nil {
		sev := finding.Info
		if err != nil {
			sev = finding.Critical
		}
		msgs = append(msgs, rc.message(sev, fmt.Sprintf("Step %d/%d · %s · %s", sp.Index, len(rc.plan.Steps), sp.Name, sr.Status), stepText(sp, sr)))
	}
	if rerr := e.st.InTx(rec, func(q store.Queries) error {
		if err := q.PutFailoverStep(rec, row); err != nil {
			return err
		}
		for _, m := range msgs {
			if _, err := outbox.Enqueue(rec, q, m); err != nil {
				return err
			}
		}
		return nil
	}); rerr != nil {
		if err == nil {
			err = fmt.Errorf("step %d ran but recording it failed: %w", sp.Index, rerr)
			sr.Status, sr.Error = StepFailed, err.Error()
		}
	}
	e.kickOutbox()
	return sr, err
}

func (e *Engine) execStep(ctx context.Context, rc *runCtx, sp *StepPlan) (request, response, status string, err error) {
	status = StepDone
	switch sp.Kind {
	case "dns_update":
		var noop bool
		request, response, noop, err = e.execUpdate(ctx, rc, sp)
		if noop {
			status = StepNoOp
		}
	case "webhook":
		request, response, err = e.execWebhook(ctx, rc, sp)
	case "verify":
		request, response, err = e.execVerify(ctx, sp)
	case "wait":
		request, response, err = e.execWait(ctx, sp)
	case "notify":
		request, response, err = e.execNotify(ctx, rc, sp)
	default:
		err = fmt.Errorf("unknown step kind %q", sp.Kind)
	}
	return request, response, status, err
}

// stop ends a run at a failed or interrupted step.
func (e *Engine) stop(ctx, rctx context.Context, rc *runCtx, res *Result, sp *StepPlan, done []int, stepErr error, log *slog.Logger) error {
	interrupted := rctx.Err() != nil
	var notDone []int
	for _, s := range rc.plan.Steps {
		if s.Index >= sp.Index {
			notDone = append(notDone, s.Index)
		}
	}
	rerr := &RunError{Playbook: rc.plan.Playbook, RunID: rc.runID, Step: sp.Index, Kind: sp.Kind, Done: done, NotDone: notDone,
		Interrupted: interrupted, Err: stepErr}
	res.Status = StatusFailed
	if interrupted {
		res.Status = StatusInterrupted
	}
	res.Error = rerr.Error()
	title := fmt.Sprintf("Failover %s · run %d %s at step %d/%d", rc.plan.Playbook, rc.runID, res.Status, sp.Index, len(rc.plan.Steps))
	text := fmt.Sprintf("%s\nDone: %s. Not done: %s.\nContinue with `nsguard failover run %s --resume %d`",
		stepErr, stepList(done), stepList(notDone), rc.plan.Playbook, rc.runID)
	if len(done) > 0 && rc.plan.Mode == ModeFailover {
		text += fmt.Sprintf(", or undo with `nsguard failover rollback %d`", rc.runID)
	}
	rec := context.WithoutCancel(ctx)
	err := e.st.InTx(rec, func(q store.Queries) error {
		if err := q.UpdateFailoverRun(rec, store.FailoverRun{ID: rc.runID, FinishedAt: e.now().UTC(), Status: res.Status, Error: rerr.Error()}); err != nil {
			return err
		}
		m := rc.message(finding.Critical, title, text)
		m.Broadcast = true
		_, err := outbox.Enqueue(rec, q, m)
		return err
	})
	e.kickOutbox()
	if err != nil {
		log.Error("recording the end of a failed run", "err", err)
	}
	log.Error("failover run stopped", "step", sp.Index, "status", res.Status, "err", stepErr)
	return rerr
}

// refused records a refused run (not a dry run, not a resumption) with
// its single message, and returns rerr carrying the run's ID.
func (e *Engine) refused(ctx context.Context, res *Result, opts RunOptions, prior *store.FailoverRun, rerr *RefusedError) error {
	res.Status = StatusRefused
	res.Error = rerr.Error()
	if opts.DryRun || prior != nil {
		return rerr
	}
	now := e.now().UTC()
	planJSON, _ := json.Marshal(res.Plan)
	err := e.st.InTx(context.WithoutCancel(ctx), func(q store.Queries) error {
		id, err := q.CreateFailoverRun(ctx, store.FailoverRun{Playbook: rerr.Playbook, StartedBy: res.By, StartedAt: now, FinishedAt: now,
			Plan: planJSON, Checksum: res.Plan.Checksum, Status: StatusRefused, Error: rerr.Error()})
		if err != nil {
			return err
		}
		rerr.RunID, res.RunID = id, id
		rc := &runCtx{plan: res.Plan, runID: id, thread: ThreadKey(id), channel: e.channelOf(rerr.Playbook), now: e.now}
		_, err = outbox.Enqueue(ctx, q, rc.message(finding.Warning, fmt.Sprintf("Failover %s refused", rerr.Playbook),
			fmt.Sprintf("%s tried to run it; refused (%s): %s. Nothing was changed.", res.By, rerr.Rule, strings.Join(rerr.Reasons, "; "))))
		return err
	})
	e.kickOutbox()
	if err != nil {
		e.log.Warn("recording a refused run", "playbook", rerr.Playbook, "err", err)
	}
	return rerr
}

func (e *Engine) channelOf(playbook string) string {
	pb, _ := e.cfg.Playbook(playbook)
	return pb.SlackChannel
}

// dryRun records the plan as a dry run whose steps are all skipped.
func (e *Engine) dryRun(ctx context.Context, res *Result) (*Result, error) {
	plan := res.Plan
	now := e.now().UTC()
	res.Status = StatusDryRun
	planJSON, _ := json.Marshal(plan)
	err := e.st.InTx(ctx, func(q store.Queries) error {
		id, err := q.CreateFailoverRun(ctx, store.FailoverRun{Playbook: plan.Playbook, StartedBy: res.By, StartedAt: now, FinishedAt: now,
			DryRun: true, Plan: planJSON, Checksum: plan.Checksum, Status: StatusDryRun})
		if err != nil {
			return err
		}
		res.RunID = id
		for _, sp := range plan.Steps {
			req := sp.Summary
			for _, ch := range sp.Changes {
				req += "; " + changeLine(ch)
			}
			sr := StepResult{Index: sp.Index, Name: sp.Name, Kind: sp.Kind, Status: StepSkipped, Request: req, Response: "dry run: not executed"}
			res.Steps = append(res.Steps, sr)
			if err := q.PutFailoverStep(ctx, store.FailoverStep{RunID: id, Index: sp.Index, Name: sp.Name, Kind: sp.Kind,
				Request: sr.Request, Response: sr.Response, Status: sr.Status}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("failover: recording the dry run: %w", err)
	}
	return res, nil
}

func verified(p *Plan, steps []StepResult) bool {
	n := 0
	for _, sp := range p.Steps {
		if sp.Kind != "verify" {
			continue
		}
		n++
		ok := false
		for _, s := range steps {
			if s.Index == sp.Index && s.Status == StepDone {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return n > 0
}

func (e *Engine) kickOutbox() {
	if e.kick != nil {
		e.kick()
	}
}

// enqueue stores messages for the outbox in one transaction.
func (e *Engine) enqueue(ctx context.Context, msgs ...*notify.Message) error {
	err := e.st.InTx(ctx, func(q store.Queries) error {
		for _, m := range msgs {
			if _, err := outbox.Enqueue(ctx, q, m); err != nil {
				return err
			}
		}
		return nil
	})
	e.kickOutbox()
	return err
}

func startTitle(p *Plan, id int64) string {
	if p.Mode == ModeRollback {
		return fmt.Sprintf("Rollback of run %d started · run %d · %s", p.RollbackOf, id, p.Playbook)
	}
	return fmt.Sprintf("Failover %s started · run %d", p.Playbook, id)
}

func startText(p *Plan, id int64, by, tookOver string) string {
	var b strings.Builder
	if p.Mode == ModeRollback {
		fmt.Fprintf(&b, "%s rolls back run %d: traffic goes back to %s.", by, p.RollbackOf, p.Primary)
	} else {
		fmt.Fprintf(&b, "%s moves traffic from %s to %s.", by, p.Primary, p.Backup)
	}
	fmt.Fprintf(&b, " %d steps, plan %s.", len(p.Steps), p.ShortChecksum())
	for _, r := range p.Safety {
		fmt.Fprintf(&b, "\n%s %s: %s", strings.ToUpper(r.Status), r.Rule, r.Detail)
	}
	if over := p.Refusals(); len(over) > 0 {
		var rules []string
		for _, r := range over {
			rules = append(rules, r.Rule)
		}
		fmt.Fprintf(&b, "\nFORCED with --force by %s past the safety rules: %s.", by, strings.Join(rules, ", "))
	}
	if tookOver != "" {
		b.WriteString("\n" + tookOver + ".")
	}
	return b.String()
}

func resumeText(p *Plan, by string, done map[int]StepResult, tookOver string) string {
	var idx []int
	for _, sp := range p.Steps {
		if _, ok := done[sp.Index]; ok {
			idx = append(idx, sp.Index)
		}
	}
	s := fmt.Sprintf("%s resumes the run; steps done before, not repeated: %s. Plan read again: %s.", by, stepList(idx), p.ShortChecksum())
	if over := p.Refusals(); len(over) > 0 {
		var rules []string
		for _, r := range over {
			rules = append(rules, r.Rule)
		}
		s += fmt.Sprintf("\nFORCED with --force past the safety rules: %s.", strings.Join(rules, ", "))
	}
	if tookOver != "" {
		s += "\n" + tookOver + "."
	}
	return s
}

func stepText(sp *StepPlan, sr StepResult) string {
	var lines []string
	for _, ch := range sp.Changes {
		lines = append(lines, changeLine(ch))
	}
	if sr.Response != "" {
		lines = append(lines, sr.Response)
	}
	if sr.Error != "" {
		lines = append(lines, "Error: "+sr.Error)
	}
	if len(lines) == 0 {
		lines = append(lines, sp.Summary)
	}
	return strings.Join(lines, "\n")
}

// changeLine is a change on one line: "CHANGE api.x. CNAME: a. → b.".
func changeLine(ch Change) string {
	values := func(rrs []string) string {
		if len(rrs) == 0 {
			return "(none)"
		}
		var out []string
		for _, s := range rrs {
			f := strings.Fields(s)
			if len(f) > 4 {
				out = append(out, strings.Join(f[4:], " "))
			} else {
				out = append(out, s)
			}
		}
		return strings.Join(out, ", ")
	}
	switch ch.Action {
	case ActionCreate:
		return fmt.Sprintf("CREATE %s %s: %s", ch.Name, ch.Type, values(ch.After))
	case ActionDelete:
		return fmt.Sprintf("DELETE %s %s: %s", ch.Name, ch.Type, values(ch.Before))
	case ActionChange:
		return fmt.Sprintf("CHANGE %s %s: %s → %s", ch.Name, ch.Type, values(ch.Before), values(ch.After))
	}
	return fmt.Sprintf("REPORT %s %s: %s", ch.Name, ch.Type, ch.Note)
}
