package failover

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/notify"
)

// CheckPlaybooks reads what planning the config's playbooks reads before it
// asks any server or changes anything: each dns_update's TSIG key, each
// webhook's HMAC secret and templates, each notify template, each verify
// step's expected answer, and every server a step names. It calls the
// functions a plan calls, so `nsguard config check` passes only when a
// plan gets past them. It sends nothing and resolves no name.
func CheckPlaybooks(cfg *config.Config) config.Errors {
	var errs config.Errors
	for i, pb := range cfg.Playbooks {
		pl := &planner{pb: pb}
		for _, part := range []struct {
			key   string
			steps []config.Step
		}{{"steps", pb.Steps}, {"rollback", pb.Rollback}} {
			for j, s := range part.steps {
				p := fmt.Sprintf("playbooks[%d].%s[%d]", i, part.key, j)
				fail := func(field string, err error) {
					errs = append(errs, cfg.Problem(p+field, errors.New(strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))))
				}
				switch {
				case s.DNSUpdate != nil:
					u := s.DNSUpdate
					if _, err := ReadKeyFile(u.TSIGFile); err != nil && u.TSIGFile != "" {
						fail(".dns_update.tsig_file", err)
					}
					if _, _, _, err := serverSpec(u.Server, cfg.Resolver.Port); err != nil && u.Server != "" {
						fail(".dns_update.server", err)
					}
				case s.Webhook != nil:
					w := *s.Webhook
					if w.SecretFile != "" || w.SecretEnv != "" {
						if _, err := notify.ReadSecret(w.SecretFile, w.SecretEnv); err != nil {
							field := ".webhook.secret_file"
							if w.SecretFile == "" {
								field = ".webhook.secret_env"
							}
							fail(field, err)
						}
						// The secret is reported above; the rest of the
						// plan's checks (templates, URL) still run.
						w.SecretFile, w.SecretEnv = "", ""
					}
					if err := pl.planWebhook(&StepPlan{}, &w); err != nil {
						fail(".webhook", err)
					}
				case s.Verify != nil:
					v := s.Verify
					if _, err := parseExpect(dns.CanonicalName(dns.Fqdn(v.Name)), strings.ToUpper(v.Type), v.Expect); err != nil {
						fail(".verify.expect", err)
					}
					for k, srv := range v.Servers {
						if _, _, _, err := serverSpec(srv, cfg.Resolver.Port); err != nil {
							fail(fmt.Sprintf(".verify.servers[%d]", k), err)
						}
					}
				case s.Notify != nil:
					if err := pl.planNotify(&StepPlan{}, s.Notify); err != nil {
						fail(".notify.message", err)
					}
				}
			}
		}
	}
	return errs
}
