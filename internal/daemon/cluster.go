package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/cluster"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

// mode is the part this process plays.
type mode int

const (
	// single: a SQLite store, one daemon, always the leader at epoch 0;
	// its observations carry no vantage. Exactly the daemon before there
	// were clusters.
	single mode = iota
	// replica: one of the daemons sharing a PostgreSQL store; it checks
	// as a vantage point and campaigns for the leadership.
	replica
	// probe: `nsguard probe`, a vantage point that never leads.
	probe
)

func (m mode) String() string {
	return [...]string{"single node", "replica", "probe"}[m]
}

// vantageRetention: the observations of a vantage silent this long (a
// replaced pod, a retired probe) are pruned by the leader.
const vantageRetention = 24 * time.Hour

// term is one stretch of leadership: its context ends when it does.
type term struct {
	ctx   context.Context
	epoch int64
	start time.Time
}

// setupCluster decides the mode and the vantage's name from the config,
// before the store opens (its sessions carry the name).
func (d *Daemon) setupCluster(cfg *config.Config) error {
	cm, err := cluster.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	d.cm = cm
	switch {
	case d.opts.Probe && !cfg.Store.Postgres():
		return errors.New("nsguard probe needs a PostgreSQL store (store.url, store.url_file or store.url_env): it writes its observations for a leader elsewhere to judge")
	case d.opts.Probe:
		d.mode = probe
	case cfg.Store.Postgres():
		d.mode = replica
	default:
		d.mode = single
		return nil
	}
	d.vantage = cfg.Cluster.Vantage
	if d.vantage == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("cluster.vantage is not set and the host name is unknown: %w", err)
		}
		d.vantage = vantageFromHost(host)
	}
	d.holder = cluster.Holder(d.vantage)
	return nil
}

var notVantage = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// vantageFromHost makes a host name a vantage name: the first label of a
// long FQDN kept, other characters replaced, 40 at most.
func vantageFromHost(host string) string {
	v := notVantage.ReplaceAllString(host, "-")
	v = strings.TrimLeft(v, "._-")
	if len(v) > 40 {
		if i := strings.IndexByte(v, '.'); i > 0 && i <= 40 {
			v = v[:i]
		} else {
			v = v[:40]
		}
	}
	if !config.VantageName(v) {
		return "vantage"
	}
	return v
}

// startCluster fences the store and builds the elector (replicas).
func (d *Daemon) startCluster(st store.Store) error {
	d.fst = st
	if d.mode == single {
		return nil
	}
	pg, ok := st.(*store.Postgres)
	if !ok {
		return fmt.Errorf("a cluster needs a PostgreSQL store, not %T", st)
	}
	d.fst = store.Fenced(st, d.holder, d.epoch)
	if d.mode == replica {
		cfg, _ := d.current()
		el, err := cluster.NewElector(cluster.ElectorOptions{Store: pg, Holder: d.holder, Lease: cfg.Cluster.Lease.D(),
			Logger: d.opts.Logger, Metrics: d.cm})
		if err != nil {
			return err
		}
		d.elector = el
	}
	d.log.Info("joining the cluster", "role", d.mode.String(), "vantage", d.vantage, "holder", d.holder)
	return nil
}

// campaign runs the leadership for the daemon's life and returns a
// channel closed when it has ended (after resigning). A single node leads
// from the start until ctx ends; a probe never leads.
func (d *Daemon) campaign(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	switch d.mode {
	case single:
		d.cm.SetRole(true, 0)
		// Leading before the first cycles start, which are the leader's.
		d.setTerm(&term{ctx: ctx, start: d.now()})
		go func() {
			defer close(done)
			<-ctx.Done()
			d.setTerm(nil)
		}()
	case replica:
		go func() { defer close(done); d.elector.Run(ctx, d.lead) }()
	default:
		close(done)
	}
	return done
}

// lead is one term: the leader's loops (delivery, ticks) follow the term
// through leaderContext; a new leader catches up on a registration cycle
// that is due.
func (d *Daemon) lead(ctx context.Context, epoch int64) {
	d.setTerm(&term{ctx: ctx, epoch: epoch, start: d.now()})
	if d.mode == replica {
		go d.catchUp(ctx)
	}
	<-ctx.Done()
	d.setTerm(nil)
}

func (d *Daemon) setTerm(t *term) {
	d.termMu.Lock()
	defer d.termMu.Unlock()
	d.term = t
	close(d.termCh)
	d.termCh = make(chan struct{})
}

// currentTerm returns the term in force (nil when not leading) and a
// channel closed when that changes.
func (d *Daemon) currentTerm() (*term, <-chan struct{}) {
	d.termMu.Lock()
	defer d.termMu.Unlock()
	return d.term, d.termCh
}

// leading reports whether this process leads now.
func (d *Daemon) leading() bool {
	t, _ := d.currentTerm()
	return t != nil && t.ctx.Err() == nil
}

// epoch is the fencing token of the fenced store: the elector's, 0 when
// not leading.
func (d *Daemon) epoch() int64 {
	if d.elector == nil {
		return 0
	}
	return d.elector.Epoch()
}

// leaderContext returns parent, ended also when the term in force ends;
// false when this process does not lead.
func (d *Daemon) leaderContext(parent context.Context) (context.Context, context.CancelFunc, bool) {
	t, _ := d.currentTerm()
	if t == nil || t.ctx.Err() != nil {
		return nil, func() {}, false
	}
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(t.ctx, cancel)
	return ctx, func() { stop(); cancel() }, true
}

// deliverLoop runs the outbox's delivery loop during each term.
func (d *Daemon) deliverLoop(ctx context.Context) {
	for ctx.Err() == nil {
		t, changed := d.currentTerm()
		if t == nil || t.ctx.Err() != nil {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(t.ctx, cancel)
		_ = d.out.Run(lctx)
		stop()
		cancel()
	}
}

// catchUp runs the registration cycle at the start of a term when the
// last one (whoever led then) is older than its schedule's interval.
func (d *Daemon) catchUp(ctx context.Context) {
	cfg, _ := d.current()
	last, err := d.st.LastObserved(ctx, checker.Registration)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading when registration was last checked", "err", err)
		}
		return
	}
	every := interval(cfg.Schedules.Registration, d.now())
	if !last.IsZero() && d.now().Sub(last) < every {
		d.log.Info("registration checked recently by the previous leader; next at its schedule", "last", last.UTC().Format(time.RFC3339))
		return
	}
	d.jobs[checker.Registration].Run()
}

// panel is the leader's view of the DNS checks across vantages: a vantage
// counts while it reported within the interval the health check allows a
// cycle, and its process is alive.
func (d *Daemon) panel(ctx context.Context, cfg *config.Config) cluster.Panel {
	every := interval(cfg.Schedules.Delegation, d.now())
	window := max(2*every, every+30*time.Second) + cfg.Schedules.Jitter.D()
	live := d.liveVantages(ctx)
	return cluster.Panel{Store: d.st, Class: checker.DNS, Window: window, Quorum: cfg.Alerts.Quorum,
		Live: func(v string) bool { return v == d.vantage || live[v] }}
}

// judge is the leader's step after a domain's reports changed: the panel's
// verdict goes to the incident engine (and the changes history). In a
// recheck round (fresh set) only the reports made since the request vote.
// ok is
// false when no vantage could check the domain or the verdict could not
// be recorded.
func (d *Daemon) judge(ctx context.Context, domain string, at time.Time, changed bool, fresh time.Time) bool {
	cfg, _ := d.current()
	v, err := d.panel(ctx, cfg).Judge(ctx, domain, d.now(), fresh)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading the vantages' reports", "domain", domain, "err", err)
			d.storeFailed(ctx, err)
		}
		return false
	}
	if v.Checked == 0 {
		// Nobody could check: no verdict, so nothing clears.
		d.cm.Verdict(v)
		return false
	}
	if v.Unsettled {
		// Some vantages have not looked since another saw a change: ask
		// them all to look now (the cycle's first recheck round).
		d.unsettledMu.Lock()
		d.unsettled[domain] = true
		d.unsettledMu.Unlock()
		return true
	}
	d.cm.Verdict(v)
	if changed {
		d.recordChange(ctx, checker.DNS, domain, at, v.Findings)
	}
	if _, err := d.eng.Process(ctx, domain, checker.DNS, v.Findings); err != nil {
		switch {
		case errors.Is(err, store.ErrFenced):
			d.log.Info("not recording a verdict: this replica no longer leads", "domain", domain, "err", err)
		case ctx.Err() == nil:
			d.log.Error("processing findings", "domain", domain, "err", err)
			d.storeFailed(ctx, err)
		}
		return false
	}
	return true
}

// clusterRechecks is the leader's end of a DNS cycle on a cluster: every
// vantage checks some domains again together — the leader writes a
// recheck request due at a time, every vantage checks then, and the
// leader judges once each live vantage has reported since, or at a
// deadline, with those fresh reports only. First, at once, the domains
// whose verdict was unsettled (the vantages disagreed and some had not
// looked since another saw a change: a hijack seen a moment ago by one of
// them). Then, after alerts.recheck, the domains with findings not yet
// confirmed (or cleared), as a single node rechecks them; rounds go on
// while some remain, up to confirmations + 1.
func (d *Daemon) clusterRechecks(ctx context.Context, cfg *config.Config, ck *checker.Checker, bases map[string]*baseline.State) map[string]map[[2]string]int {
	counts := map[string]map[[2]string]int{}
	wait := cfg.Alerts.Recheck.D()
	d.unsettledMu.Lock()
	var unsettled []config.Domain
	for n := range d.unsettled {
		if dom, ok := cfg.Domain(n); ok {
			unsettled = append(unsettled, dom)
		}
	}
	d.unsettled = map[string]bool{}
	d.unsettledMu.Unlock()
	for round := 0; round <= cfg.Alerts.Confirmations+1 && ctx.Err() == nil; round++ {
		doms, delay := unsettled, time.Duration(0)
		if round > 0 || len(unsettled) == 0 {
			if wait <= 0 {
				break
			}
			doms, delay = d.unconfirmed(ctx, cfg), wait
		}
		if len(doms) == 0 {
			break
		}
		// In milliseconds, as the store keeps times: a report made in the
		// same millisecond as the request is not older than it.
		due := d.now().Add(delay).Truncate(time.Millisecond)
		names := make([]string, len(doms))
		for i, dom := range doms {
			names[i] = config.CanonicalName(dom.Name)
		}
		if err := d.fst.RequestRechecks(ctx, checker.DNS, names, due); err != nil {
			if !errors.Is(err, store.ErrFenced) && ctx.Err() == nil {
				d.log.Error("asking the vantages to check again", "err", err)
			}
			break
		}
		why := "unconfirmed findings"
		if delay == 0 {
			why = "vantages that disagree and have not all looked since the change"
		}
		d.log.Info("re-checking domains from every vantage", "domains", len(doms), "why", why, "after", delay, "round", round+1)
		select {
		case <-time.After(time.Until(due)):
		case <-ctx.Done():
			return counts
		}
		rc, changed := d.dnsRound(ctx, ck, doms, bases, d.now(), false)
		for dom, c := range rc {
			counts[dom] = c
		}
		d.awaitVantages(ctx, cfg, names, due)
		for _, n := range names {
			d.judge(ctx, n, due, changed[n], due)
		}
	}
	return counts
}

// awaitVantages waits until every live vantage has reported each domain
// since at (when the recheck was due), or the deadline: a domain's whole
// check and two seconds after it.
func (d *Daemon) awaitVantages(ctx context.Context, cfg *config.Config, domains []string, at time.Time) {
	deadline := at.Add(cfg.Resolver.DomainTimeout.D() + 2*time.Second)
	pending := append([]string(nil), domains...)
	for len(pending) > 0 && ctx.Err() == nil {
		p := d.panel(ctx, cfg)
		var still []string
		late := map[string]bool{}
		for _, dom := range pending {
			behind, err := p.Behind(ctx, dom, at, d.now())
			if err != nil {
				return
			}
			if len(behind) > 0 {
				still = append(still, dom)
			}
			for _, v := range behind {
				late[v] = true
			}
		}
		pending = still
		if len(pending) == 0 || !d.now().Before(deadline) {
			if len(pending) > 0 {
				d.log.Info("judging without some vantages' fresh reports", "domains", len(pending), "late", strings.Join(slices.Sorted(maps.Keys(late)), ", "))
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// liveVantages are the vantages whose process wrote a heartbeat within
// three health intervals and is connected to the database now (a process
// killed outright loses its sessions at once): one that stopped is not
// waited for, and its last report neither sees nor denies. Read at most
// every 200ms: the leader asks for every domain it judges.
func (d *Daemon) liveVantages(ctx context.Context) map[string]bool {
	d.liveMu.Lock()
	defer d.liveMu.Unlock()
	now := d.now()
	if d.live != nil && now.Sub(d.liveAt) < 200*time.Millisecond {
		return d.live
	}
	hbs, err := d.st.Heartbeats(ctx)
	if err != nil {
		if d.live == nil {
			return map[string]bool{}
		}
		return d.live // the store will say what is wrong
	}
	var connected map[string]bool
	if pg, ok := d.st.(*store.Postgres); ok {
		if names, err := pg.Sessions(ctx); err == nil {
			connected = map[string]bool{}
			for _, n := range names {
				connected[n] = true
			}
		}
	}
	live := map[string]bool{}
	cutoff := now.Add(-3 * d.opts.HealthInterval)
	for _, h := range hbs {
		if !h.At.After(cutoff) || (connected != nil && !connected[store.SessionName(h.Owner)]) {
			continue
		}
		if i := strings.LastIndexByte(h.Owner, '/'); i > 0 {
			live[h.Owner[:i]] = true
		}
	}
	d.live, d.liveAt = live, now
	return live
}

// recheckLoop serves the leader's recheck requests on a replica that does
// not lead, and on a probe: each request is checked when it is due, and
// the fresh observation stored for the leader to judge. (The leader
// checks its own requests in its cycle.)
func (d *Daemon) recheckLoop(ctx context.Context) {
	if d.mode == single {
		return
	}
	cursor := d.now()
	t := time.NewTicker(d.opts.RecheckPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.leading() {
			cursor = d.now()
			continue
		}
		reqs, err := d.st.Rechecks(ctx, checker.DNS, cursor)
		if err != nil || len(reqs) == 0 {
			continue
		}
		cfg, ck := d.current()
		first := reqs[0].DueAt
		var doms []config.Domain
		for _, r := range reqs {
			cursor = r.DueAt
			if dom, ok := cfg.Domain(r.Domain); ok {
				doms = append(doms, dom)
			}
		}
		if len(doms) == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(first)):
		}
		d.log.Debug("re-checking at the leader's request", "domains", len(doms))
		d.dnsRound(ctx, ck, doms, d.baselines(ctx), d.now(), false)
	}
}

// role says, for /readyz, what this process is in the cluster.
func (d *Daemon) role(ctx context.Context) string {
	switch d.mode {
	case single:
		return "leader (single node)"
	case replica:
		if t, _ := d.currentTerm(); t != nil && d.elector.Leading() {
			return fmt.Sprintf("leader (vantage %s, epoch %d)", d.vantage, t.epoch)
		}
		l, err := d.st.LeaderLease(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			l, _ = d.elector.Lease() // as last seen
		}
		return "follower (vantage " + d.vantage + "), " + leaderIs(l)
	default:
		l, err := d.st.LeaderLease(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "probe (vantage " + d.vantage + "), leader unknown: " + err.Error()
		}
		return "probe (vantage " + d.vantage + "), " + leaderIs(l)
	}
}

func leaderIs(l store.LeaderLease) string {
	if l.Holder == "" {
		return "no leader yet"
	}
	return fmt.Sprintf("leader is %s (epoch %d)", l.Holder, l.Epoch)
}

// findingCounts counts findings by ID and severity, for the gauge.
func findingCounts(fs []finding.Finding) map[[2]string]int {
	c := map[[2]string]int{}
	for _, f := range fs {
		c[[2]string{f.ID, f.Severity.String()}]++
	}
	return c
}
