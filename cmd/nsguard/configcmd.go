package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/startcheck"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{Use: "config", Short: "Work with the config file"}
		cmd.AddCommand(newConfigCheckCmd(g))
		return cmd
	})
}

// configReport is `config check -o json`.
type configReport struct {
	File      string        `json:"file"`
	OK        bool          `json:"ok"`
	Domains   int           `json:"domains"`
	Playbooks int           `json:"playbooks"`
	Problems  config.Errors `json:"problems"`
}

func newConfigCheckCmd(g *globals) *cobra.Command {
	var (
		output     string
		configOnly bool
	)
	cmd := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a config as the daemon will: every problem with file, line and field; exit 3 when there is one",
		Long: `Validates the config file (FILE, else --config or $NSGUARD_CONFIG) and
checks what the daemon and a failover run read when they start: the Slack
token or webhook URL (file readable, environment variable set), the
PostgreSQL URL in store.url_file or store.url_env (read and its form
checked; nothing connects), the root hints file, the status pages' password file, each dns_update step's TSIG
key file and server, each webhook
step's HMAC secret and templates, each verify step's servers. Nothing is
sent and no name is resolved. Every problem is listed at once, with the
file, the line and the field; exit 0 when there is none, 3 otherwise.

--config-only validates the file alone, for a machine where the files it
names do not exist (systemd credentials under /run/credentials/, Kubernetes
secrets): the service's own ExecStartPre check reads them where they are.`,
		Example: `  nsguard config check /etc/nsguard/nsguard.yaml
  NSGUARD_CONFIG=/etc/nsguard/nsguard.yaml nsguard config check
  nsguard config check -o json | jq '.problems[].message'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return withCode(exitUsage, fmt.Errorf("unknown output %q (want text or json)", output))
			}
			path := g.configPath
			if len(args) == 1 {
				if cmd.Flags().Changed("config") && args[0] != g.configPath {
					return withCode(exitUsage, fmt.Errorf("two config files given (%s and --config %s): give one", args[0], g.configPath))
				}
				path = args[0]
			}
			rep := checkConfig(path, !configOnly)
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
				if !rep.OK {
					return withCode(exitUsage, nil)
				}
				return nil
			}
			if !rep.OK {
				return withCode(exitUsage, fmt.Errorf("invalid config:\n%w", rep.Problems))
			}
			fmt.Fprintf(g.stdout, "%s: ok (%s, %s)\n", path, count(rep.Domains, "domain"), count(rep.Playbooks, "playbook"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&configOnly, "config-only", false, "validate the file alone, not the secrets, keys and hints files it names")
	return cmd
}

// checkConfig loads path and, as far as it could be read, checks the files
// and variables it names (unless files is false); a problem startcheck finds
// in a field the config already reported is left out.
func checkConfig(path string, files bool) configReport {
	cfg, errs := config.LoadPartial(path)
	rep := configReport{File: path, Problems: errs}
	if cfg != nil {
		rep.Domains, rep.Playbooks = len(cfg.Domains), len(cfg.Playbooks)
	}
	if cfg != nil && files {
		for _, p := range startcheck.Check(cfg) {
			if !reported(errs, p.Field) {
				rep.Problems = append(rep.Problems, p)
			}
		}
	}
	if rep.Problems == nil {
		rep.Problems = config.Errors{}
	}
	sortProblems(rep.Problems)
	rep.OK = len(rep.Problems) == 0
	return rep
}

// reported: the config already has a problem at field or around it.
func reported(errs config.Errors, field string) bool {
	for _, e := range errs {
		if e.Field == "" || e.Field == field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") {
			return true
		}
	}
	return false
}

func sortProblems(es config.Errors) {
	// File order, stable: each source already lists its own in order.
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

// count says "1 domain", "2 domains", "0 domains".
func count(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
