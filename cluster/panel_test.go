package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
)

// The panel judges each vantage's latest stored report made within its
// window: a silent vantage has left it, a vantage that could not check
// neither sees nor denies, and Behind names who has not reported since a
// recheck was asked.
func TestPanel(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "nsguard.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	hijack := finding.Finding{ID: "NS_NOT_AS_DECLARED", Severity: finding.Critical, Message: "delegated elsewhere"}
	put := func(vantage string, ago time.Duration, checkErr error, fs ...finding.Finding) {
		t.Helper()
		if _, err := st.PutObservation(ctx, store.Observation{Domain: "shop-example.com", Class: "dns", Vantage: vantage,
			ObservedAt: now.Add(-ago), Data: []byte(`{}`), Report: Encode(checkErr, fs)}); err != nil {
			t.Fatal(err)
		}
	}
	put("fra", 10*time.Second, nil)
	put("hk", 20*time.Second, nil, hijack)
	put("sh", 5*time.Second, nil, hijack)
	put("old", 10*time.Minute, nil) // left the panel: silent for longer than the window
	put("cut", 9*time.Second, errors.New("no server of the parent zone com. gave a usable answer"))
	p := Panel{Store: st, Class: "dns", Window: 2 * time.Minute}
	v, err := p.Judge(ctx, "shop-example.com", now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Checked != 3 || len(v.Reports) != 4 {
		t.Fatalf("checked %d of %d reports; want 3 of 4 (old left, cut could not check)", v.Checked, len(v.Reports))
	}
	if len(v.Findings) != 1 || v.Findings[0].ID != hijack.ID || strings.Join(v.Findings[0].SeenFrom, ",") != "hk,sh" ||
		strings.Join(v.Findings[0].NotSeenFrom, ",") != "fra" {
		t.Fatalf("verdict = %+v", v.Findings)
	}
	behind, err := p.Behind(ctx, "shop-example.com", now.Add(-8*time.Second), now)
	if err != nil || strings.Join(behind, ",") != "fra,hk" {
		t.Fatalf("behind = %v, %v; want fra and hk, who last reported before the request (not cut, which cannot check)", behind, err)
	}
	// A quorum of 3 turns the same reports into a disagreement.
	p.Quorum = 3
	if v, _ := p.Judge(ctx, "shop-example.com", now, time.Time{}); len(v.Findings) != 1 || v.Findings[0].ID != VantageDisagrees {
		t.Fatalf("with quorum 3: %+v", v.Findings)
	}
	p.Quorum = 0
	// A recheck round: only reports since the request vote (sh's), but
	// all three that could check count towards the majority: one vantage
	// alone cannot make a finding pass.
	v, _ = p.Judge(ctx, "shop-example.com", now, now.Add(-8*time.Second))
	if v.Checked != 1 || v.Quorum != 2 || len(v.Findings) != 1 || v.Findings[0].ID != VantageDisagrees {
		t.Fatalf("a recheck round sh alone answered: checked %d, quorum %d, %+v", v.Checked, v.Quorum, v.Findings)
	}
	// A stopped vantage (no heartbeat) leaves the panel at once.
	p.Live = func(v string) bool { return v != "fra" }
	if v, _ := p.Judge(ctx, "shop-example.com", now, time.Time{}); v.Checked != 2 || len(v.Findings) != 1 || v.Findings[0].NotSeenFrom != nil {
		t.Fatalf("without fra: %+v", v)
	}
	p.Live = nil
	// Nobody could check: no verdict at all, so nothing clears.
	if v, _ := p.Judge(ctx, "shop-example.com", now.Add(time.Hour), time.Time{}); v.Checked != 0 || v.Findings != nil {
		t.Fatalf("an hour later: %+v", v)
	}
}

// A verdict is unsettled when the vantages disagree and one has not looked
// since another saw a change: a hijack one vantage saw a moment ago.
func TestUnsettled(t *testing.T) {
	now := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	hijack := finding.Finding{ID: "NS_NOT_AS_DECLARED", Severity: finding.Critical, Domain: "d.com"}
	accepted := finding.Finding{ID: "NS_SINGLE_PROVIDER", Severity: finding.Warning, Domain: "d.com", Accepted: true}
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name string
		rs   []Report
		want bool
	}{
		{"the leader saw it just now, the others looked before", []Report{
			{Vantage: "a", At: at(0), Changed: at(0), Findings: []finding.Finding{hijack}},
			{Vantage: "b", At: at(-20), Changed: at(-3600)}, {Vantage: "c", At: at(-40), Changed: at(-3600)}}, true},
		{"they disagree, but all looked since every change: a regional view", []Report{
			{Vantage: "a", At: at(0), Changed: at(-30), Findings: []finding.Finding{hijack}},
			{Vantage: "b", At: at(-20), Changed: at(-3600)}, {Vantage: "c", At: at(-10), Changed: at(-3600)}}, false},
		{"they agree", []Report{
			{Vantage: "a", At: at(0), Changed: at(0), Findings: []finding.Finding{hijack}},
			{Vantage: "b", At: at(-20), Changed: at(-25), Findings: []finding.Finding{hijack}}}, false},
		{"only accepted risk differs", []Report{
			{Vantage: "a", At: at(0), Changed: at(0), Findings: []finding.Finding{accepted}},
			{Vantage: "b", At: at(-20), Changed: at(-3600)}}, false},
		{"the one that differs cannot check", []Report{
			{Vantage: "a", At: at(0), Changed: at(0), Err: "timeout"},
			{Vantage: "b", At: at(-20), Changed: at(-3600)}, {Vantage: "c", At: at(-40), Changed: at(-3600), Findings: []finding.Finding{hijack}}}, false},
	} {
		if got := unsettled(tc.rs); got != tc.want {
			t.Errorf("%s: unsettled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A row with no report (written before the cluster) neither sees nor denies.
func TestDecodeWithoutReport(t *testing.T) {
	rs := Decode([]store.Observation{{Vantage: "", Report: nil}, {Vantage: "x", Report: []byte(`{`)}})
	if len(rs) != 2 || rs[0].Err == "" || !strings.Contains(rs[1].Err, "unreadable") {
		t.Fatalf("%+v", rs)
	}
}
