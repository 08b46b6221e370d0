// Package startcheck checks what nsguard reads when it starts, beyond the
// config file itself, with the very functions that read it there: the
// Slack token or webhook URL the daemon's alert receiver reads, the
// PostgreSQL URL the store reads from a file or a variable, the root hints
// the checker's resolver reads, the status pages' password file,
// and what a failover plan reads before it changes anything (TSIG keys,
// webhook secrets and templates, the steps' servers). `nsguard config check` runs it, so a config it passes is one
// the daemon and a failover run accept.
package startcheck

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/webhook"
	"github.com/nsguard/nsguard/pages"
)

// Check returns every problem with the files and environment variables
// cfg names, each on the line of the config field that names it, in file
// order. Secrets are read but never part of a problem: errors name the
// file or the variable only.
func Check(cfg *config.Config) config.Errors {
	var errs config.Errors
	errs = append(errs, alerts(cfg)...)
	errs = append(errs, storeURL(cfg)...)
	// The daemon builds its checker at start (resolver, root hints,
	// registry client); so does every one-shot command.
	if ck, err := checker.New(cfg, checker.Options{}); err != nil {
		field := "resolver"
		if cfg.Resolver.RootHints != "" {
			field = "resolver.root_hints"
		}
		errs = append(errs, cfg.Problem(field, err))
	} else {
		ck.Close()
	}
	errs = append(errs, statusPages(cfg)...)
	errs = append(errs, failover.CheckPlaybooks(cfg)...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

// alerts reads the Slack secret the way the daemon's receiver does
// (outbox.NewReceiver): the bot token first, else the webhook.
func alerts(cfg *config.Config) config.Errors {
	s := cfg.Alerts.Slack
	var err error
	var field string
	switch {
	case s.TokenFile != "" || s.TokenEnv != "":
		field = pick("alerts.slack.token_file", s.TokenFile, "alerts.slack.token_env")
		_, err = notify.ReadSecret(s.TokenFile, s.TokenEnv)
	case s.WebhookURLFile != "" || s.WebhookURLEnv != "":
		field = pick("alerts.slack.webhook_url_file", s.WebhookURLFile, "alerts.slack.webhook_url_env")
		_, err = webhook.FromConfig(s, nil)
	}
	if err != nil {
		return config.Errors{cfg.Problem(field, err)}
	}
	return nil
}

// storeURL reads the PostgreSQL URL from store.url_file or store.url_env
// the way store.OpenConfig does, and checks its form (config.CheckPostgresURL,
// as OpenPostgres does first). Nothing connects: the database is the
// daemon's to reach, and a replica started before its database must not be
// refused by its own ExecStartPre. An inline store.url is the config's own
// validation's.
func storeURL(cfg *config.Config) config.Errors {
	s := cfg.Store
	if s.Path != "" || (s.URLFile == "" && s.URLEnv == "") || s.URL != "" {
		return nil
	}
	field := pick("store.url_file", s.URLFile, "store.url_env")
	u, err := notify.ReadSecret(s.URLFile, s.URLEnv)
	if err == nil {
		if err = config.CheckPostgresURL(u); err != nil {
			err = fmt.Errorf("the PostgreSQL URL in %s: %w", pick(s.URLFile, s.URLFile, "$"+s.URLEnv), err)
		}
	}
	if err != nil {
		return config.Errors{cfg.Problem(field, err)}
	}
	return nil
}

// statusPages builds the status pages as the daemon does at start
// (ui.enabled): the htpasswd file is read and parsed, the base path
// checked. Nothing is served.
func statusPages(cfg *config.Config) config.Errors {
	if !cfg.UI.Enabled {
		return nil
	}
	_, err := pages.New(pages.Options{Source: pages.NewStoreSource(pages.StoreSourceOptions{}),
		BasePath: cfg.UI.BasePath, BasicAuthFile: cfg.UI.BasicAuthFile, Refresh: cfg.UI.Refresh.D()})
	if err == nil {
		return nil
	}
	field := "ui"
	if cfg.UI.BasicAuthFile != "" && strings.Contains(err.Error(), cfg.UI.BasicAuthFile) || strings.HasPrefix(err.Error(), "ui.basic_auth_file") {
		field = "ui.basic_auth_file"
	}
	return config.Errors{cfg.Problem(field, err)}
}

func pick(fileField, file, envField string) string {
	if file != "" {
		return fileField
	}
	return envField
}
