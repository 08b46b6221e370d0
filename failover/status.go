package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nsguard/nsguard/internal/store"
)

// RunRecord is one recorded run with its steps: the audit trail.
type RunRecord struct {
	Run   store.FailoverRun    `json:"run"`
	Plan  *Plan                `json:"plan,omitempty"`
	Steps []store.FailoverStep `json:"steps"`
	// Lock is the playbook's lock when this run holds it.
	Lock *store.FailoverLock `json:"lock,omitempty"`
}

// Status returns run id's record; id 0 means the latest run.
func (e *Engine) Status(ctx context.Context, id int64) (*RunRecord, error) {
	if err := e.needStore(); err != nil {
		return nil, err
	}
	var run store.FailoverRun
	if id == 0 {
		runs, err := e.st.FailoverRuns(ctx, "", 1)
		if err != nil {
			return nil, err
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("%w: no failover run has been recorded yet", ErrUsage)
		}
		run = runs[0]
	} else {
		var err error
		run, err = e.st.FailoverRun(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: there is no run %d", ErrUsage, id)
		}
		if err != nil {
			return nil, err
		}
	}
	rec := &RunRecord{Run: run}
	var p Plan
	if err := json.Unmarshal(run.Plan, &p); err == nil {
		rec.Plan = &p
	}
	steps, err := e.st.FailoverSteps(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	rec.Steps = steps
	if l, err := e.st.FailoverLock(ctx, run.Playbook); err == nil && l.RunID == run.ID {
		rec.Lock = &l
	}
	return rec, nil
}

// History returns recorded runs, newest first ("" = every playbook).
func (e *Engine) History(ctx context.Context, playbook string, limit int) ([]store.FailoverRun, error) {
	if err := e.needStore(); err != nil {
		return nil, err
	}
	if playbook != "" {
		if _, err := e.playbook(playbook); err != nil {
			return nil, err
		}
	}
	return e.st.FailoverRuns(ctx, playbook, limit)
}

// Lock returns the playbook's lock, or ok false when it is free.
func (e *Engine) Lock(ctx context.Context, playbook string) (store.FailoverLock, bool, error) {
	if err := e.needStore(); err != nil {
		return store.FailoverLock{}, false, err
	}
	l, err := e.st.FailoverLock(ctx, playbook)
	if errors.Is(err, store.ErrNotFound) {
		return l, false, nil
	}
	return l, err == nil, err
}

// LockStale is how old a heartbeat makes a lock stale.
func (e *Engine) LockStale() int64 { return int64(e.stale) }
