package finding

import "testing"

func TestMergeAndSort(t *testing.T) {
	fs := []Finding{
		{ID: "RECORD_CHANGED", Severity: Warning, Domain: "a.com", Subject: "www/A", Message: "servers disagree", Evidence: []Evidence{{Answer: "x"}}},
		{ID: "NS_LAME", Severity: Warning, Domain: "a.com", Message: "lame"},
		{ID: "RECORD_CHANGED", Severity: Critical, Domain: "a.com", Subject: "www/A", Message: "differs from baseline", Evidence: []Evidence{{Answer: "y"}}},
		{ID: "RECORD_CHANGED", Severity: Warning, Domain: "a.com", Subject: "api/A", Message: "other"},
	}
	m := Merge(fs)
	if len(m) != 3 {
		t.Fatalf("merged to %d findings: %+v", len(m), m)
	}
	if m[0].Subject != "www/A" || m[0].Severity != Critical || len(m[0].Evidence) != 2 || m[0].Message != "servers disagree; differs from baseline" {
		t.Errorf("merged finding: %+v", m[0])
	}
	if Worst(m) != Critical || Worst(nil) != OK {
		t.Error("Worst")
	}
	if Critical.ExitCode() != 2 || Warning.ExitCode() != 1 || Info.ExitCode() != 0 {
		t.Error("exit codes")
	}
	for _, s := range []string{"ok", "info", "warning", "critical"} {
		v, err := ParseSeverity(s)
		if err != nil || v.String() != s {
			t.Errorf("%s round trip: %v %v", s, v, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("unknown severity accepted")
	}
}
