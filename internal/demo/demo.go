// Package demo plays nsguard's whole story on a simulated Internet with no
// network and no root: a healthy check, the baseline approved, the daemon
// running, a hijack at the registry, the Slack page, the failover playbook
// moving traffic to the backup domain and verifying it, and the incident
// resolving once the registry restores the delegation.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/daemon"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/outbox"
)

// Options configure a demo run.
type Options struct {
	Out    io.Writer
	Colour bool
	Logger *slog.Logger
	// Interval is the daemon's delegation schedule (default 2s).
	Interval time.Duration
	// Hold keeps the daemon and its status pages up this long after the
	// story ends, so a newcomer can open them (0: end at once; a cancelled
	// context ends the hold early).
	Hold time.Duration
}

const (
	victim    = "shop-example.com"
	backup    = "shop-backup.net"
	playbook  = "shop-to-backup"
	switchAPI = "api.shop-switch.com."
)

// Run plays the story and returns an error when a step did not happen as
// it should (the demo doubles as an end-to-end smoke test).
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Second
	}
	out := &lockedWriter{w: opts.Out}
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(out, "\n── %d. %s\n\n", step, fmt.Sprintf(format, args...))
	}

	env, err := labenv.Start(ctx, labenv.Options{DNS: dnslab.Options{World: dnslab.FailoverWorld}})
	if err != nil {
		return fmt.Errorf("demo: starting the lab: %w", err)
	}
	defer env.Close()
	// The backup is held at a second approved registrar, so a hijack at the
	// primary's registrar cannot reach it: the failover's safety rules check
	// exactly that.
	if err := env.Reg.Update(backup, func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "CSC Corporate Domains, Inc.", "299"
	}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	sink := newSlackSink(out)
	defer sink.Close()
	cfgPath, err := writeConfig(env, sink.URL(), opts.Interval)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo: lab config: %w", err)
	}
	loopback := checker.Options{Logger: opts.Logger, HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback}

	w := env.DNS.World()
	fmt.Fprintf(out, "nsguard demo — a simulated Internet inside this process: %d DNS servers on 127.%d.0.0/16 port %d\n",
		len(w.Hosts)+len(w.Resolvers), w.Base, env.DNS.Port())
	fmt.Fprintf(out, "(roots, TLDs, two DNS providers, an attacker, public resolvers), RDAP and WHOIS on 127.0.0.1, and a local\n")
	fmt.Fprintf(out, "Slack that prints here. No network, no root. The config it runs: %s\n", cfgPath)

	// 1. A one-shot check of the healthy lab.
	say("nsguard check: the healthy lab (%d critical domains)", len(cfg.Domains))
	ck, err := checker.New(cfg, loopback)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer ck.Close()
	start := time.Now()
	healthy := ck.Run(ctx, cfg.Domains, checker.RunOptions{Fresh: true})
	checker.NewReport(healthy, time.Since(start)).WriteTable(out, cfg, false, opts.Colour)
	for _, r := range healthy {
		if r.Worst() >= finding.Warning || r.Err() != nil {
			return fmt.Errorf("demo: the healthy lab should be clean, but %s is %s", r.Domain.Name, r.Worst())
		}
	}

	// 2. The owners approve what is there as the baseline.
	say("nsguard baseline approve --reason \"initial\": what is there now becomes the approved state")
	st, err := store.OpenConfig(ctx, cfg.Store, store.Options{Logger: opts.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer st.Close()
	for _, r := range healthy {
		b, err := baseline.Save(ctx, st, baseline.StateOf(r), "demo", "initial", time.Now())
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintf(out, "   %s approved as version %d\n", r.Domain.Name, b.Version)
	}

	// 3. The daemon runs.
	say("nsguard daemon: delegation checks every %s, findings confirmed twice, alerts to Slack", opts.Interval)
	dctx, stopDaemon := context.WithCancel(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopDaemon()
		return fmt.Errorf("demo: %w", err)
	}
	daemonDone := make(chan error, 1)
	go func() {
		daemonDone <- daemon.Run(dctx, daemon.Options{Config: cfg, ConfigPath: cfgPath, Listener: ln, Logger: opts.Logger,
			CheckerOptions: loopback, TickInterval: 200 * time.Millisecond, Drain: 5 * time.Second,
			OutboxOptions: outbox.Options{PollInterval: 100 * time.Millisecond}})
	}()
	defer func() {
		stopDaemon()
		<-daemonDone
	}()
	if !waitHTTP(ctx, "http://"+ln.Addr().String()+"/readyz", 30*time.Second) {
		return errors.New("demo: the daemon did not become ready")
	}
	time.Sleep(opts.Interval + opts.Interval/2)
	pagesURL := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(out, "   ready (first full cycle done); %d Slack message(s) so far: all quiet. Metrics on http://%s/metrics\n", sink.count(), ln.Addr())
	fmt.Fprintf(out, "   status pages: %s (open it now: the overview marks the hijack in a moment)\n", pagesURL)

	// 4. The hijack.
	say("an attacker changes %s's delegation at the .com registry to ns1/ns2.attacker.net", victim)
	hijacked := time.Now()
	if err := env.DNS.Hijack(ctx, victim); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !sink.waitFor(ctx, 4*opts.Interval+10*time.Second, func(t string) bool {
		return strings.Contains(t, victim) && strings.Contains(t, monitor.NSNotAsDeclared)
	}) {
		return fmt.Errorf("demo: no page for the hijack of %s", victim)
	}
	fmt.Fprintf(out, "\n   paged %s after the hijack.\n", time.Since(hijacked).Round(100*time.Millisecond))

	// The on-call takes it: the page stops repeating and says who has it.
	say("the on-call takes it: nsguard incident ack 1 --by on-call --reason \"calling the .com registry\"")
	incs, err := incident.New(st, incident.Options{Policy: incident.PolicyFromConfig(cfg), Logger: opts.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := incs.Ack(ctx, 1, "on-call", "calling the .com registry"); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !sink.waitFor(ctx, 10*time.Second, func(t string) bool { return strings.Contains(t, "Acknowledged") }) {
		return errors.New("demo: the acknowledgement did not reach Slack")
	}
	// The page's edit comes on its own, after the thread's reply: printed
	// here, before the story goes on (on a busy machine it came after the
	// failover's first lines).
	sink.waitEdits(ctx, 1, 10*time.Second)

	// 5. The on-call reads the plan and runs the playbook.
	say("the on-call reviews the plan: nsguard failover plan %s", playbook)
	eng, err := failover.New(cfg, failover.Options{Store: st, Checker: ck, Logger: opts.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer eng.Close()
	plan, err := eng.Plan(ctx, playbook, false)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	plan.WriteText(indent(out))
	say("nsguard failover run %s --yes --plan-checksum %s", playbook, plan.ShortChecksum())
	res, err := eng.Run(ctx, playbook, failover.RunOptions{By: "on-call", PlanChecksum: plan.Checksum,
		Progress: func(ev failover.Event) { failover.WriteStepLine(indent(out), ev) }})
	if err != nil {
		return fmt.Errorf("demo: the failover run failed: %w", err)
	}
	if !res.Verified {
		return errors.New("demo: the failover run was not verified")
	}
	target, err := resolve(env, switchAPI)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "\n   run %d %s and verified; a public resolver now answers %s CNAME %s\n", res.RunID, res.Status, strings.TrimSuffix(switchAPI, "."), target)
	if target != "api."+backup+"." {
		return fmt.Errorf("demo: %s points at %s, not the backup", switchAPI, target)
	}
	sink.waitFor(ctx, 5*time.Second, func(t string) bool { return strings.Contains(t, "verified") })

	// 6. The registry restores the delegation; the incident resolves.
	say("the registry restores %s's delegation; nsguard sees it and resolves the incident", victim)
	if err := env.DNS.Restore(ctx, victim); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !sink.waitFor(ctx, 4*opts.Interval+10*time.Second, func(t string) bool {
		return strings.Contains(t, "*Resolved*") && strings.Contains(t, victim)
	}) {
		return errors.New("demo: the incident did not resolve")
	}
	sink.waitEdits(ctx, 2, 5*time.Second)
	fmt.Fprintf(out, "\nDone: hijack → Slack page → failover to %s → verified → resolved. In production the same runs as\n", backup)
	fmt.Fprintf(out, "`nsguard daemon --config /etc/nsguard/nsguard.yaml` and `nsguard failover run %s`.\n", playbook)
	if opts.Hold > 0 {
		fmt.Fprintf(out, "\nThe status pages stay up for %s: %s (the incident, the failover run, every domain). Ctrl-C ends now; --hold 0s skips.\n", opts.Hold, pagesURL)
		select {
		case <-time.After(opts.Hold):
		case <-ctx.Done():
		}
	}
	return nil
}

// writeConfig renders the lab config with Slack, the schedule and the playbook.
func writeConfig(env *labenv.Env, slackURL string, interval time.Duration) (string, error) {
	token := filepath.Join(env.Dir, "slack-token")
	key := filepath.Join(env.Dir, "tsig.key")
	if err := os.WriteFile(token, []byte("xoxb-demo-token\n"), 0o600); err != nil {
		return "", err
	}
	w := env.DNS.World()
	if err := os.WriteFile(key, []byte(dnslab.TSIGKeyFile(dnslab.SwitchKey, w.TSIG[dnslab.SwitchKey])), 0o600); err != nil {
		return "", err
	}
	primary := env.DNS.AddrOf("ns1.provider-a.net")
	extra := fmt.Sprintf(`alerts:
  slack: {token_file: %q, channel: "#dns-oncall", api_url: %q}
  confirmations: 2
  repeat_interval: 1h
  recheck: 300ms
schedules: {delegation: "@every %s", registration: "@every 1h", audit: "0 9 * * *", jitter: 0s}
playbooks:
  - name: %s
    primary: %s
    backup: %s
    description: Point the shop's API at the backup domain.
    steps:
      - name: repoint api
        dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.%s."]}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.%s., interval: 100ms, timeout: 20s, public_resolvers: true}
      - notify: {message: "api.shop-switch.com now serves from %s"}
    rollback:
      - dns_update: {server: "%s", zone: shop-switch.com., tsig_file: %q, replace: ["api.shop-switch.com. 60 IN CNAME api.%s."]}
      - verify: {name: api.shop-switch.com., type: CNAME, expect: api.%s., interval: 100ms, timeout: 20s}
`, token, slackURL, interval, playbook, victim, backup, primary, key, backup, backup, backup, primary, key, victim, victim)
	return env.WriteConfig(extra)
}

// resolve asks the lab's first public resolver for name's CNAME.
func resolve(env *labenv.Env, name string) (string, error) {
	r := env.DNS.Resolvers()[0]
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeCNAME)
	c := &dns.Client{Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, netip.AddrPortFrom(r, uint16(env.DNS.Port())).String())
	if err != nil {
		return "", fmt.Errorf("asking the public resolver: %w", err)
	}
	for _, rr := range in.Answer {
		if cn, ok := rr.(*dns.CNAME); ok {
			return cn.Target, nil
		}
	}
	return "", fmt.Errorf("the public resolver has no CNAME for %s", name)
}

func waitHTTP(ctx context.Context, url string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// indent prefixes every line written with three spaces.
func indent(w io.Writer) io.Writer { return &indented{w: w, start: true} }

type indented struct {
	w     io.Writer
	start bool
}

func (i *indented) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if i.start {
			b.WriteString("   ")
			i.start = false
		}
		b.WriteRune(c)
		if c == '\n' {
			i.start = true
		}
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
