package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/incident"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "incident",
			Short: "Incidents: list the open ones, show one with its evidence and messages, acknowledge",
			Long: `An incident is one problem on one domain: the findings confirmed together, one
page and one Slack thread. It repeats until someone acknowledges it and resolves
when its own findings clear. These commands read the daemon's store; ack also
posts to the incident's thread (from this process, so it works with or without a
running daemon, and never twice beside one).`,
		}
		cmd.AddCommand(incidentListCmd(g), incidentShowCmd(g), incidentAckCmd(g))
		return cmd
	})
}

func parseIncidentID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, withCode(exitUsage, fmt.Errorf("incident ID must be a positive number, got %q (see nsguard incident list)", s))
	}
	return id, nil
}

// age renders how long ago t was, for a table.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return notify.Duration(now.Sub(t))
}

func incidentListCmd(g *globals) *cobra.Command {
	var (
		output, domain string
		all            bool
		limit          int
	)
	cmd := &cobra.Command{
		Use:   "list [--all] [--domain NAME] [-o table|json]",
		Short: "List open incidents, worst first (--all: the latest resolved and closed too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("-o must be table or json, got %q", output))
			}
			_, st, err := silenceStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			f := store.IncidentFilter{Status: store.IncidentOpen, Limit: limit}
			if all {
				f.Status = ""
			}
			if domain != "" {
				if f.Domain, err = config.NormalizeDomain(domain); err != nil {
					return withCode(exitUsage, err)
				}
			}
			rows, err := st.Incidents(cmd.Context(), f)
			if err != nil {
				return withCode(exitUsage, err)
			}
			views := make([]incident.View, 0, len(rows))
			for _, r := range rows {
				v, err := incident.ViewOf(r)
				if err != nil {
					return withCode(exitUsage, err)
				}
				views = append(views, v)
			}
			rank := map[string]int{"open": 0, "acknowledged": 1, "resolved": 2, "closed": 3}
			sevRank := map[string]int{"critical": 0, "warning": 1, "info": 2}
			sortStableBy(views, func(a, b incident.View) bool {
				if rank[a.State] != rank[b.State] {
					return rank[a.State] < rank[b.State]
				}
				return rank[a.State] < 2 && sevRank[a.Severity] < sevRank[b.Severity]
			})
			if output == "json" {
				return writeJSON(g.stdout, views)
			}
			if len(views) == 0 {
				if all {
					fmt.Fprintln(g.stdout, "no incidents")
				} else {
					fmt.Fprintln(g.stdout, "no open incidents")
				}
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tDOMAIN\tOPEN FOR\tTITLE\tACKNOWLEDGED BY")
			for _, v := range views {
				open := age(now, v.OpenedAt)
				if !v.EndedAt.IsZero() {
					open = notify.Duration(v.EndedAt.Sub(v.OpenedAt))
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.State, v.Severity, v.Domain, open, v.Title, dashIf(v.AckedBy))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&all, "all", false, "include resolved and closed incidents")
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain's incidents")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many incidents")
	return cmd
}

func dashIf(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortStableBy[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// incidentMessage is one message of an incident, for show.
type incidentMessage struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	CreatedAt   time.Time `json:"created_at"`
	State       string    `json:"state"` // delivered, pending, dead
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	Text        string    `json:"text"`
}

func incidentShowCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show ID [-o text|json]",
		Short: "Show an incident: its findings with all their evidence, and every message sent about it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id, err := parseIncidentID(args[0])
			if err != nil {
				return err
			}
			_, st, err := silenceStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			row, err := st.Incident(cmd.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return withCode(exitUsage, fmt.Errorf("no incident %d (see nsguard incident list --all)", id))
			}
			if err != nil {
				return withCode(exitUsage, err)
			}
			v, err := incident.ViewOf(row)
			if err != nil {
				return withCode(exitUsage, err)
			}
			rows, err := st.IncidentMessages(cmd.Context(), id)
			if err != nil {
				return withCode(exitUsage, err)
			}
			msgs := make([]incidentMessage, 0, len(rows))
			for _, r := range rows {
				m := incidentMessage{ID: r.ID, Kind: r.Kind, CreatedAt: r.CreatedAt, State: "pending", DeliveredAt: r.DeliveredAt, Attempts: r.Attempts, LastError: r.LastError}
				switch {
				case !r.DeliveredAt.IsZero():
					m.State = "delivered"
				case !r.DeadAt.IsZero():
					m.State = "dead"
				}
				if nm, err := notify.Unmarshal(r.Payload); err == nil {
					m.Text = notify.PlainText(nm)
				}
				msgs = append(msgs, m)
			}
			if output == "json" {
				return writeJSON(g.stdout, struct {
					incident.View
					Messages []incidentMessage `json:"messages"`
				}{v, msgs})
			}
			writeIncident(g.stdout, v, msgs)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	return cmd
}

func writeIncident(w io.Writer, v incident.View, msgs []incidentMessage) {
	when := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
	fmt.Fprintf(w, "Incident #%d · %s · %s · %s\n", v.ID, v.Domain, strings.ToUpper(v.Severity), v.State)
	fmt.Fprintf(w, "%s\n\n", v.Title)
	fmt.Fprintf(w, "  opened        %s\n", when(v.OpenedAt))
	if !v.PagedAt.IsZero() {
		fmt.Fprintf(w, "  paged         %s\n", when(v.PagedAt))
	} else if v.State == "open" {
		fmt.Fprintf(w, "  paged         not yet (a silence, or waiting for findings to group)\n")
	}
	if v.AckedBy != "" {
		fmt.Fprintf(w, "  acknowledged  %s by %s: %s\n", when(v.AckedAt), v.AckedBy, v.AckReason)
	}
	if !v.EndedAt.IsZero() {
		fmt.Fprintf(w, "  %-13s %s, after %s\n", v.State, when(v.EndedAt), notify.Duration(v.EndedAt.Sub(v.OpenedAt)))
	}
	fmt.Fprintf(w, "\nFindings\n")
	for _, f := range v.Findings {
		title := f.Title
		if title == "" {
			title = f.Finding.ID
		}
		subject := ""
		if f.Finding.Subject != "" {
			subject = " [" + f.Finding.Subject + "]"
		}
		state := f.State
		if !f.ClearedAt.IsZero() {
			state += " " + when(f.ClearedAt)
		}
		fmt.Fprintf(w, "  %-8s %s%s (%s, %s) — %s\n", strings.ToUpper(f.Finding.Severity.String()), f.Finding.ID, subject, f.Class, state, title)
		if f.Finding.Message != "" {
			fmt.Fprintf(w, "           %s\n", f.Finding.Message)
		}
		for _, e := range f.Finding.Evidence {
			fmt.Fprintf(w, "           · %s\n", e.String())
		}
	}
	fmt.Fprintf(w, "\nMessages\n")
	if len(msgs) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, m := range msgs {
		state := m.State
		if m.State == "dead" || (m.State == "pending" && m.Attempts > 0) {
			state += fmt.Sprintf(" (%d attempts: %s)", m.Attempts, m.LastError)
		}
		fmt.Fprintf(w, "  %s  %-11s %s  %s\n", m.CreatedAt.UTC().Format("15:04:05"), m.Kind, state, m.Text)
	}
}

func incidentAckCmd(g *globals) *cobra.Command {
	var (
		by, reason string
		noDeliver  bool
	)
	cmd := &cobra.Command{
		Use:   "ack ID --by NAME --reason TEXT",
		Short: "Say \"I have it\": the incident stops repeating, its thread and page say who has it",
		Long: `Acknowledging an incident stops its repeats, posts who has it and why in its
Slack thread, and edits its page to show it. It still resolves when its findings
clear, and a new problem on the same domain still pages. The message is sent from
this process (--no-deliver leaves it to the daemon).`,
		Example: `  nsguard incident ack 12 --by ann --reason "calling the .com registry, ticket INC-881"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIncidentID(args[0])
			if err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return withCode(exitUsage, errors.New("--reason is required: say what you are doing, so the next person knows"))
			}
			cfg, st, err := silenceStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			eng, err := incident.New(st, incident.Options{Policy: incident.PolicyFromConfig(cfg), Logger: g.quietLogger()})
			if err != nil {
				return withCode(exitUsage, err)
			}
			who := failover.WhoRan(by)
			res, err := eng.Ack(cmd.Context(), id, who, reason)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return withCode(exitUsage, fmt.Errorf("no incident %d (see nsguard incident list)", id))
			case errors.Is(err, incident.ErrNotOpen), errors.Is(err, incident.ErrAlreadyAcked):
				return withCode(exitWarning, err)
			case err != nil:
				return withCode(exitUsage, err)
			}
			fmt.Fprintf(g.stdout, "incident %d acknowledged by %s: %s\n", id, who, strings.TrimSpace(reason))
			if !noDeliver {
				g.deliver(cmd.Context(), cfg, st, res.MessageIDs)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who takes it (default $SUDO_USER, then $USER)")
	cmd.Flags().StringVar(&reason, "reason", "", "what you are doing about it (required)")
	cmd.Flags().BoolVar(&noDeliver, "no-deliver", false, "leave the Slack messages to the daemon")
	return cmd
}
