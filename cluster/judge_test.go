package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/finding"
)

func f(id string, sev finding.Severity) finding.Finding {
	return finding.Finding{ID: id, Severity: sev, Message: strings.ToLower(id)}
}

func TestJudge(t *testing.T) {
	hijack := f("NS_NOT_AS_DECLARED", finding.Critical)
	poison := f("RESOLVER_ANSWER_DIVERGES", finding.Warning)
	lame := f("NS_LAME", finding.Warning)
	for _, tc := range []struct {
		name    string
		reports []Report
		quorum  int
		want    string // IDs and severities; VANTAGE_DISAGREES with who sees it
	}{
		{"one vantage: whatever it sees", []Report{{Vantage: "fra", Findings: []finding.Finding{hijack}}}, 0,
			"NS_NOT_AS_DECLARED/critical"},
		{"all agree", []Report{{Vantage: "fra", Findings: []finding.Finding{hijack}}, {Vantage: "hk", Findings: []finding.Finding{hijack}}, {Vantage: "sh", Findings: []finding.Finding{hijack}}}, 0,
			"NS_NOT_AS_DECLARED/critical seen[fra hk sh] not[]"},
		{"a majority", []Report{{Vantage: "fra"}, {Vantage: "hk", Findings: []finding.Finding{hijack}}, {Vantage: "sh", Findings: []finding.Finding{hijack}}}, 0,
			"NS_NOT_AS_DECLARED/critical seen[hk sh] not[fra]"},
		{"a regional hijack: one of three", []Report{{Vantage: "fra"}, {Vantage: "hk"}, {Vantage: "sh", Findings: []finding.Finding{hijack, poison}}}, 0,
			"VANTAGE_DISAGREES/critical seen[sh] not[fra hk]"},
		{"a regional poisoning: one of three", []Report{{Vantage: "fra"}, {Vantage: "hk"}, {Vantage: "sh", Findings: []finding.Finding{poison}}}, 0,
			"VANTAGE_DISAGREES/warning seen[sh] not[fra hk]"},
		{"a partitioned vantage neither sees nor denies", []Report{{Vantage: "fra", Err: "timeout"}, {Vantage: "hk", Findings: []finding.Finding{lame}}, {Vantage: "sh", Findings: []finding.Finding{lame}}}, 0,
			"NS_LAME/warning seen[hk sh] not[]"},
		{"everyone partitioned", []Report{{Vantage: "fra", Err: "timeout"}, {Vantage: "hk", Err: "timeout"}}, 0, ""},
		{"an explicit quorum of 3", []Report{{Vantage: "fra"}, {Vantage: "hk", Findings: []finding.Finding{hijack}}, {Vantage: "sh", Findings: []finding.Finding{hijack}}}, 3,
			"VANTAGE_DISAGREES/critical seen[hk sh] not[fra]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, x := range Judge("shop-example.com", tc.reports, tc.quorum) {
				s := fmt.Sprintf("%s/%s", x.ID, x.Severity)
				if x.SeenFrom != nil || x.NotSeenFrom != nil {
					s += fmt.Sprintf(" seen%v not%v", x.SeenFrom, x.NotSeenFrom)
				}
				if x.Domain != "shop-example.com" {
					t.Errorf("finding %s has domain %q", x.ID, x.Domain)
				}
				got = append(got, s)
			}
			if strings.Join(got, "; ") != tc.want {
				t.Fatalf("Judge = %q, want %q", strings.Join(got, "; "), tc.want)
			}
		})
	}
}

func TestDisagreementSaysWhoSeesWhat(t *testing.T) {
	out := Judge("shop-example.com", []Report{{Vantage: "vantage-fra"}, {Vantage: "vantage-hk"},
		{Vantage: "vantage-sh", Findings: []finding.Finding{f("RESOLVER_ANSWER_DIVERGES", finding.Warning)}}}, 0)
	if len(out) != 1 || !strings.Contains(out[0].Message, "RESOLVER_ANSWER_DIVERGES seen from vantage-sh but not from vantage-fra, vantage-hk (1 of 3 vantage points, fewer than the 2 that must agree)") {
		t.Fatalf("disagreement = %+v", out)
	}
}
