package failover

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// One run per playbook at a time: a lock row in the store, refreshed by a
// heartbeat. A run whose process died leaves its lock behind. On the
// machine that ran it (the same host name, boot and PID namespace) a
// process that is gone is known at once, and its lock is taken over at
// once: a run killed with -9 can be resumed right away. From another
// machine a process cannot be looked at, so its lock is taken over once
// the heartbeat is older than LockStale (and the run says so). A run that
// finds its own lock taken over (it was frozen longer than LockStale)
// stops at once: two runs must never change records side by side.

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
	me := store.FailoverLock{Playbook: playbook, Holder: e.holder, PID: os.Getpid(), Host: thisMachine(), AcquiredAt: now, HeartbeatAt: now}
	prev, perr := e.st.FailoverLock(ctx, playbook)
	got, err := e.st.AcquireFailoverLock(ctx, me, now.Add(-e.stale))
	gone := false
	if errors.Is(err, store.ErrLocked) && got.Holder != e.holder && LockProcessGone(got) {
		// Its process is gone from this machine: take it over now. The
		// condition is the dead holder's last heartbeat, so a run that
		// took the lock in between (with a newer one) keeps it.
		dead := got
		got, err = e.st.AcquireFailoverLock(ctx, me, dead.HeartbeatAt.Add(time.Millisecond))
		if err == nil {
			prev, perr, gone = dead, nil, true
		}
	}
	if errors.Is(err, store.ErrLocked) {
		age := now.Sub(got.HeartbeatAt).Round(time.Second)
		var when string
		switch {
		case got.Host == me.Host:
			when = fmt.Sprintf("its process is running on this machine: let it finish, or stop it (then the lock is taken over at once); else it is taken over once its heartbeat is %s old", e.stale)
		default:
			when = fmt.Sprintf("it is on another machine, so it is taken over only once its heartbeat is %s old", e.stale)
		}
		return nil, nil, &RefusedError{Playbook: playbook, Rule: "lock", Reasons: []string{fmt.Sprintf(
			"another run holds the lock: %s, since %s, last heartbeat %s ago; %s",
			e.LockHolder(ctx, got), got.AcquiredAt.UTC().Format(time.RFC3339), age, when)}}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failover: taking the lock of %s: %w", playbook, err)
	}
	h := &heldLock{e: e, playbook: playbook, stop: make(chan struct{})}
	if perr == nil && prev.Holder != e.holder {
		why := fmt.Sprintf("the stale lock of %s (last heartbeat %s, older than %s)", e.LockHolder(ctx, prev), prev.HeartbeatAt.UTC().Format(time.RFC3339), e.stale)
		if gone {
			why = fmt.Sprintf("the lock of %s: that process is gone (last heartbeat %s)", e.LockHolder(ctx, prev), prev.HeartbeatAt.UTC().Format(time.RFC3339))
		}
		h.tookOver = "took over " + why
		e.log.Warn("took over a failover lock", "playbook", playbook, "run", prev.RunID, "holder", prev.Holder,
			"pid", prev.PID, "host", prev.Host, "process_gone", gone, "heartbeat", prev.HeartbeatAt.UTC().Format(time.RFC3339))
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	h.cancel = cancel
	h.wg.Add(1)
	go h.heartbeat(runCtx)
	return h, runCtx, nil
}

// LockHolder names a lock's holder for people: its run and who started it
// (or that the run is still being planned or confirmed, and has no number
// yet), and its process and machine.
func (e *Engine) LockHolder(ctx context.Context, l store.FailoverLock) string {
	run := "a run not started yet (being planned or waiting for confirmation)"
	if l.RunID > 0 {
		run = fmt.Sprintf("run %d", l.RunID)
		if e.st != nil {
			if r, err := e.st.FailoverRun(ctx, l.RunID); err == nil && r.StartedBy != "" {
				run += " by " + r.StartedBy
			}
		}
	}
	return fmt.Sprintf("%s (process %d on %s, holder %s)", run, l.PID, l.Host, l.Holder)
}

// LockProcessGone reports whether l's process ran on this machine and is
// gone: such a lock is taken over at once.
func LockProcessGone(l store.FailoverLock) bool {
	return l.Host == thisMachine() && processGone(l.PID)
}

// thisMachine names where this process's pid means something: the host
// name, and a short digest of the boot and the PID namespace, since two
// containers or two machines may share a host name but never a boot and
// a PID namespace. A lock from the same machine can be checked for a
// live process; from any other, only its heartbeat tells.
var thisMachine = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown-host"
	}
	boot, err1 := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, err2 := os.Readlink("/proc/self/ns/pid")
	if err1 != nil || err2 != nil {
		// No way to tell this boot and namespace from another: the
		// host name alone would take a live lock of a look-alike host.
		return host + " [?]"
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "\n" + ns))
	return fmt.Sprintf("%s [%x]", host, sum[:4])
})

// setRun records the run holding the lock (status shows it).
func (h *heldLock) setRun(ctx context.Context, runID int64) error {
	now := h.e.now()
	_, err := h.e.st.AcquireFailoverLock(ctx, store.FailoverLock{
		Playbook: h.playbook, Holder: h.e.holder, PID: os.Getpid(), Host: thisMachine(), RunID: runID, AcquiredAt: now, HeartbeatAt: now,
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
