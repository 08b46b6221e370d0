package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/cluster"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/outbox"
	"github.com/nsguard/nsguard/registry"
)

// baselines loads the latest approved state of every domain (one query).
// Cycles that ask at the same time (the DNS and registration cycles at
// start, and whenever their schedules meet) share one load: decoding the
// states of 10,000 domains allocates 40 MB and keeps 15 MB, and the
// cycles only read them.
func (d *Daemon) baselines(ctx context.Context) map[string]*baseline.State {
	d.bmu.Lock()
	if l := d.bload; l != nil {
		d.bmu.Unlock()
		select {
		case <-l.done:
			return l.states
		case <-ctx.Done():
			return map[string]*baseline.State{}
		}
	}
	l := &baselineLoad{done: make(chan struct{})}
	d.bload = l
	d.bmu.Unlock()
	l.states = d.loadBaselines(ctx)
	d.bmu.Lock()
	d.bload = nil
	d.bmu.Unlock()
	close(l.done)
	return l.states
}

// baselineLoad is a load of the baselines in progress.
type baselineLoad struct {
	done   chan struct{}
	states map[string]*baseline.State
}

func (d *Daemon) loadBaselines(ctx context.Context) map[string]*baseline.State {
	out := map[string]*baseline.State{}
	bs, err := d.st.LatestBaselines(ctx)
	if err != nil {
		d.log.Error("loading baselines", "err", err)
		return out
	}
	for _, b := range bs {
		s, err := baseline.Unmarshal(b.Data)
		if err != nil {
			d.log.Error("decoding a baseline", "domain", b.Domain, "version", b.Version, "err", err)
			continue
		}
		out[b.Domain] = s
	}
	return out
}

// dnsCycle checks every domain's DNS, diffs against the baseline, stores
// the observations and feeds the incident engine. Domains left with a new,
// unconfirmed finding are checked again after alerts.recheck, so a hijack
// pages within one interval and a few seconds rather than two intervals.
// On a cluster every replica checks and stores what it sees as a vantage
// point; the leader judges each domain across the vantages as its own
// result comes in, and runs the rechecks with every vantage
// (clusterRechecks).
func (d *Daemon) dnsCycle(ctx context.Context) {
	cfg, ck := d.current()
	start := d.now()
	bases := d.baselines(ctx)
	counts, _ := d.dnsRound(ctx, ck, cfg.Domains, bases, start, true)
	var recounts map[string]map[[2]string]int
	switch {
	case d.mode != single:
		if lctx, cancel, ok := d.leaderContext(ctx); ok {
			recounts = d.clusterRechecks(lctx, cfg, ck, bases)
			cancel()
		}
	case cfg.Alerts.Recheck.D() > 0 && ctx.Err() == nil:
		if again := d.unconfirmed(ctx, cfg); len(again) > 0 {
			wait := cfg.Alerts.Recheck.D()
			d.log.Info("re-checking domains with unconfirmed findings", "domains", len(again), "after", wait)
			select {
			case <-time.After(wait):
				recounts, _ = d.dnsRound(ctx, ck, again, bases, d.now(), true)
				for _, dom := range again {
					delete(counts, dom.Name)
				}
			case <-ctx.Done():
			}
		}
	}
	for dom, c := range recounts {
		counts[dom] = c
	}
	total := map[[2]string]int{}
	for _, c := range counts {
		for k, n := range c {
			total[k] += n
		}
	}
	failed := len(cfg.Domains) - len(counts)
	d.finishCycle(checker.DNS, start, len(cfg.Domains), max(failed, 0), total)
	if ctx.Err() == nil {
		d.firstDNS.Store(true)
		d.markReady()
	}
}

// dnsRound checks domains once and records each as soon as it is done; it
// returns each checked domain's finding counts (by ID and severity) and
// whether its observation changed. With judge false a leader stores its
// observations without judging them yet (a recheck round judges once
// every vantage has reported).
func (d *Daemon) dnsRound(ctx context.Context, ck *checker.Checker, domains []config.Domain, bases map[string]*baseline.State, at time.Time, judge bool) (map[string]map[[2]string]int, map[string]bool) {
	sent := ck.Monitor.Resolver().Sent()
	var mu sync.Mutex
	counts := map[string]map[[2]string]int{}
	changed := map[string]bool{}
	ck.Run(ctx, domains, checker.RunOptions{
		Classes:   []string{checker.DNS},
		TrustedNS: func(domain string) []resolver.NameServer { return bases[domain].TrustedNS() },
		OnResult: func(r checker.Result) {
			fs := r.Findings
			if r.DNSErr == nil {
				if b := bases[r.Domain.Name]; b != nil {
					diffs := baseline.DiffDNS(r.Domain, b.DNS, baseline.FromObservation(r.DNS))
					fs = append(fs, baseline.Findings(r.Domain.Name, diffs)...)
				} else {
					fs = append(fs, baseline.Needed(r.Domain.Name))
				}
			}
			fs = bases[r.Domain.Name].MarkAccepted(finding.Merge(fs))
			ok, ch := d.record(ctx, checker.DNS, r, fs, at, judge)
			mu.Lock()
			defer mu.Unlock()
			changed[config.CanonicalName(r.Domain.Name)] = ch
			if ok {
				counts[r.Domain.Name] = findingCounts(fs)
			}
		},
	})
	d.m.queries.Add(float64(ck.Monitor.Resolver().Sent() - sent))
	return counts, changed
}

// unconfirmed returns the domains holding a DNS finding (warning or worse)
// seen fewer times than alerts.confirmations.
func (d *Daemon) unconfirmed(ctx context.Context, cfg *config.Config) []config.Domain {
	names, err := d.st.UnconfirmedDomains(ctx, checker.DNS, cfg.Alerts.Confirmations,
		[]string{finding.Warning.String(), finding.Critical.String()})
	if err != nil {
		d.log.Error("finding unconfirmed domains", "err", err)
		return nil
	}
	var out []config.Domain
	for _, n := range names {
		if dom, ok := cfg.Domain(n); ok {
			out = append(out, dom)
		}
	}
	return out
}

// registrationCycle looks every domain up at its registry (cached for the
// registration period), judges policy and the baseline, and refreshes the
// contact sheets critical alerts embed. Each domain is recorded as soon as
// its lookup is done, and none is held.
func (d *Daemon) registrationCycle(ctx context.Context) {
	cfg, ck := d.current()
	start := d.now()
	bases := d.baselines(ctx)
	delegated := d.delegationNS(ctx)
	var mu sync.Mutex
	failed := 0
	counts := map[[2]string]int{}
	ck.Run(ctx, cfg.Domains, checker.RunOptions{
		Classes:      []string{checker.Registration},
		DelegationNS: func(domain string) []string { return delegated[domain] },
		OnResult: func(r checker.Result) {
			fs := r.Findings
			if b := bases[r.Domain.Name]; b != nil && r.Registration != nil {
				fs = append(fs, baseline.Findings(r.Domain.Name, baseline.DiffRegistration(b.Registration, baseline.FromRecord(r.Registration)))...)
			}
			fs = bases[r.Domain.Name].MarkAccepted(finding.Merge(fs))
			if finding.Worst(fs) >= finding.Warning {
				// Computed here, outside the engine's transaction: the message
				// embeds it, and looking it up needs the network.
				if sheet, err := ck.Registry.Contacts(ctx, r.Domain.Name); err == nil {
					d.contacts.Store(r.Domain.Name, sheet.Markdown())
				}
			}
			ok, _ := d.record(ctx, checker.Registration, r, fs, start, true)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failed++
				return
			}
			for _, f := range fs {
				counts[[2]string{f.ID, f.Severity.String()}]++
			}
		},
	})
	d.finishCycle(checker.Registration, start, len(cfg.Domains), failed, counts)
	if ctx.Err() == nil {
		d.firstReg.Store(true)
		d.markReady()
	}
}

// delegationNS returns each domain's delegated name servers from its latest
// DNS observation, for the registry's NS comparison: that alone is decoded
// (the observations whole take about 10 KB a domain once decoded), and
// each row's JSON is let go as soon as it is read.
func (d *Daemon) delegationNS(ctx context.Context) map[string][]string {
	obs, err := d.st.LatestObservations(ctx, checker.DNS)
	if err != nil {
		d.log.Error("loading DNS observations", "err", err)
		return nil
	}
	out := make(map[string][]string, len(obs))
	for i, o := range obs {
		var s struct {
			DNS *struct {
				Parent struct {
					NS []string `json:"ns"`
				} `json:"parent"`
			} `json:"dns"`
		}
		if err := json.Unmarshal(o.Data, &s); err != nil {
			d.log.Error("loading DNS observations", "err", fmt.Errorf("decode dns observation of %s: %w", o.Domain, err))
			return nil
		}
		if s.DNS != nil {
			out[o.Domain] = s.DNS.Parent.NS
		}
		obs[i].Data = nil
	}
	return out
}

// record stores one domain's observation and processes its findings. A
// class that could not run at all is stored (with its error) but not
// processed: no findings would wrongly resolve the domain's incidents. A
// result for a domain a reload removed while its cycle ran is dropped:
// it would open an incident nothing would ever resolve. On a cluster a DNS
// observation is this vantage's, with its report; only the leader judges
// (with judge), and it judges what every vantage reported. ok says the
// domain was checked and recorded; changed, that its observation differs
// from this vantage's previous one.
func (d *Daemon) record(ctx context.Context, class string, r checker.Result, fs []finding.Finding, at time.Time, judge bool) (ok, changed bool) {
	d.inventory.RLock()
	defer d.inventory.RUnlock()
	if !d.inInventory(r.Domain.Name) {
		d.log.Info("dropping a result for a domain no longer in the inventory", "domain", r.Domain.Name, "class", class)
		return false, false
	}
	var classErr error
	if class == checker.DNS {
		classErr = r.DNSErr
	} else {
		classErr = r.RegErr
	}
	snap := checker.NewSnapshot(class, r, fs, func(rec *registry.Record) string { return audit.Registrant(audit.Input{Registration: rec}) })
	data, err := json.Marshal(snap)
	if err == nil {
		obs := store.Observation{Domain: r.Domain.Name, Class: class, ObservedAt: at, Data: data}
		if class == checker.DNS {
			// What this vantage saw; registration is looked up by the
			// leader alone and is nobody's vantage.
			obs.Vantage, obs.Report = d.vantage, cluster.Encode(classErr, fs)
		}
		changed, err = d.st.PutObservation(ctx, obs)
	}
	if err != nil && ctx.Err() == nil {
		d.log.Error("storing an observation", "domain", r.Domain.Name, "class", class, "err", err)
		d.storeFailed(ctx, err)
		return false, false
	} else if class == checker.DNS {
		d.uiSrc.Observed(r.Domain.Name, class, at, changed, r.DNS) // the pages' overview, and response times
	} else {
		d.uiSrc.Observed(r.Domain.Name, class, at, changed, nil)
	}
	if classErr != nil || ctx.Err() != nil {
		if classErr != nil {
			d.log.Warn("domain could not be checked", "domain", r.Domain.Name, "class", class, "err", classErr)
		}
		if class == checker.DNS && d.mode != single && judge && d.leading() {
			// The others may have: their verdict still counts.
			d.judge(ctx, config.CanonicalName(r.Domain.Name), at, false, time.Time{})
		}
		return false, changed
	}
	if class == checker.DNS && d.mode != single {
		if judge && d.leading() {
			d.judge(ctx, config.CanonicalName(r.Domain.Name), at, changed, time.Time{})
		}
		d.m.lastSuccess.WithLabelValues(r.Domain.Name, class).Set(float64(at.Unix()))
		return true, changed
	}
	if changed {
		d.recordChange(ctx, class, r.Domain.Name, at, fs)
	}
	if _, err := d.eng.Process(ctx, r.Domain.Name, class, fs); err != nil {
		if errors.Is(err, store.ErrFenced) {
			d.log.Info("not recording findings: this replica no longer leads", "domain", r.Domain.Name, "class", class)
			return false, changed
		}
		d.log.Error("processing findings", "domain", r.Domain.Name, "class", class, "err", err)
		if ctx.Err() == nil {
			d.storeFailed(ctx, err)
		}
		return false, changed
	}
	d.m.lastSuccess.WithLabelValues(r.Domain.Name, class).Set(float64(at.Unix()))
	return true, changed
}

// recordChange keeps the history of differences from the baseline.
func (d *Daemon) recordChange(ctx context.Context, class, domain string, at time.Time, fs []finding.Finding) {
	var diffs []finding.Finding
	for _, f := range fs {
		if c, ok := finding.Lookup(f.ID); ok && c.Class == "baseline" && f.ID != baseline.BaselineNeeded {
			diffs = append(diffs, f)
		}
	}
	if len(diffs) == 0 {
		return
	}
	data, _ := json.Marshal(diffs)
	version := 0
	if b, err := d.st.LatestBaseline(ctx, domain); err == nil {
		version = b.Version
	}
	if _, err := d.fst.AddChange(ctx, store.Change{Domain: domain, Class: class, DetectedAt: at, BaselineVersion: version, Data: data}); err != nil && !errors.Is(err, store.ErrFenced) {
		d.log.Error("recording a change", "domain", domain, "err", err)
	}
}

// auditCycle runs the inventory audit from the stored observations and
// posts the digest.
func (d *Daemon) auditCycle(ctx context.Context) {
	cfg, ck := d.current()
	start := d.now()
	inputs, err := audit.Gather(ctx, audit.Targets(cfg), StoredSource(d.st, ck.Monitor), &audit.Fresh{Monitor: ck.Monitor, Registry: ck.Registry, Logger: d.log})
	if err != nil {
		d.log.Error("audit", "err", err)
		d.finishCycle("audit", start, 1, 1, nil)
		return
	}
	rep := audit.Analyze(cfg, inputs, d.now())
	// Accepted risk is said in the digest, since it is never paged.
	bases := d.baselines(ctx)
	for i := range rep.Findings {
		bases[rep.Findings[i].Domain].MarkAccepted(rep.Findings[i : i+1])
	}
	d.uiSrc.SetAudit(rep)
	dg := rep.Digest()
	msg := &notify.Message{Kind: notify.KindDigest, Severity: dg.Worst, Title: dg.Title(), Text: dg.Markdown(), At: d.now()}
	for _, f := range dg.Findings() {
		msg.Findings = append(msg.Findings, notify.Finding{Finding: f})
	}
	if _, err := outbox.Enqueue(ctx, d.fst, msg); err != nil {
		d.log.Error("enqueueing the audit digest", "err", err)
	} else {
		d.out.Kick()
	}
	counts := map[[2]string]int{}
	for _, f := range rep.Findings {
		if c, ok := finding.Lookup(f.ID); ok && c.Class == "inventory" {
			counts[[2]string{f.ID, f.Severity.String()}]++ // the others are counted by their own class
		}
	}
	d.finishCycle("audit", start, len(inputs), 0, counts)
}

func (d *Daemon) finishCycle(class string, start time.Time, total, failed int, counts map[[2]string]int) {
	took := d.now().Sub(start)
	result := "ok"
	if failed > 0 && failed == total {
		result = "error"
	}
	d.m.cycles.WithLabelValues(class, result).Inc()
	if result == "ok" && (class == checker.DNS || class == checker.Registration) {
		d.mu.Lock()
		d.lastOK[class] = d.now()
		d.mu.Unlock()
	}
	d.m.duration.WithLabelValues(class).Observe(took.Seconds())
	d.m.setFindings(class, counts)
	d.log.Info("cycle done", "class", class, "domains", total, "failed", failed, "took", took.Round(time.Millisecond))
}

// markReady makes the daemon ready once its first full cycle is done: on
// a cluster its own DNS cycle (registration is the leader's, whoever
// leads).
func (d *Daemon) markReady() {
	if d.firstDNS.Load() && (d.firstReg.Load() || d.mode != single) && !d.ready.Swap(true) {
		d.log.Info("first full cycle done: ready")
	}
}
