// Package outbox delivers the messages the incident engine (and later the
// failover engine) stored in the store's outbox table. Enqueueing happens in
// the same transaction as the state change that causes it, so a crash can
// neither lose a page nor invent one; delivery is at-least-once, strictly in
// order within a thread key, with exponential back-off and Retry-After.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/notify"
	"github.com/nsguard/nsguard/internal/notify/slack"
	"github.com/nsguard/nsguard/internal/notify/webhook"
	"github.com/nsguard/nsguard/internal/store"
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
	return q.Enqueue(ctx, store.OutboxMessage{CreatedAt: at, Kind: string(msg.Kind), Channel: msg.Channel, ThreadKey: msg.ThreadKey, Payload: payload})
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
	// Registerer receives the outbox metrics; nil registers none.
	Registerer prometheus.Registerer
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

// Dispatcher is the delivery loop. Run one per store: two dispatchers on
// one database would both send.
type Dispatcher struct {
	st      store.Store
	rcv     notify.Receiver
	logger  *slog.Logger
	now     func() time.Time
	backoff Backoff
	batch   int
	timeout time.Duration
	poll    time.Duration
	kick    chan struct{}
	metrics *metrics

	mu          sync.Mutex
	pausedUntil time.Time
	counters    Counters
}

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
	d := &Dispatcher{
		st: st, rcv: o.Receiver, now: o.Now, backoff: o.Backoff, batch: o.BatchSize,
		timeout: o.Timeout, poll: o.PollInterval, kick: make(chan struct{}, 1),
		logger: o.Logger.With("component", "outbox"),
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
			d.logger.Error("outbox pass failed; will retry", "err", err)
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

// Flush delivers every message due now, thread by thread in order, and
// returns when none is left due, delivery is paused by a rate limit, or ctx
// ends.
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
		rows, err := d.st.DueMessages(ctx, now, d.batch)
		if err != nil {
			return res, fmt.Errorf("outbox: %w", err)
		}
		if len(rows) == 0 {
			return res, nil
		}
		progressed := false
		for _, row := range rows {
			if ctx.Err() != nil || d.now().Before(d.PausedUntil()) {
				return res, nil
			}
			outcome, err := d.deliver(ctx, row)
			if err != nil {
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

type outcome int

const (
	delivered outcome = iota
	retried
	dead
)

func (d *Dispatcher) deliver(ctx context.Context, row store.OutboxMessage) (outcome, error) {
	// Record the outcome even when ctx is ending: the receiver may have
	// delivered, and forgetting that is how a restart pages twice.
	rec := context.WithoutCancel(ctx)
	attempts := row.Attempts + 1
	rcv := d.receiver()
	log := d.logger.With("receiver", rcv.Name(), "id", row.ID, "kind", row.Kind, "thread", row.ThreadKey, "attempt", attempts)

	msg, err := notify.Unmarshal(row.Payload)
	if err != nil {
		if err := d.st.MarkDead(rec, row.ID, attempts, d.now(), "corrupt payload: "+err.Error()); err != nil {
			return dead, fmt.Errorf("outbox: %w", err)
		}
		d.count(rcv, dead)
		log.Error("dead-lettered a message nsguard cannot decode", "err", err)
		return dead, nil
	}

	sendCtx, cancel := context.WithTimeout(rec, d.timeout)
	start := time.Now()
	retry, nerr := rcv.Notify(sendCtx, msg)
	cancel()
	d.metrics.observe(rcv.Name(), time.Since(start))
	now := d.now()

	switch {
	case nerr == nil:
		if err := d.st.MarkDelivered(rec, row.ID, attempts, now); err != nil {
			return delivered, fmt.Errorf("outbox: delivered message %d but cannot record it (it may be sent again): %w", row.ID, err)
		}
		d.count(rcv, delivered)
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
		if err := d.st.MarkRetry(rec, row.ID, attempts, now.Add(wait), nerr.Error()); err != nil {
			return retried, fmt.Errorf("outbox: %w", err)
		}
		d.count(rcv, retried)
		// Quiet on a long outage: the first failure and every tenth.
		if attempts == 1 || attempts%10 == 0 {
			log.Warn("delivery failed; will retry", "retry_in", wait.String(), "err", nerr)
		}
		return retried, nil
	default:
		if err := d.st.MarkDead(rec, row.ID, attempts, now, nerr.Error()); err != nil {
			return dead, fmt.Errorf("outbox: %w", err)
		}
		d.count(rcv, dead)
		log.Error("delivery failed and will not be retried: fix the receiver configuration", "domain", msg.Domain, "err", nerr)
		return dead, nil
	}
}

func (d *Dispatcher) count(rcv notify.Receiver, o outcome) {
	d.mu.Lock()
	switch o {
	case delivered:
		d.counters.Delivered++
	case retried:
		d.counters.Retried++
	case dead:
		d.counters.Dead++
	}
	d.mu.Unlock()
	d.metrics.count(rcv.Name(), o)
}
