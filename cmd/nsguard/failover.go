package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "failover",
			Short: "Failover playbooks: list, plan, run (by hand), status, history, rollback",
			Long: `A playbook moves traffic from a primary domain to its backup: RFC 2136 updates
signed with TSIG, webhooks, verification, waits and messages. Read the plan,
then run it: the run re-reads the records, refuses when they changed since the
plan (--plan-checksum), when a safety rule says no (unless --force), or when
another run holds the playbook's lock. Every run is recorded and posted to one
Slack thread. The daemon never runs a playbook by itself.

Exit codes: 0 done and verified (every verify step of the playbook answered as
expected; a playbook without one says "done", not "verified"), 1 failed and stopped (the error says what was
and was not done) or not confirmed, 2 refused by a safety rule, the lock or the
plan checksum, 3 usage or config error.`,
		}
		cmd.AddCommand(failoverListCmd(g), failoverPlanCmd(g), failoverRunCmd(g), failoverStatusCmd(g),
			failoverHistoryCmd(g), failoverRollbackCmd(g))
		return cmd
	})
}

// confirmTTY reports whether the operator can be asked: both stdin and
// stdout are terminals. Tests replace it.
var confirmTTY = func(g *globals) bool {
	f, ok := g.stdin.(*os.File)
	if !ok || !g.isTTY {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// failoverEnv is what a failover command works with.
type failoverEnv struct {
	cfg *config.Config
	st  store.Store
	eng *failover.Engine
	ck  *checker.Checker
}

func (f *failoverEnv) close() {
	if f.eng != nil {
		f.eng.Close()
	}
	if f.ck != nil {
		f.ck.Close()
	}
	if f.st != nil {
		f.st.Close()
	}
}

// openFailover loads the config and builds an engine: with the store when
// withStore, with a checker for the safety rules when withChecks.
func openFailover(cmd *cobra.Command, g *globals, withStore, withChecks bool) (*failoverEnv, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	env := &failoverEnv{cfg: cfg}
	log := g.logger(!g.isTTY)
	opts := failover.Options{Logger: log}
	if withStore {
		if env.st, err = store.OpenConfig(cmd.Context(), cfg.Store, store.Options{Logger: log}); err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("opening the store %s: %w", cfg.Store, err))
		}
		opts.Store = env.st
	}
	if withChecks {
		if env.ck, err = checker.New(cfg, checker.Options{Logger: log}); err != nil {
			env.close()
			return nil, withCode(exitUsage, err)
		}
		opts.Checker = env.ck
	}
	if env.eng, err = failover.New(cfg, opts); err != nil {
		env.close()
		return nil, withCode(exitUsage, err)
	}
	return env, nil
}

// failoverErr gives an engine error its exit code.
func failoverErr(err error) error {
	if err == nil {
		return nil
	}
	return withCode(failover.ExitCode(err), err)
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return withCode(exitUsage, fmt.Errorf("unknown output %q (want text or json)", o))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func failoverListCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the playbooks of the config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			type item struct {
				Name          string `json:"name"`
				Primary       string `json:"primary"`
				Backup        string `json:"backup"`
				Description   string `json:"description,omitempty"`
				Steps         int    `json:"steps"`
				RollbackSteps int    `json:"rollback_steps"`
				SlackChannel  string `json:"slack_channel,omitempty"`
			}
			items := []item{}
			for _, p := range cfg.Playbooks {
				items = append(items, item{p.Name, p.Primary, p.Backup, p.Description, len(p.Steps), len(p.Rollback), p.SlackChannel})
			}
			if output == "json" {
				return writeJSON(g.stdout, items)
			}
			if len(items) == 0 {
				fmt.Fprintf(g.stdout, "No playbooks in %s.\n", cfg.File)
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIMARY → BACKUP\tSTEPS\tROLLBACK\tSLACK\tDESCRIPTION")
			for _, it := range items {
				fmt.Fprintf(tw, "%s\t%s → %s\t%d\t%d\t%s\t%s\n", it.Name, it.Primary, it.Backup, it.Steps, it.RollbackSteps, it.SlackChannel, it.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	return cmd
}

func failoverPlanCmd(g *globals) *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "plan NAME",
		Short: "Show what a run would do: every step, the records before → after, the safety rules, the checksum",
		Long: `Reads the records the playbook changes from the servers now and prints each
step (CREATE / CHANGE / DELETE / REPORT, DNSControl's words), the safety rules'
verdicts from a fresh check, and the plan checksum to pass to
"failover run --plan-checksum". Changes nothing. Exits 2 when a run would be
refused by a safety rule (0 with --force, which the plan then names).`,
		Example: `  nsguard failover plan shop-to-backup
  nsguard failover plan shop-to-backup -o json | jq -r .checksum`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			env, err := openFailover(cmd, g, false, true)
			if err != nil {
				return err
			}
			defer env.close()
			p, err := env.eng.Plan(cmd.Context(), args[0], force)
			if err != nil {
				return failoverErr(err)
			}
			if output == "json" {
				err = writeJSON(g.stdout, p)
			} else {
				err = p.WriteText(g.stdout)
			}
			if err != nil {
				return err
			}
			if p.Refused() {
				return withCode(exitCritical, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	cmd.Flags().BoolVar(&force, "force", false, "plan as a forced run: refusing safety rules show as overridden")
	return cmd
}

// runFlags are the flags run and rollback share.
type runFlags struct {
	dryRun, yes, force, noDeliver bool
	checksum, by, output          string
}

func (f *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "plan, check the safety rules and record the run as a dry run; change nothing")
	cmd.Flags().BoolVar(&f.yes, "yes", false, "do not ask for confirmation (required without a terminal)")
	cmd.Flags().StringVar(&f.checksum, "plan-checksum", "", "refuse unless the plan read now has this checksum (from failover plan; 12+ hex digits)")
	cmd.Flags().BoolVar(&f.force, "force", false, "run despite refusing safety rules; the plan, the log and the Slack thread say so")
	cmd.Flags().StringVar(&f.by, "by", "", "who runs it, for the audit trail (default $SUDO_USER, $USER)")
	cmd.Flags().BoolVar(&f.noDeliver, "no-deliver", false, "leave the Slack thread to the daemon (by default this process posts it as the run goes, beside a daemon or without one, never twice)")
	var deliver bool
	cmd.Flags().BoolVar(&deliver, "deliver", true, "")
	_ = cmd.Flags().MarkDeprecated("deliver", "the Slack thread is delivered by default; --no-deliver leaves it to the daemon")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output: text or json (the result; json never prompts, so it needs --yes)")
}

// execute runs do (a run or a rollback) with the shared flag handling:
// confirmation, progress, the result, delivery and the exit code.
func (f *runFlags) execute(cmd *cobra.Command, g *globals, env *failoverEnv, opts failover.RunOptions,
	do func(ctx context.Context, opts failover.RunOptions) (*failover.Result, error)) error {
	ctx := cmd.Context()
	text := f.output == "text"
	opts.By, opts.DryRun, opts.Force, opts.PlanChecksum = failover.WhoRan(f.by), f.dryRun, f.force, f.checksum
	shown := false
	showPlan := func(p *failover.Plan) {
		if text && !shown {
			shown = true
			p.WriteText(g.stdout)
			fmt.Fprintln(g.stdout)
		}
	}
	// Called with the lock held, after the plan and the rules, before any
	// change: the plan is printed there, whatever the flags.
	opts.Confirm = func(_ context.Context, p *failover.Plan) (bool, error) {
		showPlan(p)
		if f.yes {
			return true, nil
		}
		return askConfirm(g, p)
	}
	opts.Progress = func(ev failover.Event) {
		if text {
			failover.WriteStepLine(g.stdout, ev)
		}
	}
	// The run's Slack thread goes out as the run goes: a sender runs
	// beside it, then waits (bounded) for the rest. Claims keep a running
	// daemon from sending any of it again.
	var stopSending func() []int64
	if !f.noDeliver && !f.dryRun {
		stopSending = g.sendDuring(ctx, env.cfg, env.st)
	}
	res, err := do(ctx, opts)
	if res != nil && res.Plan != nil && (f.dryRun || err != nil) {
		showPlan(res.Plan)
	}
	if stopSending != nil {
		g.deliver(ctx, env.cfg, env.st, stopSending())
	}
	if !text {
		if res == nil {
			return failoverErr(err)
		}
		if werr := writeJSON(g.stdout, res); werr != nil {
			return werr
		}
		return failoverErr(err)
	}
	if err != nil {
		return failoverErr(err)
	}
	switch res.Status {
	case failover.StatusDryRun:
		fmt.Fprintf(g.stdout, "Dry run recorded as run %d: nothing was changed.\n", res.RunID)
	case failover.StatusDone:
		verb := "done"
		if res.Verified {
			verb = "done and verified"
		}
		fmt.Fprintf(g.stdout, "\nRun %d %s.", res.RunID, verb)
		if res.Plan.Mode == failover.ModeFailover {
			fmt.Fprintf(g.stdout, " Undo with: nsguard failover rollback %d", res.RunID)
		}
		fmt.Fprintln(g.stdout)
	}
	return nil
}

// askConfirm asks the operator to type the playbook's name: a "y" typed
// by habit must not move production traffic.
func askConfirm(g *globals, p *failover.Plan) (bool, error) {
	what := "run failover " + p.Playbook
	if p.Mode == failover.ModeRollback {
		what = fmt.Sprintf("roll back run %d of %s", p.RollbackOf, p.Playbook)
	}
	fmt.Fprintf(g.stdout, "To %s, type the playbook's name (%s): ", what, p.Playbook)
	line, err := bufio.NewReader(g.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return strings.TrimSpace(line) == p.Playbook, nil
}

// preflight refuses, before anything runs, a run that could not be
// confirmed.
func (f *runFlags) preflight(g *globals) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.output == "json" && !f.yes && !f.dryRun {
		return withCode(exitUsage, errors.New("-o json cannot ask for confirmation: review the plan with `nsguard failover plan` and pass --yes --plan-checksum"))
	}
	if !f.yes && !f.dryRun && !confirmTTY(g) {
		return withCode(exitUsage, errors.New("no terminal to confirm on: review the plan (nsguard failover plan NAME) and pass --yes, ideally with --plan-checksum"))
	}
	return nil
}

func failoverRunCmd(g *globals) *cobra.Command {
	var (
		f      runFlags
		resume int64
	)
	cmd := &cobra.Command{
		Use:   "run NAME [--dry-run] [--yes] [--plan-checksum X] [--force] [--resume RUN]",
		Short: "Run a playbook: lock, plan, safety rules, confirm, steps; recorded and posted to Slack",
		Long: `Takes the playbook's lock, reads the plan again, evaluates the safety rules,
asks for confirmation on a terminal (type the playbook's name), then runs the
steps in order, each recorded in the store and posted to the run's Slack thread.
A dns_update sends nothing when the records are in place already, so a re-run
is a no-op; its prerequisite (the records as read) makes the server refuse a
concurrent change. A run that was killed or interrupted continues with
--resume RUN, without repeating its finished steps.`,
		Example: `  nsguard failover plan shop-to-backup            # review; note the checksum
  nsguard failover run shop-to-backup --plan-checksum 3f2a9c1e4b7d
  nsguard failover run shop-to-backup --yes --plan-checksum 3f2a9c1e4b7d   # no terminal
  nsguard failover run shop-to-backup --resume 12 --yes
  nsguard failover run shop-to-backup --force --by alice   # past a refusing safety rule`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.preflight(g); err != nil {
				return err
			}
			env, err := openFailover(cmd, g, true, true)
			if err != nil {
				return err
			}
			defer env.close()
			return f.execute(cmd, g, env, failover.RunOptions{Resume: resume}, func(ctx context.Context, o failover.RunOptions) (*failover.Result, error) {
				return env.eng.Run(ctx, args[0], o)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().Int64Var(&resume, "resume", 0, "continue run RUN (interrupted or failed) without repeating its finished steps")
	return cmd
}

func failoverRollbackCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "rollback RUN",
		Short: "Undo a run with its playbook's rollback steps (posted in the run's Slack thread)",
		Long: `Runs the rollback steps of RUN's playbook, as a run of its own with the same
lock, plan, confirmation and audit trail. The safety rule for a rollback is that
the primary, where traffic goes back to, has no critical finding (--force
overrides). --dry-run shows the rollback plan.`,
		Example: `  nsguard failover rollback 12 --dry-run
  nsguard failover rollback 12 --plan-checksum 9d1e0b2c44aa`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return withCode(exitUsage, fmt.Errorf("RUN is a run number (see nsguard failover history), got %q", args[0]))
			}
			if err := f.preflight(g); err != nil {
				return err
			}
			env, err := openFailover(cmd, g, true, true)
			if err != nil {
				return err
			}
			defer env.close()
			return f.execute(cmd, g, env, failover.RunOptions{}, func(ctx context.Context, o failover.RunOptions) (*failover.Result, error) {
				return env.eng.Rollback(ctx, id, o)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func failoverStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show a run and its steps (default: each playbook's lock and latest run)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			env, err := openFailover(cmd, g, true, false)
			if err != nil {
				return err
			}
			defer env.close()
			ctx := cmd.Context()
			if len(args) == 1 {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || id <= 0 {
					return withCode(exitUsage, fmt.Errorf("RUN is a run number, got %q", args[0]))
				}
				rec, err := env.eng.Status(ctx, id)
				if err != nil {
					return failoverErr(err)
				}
				if output == "json" {
					return writeJSON(g.stdout, rec)
				}
				return rec.WriteText(g.stdout)
			}
			return playbookOverview(ctx, g, env, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	return cmd
}

// playbookOverview shows, per playbook, who holds its lock and its
// latest run.
func playbookOverview(ctx context.Context, g *globals, env *failoverEnv, output string) error {
	type row struct {
		Playbook string               `json:"playbook"`
		Lock     *store.FailoverLock  `json:"lock,omitempty"`
		Stale    bool                 `json:"lock_stale,omitempty"`
		Gone     bool                 `json:"lock_process_gone,omitempty"`
		Latest   *store.FailoverRun   `json:"latest_run,omitempty"`
		Steps    []store.FailoverStep `json:"-"`
	}
	rows := []row{}
	now := time.Now()
	for _, p := range env.cfg.Playbooks {
		r := row{Playbook: p.Name}
		l, held, err := env.eng.Lock(ctx, p.Name)
		if err != nil {
			return failoverErr(err)
		}
		if held {
			r.Lock = &l
			r.Stale = now.Sub(l.HeartbeatAt) > time.Duration(env.eng.LockStale())
			r.Gone = failover.LockProcessGone(l)
		}
		runs, err := env.eng.History(ctx, p.Name, 1)
		if err != nil {
			return failoverErr(err)
		}
		if len(runs) > 0 {
			r.Latest = &runs[0]
		}
		rows = append(rows, r)
	}
	if output == "json" {
		return writeJSON(g.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(g.stdout, "No playbooks in %s.\n", env.cfg.File)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAYBOOK\tLOCK\tLATEST RUN")
	for _, r := range rows {
		lock := "free"
		if r.Lock != nil {
			lock = fmt.Sprintf("held by %s, heartbeat %s ago", env.eng.LockHolder(ctx, *r.Lock), now.Sub(r.Lock.HeartbeatAt).Round(time.Second))
			switch {
			case r.Gone:
				lock += ", its process is gone: the next run takes it over"
			case r.Stale:
				lock += ", stale: the next run takes it over"
			}
		}
		latest := "never run"
		if r.Latest != nil {
			latest = fmt.Sprintf("run %d %s by %s at %s", r.Latest.ID, r.Latest.Status, r.Latest.StartedBy, r.Latest.StartedAt.UTC().Format("2006-01-02 15:04Z"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Playbook, lock, latest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, "\nDetails of a run: nsguard failover status RUN")
	return nil
}

func failoverHistoryCmd(g *globals) *cobra.Command {
	var (
		output string
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "history [NAME]",
		Short: "List recorded runs, newest first (dry runs and refusals included)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 {
				return withCode(exitUsage, errors.New("--limit must be at least 1"))
			}
			env, err := openFailover(cmd, g, true, false)
			if err != nil {
				return err
			}
			defer env.close()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			runs, err := env.eng.History(cmd.Context(), name, limit)
			if err != nil {
				return failoverErr(err)
			}
			if output == "json" {
				if runs == nil {
					runs = []store.FailoverRun{}
				}
				return writeJSON(g.stdout, runs)
			}
			return failover.WriteHistory(g.stdout, runs)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs")
	return cmd
}
