package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// One run per playbook at a time: a lock row in the store, refreshed by a
// heartbeat. A run whose process died leaves its lock behind; once the
// heartbeat is older than LockStale another run may take it over (and
// says so). A run that finds its own lock taken over (it was frozen longer
// than LockStale) stops at once: two runs must never change records
// side by side.

// errLockLost interrupts a run whose lock another run took over.
var errLockLost = errors.New("this run lost the failover lock: another run took it over while this one was not heartbeating")

type heldLock struct {
	e        *Engine
	playbook string
	cancel   context.CancelCauseFunc
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	// tookOver describes the stale lock this one replaced ("" if none).
	tookOver string
}

// lock takes the playbook's lock and starts its heartbeat. The returned
// context ends when the lock is lost.
func (e *Engine) lock(ctx context.Context, playbook string) (*heldLock, context.Context, error) {
	now := e.now()
	host, _ := os.Hostname()
	prev, perr := e.st.FailoverLock(ctx, playbook)
	got, err := e.st.AcquireFailoverLock(ctx, store.FailoverLock{
		Playbook: playbook, Holder: e.holder, PID: os.Getpid(), Host: host, AcquiredAt: now, HeartbeatAt: now,
	}, now.Add(-e.stale))
	if errors.Is(err, store.ErrLocked) {
		age := now.Sub(got.HeartbeatAt).Round(time.Second)
		return nil, nil, &RefusedError{Playbook: playbook, Rule: "lock", Reasons: []string{fmt.Sprintf(
			"another run holds the lock: run %d, %s (pid %d on %s) since %s, last heartbeat %s ago; it is taken over only once its heartbeat is %s old",
			got.RunID, got.Holder, got.PID, got.Host, got.AcquiredAt.UTC().Format(time.RFC3339), age, e.stale)}}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failover: taking the lock of %s: %w", playbook, err)
	}
	h := &heldLock{e: e, playbook: playbook, stop: make(chan struct{})}
	if perr == nil && prev.Holder != e.holder {
		h.tookOver = fmt.Sprintf("took over the stale lock of run %d (%s, pid %d on %s; last heartbeat %s)",
			prev.RunID, prev.Holder, prev.PID, prev.Host, prev.HeartbeatAt.UTC().Format(time.RFC3339))
		e.log.Warn("took over a stale failover lock", "playbook", playbook, "run", prev.RunID, "holder", prev.Holder,
			"heartbeat", prev.HeartbeatAt.UTC().Format(time.RFC3339))
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	h.cancel = cancel
	h.wg.Add(1)
	go h.heartbeat(runCtx)
	return h, runCtx, nil
}

// setRun records the run holding the lock (status shows it).
func (h *heldLock) setRun(ctx context.Context, runID int64) error {
	now := h.e.now()
	host, _ := os.Hostname()
	_, err := h.e.st.AcquireFailoverLock(ctx, store.FailoverLock{
		Playbook: h.playbook, Holder: h.e.holder, PID: os.Getpid(), Host: host, RunID: runID, AcquiredAt: now, HeartbeatAt: now,
	}, now.Add(-h.e.stale))
	return err
}

func (h *heldLock) heartbeat(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTicker(h.e.beat)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.e.st.HeartbeatFailoverLock(context.WithoutCancel(ctx), h.playbook, h.e.holder, h.e.now())
		switch {
		case errors.Is(err, store.ErrLocked):
			h.e.log.Error("lost the failover lock; stopping the run", "playbook", h.playbook)
			h.cancel(errLockLost)
			return
		case err != nil:
			// The store is busy or briefly unavailable: the lock stays
			// ours until it is stale, so try again on the next beat.
			h.e.log.Warn("failover lock heartbeat failed", "playbook", h.playbook, "err", err)
		}
	}
}

// abandon stops the heartbeat and leaves the lock as a dead process
// would: stale after LockStale.
func (h *heldLock) abandon() {
	h.once.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// release stops the heartbeat and frees the lock.
func (h *heldLock) release(ctx context.Context) {
	h.abandon()
	h.cancel(nil)
	if err := h.e.st.ReleaseFailoverLock(context.WithoutCancel(ctx), h.playbook, h.e.holder); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.e.log.Warn("releasing the failover lock", "playbook", h.playbook, "err", err)
	}
}
