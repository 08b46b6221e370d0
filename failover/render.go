package failover

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// WriteText renders the plan for a terminal, DNSControl style: each step,
// each RRset with "-" for what goes and "+" for what comes, the safety
// rules, and the checksum to pass to `failover run --plan-checksum`.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	if p.Mode == ModeRollback {
		ew.printf("Rollback plan for %s (undoes run %d): traffic back to %s\n", p.Playbook, p.RollbackOf, p.Primary)
	} else {
		ew.printf("Failover plan for %s: %s → %s\n", p.Playbook, p.Primary, p.Backup)
	}
	if p.Description != "" {
		ew.printf("%s\n", p.Description)
	}
	ew.printf("Read from the servers at %s.\n", p.ReadAt.UTC().Format("2006-01-02 15:04:05 MST"))
	for _, sp := range p.Steps {
		ew.printf("\nStep %d/%d  %s", sp.Index, len(p.Steps), sp.Kind)
		if sp.Name != sp.Kind {
			ew.printf("  %q", sp.Name)
		}
		ew.printf("\n")
		if len(sp.Changes) == 0 {
			ew.printf("  %-6s %s\n", ActionReport, sp.Summary)
		} else {
			ew.printf("  %s\n", sp.Summary)
		}
		for _, ch := range sp.Changes {
			if ch.Action == ActionReport {
				ew.printf("  %-6s %s %s: %s\n", ch.Action, ch.Name, ch.Type, ch.Note)
				continue
			}
			ew.printf("  %-6s %s %s\n", ch.Action, ch.Name, ch.Type)
			for _, s := range ch.Before {
				ew.printf("      - %s\n", s)
			}
			for _, s := range ch.After {
				ew.printf("      + %s\n", s)
			}
		}
		for _, n := range sp.Notes {
			ew.printf("         %s\n", n)
		}
	}
	ew.printf("\nSafety rules\n")
	for _, r := range p.Safety {
		ew.printf("  %-10s %-19s %s\n", strings.ToUpper(r.Status), r.Rule, r.Detail)
	}
	ew.printf("  %-10s %-19s %s\n", "LOCK", "one-run-at-a-time", "checked when the run takes the playbook's lock")
	for _, wn := range p.Warnings {
		ew.printf("\nWarning: %s\n", wn)
	}
	if over := p.Refusals(); p.Force && len(over) > 0 {
		var rules []string
		for _, r := range over {
			rules = append(rules, r.Rule)
		}
		ew.printf("\nFORCED: --force overrides %s; the run log and the Slack thread will say so.\n", strings.Join(rules, ", "))
	} else if p.Force {
		ew.printf("\n--force given; no safety rule needs overriding.\n")
	}
	if p.Refused() {
		ew.printf("\nA run would be REFUSED by the safety rules above (exit 2); --force overrides them.\n")
	}
	ew.printf("\nPlan checksum: %s\n", p.Checksum)
	if p.Mode == ModeRollback {
		ew.printf("Run it:        nsguard failover rollback %d --plan-checksum %s\n", p.RollbackOf, p.ShortChecksum())
	} else {
		ew.printf("Run it:        nsguard failover run %s --plan-checksum %s\n", p.Playbook, p.ShortChecksum())
	}
	return ew.err
}

// WriteStepLine renders one progress event: a line when a step starts,
// and its outcome with the changes and the answer when it ends.
func WriteStepLine(w io.Writer, ev Event) {
	sp, total := ev.Step, ev.Total
	label := sp.Kind
	if sp.Name != sp.Kind {
		label += fmt.Sprintf(" %q", sp.Name)
	}
	if ev.Result == nil {
		fmt.Fprintf(w, "Step %d/%d  %s …\n", sp.Index, total, label)
		return
	}
	r := ev.Result
	if r.Earlier {
		fmt.Fprintf(w, "Step %d/%d  %s: %s in an earlier attempt, not repeated\n", sp.Index, total, label, r.Status)
		return
	}
	took := r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond)
	fmt.Fprintf(w, "Step %d/%d  %s: %s (%s)\n", sp.Index, total, label, strings.ToUpper(r.Status), took)
	for _, ch := range sp.Changes {
		if ch.Action != ActionReport || r.Status == StepNoOp {
			fmt.Fprintf(w, "  %s\n", changeLine(ch))
		}
	}
	if r.Response != "" {
		fmt.Fprintf(w, "  %s\n", r.Response)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
}

// WriteText renders a recorded run and its steps.
func (r *RunRecord) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	run := r.Run
	kind := "failover"
	if r.Plan != nil && r.Plan.Mode == ModeRollback {
		kind = fmt.Sprintf("rollback of run %d", r.Plan.RollbackOf)
	}
	ew.printf("Run %d  %s  %s  %s\n", run.ID, run.Playbook, kind, strings.ToUpper(run.Status))
	ew.printf("  started   %s by %s\n", run.StartedAt.UTC().Format(time.RFC3339), run.StartedBy)
	if !run.FinishedAt.IsZero() {
		ew.printf("  finished  %s (%s)\n", run.FinishedAt.UTC().Format(time.RFC3339), run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond))
	}
	ew.printf("  plan      %s\n", run.Checksum)
	if r.Plan != nil {
		ew.printf("  switch    %s → %s\n", r.Plan.Primary, r.Plan.Backup)
		for _, s := range r.Plan.Safety {
			ew.printf("  safety    %s %s: %s\n", strings.ToUpper(s.Status), s.Rule, s.Detail)
		}
		if r.Plan.Force {
			ew.printf("  forced    --force\n")
		}
	}
	if r.Lock != nil {
		ew.printf("  lock      held by %s (pid %d on %s), heartbeat %s\n", r.Lock.Holder, r.Lock.PID, r.Lock.Host, r.Lock.HeartbeatAt.UTC().Format(time.RFC3339))
	}
	if run.Error != "" {
		ew.printf("  error     %s\n", run.Error)
	}
	recorded := map[int]store.FailoverStep{}
	for _, s := range r.Steps {
		recorded[s.Index] = s
	}
	if r.Plan != nil {
		for _, sp := range r.Plan.Steps {
			s, ok := recorded[sp.Index]
			if !ok {
				writeStep(ew, store.FailoverStep{Index: sp.Index, Kind: sp.Kind, Name: sp.Name, Status: "not run"})
				continue
			}
			writeStep(ew, s)
		}
	} else {
		for _, s := range r.Steps {
			writeStep(ew, s)
		}
	}
	return ew.err
}

func writeStep(ew *errWriter, s store.FailoverStep) {
	label := s.Kind
	if s.Name != s.Kind {
		label += fmt.Sprintf(" %q", s.Name)
	}
	ew.printf("\n  Step %d  %s: %s", s.Index, label, strings.ToUpper(s.Status))
	if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
		ew.printf(" (%s)", s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
	}
	ew.printf("\n")
	if s.Request != "" {
		ew.printf("    request:  %s\n", s.Request)
	}
	if s.Response != "" {
		ew.printf("    response: %s\n", s.Response)
	}
	if s.Error != "" {
		ew.printf("    error:    %s\n", s.Error)
	}
}

// WriteHistory renders runs as a table.
func WriteHistory(w io.Writer, runs []store.FailoverRun) error {
	ew := &errWriter{w: w}
	if len(runs) == 0 {
		ew.printf("No failover run recorded.\n")
		return ew.err
	}
	ew.printf("%-6s %-20s %-22s %-12s %-16s %-9s %s\n", "RUN", "PLAYBOOK", "STARTED", "STATUS", "BY", "TOOK", "PLAN")
	for _, r := range runs {
		took := "-"
		if !r.FinishedAt.IsZero() {
			took = r.FinishedAt.Sub(r.StartedAt).Round(time.Second).String()
		}
		sum := r.Checksum
		if len(sum) > 12 {
			sum = sum[:12]
		}
		ew.printf("%-6d %-20s %-22s %-12s %-16s %-9s %s\n", r.ID, r.Playbook, r.StartedAt.UTC().Format("2006-01-02 15:04:05Z"), r.Status, r.StartedBy, took, sum)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
