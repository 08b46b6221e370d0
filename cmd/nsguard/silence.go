package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/internal/store"
)

// maxSilence bounds a silence: long enough for a registrar migration,
// short enough that a forgotten silence cannot hide a hijack for a season.
const maxSilence = 30 * 24 * time.Hour

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "silence",
			Short: "Hold back pages for a domain during planned work (add, list, expire)",
			Long: `A silence stops a domain's incidents from paging: they are still opened,
recorded and shown by the daemon, just not sent. When the silence ends (or is
expired), an incident still open pages at once.`,
		}
		cmd.AddCommand(silenceAddCmd(g), silenceListCmd(g), silenceExpireCmd(g))
		return cmd
	})
}

// silenceStore loads the config and opens its store: what the silence and
// incident commands start from.
func silenceStore(cmd *cobra.Command, g *globals) (*config.Config, store.Store, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openStore(cmd, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

func silenceAddCmd(g *globals) *cobra.Command {
	var (
		forStr, reason, by string
	)
	cmd := &cobra.Command{
		Use:   `add DOMAIN|"*" --for DURATION --reason TEXT [--by NAME]`,
		Short: "Silence a domain (or every domain, \"*\") for a while",
		Example: `  nsguard silence add shop-example.com --for 2h --reason "moving NS to the new provider, CHG-1234"
  nsguard silence add '*' --for 30m --reason "resolver maintenance"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if forStr == "" {
				return withCode(exitUsage, errors.New("--for is required (e.g. --for 2h)"))
			}
			d, err := config.ParseDuration(forStr)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("--for: %w", err))
			}
			if d.D() <= 0 || d.D() > maxSilence {
				return withCode(exitUsage, fmt.Errorf("--for must be between 1s and %s, got %s", config.Duration(maxSilence), d))
			}
			if strings.TrimSpace(reason) == "" {
				return withCode(exitUsage, errors.New("--reason is required: say why, so the next on-call knows"))
			}
			if by == "" {
				by = failover.WhoRan("")
			}
			cfg, st, err := silenceStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()

			domain := args[0]
			if domain != store.AllDomains {
				n, err := config.NormalizeDomain(domain)
				if err != nil {
					return withCode(exitUsage, err)
				}
				if _, ok := cfg.Domain(n); !ok {
					return withCode(exitUsage, fmt.Errorf("%s is not in the inventory of %s: a silence for it would silence nothing", n, cfg.File))
				}
				domain = n
			}
			now := time.Now().UTC()
			s := store.Silence{Domain: domain, CreatedBy: by, Reason: strings.TrimSpace(reason), CreatedAt: now, StartsAt: now, EndsAt: now.Add(d.D())}
			id, err := st.AddSilence(cmd.Context(), s)
			if err != nil {
				return withCode(exitUsage, err)
			}
			fmt.Fprintf(g.stdout, "silence %d: %s silenced until %s (%s) by %s: %s\n",
				id, domain, s.EndsAt.Format("2006-01-02 15:04 MST"), d, by, s.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&forStr, "for", "", "how long: 30m, 2h, 1d (at most 30d)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown to whoever looks next)")
	cmd.Flags().StringVar(&by, "by", "", "who is silencing (default: $SUDO_USER or $USER)")
	return cmd
}

// silenceJSON is the -o json form of a silence.
type silenceJSON struct {
	ID        int64      `json:"id"`
	Domain    string     `json:"domain"`
	State     string     `json:"state"`
	CreatedBy string     `json:"created_by"`
	Reason    string     `json:"reason"`
	CreatedAt time.Time  `json:"created_at"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    time.Time  `json:"ends_at"`
	ExpiredAt *time.Time `json:"expired_at,omitempty"`
}

func silenceState(s store.Silence, now time.Time) string {
	switch {
	case !s.ExpiredAt.IsZero():
		return "expired"
	case s.Active(now):
		return "active"
	case now.Before(s.StartsAt):
		return "pending"
	}
	return "ended"
}

func silenceListCmd(g *globals) *cobra.Command {
	var (
		output string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "list [-o table|json] [--all]",
		Short: "List active silences (--all: ended and expired ones too)",
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
			now := time.Now().UTC()
			f := store.SilenceFilter{ActiveAt: now}
			if all {
				f = store.SilenceFilter{}
			}
			ss, err := st.Silences(cmd.Context(), f)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if output == "json" {
				out := make([]silenceJSON, 0, len(ss))
				for _, s := range ss {
					j := silenceJSON{ID: s.ID, Domain: s.Domain, State: silenceState(s, now), CreatedBy: s.CreatedBy, Reason: s.Reason,
						CreatedAt: s.CreatedAt, StartsAt: s.StartsAt, EndsAt: s.EndsAt}
					if !s.ExpiredAt.IsZero() {
						e := s.ExpiredAt
						j.ExpiredAt = &e
					}
					out = append(out, j)
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(ss) == 0 {
				fmt.Fprintln(g.stdout, "no silences")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDOMAIN\tSTATE\tENDS\tBY\tREASON")
			for _, s := range ss {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Domain, silenceState(s, now), s.End().Format("2006-01-02 15:04 MST"), s.CreatedBy, s.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&all, "all", false, "include ended and expired silences")
	return cmd
}

func silenceExpireCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "expire ID",
		Short: "End a silence now; open incidents of its domain page at the daemon's next tick",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return withCode(exitUsage, fmt.Errorf("silence ID must be a positive number, got %q (see nsguard silence list)", args[0]))
			}
			_, st, err := silenceStore(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			s, err := st.Silence(cmd.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return withCode(exitUsage, fmt.Errorf("no silence %d (see nsguard silence list --all)", id))
			}
			if err != nil {
				return withCode(exitUsage, err)
			}
			if err := st.ExpireSilence(cmd.Context(), id, time.Now().UTC()); err != nil {
				if errors.Is(err, store.ErrSilenceEnded) {
					return withCode(exitUsage, fmt.Errorf("silence %d for %s already ended at %s", id, s.Domain, s.End().Format("2006-01-02 15:04 MST")))
				}
				return withCode(exitUsage, err)
			}
			fmt.Fprintf(g.stdout, "silence %d expired: pages for %s resume\n", id, s.Domain)
			return nil
		},
	}
}
