// Package outbox delivers the messages the incident engine and the
// failover engine stored in the store's outbox table. Enqueueing happens in
// the same transaction as the state change that causes it, so a crash can
// neither lose a page nor invent one. Every sender claims a message before
// sending it, so any number of processes (the daemon, a CLI command,
// replicas) share one outbox and each message is sent once; delivery is
// strictly in order within a thread key, with exponential back-off and
// Retry-After.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/slack"
	"github.com/nsguard/nsguard/notify/webhook"
)

// Enqueue stores msg for delivery. Pass the Queries of the transaction that
// changes the state the message reports, so both commit or neither does.
func Enqueue(ctx context.Context, q store.Queries, msg *notify.Message) (int64, error) {
	payload, err := msg.Marshal()
	if err != nil {
		return 0, fmt.Errorf("outbox: encode %s message for %s: %w", msg.Kind, msg.Domain, err)
	}
	at := msg.At
	if at.IsZero() {
		at = time.Now()
	}
	return q.Enqueue(ctx, store.OutboxMessage{CreatedAt: at, Kind: string(msg.Kind), Channel: msg.Channel, ThreadKey: msg.ThreadKey,
		IncidentID: msg.IncidentID, Payload: payload})
}

// NewReceiver builds the receiver alerts.slack configures: the bot (token),
// the incoming webhook, or, when neither is set, the log.
func NewReceiver(cfg config.Slack, st store.Store, logger *slog.Logger) (notify.Receiver, error) {
	switch {
	case cfg.TokenFile != "" || cfg.TokenEnv != "":
		return slack.FromConfig(cfg, st, logger)
	case cfg.WebhookURLFile != "" || cfg.WebhookURLEnv != "":
		return webhook.FromConfig(cfg, logger)
	}
	return notify.LogReceiver{Logger: logger.With("component", "alerts")}, nil
}

// Backoff is the wait before retry n (1-based): Initial·Factorⁿ⁻¹, capped
// at Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
}

// DefaultBackoff retries after 2s, 4s, 8s … and then every 5 minutes, so a
// Slack outage of an hour costs a dozen requests per pending thread.
var DefaultBackoff = Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute, Factor: 2}

// Delay is the wait after the attempt-th failure.
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(b.Initial) * math.Pow(b.Factor, float64(attempt-1))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// Options configure a Dispatcher.
type Options struct {
	Receiver notify.Receiver
	Logger   *slog.Logger
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now     func() time.Time
	Backoff Backoff
	// BatchSize is how many due messages one query fetches (default 50).
	BatchSize int
	// Timeout bounds one delivery (default 30s).
	Timeout time.Duration
	// PollInterval bounds the idle wait between passes (default 5s); Kick
	// wakes the loop sooner.
	PollInterval time.Duration
	// Owner names this sender in its claims (default host:pid:random).
	Owner string
	// Lease is how long a claim lasts (default 2×Timeout + 30s): a sender
	// killed while holding a claim delays that message by at most this.
	// It must outlast one delivery, or a slow send could be taken over and
	// sent twice.
	Lease time.Duration
	// Epoch returns the fencing token claims carry (the leader's epoch on
	// a cluster); nil means 0.
	Epoch func() int64
	// Fence, when set, is asked just before each send whether this sender
	// may still send (on a cluster: store.CheckFence, the leader's lease
	// read now). Slack cannot be fenced: a leader that paused holding a
	// claim must not send once another has taken over. An error leaves the
	// message claimed and unsent; its claim lapses and the leader takes it.
	Fence func(ctx context.Context) error
	// Registerer receives the outbox metrics; nil registers none.
	Registerer prometheus.Registerer
}

// DefaultOwner names this process: host, pid and a random suffix (a
// restarted process with a recycled pid is still a new owner).
func DefaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Counters are the dispatcher's totals since it started.
type Counters struct {
	Delivered uint64
	// Retried counts failed attempts that will be retried.
	Retried uint64
	// Dead counts messages dead-lettered (not retryable).
	Dead uint64
}

// Result is what one Flush did.
type Result struct {
	Delivered, Retried, Dead int
}

// Dispatcher is the delivery loop. Any number of dispatchers, in any number
// of processes, may share one store: each claims what it sends.
type Dispatcher struct {
	st      store.Store
	rcv     notify.Receiver
	logger  *slog.Logger
	now     func() time.Time
	backoff Backoff
	batch   int
	timeout time.Duration
	poll    time.Duration
	owner   string
	lease   time.Duration
	epoch   func() int64
	fence   func(ctx context.Context) error
	kick    chan struct{}
	metrics *metrics

	mu          sync.Mutex
	pausedUntil time.Time
	counters    Counters
	state       State
}

// State is how delivery has been going, for the daemon's health: when a
// message last went out, when one last failed and why.
type State struct {
	LastDelivered time.Time
	// LastFailed is the last failed attempt (retried or dead); FailingSince
	// is the first failure since the last delivery.
	LastFailed   time.Time
	FailingSince time.Time
	LastError    string
	// LastDead is when a message was last refused for good.
	LastDead time.Time
}

// State returns how delivery has been going.
func (d *Dispatcher) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Receiver is the receiver messages go to (the daemon's health sends its
// own messages straight through it, without the store).
func (d *Dispatcher) Receiver() notify.Receiver { return d.receiver() }

// New builds a Dispatcher.
func New(st store.Store, o Options) (*Dispatcher, error) {
	if st == nil || o.Receiver == nil {
		return nil, errors.New("outbox: a store and a receiver are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Backoff.Initial <= 0 || o.Backoff.Max <= 0 || o.Backoff.Factor < 1 {
		o.Backoff = DefaultBackoff
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Owner == "" {
		o.Owner = DefaultOwner()
	}
	if o.Lease <= 0 {
		o.Lease = 2*o.Timeout + 30*time.Second
	}
	if o.Lease <= o.Timeout {
		return nil, fmt.Errorf("outbox: a claim lease of %s does not outlast one delivery (timeout %s)", o.Lease, o.Timeout)
	}
	if o.Epoch == nil {
		o.Epoch = func() int64 { return 0 }
	}
	d := &Dispatcher{
		st: st, rcv: o.Receiver, now: o.Now, backoff: o.Backoff, batch: o.BatchSize,
		timeout: o.Timeout, poll: o.PollInterval, owner: o.Owner, lease: o.Lease, epoch: o.Epoch, fence: o.Fence,
		kick: make(chan struct{}, 1), logger: o.Logger.With("component", "outbox"),
	}
	m, err := newMetrics(o.Registerer, st)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	m.init(o.Receiver.Name())
	return d, nil
}

// SetReceiver replaces the receiver (config reload: a new token, channel
// or webhook). A delivery in flight finishes with the old one.
func (d *Dispatcher) SetReceiver(r notify.Receiver) {
	if r == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcv = r
	d.metrics.init(r.Name())
}

func (d *Dispatcher) receiver() notify.Receiver {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rcv
}

// Kick wakes Run to deliver now (call after enqueueing). Never blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Counters returns the totals since the dispatcher started.
func (d *Dispatcher) Counters() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counters
}

// PausedUntil is when a rate limit (Retry-After) lets delivery resume.
func (d *Dispatcher) PausedUntil() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pausedUntil
}

// Owner is the name this dispatcher claims messages under.
func (d *Dispatcher) Owner() string { return d.owner }

// Run delivers until ctx is done, then returns nil. A delivery in flight
// when ctx ends is finished and recorded (bounded by Timeout), so a clean
// shutdown never leaves a sent message marked pending: nothing is sent
// twice across a clean restart.
func (d *Dispatcher) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-d.kick:
		}
		wait := d.poll
		if _, err := d.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrFenced) {
				d.logger.Info("not delivering: this sender no longer leads", "err", err)
			} else {
				d.logger.Error("outbox pass failed; will retry", "err", err)
			}
		} else {
			wait = d.nextWait(ctx)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// nextWait is how long Run may sleep: until the next message is due or
// the rate-limit pause ends, at most PollInterval.
func (d *Dispatcher) nextWait(ctx context.Context) time.Duration {
	now := d.now()
	wait := d.poll
	if p := d.PausedUntil(); p.After(now) {
		return min(wait, p.Sub(now)+10*time.Millisecond)
	}
	st, err := d.st.OutboxStats(ctx)
	if err == nil && st.Pending > 0 && !st.NextAttempt.IsZero() {
		w := st.NextAttempt.Sub(now) + 10*time.Millisecond
		wait = min(wait, max(w, 10*time.Millisecond))
	}
	return wait
}

// Flush delivers every message due now that no other sender holds, thread
// by thread in order, and returns when none is left due, delivery is
// paused by a rate limit, or ctx ends.
func (d *Dispatcher) Flush(ctx context.Context) (Result, error) {
	var res Result
	for {
		if ctx.Err() != nil {
			return res, nil
		}
		now := d.now()
		if now.Before(d.PausedUntil()) {
			return res, nil
		}
		rows, err := d.st.ClaimDue(ctx, store.Claim{Owner: d.owner, Epoch: d.epoch(), Now: now, Until: now.Add(d.lease), Limit: d.batch})
		if err != nil {
			return res, fmt.Errorf("outbox: %w", err)
		}
		if len(rows) == 0 {
			return res, nil
		}
		progressed := false
		for i, row := range rows {
			if ctx.Err() != nil || d.now().Before(d.PausedUntil()) {
				// Hand back what this pass claimed and will not send now,
				// so another sender need not wait for the lease.
				d.release(rows[i:])
				return res, nil
			}
			outcome, err := d.deliver(ctx, row)
			if err != nil {
				d.release(rows[i+1:])
				return res, err
			}
			switch outcome {
			case delivered:
				res.Delivered++
				progressed = true
			case dead:
				res.Dead++
				progressed = true
			case retried:
				res.Retried++
			}
		}
		// Only delivered or dead-lettered heads let the next message of a
		// thread through; without them another query finds nothing new.
		if !progressed {
			return res, nil
		}
	}
}

// release gives back claims this dispatcher took and did not use: the
// message stays due, and the next pass (of any sender) takes it. A claim
// that cannot be released lapses after the lease.
func (d *Dispatcher) release(rows []store.OutboxMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, row := range rows {
		if err := d.st.MarkRetry(ctx, row.ID, d.owner, row.Attempts, row.NextAttemptAt, row.LastError); err != nil && !errors.Is(err, store.ErrClaimLost) {
			d.logger.Debug("cannot release a claim; it lapses after the lease", "id", row.ID, "err", err)
		}
	}
}

// Wait delivers until every message in ids is delivered or dead-lettered
// (by this sender or another), or ctx ends: a CLI command's way to send
// what it enqueued, beside a daemon or without one. It returns how many of
// ids are still pending when it stops.
func (d *Dispatcher) Wait(ctx context.Context, ids []int64) (pending int, err error) {
	// count reads the outbox as it is now, even after ctx ended: what is
	// returned is never older than the return.
	count := func() (int, error) {
		n := 0
		for _, id := range ids {
			m, err := d.st.OutboxMessage(context.WithoutCancel(ctx), id)
			if err != nil {
				return len(ids), fmt.Errorf("outbox: %w", err)
			}
			if m.DeliveredAt.IsZero() && m.DeadAt.IsZero() {
				n++
			}
		}
		return n, nil
	}
	for {
		if _, err := d.Flush(ctx); err != nil && ctx.Err() == nil {
			return len(ids), err
		}
		if pending, err = count(); err != nil || pending == 0 {
			return pending, err
		}
		if ctx.Err() != nil {
			return count() // ctx may have ended during the count: count again
		}
		wait := min(d.nextWait(ctx), 200*time.Millisecond)
		select {
		case <-ctx.Done():
			return count()
		case <-time.After(wait):
		case <-d.kick:
		}
	}
}

type outcome int

const (
	delivered outcome = iota
	retried
	dead
)

// lostClaim is logged when a sender finds its claim gone after sending:
// the lease was shorter than the delivery, and the message may go twice.
func (d *Dispatcher) lostClaim(log *slog.Logger, what string, err error) error {
	if errors.Is(err, store.ErrClaimLost) {
		log.Error("the message's claim lapsed during delivery and another sender took it: it may be sent twice; raise the outbox lease", "outcome", what)
		return nil
	}
	if errors.Is(err, store.ErrFenced) {
		// Said here, whatever the caller's context: a leader that lost the
		// leadership mid-delivery stops at once, and this is its last word
		// about the message.
		log.Warn("cannot record the delivery's outcome: this sender no longer leads; the leader takes the message over when its claim lapses, and looks in Slack before sending it again",
			"outcome", what, "err", err)
	}
	return fmt.Errorf("outbox: %w", err)
}

func (d *Dispatcher) deliver(ctx context.Context, row store.OutboxMessage) (outcome, error) {
	// Record the outcome even when ctx is ending: the receiver may have
	// delivered, and forgetting that is how a restart pages twice.
	rec := context.WithoutCancel(ctx)
	attempts := row.Attempts + 1
	rcv := d.receiver()
	log := d.logger.With("receiver", rcv.Name(), "id", row.ID, "kind", row.Kind, "thread", row.ThreadKey, "attempt", attempts)

	msg, err := notify.Unmarshal(row.Payload)
	if err != nil {
		if err := d.st.MarkDead(rec, row.ID, d.owner, attempts, d.now(), "corrupt payload: "+err.Error()); err != nil {
			return dead, d.lostClaim(log, "dead", err)
		}
		d.count(rcv, dead, "corrupt payload")
		log.Error("dead-lettered a message nsguard cannot decode", "err", err)
		return dead, nil
	}

	msg.OutboxID, msg.MaybeSent = row.ID, row.TakenOverFrom != ""
	if msg.MaybeSent {
		log.Info("taking over a message whose sender's claim lapsed; it may have been sent already", "from", row.TakenOverFrom)
	}
	if d.fence != nil {
		if err := d.fence(rec); err != nil {
			return retried, fmt.Errorf("outbox: not sending message %d: %w", row.ID, err)
		}
	}
	sendCtx, cancel := context.WithTimeout(rec, d.timeout)
	start := time.Now()
	retry, nerr := rcv.Notify(sendCtx, msg)
	cancel()
	d.metrics.observe(rcv.Name(), time.Since(start))
	now := d.now()

	switch {
	case nerr == nil:
		if err := d.st.MarkDelivered(rec, row.ID, d.owner, attempts, now); err != nil {
			if errors.Is(err, store.ErrClaimLost) || errors.Is(err, store.ErrFenced) {
				return delivered, d.lostClaim(log, "delivered", err)
			}
			return delivered, fmt.Errorf("outbox: delivered message %d but cannot record it (it may be sent again): %w", row.ID, err)
		}
		d.count(rcv, delivered, "")
		log.Debug("delivered", "domain", msg.Domain)
		return delivered, nil
	case retry:
		wait := notify.RetryAfter(nerr)
		if wait > 0 {
			// A rate limit is per app and method, not per thread: pause
			// every delivery, not just this message.
			d.mu.Lock()
			if until := now.Add(wait); until.After(d.pausedUntil) {
				d.pausedUntil = until
			}
			d.mu.Unlock()
		} else {
			wait = d.backoff.Delay(attempts)
		}
		if err := d.st.MarkRetry(rec, row.ID, d.owner, attempts, now.Add(wait), nerr.Error()); err != nil {
			return retried, d.lostClaim(log, "retry", err)
		}
		d.count(rcv, retried, nerr.Error())
		// Quiet on a long outage: the first failure and every tenth.
		if attempts == 1 || attempts%10 == 0 {
			log.Warn("delivery failed; will retry", "retry_in", wait.String(), "err", nerr)
		}
		return retried, nil
	default:
		if err := d.st.MarkDead(rec, row.ID, d.owner, attempts, now, nerr.Error()); err != nil {
			return dead, d.lostClaim(log, "dead", err)
		}
		d.count(rcv, dead, nerr.Error())
		log.Error("delivery failed and will not be retried: fix the receiver configuration", "domain", msg.Domain, "err", nerr)
		return dead, nil
	}
}

func (d *Dispatcher) count(rcv notify.Receiver, o outcome, why string) {
	now := d.now()
	d.mu.Lock()
	switch o {
	case delivered:
		d.counters.Delivered++
		d.state.LastDelivered, d.state.FailingSince = now, time.Time{}
	case retried:
		d.counters.Retried++
	case dead:
		d.counters.Dead++
		d.state.LastDead = now
	}
	if o != delivered {
		d.state.LastFailed, d.state.LastError = now, why
		if d.state.FailingSince.IsZero() {
			d.state.FailingSince = now
		}
	}
	d.mu.Unlock()
	d.metrics.count(rcv.Name(), o)
}
