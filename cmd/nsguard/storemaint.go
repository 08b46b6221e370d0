package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
)

// storeCheckJSON is store check's -o json.
type storeCheckJSON struct {
	Store         string               `json:"store"`
	OK            bool                 `json:"ok"`
	Integrity     string               `json:"integrity"`
	Problems      []string             `json:"problems,omitempty"`
	Bytes         int64                `json:"bytes,omitempty"`
	SchemaVersion int                  `json:"schema_version,omitempty"`
	OpenIncidents int                  `json:"open_incidents"`
	Outbox        *store.OutboxStats   `json:"outbox,omitempty"`
	Heartbeats    []store.HeartbeatRow `json:"heartbeats,omitempty"`
}

func storeCheckCmd(g *globals) *cobra.Command {
	var (
		full   bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "check [--full] [-o table|json]",
		Short: "Check the store: integrity, schema version, what is waiting, who writes to it",
		Long: `For a SQLite store, reads every page with PRAGMA quick_check (--full:
integrity_check, which also compares every index with its table); the file is
opened read-only and never migrated, so this works on a file the daemon refuses.
Then prints the schema version, the open incidents, the outbox and each daemon's
last heartbeat. For PostgreSQL, the database checks its own pages (pg_amcheck);
this command reports the rest.

Exit 0 when the store is sound, 2 when it is damaged, 3 when it cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("-o must be table or json, got %q", output))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res := storeCheckJSON{Store: cfg.Store.String(), OK: true, Integrity: "not checked here (PostgreSQL: pg_amcheck)"}
			if path := cfg.Store.Path; path != "" {
				fi, err := os.Stat(path)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("the store %s: %w", path, errors.Unwrap(err)))
				}
				res.Bytes = fi.Size()
				c, err := store.CheckFile(ctx, path, full)
				if err != nil {
					return withCode(exitUsage, err)
				}
				res.Integrity = fmt.Sprintf("quick_check ok (%s)", c.Took.Round(time.Millisecond))
				if full {
					res.Integrity = fmt.Sprintf("integrity_check ok (%s)", c.Took.Round(time.Millisecond))
				}
				if !c.OK() {
					res.OK, res.Integrity, res.Problems = false, "DAMAGED", c.Problems
				}
			}
			if res.OK {
				st, err := g.openStore(cmd, cfg)
				if err != nil {
					return err
				}
				defer st.Close()
				if res.SchemaVersion, err = st.SchemaVersion(ctx); err != nil {
					return withCode(exitUsage, err)
				}
				if res.OpenIncidents, err = st.CountOpenIncidents(ctx); err != nil {
					return withCode(exitUsage, err)
				}
				ob, err := st.OutboxStats(ctx)
				if err != nil {
					return withCode(exitUsage, err)
				}
				res.Outbox = &ob
				if res.Heartbeats, err = st.Heartbeats(ctx); err != nil {
					return withCode(exitUsage, err)
				}
			}
			if output == "json" {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				writeStoreCheck(g.stdout, res)
			}
			if !res.OK {
				return withCode(exitCritical, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "integrity_check instead of quick_check (slower: compares every index with its table)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writeStoreCheck(w io.Writer, r storeCheckJSON) {
	fmt.Fprintf(w, "store       %s\n", r.Store)
	if r.Bytes > 0 {
		fmt.Fprintf(w, "size        %.1f MB\n", float64(r.Bytes)/1e6)
	}
	fmt.Fprintf(w, "integrity   %s\n", r.Integrity)
	if !r.OK {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "            %s\n", p)
		}
		fmt.Fprintf(w, "\nThe store is damaged. Stop nsguard and restore the latest backup: nsguard store restore BACKUP\n")
		return
	}
	fmt.Fprintf(w, "schema      version %d (this nsguard knows %d)\n", r.SchemaVersion, store.LatestSchema())
	fmt.Fprintf(w, "incidents   %d open\n", r.OpenIncidents)
	if ob := r.Outbox; ob != nil {
		waiting := ""
		if !ob.OldestPending.IsZero() {
			waiting = fmt.Sprintf(", the oldest for %s", notify.Duration(time.Since(ob.OldestPending)))
		}
		fmt.Fprintf(w, "outbox      %d waiting%s, %d dead\n", ob.Pending, waiting, ob.Dead)
	}
	for i, h := range r.Heartbeats {
		label := "writers"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%-11s %s: %s ago (%s)\n", label, h.Owner, notify.Duration(time.Since(h.At)), h.Info)
	}
}

func storeBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the SQLite store to FILE while the daemon runs (SQLite's online backup API)",
		Long: `Copies the live SQLite store to FILE, a consistent snapshot, a few hundred
pages at a time so the daemon keeps writing meanwhile, then checks the copy.
FILE must not exist. For PostgreSQL use the database's own tools (pg_dump,
or your provider's snapshots).`,
		Example: `  nsguard store backup /var/backups/nsguard/nsguard-$(date +%F).db`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if cfg.Store.Path == "" {
				return withCode(exitUsage, errors.New("the store is PostgreSQL: back it up with pg_dump or your provider's snapshots"))
			}
			st, err := g.openStore(cmd, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			sq, ok := st.(*store.SQLite)
			if !ok {
				return withCode(exitUsage, errors.New("the store is not a SQLite file"))
			}
			stats, err := sq.Backup(cmd.Context(), args[0])
			if err != nil {
				return withCode(exitUsage, err)
			}
			c, err := store.CheckFile(cmd.Context(), args[0], false)
			if err != nil || !c.OK() {
				return withCode(exitCritical, fmt.Errorf("the backup %s does not check out: %v %s", args[0], err, strings.Join(c.Problems, "; ")))
			}
			fmt.Fprintf(g.stdout, "backed up %s to %s: %d pages, %.1f MB in %s; quick_check ok\n",
				cfg.Store.Path, args[0], stats.Pages, float64(stats.Bytes)/1e6, stats.Took.Round(time.Millisecond))
			return nil
		},
	}
}

func storeRestoreCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore BACKUP [--yes]",
		Short: "Replace the SQLite store with a backup (the daemon must be stopped)",
		Long: `Checks BACKUP with integrity_check, refuses while any process has the store
open (stop the daemon first), moves the current file aside as
FILE.replaced-TIMESTAMP (never deleted), and puts the backup in its place.
Incidents, baselines and messages newer than the backup are not in it: after
starting the daemon again, check the baselines (nsguard baseline diff).`,
		Example: `  systemctl stop nsguard && nsguard store restore /var/backups/nsguard/nsguard-2026-12-05.db && systemctl start nsguard`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			path := cfg.Store.Path
			if path == "" {
				return withCode(exitUsage, errors.New("the store is PostgreSQL: restore it with the database's own tools"))
			}
			if !yes {
				if !confirmTTY(g) {
					return withCode(exitUsage, errors.New("restore replaces the store: confirm on a terminal or pass --yes"))
				}
				fmt.Fprintf(g.stdout, "Replace the store %s with the backup %s? Type restore: ", path, args[0])
				line, err := bufio.NewReader(g.stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if strings.TrimSpace(line) != "restore" {
					return withCode(exitWarning, errors.New("not confirmed: nothing was changed"))
				}
			}
			kept, err := store.Restore(cmd.Context(), args[0], path)
			if err != nil {
				return withCode(exitUsage, err)
			}
			fmt.Fprintf(g.stdout, "restored %s from %s", path, args[0])
			if kept != "" {
				fmt.Fprintf(g.stdout, "; the replaced file is kept as %s", kept)
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}
