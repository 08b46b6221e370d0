package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/health"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
)

// deadRecent: a message refused for good within this window, with nothing
// delivered since, means Slack refuses our configuration. (A message
// waiting Options.OutboxStuckAfter means the outbox is stuck; delivery
// failing Options.SlackFailingAfter with nothing delivered meanwhile means
// Slack is unreachable.)
const deadRecent = time.Hour

// newHealth builds the daemon's health monitor. Its Slack messages go
// straight through the receiver, never through the store, because the
// store may be what is broken.
func (d *Daemon) newHealth() error {
	h, err := health.New(health.Options{
		Logger: d.opts.Logger, Registerer: d.reg, Now: d.now, Repeat: d.opts.HealthRepeat,
		// On a cluster each replica speaks for itself, by its vantage name.
		Name: d.vantage,
		Notify: func(ctx context.Context, m *notify.Message) error {
			m.Channel = notify.Route(d.slackConfig(), m.Severity)
			_, err := d.out.Receiver().Notify(ctx, m)
			return err
		},
	})
	d.health = h
	return err
}

func (d *Daemon) slackConfig() config.Slack {
	cfg, _ := d.current()
	return cfg.Alerts.Slack
}

// checkStoreAtStart refuses to run on a damaged store: a daemon that
// cannot record what it sees must not look healthy.
func checkStoreAtStart(ctx context.Context, st store.Store, path string) error {
	sq, ok := st.(*store.SQLite)
	if !ok {
		return nil
	}
	res, err := sq.Check(ctx, false)
	if err != nil {
		return fmt.Errorf("checking the store %s: %w", path, err)
	}
	if !res.OK() {
		return fmt.Errorf("%w: %s fails SQLite's quick_check (%s). Restore the latest backup: stop nsguard, then "+
			"`nsguard store restore BACKUP` (backups: `nsguard store backup FILE`); or move the file aside to start "+
			"afresh and approve the baselines again. See docs/operations.md", store.ErrCorrupt, path, firstProblems(res.Problems, 3))
	}
	return nil
}

func firstProblems(ps []string, n int) string {
	if len(ps) > n {
		return strings.Join(ps[:n], "; ") + fmt.Sprintf("; and %d more", len(ps)-n)
	}
	return strings.Join(ps, "; ")
}

// storeTrouble turns a store error into the operator's words, running an
// integrity check when the error could be damage (unless the error is the
// integrity check's own: checked).
func (d *Daemon) storeTrouble(ctx context.Context, err error, checked bool) string {
	cfg, _ := d.current()
	where := cfg.Store.String()
	switch store.Classify(err) {
	case store.FaultFull:
		return fmt.Sprintf("cannot write to the store %s: the disk is full (%v)", where, err)
	case store.FaultReadOnly:
		return fmt.Sprintf("cannot write to the store %s: it is read-only (%v)", where, err)
	case store.FaultBusy:
		return fmt.Sprintf("the store %s stays locked by another process (%v)", where, err)
	}
	if !checked {
		if problem, cerr := d.integrityProblem(context.WithoutCancel(ctx)); cerr == nil && problem != "" {
			return problem
		}
	}
	return fmt.Sprintf("the store %s fails: %v", where, err)
}

// integrityProblem runs quick_check on a SQLite store and says what is
// damaged ("" when nothing is, or the store is not SQLite).
func (d *Daemon) integrityProblem(ctx context.Context) (string, error) {
	var st store.Store = d.st
	sq, ok := st.(*store.SQLite)
	if !ok {
		return "", nil
	}
	res, err := sq.Check(ctx, false)
	if err != nil || res.OK() {
		return "", err
	}
	cfg, _ := d.current()
	return fmt.Sprintf("the store %s is corrupt (quick_check: %s); restore a backup (nsguard store restore)", cfg.Store.String(), firstProblems(res.Problems, 2)), nil
}

// storeFailed records a store error seen by a cycle at once, not at the
// next health pass.
func (d *Daemon) storeFailed(ctx context.Context, err error) {
	d.health.Set(health.Store, d.storeTrouble(ctx, err, false))
}

// healthLoop checks every part of the daemon every HealthInterval.
func (d *Daemon) healthLoop(ctx context.Context) {
	d.checkHealth(ctx)
	t := time.NewTicker(d.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.checkHealth(ctx)
		}
	}
}

func (d *Daemon) checkHealth(ctx context.Context) {
	now := d.now()
	cfg, _ := d.current()

	// The store: a real write; now and then a read of every page; then
	// what the outbox says.
	storeProblem := ""
	if err := d.st.Heartbeat(ctx, d.out.Owner(), now, d.opts.Version); err != nil {
		if ctx.Err() != nil {
			return
		}
		storeProblem = d.storeTrouble(ctx, err, false)
	} else if now.Sub(d.lastIntegrity) >= d.opts.IntegrityInterval {
		d.lastIntegrity = now
		if problem, err := d.integrityProblem(ctx); err != nil && ctx.Err() == nil {
			storeProblem = d.storeTrouble(ctx, err, true)
		} else {
			storeProblem = problem
		}
	} else if !d.health.IsOK(health.Store) && strings.Contains(d.health.Problem(health.Store), "corrupt") {
		return // damage does not heal; only a restart on a restored file clears it
	}
	d.health.Set(health.Store, storeProblem)
	term, _ := d.currentTerm()
	if term == nil {
		// Delivery, Slack and registration are the leader's jobs: another
		// replica (or a probe) is not the one that cannot do them.
		for _, c := range []string{health.Outbox, health.Slack, health.Registration} {
			d.health.Set(c, "")
		}
	} else if st, err := d.st.OutboxStats(ctx); err == nil {
		problem := ""
		if st.Pending > 0 && !st.OldestPending.IsZero() && now.Sub(st.OldestPending) > d.opts.OutboxStuckAfter {
			problem = fmt.Sprintf("%d message(s) waiting, the oldest for %s", st.Pending, notify.Duration(now.Sub(st.OldestPending)))
			if ds := d.out.State(); ds.LastError != "" {
				problem += "; last error: " + ds.LastError
			}
		}
		d.health.Set(health.Outbox, problem)
	}

	// Slack: refusing for good, or failing for a while.
	if term != nil {
		ds := d.out.State()
		slackProblem := ""
		switch {
		case !ds.LastDead.IsZero() && ds.LastDead.After(ds.LastDelivered) && now.Sub(ds.LastDead) < deadRecent:
			slackProblem = fmt.Sprintf("Slack refuses nsguard's messages for good (%s): fix alerts.slack and reload", ds.LastError)
		case !ds.FailingSince.IsZero() && now.Sub(ds.FailingSince) > d.opts.SlackFailingAfter:
			slackProblem = fmt.Sprintf("no message delivered for %s: %s", notify.Duration(now.Sub(ds.FailingSince)), ds.LastError)
		}
		d.health.Set(health.Slack, slackProblem)
	}

	// Check classes: a successful cycle within twice the schedule's
	// interval (measured from start-up for the first one; for the
	// leader's registration cycle, from the start of its term).
	classes := map[string]string{checker.DNS: cfg.Schedules.Delegation}
	if term != nil {
		classes[checker.Registration] = cfg.Schedules.Registration
	}
	for class, spec := range classes {
		every := interval(spec, now)
		if every <= 0 {
			continue
		}
		d.mu.RLock()
		last := d.lastOK[class]
		d.mu.RUnlock()
		since := last
		if since.IsZero() {
			since = d.started
		}
		if class == checker.Registration && d.mode != single && term.start.After(since) {
			since = term.start
		}
		// Twice the interval, and never less than one interval and 30 s: a
		// cycle takes time, and a fast schedule must not flap.
		allowed := max(2*every, every+30*time.Second) + cfg.Schedules.Jitter.D()
		problem := ""
		if now.Sub(since) > allowed {
			what := "no successful cycle since nsguard started"
			if !last.IsZero() {
				what = "the last successful cycle ended " + notify.Duration(now.Sub(last)) + " ago"
			}
			problem = fmt.Sprintf("%s (%s, schedule %q)", what, class, spec)
		}
		d.health.Set(class, problem)
	}
}

// interval is a cron schedule's period near now.
func interval(spec string, now time.Time) time.Duration {
	s, err := config.CronParser.Parse(spec)
	if err != nil {
		return 0
	}
	first := s.Next(now)
	return s.Next(first).Sub(first)
}
