package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Fenced returns st with the leader's writes fenced by its epoch: every
// transaction (InTx) and every write the incident engine, the outbox and
// the failover engine make outside one — enqueue, claim, settle, requeue,
// Slack threads, failover runs, steps and locks, changes, recheck requests —
// first reads the lease row inside the same transaction, SELECT … FOR
// SHARE, and fails with ErrFenced unless it names holder at epoch(). A
// takeover bumps the epoch with an UPDATE of that row, which waits for the
// fenced transactions in flight and is waited for by the next ones: a write
// either commits before the new leader's epoch exists or is refused. epoch
// returns 0 when this process does not lead: then every fenced write is
// refused at once, without asking the database.
//
// Reads and the writes every replica makes (observations, heartbeats) are
// not fenced. On SQLite there is no cluster (one node is the leader at
// epoch 0) and Fenced returns st itself.
func Fenced(st Store, holder string, epoch func() int64) Store {
	p, ok := st.(*Postgres)
	if !ok {
		return st
	}
	return &fenced{Postgres: p, holder: holder, epoch: epoch}
}

// CheckFence reports ErrFenced when st is fenced and its holder no longer
// leads at its epoch, by reading the lease row now: a sender asks just
// before it sends a message it claimed, since Slack cannot be fenced.
// It is nil for a store Fenced did not wrap.
func CheckFence(ctx context.Context, st Store) error {
	f, ok := st.(*fenced)
	if !ok {
		return nil
	}
	return f.run(ctx, false, func(*queries) error { return nil })
}

type fenced struct {
	*Postgres
	holder string
	epoch  func() int64
}

var _ Store = (*fenced)(nil)

// run runs fn in a transaction (writer: serialised with the other writers,
// as InTx) after checking the fence inside it.
func (f *fenced) run(ctx context.Context, writer bool, fn func(*queries) error) error {
	epoch := f.epoch()
	if epoch <= 0 {
		return fmt.Errorf("store: %s does not lead: %w", f.holder, ErrFenced)
	}
	return f.tx(ctx, writer, func(q *queries) error {
		var holder string
		var cur int64
		err := q.w.QueryRowContext(ctx, `SELECT holder, epoch FROM leader_lease WHERE id = 1 FOR SHARE`).Scan(&holder, &cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: %s at epoch %d: nobody holds the lease: %w", f.holder, epoch, ErrFenced)
		case err != nil:
			return fmt.Errorf("store: checking the leader's lease: %w", mapErr(err))
		case holder != f.holder || cur != epoch:
			return fmt.Errorf("store: %s at epoch %d: %s leads at epoch %d: %w", f.holder, epoch, orNobody(holder), cur, ErrFenced)
		}
		return fn(q)
	})
}

func (f *fenced) InTx(ctx context.Context, fn func(Queries) error) error {
	return f.run(ctx, true, func(q *queries) error { return fn(q) })
}

func (f *fenced) Enqueue(ctx context.Context, m OutboxMessage) (id int64, err error) {
	err = f.run(ctx, false, func(q *queries) error { id, err = q.Enqueue(ctx, m); return err })
	return id, err
}

// ClaimDue claims in a transaction without the writer lock, as the
// unfenced store does: senders still claim beside the writers.
func (f *fenced) ClaimDue(ctx context.Context, c Claim) (out []OutboxMessage, err error) {
	err = f.run(ctx, false, func(q *queries) error { out, err = q.ClaimDue(ctx, c); return err })
	return out, err
}

func (f *fenced) MarkDelivered(ctx context.Context, id int64, owner string, attempts int, at time.Time) error {
	return f.run(ctx, false, func(q *queries) error { return q.MarkDelivered(ctx, id, owner, attempts, at) })
}

func (f *fenced) MarkRetry(ctx context.Context, id int64, owner string, attempts int, next time.Time, lastErr string) error {
	return f.run(ctx, false, func(q *queries) error { return q.MarkRetry(ctx, id, owner, attempts, next, lastErr) })
}

func (f *fenced) MarkDead(ctx context.Context, id int64, owner string, attempts int, at time.Time, lastErr string) error {
	return f.run(ctx, false, func(q *queries) error { return q.MarkDead(ctx, id, owner, attempts, at, lastErr) })
}

func (f *fenced) Requeue(ctx context.Context, id int64, at time.Time) error {
	return f.run(ctx, false, func(q *queries) error { return q.Requeue(ctx, id, at) })
}

func (f *fenced) PutSlackThread(ctx context.Context, t SlackThread) error {
	return f.run(ctx, false, func(q *queries) error { return q.PutSlackThread(ctx, t) })
}

func (f *fenced) AddChange(ctx context.Context, c Change) (id int64, err error) {
	err = f.run(ctx, false, func(q *queries) error { id, err = q.AddChange(ctx, c); return err })
	return id, err
}

func (f *fenced) PutFindingState(ctx context.Context, s FindingState) error {
	return f.run(ctx, true, func(q *queries) error { return q.PutFindingState(ctx, s) })
}

func (f *fenced) DeleteFindingState(ctx context.Context, domain, class, key string) error {
	return f.run(ctx, true, func(q *queries) error { return q.DeleteFindingState(ctx, domain, class, key) })
}

func (f *fenced) CreateIncident(ctx context.Context, inc Incident) (id int64, err error) {
	err = f.run(ctx, true, func(q *queries) error { id, err = q.CreateIncident(ctx, inc); return err })
	return id, err
}

func (f *fenced) UpdateIncident(ctx context.Context, inc Incident) error {
	return f.run(ctx, true, func(q *queries) error { return q.UpdateIncident(ctx, inc) })
}

func (f *fenced) CreateFailoverRun(ctx context.Context, r FailoverRun) (id int64, err error) {
	err = f.run(ctx, false, func(q *queries) error { id, err = q.CreateFailoverRun(ctx, r); return err })
	return id, err
}

func (f *fenced) UpdateFailoverRun(ctx context.Context, r FailoverRun) error {
	return f.run(ctx, false, func(q *queries) error { return q.UpdateFailoverRun(ctx, r) })
}

func (f *fenced) PutFailoverStep(ctx context.Context, s FailoverStep) error {
	return f.run(ctx, false, func(q *queries) error { return q.PutFailoverStep(ctx, s) })
}

func (f *fenced) AcquireFailoverLock(ctx context.Context, l FailoverLock, staleBefore time.Time) (got FailoverLock, err error) {
	err = f.run(ctx, true, func(q *queries) error { got, err = q.AcquireFailoverLock(ctx, l, staleBefore); return err })
	return got, err
}

func (f *fenced) HeartbeatFailoverLock(ctx context.Context, playbook, holder string, at time.Time) error {
	return f.run(ctx, false, func(q *queries) error { return q.HeartbeatFailoverLock(ctx, playbook, holder, at) })
}

func (f *fenced) ReleaseFailoverLock(ctx context.Context, playbook, holder string) error {
	return f.run(ctx, false, func(q *queries) error { return q.ReleaseFailoverLock(ctx, playbook, holder) })
}

func (f *fenced) RequestRechecks(ctx context.Context, class string, domains []string, at time.Time) error {
	return f.run(ctx, false, func(q *queries) error { return q.RequestRechecks(ctx, class, domains, at) })
}

func (f *fenced) Prune(ctx context.Context, before time.Time) (r PruneResult, err error) {
	err = f.run(ctx, true, func(q *queries) error { r, err = q.Prune(ctx, before); return err })
	return r, err
}

func (f *fenced) PruneVantages(ctx context.Context, before time.Time) (n int64, err error) {
	err = f.run(ctx, true, func(q *queries) error { n, err = q.PruneVantages(ctx, before); return err })
	return n, err
}
