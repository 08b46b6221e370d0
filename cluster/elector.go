package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// Holder names one process for the leadership: its vantage and a random
// suffix, so a restarted replica is a new holder (its predecessor's
// sessions can be told from its own).
func Holder(vantage string) string {
	b := make([]byte, 3)
	_, _ = crand.Read(b)
	return vantage + "/" + hex.EncodeToString(b)
}

// ElectorOptions configure an Elector.
type ElectorOptions struct {
	Store *store.Postgres
	// Holder names this process (Holder(vantage)); the store's sessions
	// should be named store.SessionName(Holder) too.
	Holder string
	// Lease is cluster.lease.
	Lease   time.Duration
	Logger  *slog.Logger
	Metrics *Metrics
}

// Elector campaigns for the leadership of the replicas sharing one
// PostgreSQL database and runs the leader's work while it holds it.
//
// The leadership is a session-scoped advisory lock held on a dedicated
// connection, and the leader_lease row with an epoch bumped on every
// takeover (store.LeaderSession). A candidate tries every lease/3; the
// leader renews its lease every lease/3 and watches its connection in
// between; the moment the connection is lost or a renewal fails — the
// database is down, the row names another epoch — it steps down: Epoch
// reads 0 at once (so the fenced store refuses the leader's writes from
// then on) and the leader's context is cancelled. A leader killed outright loses its connection, and with it
// the lock, at once: the next candidate's try takes over, within lease/3.
// A leader paused (SIGSTOP) keeps its session but stops renewing: once its
// lease has lapsed a candidate ends the paused leader's sessions and takes
// over, within 2 × lease; when the paused one resumes, its first write is
// refused by the fence and its next renewal fails.
type Elector struct {
	o     ElectorOptions
	log   *slog.Logger
	every time.Duration

	epoch atomic.Int64
	mu    sync.Mutex
	seen  store.LeaderLease // the lease as last read
	err   string            // why the last try failed ("" when it did not)
}

// NewElector checks o and builds an Elector.
func NewElector(o ElectorOptions) (*Elector, error) {
	if o.Store == nil || o.Holder == "" {
		return nil, errors.New("cluster: an elector needs a PostgreSQL store and a holder name")
	}
	if o.Lease < 3*time.Second {
		return nil, fmt.Errorf("cluster: a lease of %s is too short (at least 3s)", o.Lease)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Elector{o: o, log: o.Logger.With("component", "cluster", "holder", o.Holder), every: o.Lease / 3}, nil
}

// Holder is this process's name for the leadership.
func (e *Elector) Holder() string { return e.o.Holder }

// Epoch is the epoch this process leads at, or 0 when it does not lead:
// the fenced store's epoch function.
func (e *Elector) Epoch() int64 { return e.epoch.Load() }

// Leading reports whether this process leads.
func (e *Elector) Leading() bool { return e.Epoch() > 0 }

// Lease is the leadership row as this process last read it, and why its
// last try at the database failed ("" if it did not).
func (e *Elector) Lease() (store.LeaderLease, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen, e.err
}

func (e *Elector) note(l store.LeaderLease, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.err = err.Error()
		return
	}
	e.seen, e.err = l, ""
}

// Run campaigns until ctx ends. Each time this process becomes leader it
// calls lead with a context that ends when it stops leading (Epoch is 0
// by then) and the epoch it leads at; lead must return soon after its
// context ends, and Run waits for it before campaigning again. When ctx
// ends while leading, Run cancels lead's context, waits for it, then
// resigns (the lease ends now and the lock is released), so another
// replica takes over at its next try instead of after the lease.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, epoch int64)) {
	failing := ""
	for ctx.Err() == nil {
		sess, err := e.o.Store.LeaderSession(ctx, e.o.Holder, e.every)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.note(store.LeaderLease{}, err)
			if err.Error() != failing {
				e.log.Warn("cannot reach the database to campaign for the leadership; trying again", "err", err)
				failing = err.Error()
			}
			e.sleep(ctx)
			continue
		}
		if failing != "" {
			e.log.Info("reached the database again")
			failing = ""
		}
		e.campaign(ctx, sess, lead)
		sess.Close()
	}
}

// sleep waits lease/3, give or take a tenth, so candidates that started
// together do not keep trying in step.
func (e *Elector) sleep(ctx context.Context) {
	d := e.every - e.every/10 + rand.N(e.every/5+1)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// campaign tries for the leadership on sess until it leads (then leads
// until it steps down) or sess fails; either way the caller opens a new
// session, so a lock this one may still hold goes with it.
func (e *Elector) campaign(ctx context.Context, sess *store.LeaderSession, lead func(context.Context, int64)) {
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(ctx, e.every)
		l, ok, err := sess.TryLead(tctx, e.o.Holder, e.o.Lease)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				e.note(l, err)
				e.log.Warn("trying for the leadership failed; reconnecting", "err", err)
			}
			return
		}
		e.note(l, nil)
		if ok {
			e.lead(ctx, sess, l, lead)
			return
		}
		e.sleep(ctx)
	}
}

func (e *Elector) lead(ctx context.Context, sess *store.LeaderSession, l store.LeaderLease, lead func(context.Context, int64)) {
	// Not derived from ctx: lead's context ends only after Epoch reads 0,
	// shutdown included.
	leadCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	e.epoch.Store(l.Epoch)
	e.o.Metrics.SetRole(true, l.Epoch)
	if e.o.Metrics != nil {
		e.o.Metrics.elections.Inc()
	}
	e.log.Info("leading", "epoch", l.Epoch, "lease", e.o.Lease.String())
	done := make(chan struct{})
	// workCtx ends with ctx, or when the leader's work returns on its own.
	workCtx, workEnded := context.WithCancel(ctx)
	defer workEnded()
	go func() { defer close(done); defer workEnded(); lead(leadCtx, l.Epoch) }()

	var why error
	lostConn := false
	next := time.Now().Add(e.every)
	for why == nil {
		// Between renewals, watch the connection: losing it loses the
		// lock, and the leader steps down at once, not at its next renewal.
		wctx, cancel := context.WithDeadline(workCtx, next)
		lost := sess.Watch(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			why = context.Cause(ctx)
		case workCtx.Err() != nil:
			why = errors.New("the leader's work ended")
		case lost != nil:
			why, lostConn = lost, true
			e.note(store.LeaderLease{}, lost)
		default:
			next = time.Now().Add(e.every)
			rctx, cancel := context.WithTimeout(ctx, e.every)
			nl, err := sess.Renew(rctx, e.o.Holder, l.Epoch, e.o.Lease)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // shutting down: the next pass says so
				}
				why = err
				e.note(nl, err)
				break
			}
			e.note(nl, nil)
		}
	}
	// Fence first: from here every write of the leader's is refused in
	// this process, whatever its goroutines are doing.
	e.epoch.Store(0)
	e.o.Metrics.SetRole(false, 0)
	stop()
	if ctx.Err() != nil {
		e.log.Info("stepping down: shutting down", "epoch", l.Epoch)
	} else if lostConn {
		e.log.Warn("stepped down: lost the connection to the database (and the lock with it)", "epoch", l.Epoch, "err", why)
	} else {
		e.log.Warn("stepped down: the lease could not be renewed", "epoch", l.Epoch, "err", why)
	}
	<-done
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.every)
		if err := sess.Resign(rctx, e.o.Holder, l.Epoch); err != nil {
			e.log.Warn("could not hand the leadership over; another replica takes it when the lease lapses", "err", err)
		}
		cancel()
	}
}
