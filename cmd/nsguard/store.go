package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
)

// The store command group works on the database itself rather than on
// what it holds. Each subcommand has its own constructor below; they share
// the source and target helpers at the end of the file.
func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "store",
			Short: "The database itself: check, back up, restore, copy into PostgreSQL",
			Long: `nsguard keeps its state in one SQLite file (store.path) or in a PostgreSQL
database (store.url, store.url_file or store.url_env). These commands work on
the database as a whole; docs/operations.md says when to use them.`,
		}
		cmd.AddCommand(storeCheckCmd(g), storeBackupCmd(g), storeRestoreCmd(g), storeMigrateCmd(g))
		return cmd
	})
}

// storeMigrateJSON is store migrate's -o json.
type storeMigrateJSON struct {
	From          string             `json:"from"`
	To            string             `json:"to"`
	SchemaVersion int                `json:"schema_version"`
	Tables        []store.TableCount `json:"tables"`
	Total         int64              `json:"total"`
}

func storeMigrateCmd(g *globals) *cobra.Command {
	var from, to, toFile, toEnv, output string
	var force bool
	cmd := &cobra.Command{
		Use:   "migrate --from sqlite:PATH --to URL|--to-file FILE|--to-env VAR [--force] [-o table|json]",
		Short: "Copy a single-node SQLite store into a PostgreSQL database",
		Long: `Copies everything a SQLite store holds (observations and their history,
baselines, changes, finding states, incidents, the outbox, Slack threads,
silences, the failover audit trail and locks) into a PostgreSQL database, ids
as they are, in one transaction: all of it or nothing. The target's schema is
created if needed; a target that already holds rows is refused unless --force,
which replaces them. Row counts are compared per table before the commit and
printed.

Stop the daemon first: what it writes to the file after the copy's snapshot is
not copied. Then point store.url (or url_file, url_env) at the database.

A URL with a password is best given with --to-file or --to-env (a command
line is visible to other users); the password is never printed.`,
		Example: `  nsguard store migrate --from sqlite:/var/lib/nsguard/nsguard.db --to-file /run/secrets/nsguard-db-url
  NSGUARD_DB_URL=postgres://nsguard:…@db.internal:5432/nsguard?sslmode=verify-full \
    nsguard store migrate --from sqlite:/var/lib/nsguard/nsguard.db --to-env NSGUARD_DB_URL`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("-o must be table or json, got %q", output))
			}
			path, err := sqliteSource(from)
			if err != nil {
				return withCode(exitUsage, err)
			}
			url, err := postgresTarget(to, toFile, toEnv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			ctx := cmd.Context()
			opts := store.Options{Logger: g.quietLogger()}
			src, err := store.Open(ctx, path, opts)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("opening the source: %w", err))
			}
			defer src.Close()
			dst, err := store.OpenPostgres(ctx, url, opts)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("opening the target: %w", err))
			}
			defer dst.Close()
			res, err := store.CopyToPostgres(ctx, src, dst, store.CopyOptions{Force: force})
			if err != nil {
				return withCode(exitUsage, err)
			}
			out := storeMigrateJSON{From: "sqlite:" + path, To: dst.String(), SchemaVersion: res.SchemaVersion, Tables: res.Tables, Total: res.Total()}
			if output == "json" {
				return writeJSON(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "copied %s to %s (schema version %d); row counts verified:\n", out.From, out.To, out.SchemaVersion)
			// Names left, counts right: tabwriter aligns every column alike.
			nw, cw := len("TABLE"), len(fmt.Sprint(out.Total))
			for _, t := range out.Tables {
				nw = max(nw, len(t.Table))
			}
			cw = max(cw, len("ROWS"))
			fmt.Fprintf(g.stdout, "%-*s  %*s\n", nw, "TABLE", cw, "ROWS")
			for _, t := range out.Tables {
				fmt.Fprintf(g.stdout, "%-*s  %*d\n", nw, t.Table, cw, t.Rows)
			}
			fmt.Fprintf(g.stdout, "%-*s  %*d\n", nw, "total", cw, out.Total)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the SQLite store to copy: sqlite:PATH")
	cmd.Flags().StringVar(&to, "to", "", "the PostgreSQL database: postgres://USER@HOST:PORT/DATABASE?sslmode=...")
	cmd.Flags().StringVar(&toFile, "to-file", "", "a file holding the PostgreSQL URL (password included)")
	cmd.Flags().StringVar(&toEnv, "to-env", "", "an environment variable holding the PostgreSQL URL (password included)")
	cmd.Flags().BoolVar(&force, "force", false, "replace what the target database holds")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// sqliteSource checks a --from value: sqlite:PATH, an existing file (a
// missing one would be created empty, and copying nothing helps nobody).
func sqliteSource(from string) (string, error) {
	path, ok := strings.CutPrefix(from, "sqlite:")
	if !ok || path == "" {
		return "", fmt.Errorf("--from wants sqlite:PATH (the store.path of the single-node install), got %q", from)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--from %s: %w", from, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("--from %s is not a file", from)
	}
	return path, nil
}

// postgresTarget returns the URL from exactly one of --to, --to-file,
// --to-env. Errors never repeat the URL.
func postgresTarget(to, file, env string) (string, error) {
	n := 0
	for _, s := range []string{to, file, env} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", errors.New("name the PostgreSQL database with exactly one of --to URL, --to-file FILE, --to-env VAR")
	}
	if to != "" {
		return to, nil
	}
	u, err := notify.ReadSecret(file, env)
	if err != nil {
		return "", fmt.Errorf("the PostgreSQL URL: %w", err)
	}
	return u, nil
}
