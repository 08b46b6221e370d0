// Package failover runs failover playbooks: the steps that move traffic
// from a primary domain to its pre-provisioned backup when the primary is
// hijacked, held by its registry or its name servers fail.
//
// The habits come from octoDNS and DNSControl (read the plan, then push),
// Route 53 ARC (safety rules with a named override) and RFC 2136
// (compare-and-swap updates). A run is:
//
//	lock ─► plan (records read now, checksum) ─► safety rules ─► confirm
//	     ─► steps in order (dns_update, webhook, verify, wait, notify)
//
// with every step recorded in the store (the audit trail) and posted to one
// Slack thread through the outbox. A killed run resumes where it stopped,
// without repeating finished steps; a finished one can be rolled back with
// the playbook's rollback steps. The daemon never runs a playbook by itself.
package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/internal/store"
)

// Errors callers branch on; ExitCode maps them to the CLI's exit codes.
var (
	// ErrUnknownPlaybook: no playbook of that name in the config.
	ErrUnknownPlaybook = errors.New("unknown playbook")
	// ErrUsage: the request cannot be carried out as asked (a run that
	// does not exist, a rollback without rollback steps, an unreadable
	// tsig_file). Nothing was changed.
	ErrUsage = errors.New("usage")
	// ErrRefused: a safety rule, the lock or the plan checksum refused the
	// run. Nothing was changed.
	ErrRefused = errors.New("refused")
	// ErrNotConfirmed: the operator did not confirm. Nothing was changed.
	ErrNotConfirmed = errors.New("not confirmed")
	// ErrFailed: a step failed or the run was interrupted; RunError says
	// what was done and what was not.
	ErrFailed = errors.New("failed")
)

// ExitCode is the CLI exit code for an Engine error: 0 done (and
// verified), 1 failed and stopped or not confirmed, 2 refused by a safety
// rule (the lock and the plan checksum included), 3 usage or config error.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrRefused):
		return 2
	case errors.Is(err, ErrUnknownPlaybook), errors.Is(err, ErrUsage):
		return 3
	}
	return 1
}

// RefusedError says why a run was refused.
type RefusedError struct {
	Playbook string
	// Rule is "lock", "plan-checksum" or "safety".
	Rule string
	// Rules names the refusing safety rules (Rule "safety").
	Rules   []string
	Reasons []string
	// RunID is the recorded refused run (0 when none was recorded).
	RunID int64
}

func (e *RefusedError) Error() string {
	why := strings.Join(e.Reasons, "; ")
	switch e.Rule {
	case "safety":
		return fmt.Sprintf("failover %s refused by the safety rules: %s (nothing was changed; --force overrides the safety rules and says so in the plan, the log and the Slack thread)", e.Playbook, why)
	case "lock":
		return fmt.Sprintf("failover %s refused, one run at a time: %s (nothing was changed)", e.Playbook, why)
	}
	return fmt.Sprintf("failover %s refused by %s: %s (nothing was changed)", e.Playbook, e.Rule, why)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// RunError is a run that stopped: a step failed, or the run was
// interrupted. It says what was done and what was not.
type RunError struct {
	Playbook string
	RunID    int64
	// Step is the 1-based step that failed (0: before any step).
	Step int
	Kind string
	// Done and NotDone list 1-based step numbers.
	Done, NotDone []int
	Interrupted   bool
	Err           error
}

func (e *RunError) Error() string {
	what := "failed"
	if e.Interrupted {
		what = "was interrupted"
	}
	msg := fmt.Sprintf("failover %s (run %d) %s", e.Playbook, e.RunID, what)
	if e.Step > 0 {
		msg += fmt.Sprintf(" at step %d (%s)", e.Step, e.Kind)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	msg += fmt.Sprintf(". Done: %s. Not done: %s.", stepList(e.Done), stepList(e.NotDone))
	msg += fmt.Sprintf(" Continue with: nsguard failover run %s --resume %d", e.Playbook, e.RunID)
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrFailed) true.
func (e *RunError) Is(target error) bool { return target == ErrFailed }

func stepList(s []int) string {
	if len(s) == 0 {
		return "none"
	}
	out := ""
	for i, n := range s {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprint(n)
	}
	return out
}

// Checker runs fresh checks for the safety rules; *checker.Checker is one.
type Checker interface {
	Run(ctx context.Context, domains []config.Domain, opts checker.RunOptions) []checker.Result
}

// Options configure an Engine.
type Options struct {
	// Store holds runs, steps, locks and the outbox. Required for Run,
	// Rollback, Status and History; Plan works without.
	Store store.Store
	// Checker runs the fresh checks the safety rules need. Without one
	// the rules cannot be evaluated and a run is refused unless forced.
	Checker Checker
	// Resolver reads records and polls for verify steps; nil builds one
	// from the config (closed by Close).
	Resolver *resolver.Resolver
	// HTTPClient sends webhooks; each attempt has the step's timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// LockStale is how old a lock's heartbeat must be before another run
	// may take the lock over (default 2m); Heartbeat how often a run
	// refreshes its own (default LockStale/4).
	LockStale time.Duration
	Heartbeat time.Duration
	// Holder names this process in locks (default host:pid:random).
	Holder string
	// Kick wakes an outbox dispatcher after messages are enqueued (the
	// daemon passes its dispatcher's Kick).
	Kick func()
}

// Engine plans and runs one config's playbooks.
type Engine struct {
	cfg    *config.Config
	st     store.Store
	check  Checker
	res    *resolver.Resolver
	ownRes bool
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time
	stale  time.Duration
	beat   time.Duration
	holder string
	kick   func()
	// backoff is the first wait between webhook attempts (it doubles).
	backoff time.Duration
	hooks   hooks
}

// hooks are seams for tests: a crash between steps, a concurrent change
// between the plan and a step.
type hooks struct {
	// beforeStep runs before step index (1-based) executes.
	beforeStep func(ctx context.Context, index int) error
	// afterStep runs after step index is recorded; an error makes the
	// engine stop at once as if the process died (no record, no release).
	afterStep func(index int) error
}

// New builds an Engine for cfg.
func New(cfg *config.Config, opts Options) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("failover: no config")
	}
	e := &Engine{cfg: cfg, st: opts.Store, check: opts.Checker, res: opts.Resolver, http: opts.HTTPClient,
		log: opts.Logger, now: opts.Now, stale: opts.LockStale, beat: opts.Heartbeat, holder: opts.Holder, kick: opts.Kick,
		backoff: time.Second}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("component", "failover")
	if e.now == nil {
		e.now = time.Now
	}
	if e.stale <= 0 {
		e.stale = 2 * time.Minute
	}
	if e.beat <= 0 || e.beat >= e.stale {
		e.beat = e.stale / 4
	}
	if e.http == nil {
		e.http = &http.Client{}
	}
	if e.holder == "" {
		e.holder = defaultHolder()
	}
	if e.res == nil {
		r, err := resolver.New(cfg.Resolver, e.log)
		if err != nil {
			return nil, fmt.Errorf("failover: %w", err)
		}
		e.res, e.ownRes = r, true
	}
	return e, nil
}

// Close releases the resolver the engine built.
func (e *Engine) Close() {
	if e.ownRes {
		e.res.Close()
	}
}

// Playbooks returns the config's playbooks in config order.
func (e *Engine) Playbooks() []config.Playbook { return e.cfg.Playbooks }

func defaultHolder() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// WhoRan names the person running a command: by when given, else sudo's
// caller (so "sudo nsguard failover run" records the human, not root),
// else $USER, $LOGNAME, the OS user.
func WhoRan(by string) string {
	if by != "" {
		return by
	}
	for _, v := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func (e *Engine) playbook(name string) (config.Playbook, error) {
	pb, ok := e.cfg.Playbook(name)
	if !ok {
		var names []string
		for _, p := range e.cfg.Playbooks {
			names = append(names, p.Name)
		}
		known := "the config has none"
		if len(names) > 0 {
			known = "known: " + fmt.Sprint(names)
		}
		return pb, fmt.Errorf("%w %q (%s)", ErrUnknownPlaybook, name, known)
	}
	return pb, nil
}

func (e *Engine) needStore() error {
	if e.st == nil {
		return fmt.Errorf("%w: failover: no store (set store.path)", ErrUsage)
	}
	return nil
}
