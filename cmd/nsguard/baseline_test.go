package main

import (
	"context"
	"strings"
	"testing"
)

func TestBaselineApproveShowDiff(t *testing.T) {
	env, cfg := startEnv(t, "")
	code, _, stderr := runCLI(t, "baseline", "approve", "--config", cfg)
	if code != 3 || !strings.Contains(stderr, "--reason is required") {
		t.Fatalf("approve without a reason: exit %d %s", code, stderr)
	}
	code, out, stderr := runCLI(t, "baseline", "diff", "--config", cfg, "shop-example.com")
	if code != 3 || !strings.Contains(out, "no approved baseline") {
		t.Fatalf("diff before approval: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "baseline", "approve", "--config", cfg, "--reason", "initial", "--by", "alice")
	if code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "shop-example.com: approved as version 1 by alice: initial") {
		t.Errorf("approve output:\n%s", out)
	}
	code, out, _ = runCLI(t, "baseline", "show", "--config", cfg, "shop-example.com")
	if code != 0 || !strings.Contains(out, "version 1, approved by alice") || !strings.Contains(out, "registrar      MarkMonitor Inc.") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "baseline", "diff", "--config", cfg)
	if code != 0 || strings.Count(out, "as approved (version 1)") != 5 {
		t.Errorf("diff of an unchanged lab: exit %d\n%s", code, out)
	}

	if err := env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "baseline", "diff", "--config", cfg, "shop-example.com")
	if code != 2 {
		t.Errorf("diff after a hijack: exit %d, want 2", code)
	}
	for _, want := range []string{"CHANGE parent NS: ns1.provider-a.net., ns1.provider-b.org. → ns1.attacker.net., ns2.attacker.net. [critical]",
		"CHANGE parent NS @ a.gtld-servers.net. 127.53.0.3"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "baseline", "approve", "--config", cfg, "shop-example.com", "--reason", "oops")
	if code != 1 || !strings.Contains(out, "not approved: the current state has critical findings") {
		t.Errorf("approving a hijacked state: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "baseline", "approve", "--config", cfg, "shop-example.com", "--reason", "lab test", "--force")
	if code != 0 || !strings.Contains(out, "approved as version 2") || !strings.Contains(out, "forced over") {
		t.Errorf("forced approval: exit %d\n%s", code, out)
	}
}

func TestBaselineApproveRefusesWithoutRegistration(t *testing.T) {
	env, cfg := startEnv(t, "")
	env.Reg.RemoveDomain("shop-example.cn")
	code, out, _ := runCLI(t, "baseline", "approve", "--config", cfg, "shop-example.cn", "--reason", "initial")
	if code != 1 || !strings.Contains(out, "shop-example.cn: not approved: its registration could not be read") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "baseline", "approve", "--config", cfg, "shop-example.cn", "--reason", "initial", "--force")
	if code != 0 || !strings.Contains(out, "approved as version 1") {
		t.Fatalf("forced: exit %d\n%s", code, out)
	}
}
