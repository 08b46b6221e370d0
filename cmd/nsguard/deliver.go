package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/outbox"
)

// deliverTimeout bounds how long a command waits for Slack to take what it
// enqueued before leaving the rest to the daemon.
const deliverTimeout = 30 * time.Second

// sender is a CLI command's outbox dispatcher: it claims what it sends, so
// a daemon delivering from the same store at the same time sends nothing
// twice.
func (g *globals) sender(cfg *config.Config, st store.Store) (*outbox.Dispatcher, error) {
	log := g.quietLogger()
	rcv, err := outbox.NewReceiver(cfg.Alerts.Slack, st, log)
	if err != nil {
		return nil, err
	}
	return outbox.New(st, outbox.Options{Receiver: rcv, Logger: log, PollInterval: 250 * time.Millisecond,
		Timeout: cfg.Alerts.DeliveryTimeout.D(), Lease: cfg.Alerts.ClaimLease.D()})
}

// sendDuring delivers from this process while a command works (a failover
// run posting its steps as they happen). The returned stop ends it and
// returns the IDs of the failover messages enqueued meanwhile, for deliver
// to wait on.
func (g *globals) sendDuring(ctx context.Context, cfg *config.Config, st store.Store) (stop func() []int64) {
	before, err := st.LastOutboxID(ctx)
	d, derr := g.sender(cfg, st)
	if err != nil || derr != nil {
		fmt.Fprintf(g.stderr, "nsguard: cannot deliver to Slack: %v (the messages stay in the outbox for the daemon)\n", errors.Join(err, derr))
		return func() []int64 { return nil }
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); d.Run(rctx) }()
	return func() []int64 {
		cancel()
		<-done
		var ids []int64
		for after := before; ; {
			ms, err := st.OutboxMessages(context.WithoutCancel(ctx), after, 500)
			if err != nil || len(ms) == 0 {
				return ids
			}
			for _, m := range ms {
				if m.Kind == string(notify.KindFailover) {
					ids = append(ids, m.ID)
				}
				after = m.ID
			}
		}
	}
}

// deliver sends the outbox messages ids from this process, beside a daemon
// or without one, and says on stderr what it could not send.
func (g *globals) deliver(ctx context.Context, cfg *config.Config, st store.Store, ids []int64) {
	if len(ids) == 0 {
		return
	}
	d, err := g.sender(cfg, st)
	if err != nil {
		fmt.Fprintf(g.stderr, "nsguard: cannot deliver to Slack: %v (the messages stay in the outbox for the daemon)\n", err)
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	pending, err := d.Wait(dctx, ids)
	switch {
	case err != nil:
		fmt.Fprintf(g.stderr, "nsguard: Slack delivery: %v; %d message(s) stay in the outbox for the daemon\n", err, pending)
	case pending > 0:
		fmt.Fprintf(g.stderr, "nsguard: Slack did not take %d of %d message(s) within %s; they stay in the outbox and the daemon retries them\n",
			pending, len(ids), deliverTimeout)
	}
}
