// Package daemon is `nsguard daemon`: check classes on their cron
// schedules, observations and baseline diffs into the store, findings into
// incidents, incidents into the Slack outbox, /metrics, /healthz, /readyz,
// SIGHUP reloads and a draining SIGTERM. cmd/nsguard only parses flags and
// signals and calls Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/nsguard/nsguard/cluster"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/health"
	"github.com/nsguard/nsguard/internal/startcheck"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/outbox"
	"github.com/nsguard/nsguard/pages"
)

// Options configure Run.
type Options struct {
	// Config is the validated config to start with; ConfigPath is re-read
	// on every reload.
	Config     *config.Config
	ConfigPath string
	Logger     *slog.Logger
	// Reload receives a value for each SIGHUP.
	Reload <-chan struct{}
	// Notify receives service-manager states: "ready", "reloading",
	// "stopping" (sd_notify in production).
	Notify func(state string)
	// Drain bounds how long in-flight cycles may run after shutdown starts.
	Drain time.Duration
	// Listener replaces listening on cfg.Listen (tests use :0).
	Listener net.Listener
	// Checker options (tests pin registration lookups to loopback).
	CheckerOptions checker.Options
	// OutboxOptions tune delivery (tests shorten the backoff).
	OutboxOptions  outbox.Options
	Now            func() time.Time
	Version        string
	Commit         string
	TickInterval   time.Duration // incident repeats and silences (default 30s)
	PruneRetention time.Duration // history kept (default 30d)
	// HealthInterval is how often the daemon checks itself (default 10s);
	// HealthRepeat how often a part still down is said again in Slack
	// (default 1h).
	HealthInterval time.Duration
	HealthRepeat   time.Duration
	// OutboxStuckAfter (default 10m) and SlackFailingAfter (default 5m)
	// are when waiting messages and failing deliveries make the daemon
	// not ready.
	OutboxStuckAfter  time.Duration
	SlackFailingAfter time.Duration
	// IntegrityInterval is how often the SQLite store is quick_checked
	// while running (default 10m; it is also checked at start and after
	// any store error): damage in pages the cycles never read must not
	// wait for them.
	IntegrityInterval time.Duration
	// Probe runs `nsguard probe`: the DNS checks only, observations tagged
	// with cluster.vantage for the leader to judge, never leading. It needs
	// a PostgreSQL store.
	Probe bool
	// RecheckPoll is how often a replica asks the store for the leader's
	// recheck requests (default 500ms).
	RecheckPoll time.Duration
}

// Daemon is a running nsguard service.
type Daemon struct {
	// bload is the baselines load in progress, shared by the cycles that
	// ask meanwhile.
	bmu   sync.Mutex
	bload *baselineLoad
	opts  Options
	log   *slog.Logger
	// st is the store as it is: observations, heartbeats, reads. fst is
	// the same store fenced by the leader's epoch (store.Fenced): the
	// incident engine, the outbox and the Slack threads write through it,
	// so only the leader's writes land. On SQLite fst is st.
	st    store.Store
	fst   store.Store
	out   *outbox.Dispatcher
	eng   *incident.Engine
	reg   *prometheus.Registry
	m     *metrics
	now   func() time.Time
	ready atomic.Bool

	mu    sync.RWMutex // guards cfg, names, ck, sched
	cfg   *config.Config
	names map[string]bool // cfg's domains, canonical
	ck    *checker.Checker
	sched *cron.Cron
	// inventory orders recording a result against retiring a removed
	// domain: a reload retires under the write lock, so no result of a
	// cycle that started before it can reopen the domain's incidents.
	inventory sync.RWMutex

	ui    *pages.Pages       // nil when ui.enabled is false
	uiSrc *pages.StoreSource // what the pages read; nil-safe hooks

	health        *health.Monitor
	started       time.Time
	lastIntegrity time.Time            // health loop only
	lastOK        map[string]time.Time // class → end of its last successful cycle (under mu)

	contacts sync.Map // domain → contact sheet markdown (registration incidents)
	firstDNS atomic.Bool
	firstReg atomic.Bool
	jobs     map[string]cron.Job
	workCtx  context.Context

	// The cluster (see cluster.go): which role this process has, its
	// vantage name, its elector (replicas only) and the current term of
	// leadership (nil when it does not lead).
	mode    mode
	vantage string
	holder  string
	elector *cluster.Elector
	cm      *cluster.Metrics
	termMu  sync.Mutex
	term    *term
	termCh  chan struct{} // closed and replaced at every change of term
	liveMu  sync.Mutex
	live    map[string]bool // vantages alive, as last read
	liveAt  time.Time
	// unsettled collects, during the leader's DNS cycle, the domains to
	// check again from every vantage at once (see clusterRechecks).
	unsettledMu sync.Mutex
	unsettled   map[string]bool
}

// Run starts the daemon and blocks until ctx ends and the daemon has
// drained. An invalid config at start is an error before anything starts.
func Run(ctx context.Context, opts Options) error {
	d, err := start(ctx, opts)
	if err != nil {
		return err
	}
	return d.wait(ctx)
}

// Ready reports whether the first full cycle (DNS and registration) is done.
func (d *Daemon) Ready() bool { return d.ready.Load() }

func start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Config == nil {
		return nil, errors.New("daemon: no config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Drain == 0 {
		opts.Drain = 30 * time.Second
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = 30 * time.Second
	}
	if opts.PruneRetention == 0 {
		opts.PruneRetention = 30 * 24 * time.Hour
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = 10 * time.Second
	}
	if opts.IntegrityInterval == 0 {
		opts.IntegrityInterval = 10 * time.Minute
	}
	if opts.OutboxStuckAfter == 0 {
		opts.OutboxStuckAfter = 10 * time.Minute
	}
	if opts.SlackFailingAfter == 0 {
		opts.SlackFailingAfter = 5 * time.Minute
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	if opts.RecheckPoll == 0 {
		opts.RecheckPoll = 500 * time.Millisecond
	}
	cfg := opts.Config
	d := &Daemon{opts: opts, log: opts.Logger.With("component", "daemon"), now: opts.Now, cfg: cfg, names: domainNames(cfg),
		started: opts.Now(), lastOK: map[string]time.Time{}, termCh: make(chan struct{}), unsettled: map[string]bool{}}
	d.reg = prometheus.NewRegistry()
	d.m = newMetrics(d.reg, opts.Version, opts.Commit)
	if err := d.setupCluster(cfg); err != nil {
		return nil, err
	}
	so := store.Options{Logger: opts.Logger}
	if d.mode != single {
		// Every session of this replica carries its name: a replica taking
		// over from this one, paused, ends exactly these.
		so.ApplicationName = store.SessionName(d.holder)
	}
	st, err := store.OpenConfig(ctx, cfg.Store, so)
	if err != nil {
		return nil, fmt.Errorf("opening the store %s: %w", cfg.Store, err)
	}
	d.st = st
	if err := checkStoreAtStart(ctx, st, cfg.Store.Path); err != nil {
		st.Close()
		return nil, err
	}
	// The start check read every page: the health loop's first integrity
	// pass is due an interval from now, not at once.
	d.lastIntegrity = d.now()
	if err := d.startCluster(st); err != nil {
		st.Close()
		return nil, err
	}
	rcv, err := outbox.NewReceiver(cfg.Alerts.Slack, d.fst, opts.Logger)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("alerts: %w", err)
	}
	oo := opts.OutboxOptions
	oo.Receiver, oo.Logger, oo.Registerer = rcv, opts.Logger, d.reg
	if d.mode != single {
		// Claims name the replica, carry its epoch, and every send asks the
		// lease first.
		oo.Owner, oo.Epoch = d.holder, d.epoch
		oo.Fence = func(ctx context.Context) error { return store.CheckFence(ctx, d.fst) }
	}
	if oo.Timeout == 0 {
		oo.Timeout = cfg.Alerts.DeliveryTimeout.D()
	}
	if oo.Lease == 0 {
		oo.Lease = cfg.Alerts.ClaimLease.D()
	}
	if d.out, err = outbox.New(d.fst, oo); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.newHealth(); err != nil {
		st.Close()
		return nil, err
	}
	if d.eng, err = incident.New(d.fst, incident.Options{Policy: d.policy(cfg), Logger: opts.Logger, Registerer: d.reg, OnEnqueue: d.out.Kick, Now: opts.Now}); err != nil {
		st.Close()
		return nil, err
	}
	co := opts.CheckerOptions
	co.Logger, co.Now = opts.Logger, opts.Now
	if d.ck, err = checker.New(cfg, co); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.newPages(cfg); err != nil {
		d.ck.Close()
		st.Close()
		return nil, err
	}
	return d, nil
}

// policy is the incident policy for cfg. Registration findings confirm at
// once: the registration cycle runs every few hours, a registry answer is
// already smoothed by the registry client's fallback to its cached record,
// and a transfer or a removed lock must not wait a second cycle to page.
// Contact sheets come from the registration cycle.
func (d *Daemon) policy(cfg *config.Config) incident.Policy {
	p := incident.PolicyFromConfig(cfg)
	p.ConfirmationsByClass = map[string]int{checker.Registration: 1}
	p.ContactSheet = func(domain string) string {
		if v, ok := d.contacts.Load(domain); ok {
			return v.(string)
		}
		return ""
	}
	return p
}

// wait serves until ctx ends, then drains.
func (d *Daemon) wait(ctx context.Context) error {
	defer d.st.Close()
	defer d.ck.Close()

	ln := d.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", d.cfg.Listen); err != nil {
			return fmt.Errorf("listening on %s: %w", d.cfg.Listen, err)
		}
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "err", err)
		}
	}()
	d.log.Info("nsguard daemon started", "listen", ln.Addr().String(), "domains", len(d.cfg.Domains),
		"store", d.cfg.Store.String(), "version", d.opts.Version)

	// Cycles run on workCtx: on shutdown it outlives ctx by the drain
	// period, so a cycle in flight can finish and record what it saw.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d.workCtx = workCtx

	// The delivery loop has its own context: at shutdown it stops first,
	// finishing and recording the delivery in flight, and only then does
	// one last flush send what the final cycles enqueued. One sender at a
	// time in this process; the outbox's claims keep other processes out.
	// It delivers only while this process leads.
	outCtx, cancelOut := context.WithCancel(workCtx)
	defer cancelOut()
	outDone := make(chan struct{})
	go func() { defer close(outDone); d.deliverLoop(outCtx) }()

	// The leadership outlives the drain and the last flush: a replica
	// resigns only once its final writes are in.
	electCtx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElect()
	leadDone := d.campaign(electCtx)

	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); d.tickLoop(workCtx) }()
	go func() { defer bg.Done(); d.healthLoop(workCtx) }()
	go func() { defer bg.Done(); d.recheckLoop(workCtx) }()

	d.schedule()
	d.opts.Notify("ready")
	// The first full cycle runs now, not at the first cron tick; cron's Stop
	// does not know these runs, so shutdown waits for them itself. On a
	// cluster the registration cycle is the leader's, which runs it when
	// it is due (catchUp).
	var first sync.WaitGroup
	classes := []string{checker.DNS}
	if d.mode == single {
		classes = append(classes, checker.Registration)
	}
	for _, class := range classes {
		first.Add(1)
		go func() { defer first.Done(); d.jobs[class].Run() }()
	}

	for {
		select {
		case <-ctx.Done():
			d.opts.Notify("stopping")
			d.log.Info("shutting down: draining cycles", "drain", d.opts.Drain)
			d.mu.RLock()
			stopped := d.sched.Stop()
			d.mu.RUnlock()
			drained := make(chan struct{})
			go func() { <-stopped.Done(); first.Wait(); close(drained) }()
			select {
			case <-drained:
			case <-time.After(d.opts.Drain):
				d.log.Warn("cycles still running after the drain period; cancelling them")
			}
			cancelOut()
			<-outDone
			// Give the outbox a moment to send what the last cycle enqueued.
			if d.leading() {
				flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := d.out.Flush(flushCtx); err != nil {
					d.log.Warn("final outbox flush", "err", err)
				}
				cancel()
			}
			cancelElect()
			<-leadDone
			cancelWork()
			bg.Wait()
			shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(shutCtx)
			cancelShut()
			d.log.Info("nsguard daemon stopped")
			return nil
		case <-d.opts.Reload:
			d.reload()
		}
	}
}

// schedule (re)builds the cron scheduler for the current config.
func (d *Daemon) schedule() {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg
	c := cron.New(cron.WithParser(config.CronParser))
	// One job per class for the daemon's life: SkipIfStillRunning then holds
	// across reloads and for the first cycle, which runs the same job. The
	// registration and audit cycles are the leader's: on another replica
	// they do nothing, and they stop when the leadership is lost.
	wrap := func(class string, leaderOnly bool, f func(context.Context)) cron.Job {
		return cron.NewChain(cron.Recover(cronLogger{d.log}), cron.SkipIfStillRunning(cronLogger{d.log})).Then(cron.FuncJob(func() {
			ctx := d.workCtx
			if leaderOnly {
				lctx, cancel, ok := d.leaderContext(d.workCtx)
				if !ok {
					d.log.Debug("not leading: the cycle is the leader's", "class", class)
					return
				}
				defer cancel()
				ctx = lctx
			}
			cfg, _ := d.current()
			if jitter := cfg.Schedules.Jitter.D(); jitter > 0 {
				select {
				case <-time.After(rand.N(jitter)):
				case <-ctx.Done():
					return
				}
			}
			f(ctx)
		}))
	}
	if d.jobs == nil {
		d.jobs = map[string]cron.Job{
			checker.DNS:          wrap(checker.DNS, false, d.dnsCycle),
			checker.Registration: wrap(checker.Registration, true, d.registrationCycle),
			"audit":              wrap("audit", true, d.auditCycle),
		}
	}
	for class, spec := range map[string]string{
		checker.DNS: cfg.Schedules.Delegation, checker.Registration: cfg.Schedules.Registration, "audit": cfg.Schedules.Audit,
	} {
		if _, err := c.AddJob(spec, d.jobs[class]); err != nil {
			d.log.Error("cannot schedule", "class", class, "spec", spec, "err", err) // validated at load: unreachable
		}
	}
	d.sched = c
	c.Start()
}

// reload re-reads the config; an invalid one is refused and the old one
// keeps running.
func (d *Daemon) reload() {
	d.opts.Notify("reloading")
	defer d.opts.Notify("ready")
	cfg, err := config.Load(d.opts.ConfigPath)
	if err == nil {
		// What `nsguard config check` checks: the files it names (a token,
		// a TSIG key) are there and readable.
		if errs := startcheck.Check(cfg); len(errs) > 0 {
			err = errs
		}
	}
	if err != nil {
		d.m.reloads.WithLabelValues("refused").Inc()
		d.log.Error("config reload refused; the running config stays", "file", d.opts.ConfigPath, "err", err)
		return
	}
	d.mu.RLock()
	old := d.cfg
	d.mu.RUnlock()
	if cfg.Store != old.Store || cfg.Listen != old.Listen || cfg.UI != old.UI || cfg.Cluster != old.Cluster {
		d.log.Warn("store, listen, ui and cluster changes take effect at the next restart", "store", cfg.Store.String(), "listen", cfg.Listen)
		cfg.Store, cfg.Listen, cfg.UI, cfg.Cluster = old.Store, old.Listen, old.UI, old.Cluster
	}
	co := d.opts.CheckerOptions
	co.Logger, co.Now = d.opts.Logger, d.opts.Now
	ck, err := checker.New(cfg, co)
	if err != nil {
		d.m.reloads.WithLabelValues("refused").Inc()
		d.log.Error("config reload refused", "err", err)
		return
	}
	rcv, err := outbox.NewReceiver(cfg.Alerts.Slack, d.fst, d.opts.Logger)
	if err != nil {
		ck.Close()
		d.m.reloads.WithLabelValues("refused").Inc()
		d.log.Error("config reload refused: alerts", "err", err)
		return
	}
	if err := d.eng.SetPolicy(d.policy(cfg)); err != nil {
		ck.Close()
		d.m.reloads.WithLabelValues("refused").Inc()
		d.log.Error("config reload refused: incidents", "err", err)
		return
	}
	d.out.SetReceiver(rcv)
	d.mu.Lock()
	oldSched, oldCk := d.sched, d.ck
	d.cfg, d.ck, d.names = cfg, ck, domainNames(cfg)
	d.mu.Unlock()
	// A cycle in flight finishes with the old checker; close it after.
	stopped := oldSched.Stop()
	go func() { <-stopped.Done(); oldCk.Close() }()
	d.schedule()
	// Domains no longer in the inventory: close their incidents (the
	// leader's to do; on a cluster every replica reloads the same file).
	d.inventory.Lock()
	for _, dom := range old.Domains {
		if !d.inInventory(dom.Name) && d.leading() {
			reason := fmt.Sprintf("%s was removed from the inventory (config %s); nsguard no longer watches it", dom.Name, d.opts.ConfigPath)
			if _, err := d.eng.Retire(d.workCtx, dom.Name, reason); err != nil {
				d.log.Error("retiring a removed domain", "domain", dom.Name, "err", err)
			}
		}
	}
	d.inventory.Unlock()
	d.m.reloads.WithLabelValues("applied").Inc()
	d.log.Info("config reloaded", "file", d.opts.ConfigPath, "domains", len(cfg.Domains))
}

func domainNames(cfg *config.Config) map[string]bool {
	m := make(map[string]bool, len(cfg.Domains))
	for _, dom := range cfg.Domains {
		m[config.CanonicalName(dom.Name)] = true
	}
	return m
}

// inInventory reports whether the running config watches domain.
func (d *Daemon) inInventory(domain string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.names[config.CanonicalName(domain)]
}

// current returns the config and checker for a cycle.
func (d *Daemon) current() (*config.Config, *checker.Checker) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg, d.ck
}

// tickLoop drives repeats, silences that ended and daily pruning, while
// this process leads.
func (d *Daemon) tickLoop(ctx context.Context) {
	t := time.NewTicker(d.opts.TickInterval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lctx, cancel, ok := d.leaderContext(ctx)
			if !ok {
				continue
			}
			if _, err := d.eng.Tick(lctx); err != nil && lctx.Err() == nil && !errors.Is(err, store.ErrFenced) {
				d.log.Error("incident tick", "err", err)
			}
			if now := d.now(); now.Sub(lastPrune) > 24*time.Hour {
				lastPrune = now
				if _, err := d.fst.Prune(lctx, now.Add(-d.opts.PruneRetention)); err != nil && lctx.Err() == nil {
					d.log.Error("pruning the store", "err", err)
				}
				if d.mode != single {
					if n, err := d.fst.PruneVantages(lctx, now.Add(-vantageRetention)); err != nil && lctx.Err() == nil {
						d.log.Error("pruning vantages that stopped reporting", "err", err)
					} else if n > 0 {
						d.log.Info("pruned the observations of vantages that stopped reporting", "rows", n, "silent_for", vantageRetention.String())
					}
				}
			}
			cancel()
		}
	}
}

type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
