package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/config"
)

// TestExampleConfig: the production example loads with nsguard's own
// loader and its secret paths are the systemd credentials the unit loads.
func TestExampleConfig(t *testing.T) {
	const file = "examples/nsguard.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file, data)
	if err != nil {
		t.Fatalf("%s does not load:\n%v", file, err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]bool{}
	for _, c := range unitDirectives(string(unit))["Service"]["LoadCredential"] {
		name, _, _ := strings.Cut(c, ":")
		creds["/run/credentials/nsguard.service/"+name] = true
	}
	secretFiles := []string{cfg.Alerts.Slack.TokenFile}
	for _, pb := range cfg.Playbooks {
		for _, st := range append(append([]config.Step{}, pb.Steps...), pb.Rollback...) {
			if st.DNSUpdate != nil {
				secretFiles = append(secretFiles, st.DNSUpdate.TSIGFile)
			}
			if st.Webhook != nil && st.Webhook.SecretFile != "" {
				secretFiles = append(secretFiles, st.Webhook.SecretFile)
			}
		}
	}
	for _, f := range secretFiles {
		if !creds[f] {
			t.Errorf("%s reads %s, which the unit's LoadCredential= does not provide", file, f)
		}
	}
	if len(cfg.Domains) == 0 || len(cfg.Playbooks) == 0 || len(cfg.Policy.ApprovedRegistrars) == 0 {
		t.Error("the example should show domains, a playbook and the registrar policy")
	}
}
