package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Slack
		sev  finding.Severity
		want string
	}{
		{"default channel", config.Slack{Channel: "#dns"}, finding.Critical, "#dns"},
		{"by severity", config.Slack{Channel: "#dns", Channels: map[string]string{"critical": "#pager"}}, finding.Critical, "#pager"},
		{"other severity falls back", config.Slack{Channel: "#dns", Channels: map[string]string{"critical": "#pager"}}, finding.Warning, "#dns"},
		{"only a critical channel", config.Slack{Channels: map[string]string{"critical": "#pager"}}, finding.Info, "#pager"},
		{"nearest higher", config.Slack{Channels: map[string]string{"warning": "#warn", "critical": "#pager"}}, finding.Info, "#warn"},
		{"nothing", config.Slack{}, finding.Warning, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Route(tc.cfg, tc.sev); got != tc.want {
				t.Fatalf("Route = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"999999", time.Hour},
		{t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{t0.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := ParseRetryAfter(tc.in, t0); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("token", "  xoxb-abc-SECRET\n")
	empty := write("empty", "\n")
	two := write("two", "xoxb-one-SECRET\nxoxb-two-SECRET\n")
	huge := write("huge", strings.Repeat("SECRET", 20000))
	t.Setenv("NSGUARD_TOK", " xoxb-env-SECRET ")
	for _, tc := range []struct {
		name, file, env, want, wantErr string
	}{
		{"file", good, "", "xoxb-abc-SECRET", ""},
		{"env", "", "NSGUARD_TOK", "xoxb-env-SECRET", ""},
		{"file wins", good, "NSGUARD_TOK", "xoxb-abc-SECRET", ""},
		{"missing file", filepath.Join(dir, "nope"), "", "", "no such file"},
		{"empty file", empty, "", "", "is empty"},
		{"two lines", two, "", "", "more than one line"},
		{"huge", huge, "", "", "larger than"},
		{"unset env", "", "NSGUARD_UNSET_VAR", "", "NSGUARD_UNSET_VAR"},
		{"nothing", "", "", "", "no secret configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSecret(tc.file, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Fatalf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ReadSecret = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	s := Redact(`Post "https://hooks.slack.com/services/T1/B2/XyZ": dial tcp`, "https://hooks.slack.com/services/T1/B2/XyZ", "", "ab")
	if strings.Contains(s, "XyZ") || !strings.Contains(s, "[redacted]") {
		t.Fatalf("Redact = %q", s)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := &Message{
		Kind: KindOpen, Domain: "shop-example.com", Severity: finding.Critical, Title: "NS changed", At: t0, Since: t0,
		Findings: []Finding{{Finding: finding.Finding{ID: "PARENT_NS_CHANGED", Severity: finding.Critical, Domain: "shop-example.com",
			Evidence: []finding.Evidence{{Server: "a.gtld-servers.net", Query: "NS shop-example.com", Answer: "approved ns1.shop-dns.net → now ns1.evil.example"}}},
			State: StateNew, Since: t0}},
		Playbooks: []string{"shop-to-backup"}, ThreadKey: "incident:1", Channel: "#dns",
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	if string(gb) != string(b) {
		t.Fatalf("round trip changed the message:\n%s\n%s", b, gb)
	}
	if got.Findings[0].Severity != finding.Critical || got.Findings[0].Evidence[0].Server != "a.gtld-servers.net" {
		t.Fatalf("decoded = %+v", got.Findings[0])
	}
}

func sectionTexts(t *testing.T, blocks []slackapi.Block) []string {
	t.Helper()
	var out []string
	for _, b := range blocks {
		switch v := b.(type) {
		case *slackapi.SectionBlock:
			out = append(out, v.Text.Text)
		case *slackapi.HeaderBlock:
			if len(v.Text.Text) > maxHeaderText {
				t.Errorf("header of %d chars", len(v.Text.Text))
			}
			out = append(out, v.Text.Text)
		case *slackapi.ContextBlock:
			for _, e := range v.ContextElements.Elements {
				if tb, ok := e.(*slackapi.TextBlockObject); ok {
					out = append(out, tb.Text)
				}
			}
		}
	}
	return out
}

func TestBlocksSayWhatToDo(t *testing.T) {
	m := &Message{
		Kind: KindOpen, Domain: "shop-example.com", Severity: finding.Critical, Title: "NS at the parent changed", At: t0.Add(12 * time.Minute), Since: t0, IncidentID: 42,
		Findings: []Finding{{Finding: finding.Finding{ID: "PARENT_NS_CHANGED", Severity: finding.Critical, Message: "the parent now delegates to servers nobody approved",
			Evidence: []finding.Evidence{
				{Server: "a.gtld-servers.net", Query: "NS shop-example.com", Answer: "approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example"},
				{Server: "b.gtld-servers.net", Query: "NS shop-example.com", Answer: "approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example"},
			}}, Title: "Parent NS changed", Since: t0}},
		Playbooks: []string{"shop-to-backup"}, AcceptCommand: AcceptCommand("shop-example.com"),
		ContactSheet: "## Registrar\n**MarkMonitor** abuse desk: +1 208 389 5740",
	}
	all := strings.Join(sectionTexts(t, Blocks(m)), "\n")
	for _, want := range []string{
		"CRITICAL · shop-example.com",
		"a.gtld-servers.net NS shop-example.com: approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example",
		"b.gtld-servers.net",
		"`nsguard failover run shop-to-backup`",
		"`nsguard baseline approve shop-example.com --reason \"…\"`",
		"*Registrar*", "*MarkMonitor*",
		"Open since <!date^" + fmt.Sprint(t0.Unix()),
		"(12m)",
		"incident #42",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q:\n%s", want, all)
		}
	}
	if got := Text(m); got != "[CRITICAL] shop-example.com: NS at the parent changed" {
		t.Errorf("Text = %q", got)
	}
}

// Whatever a hostile or broken server answers, the message stays inside
// Slack's limits and cannot ping the channel.
func TestBlocksStayInsideSlackLimits(t *testing.T) {
	var fs []Finding
	for i := range 120 {
		var ev []finding.Evidence
		for j := range 200 {
			ev = append(ev, finding.Evidence{Server: fmt.Sprintf("ns%d.example", j), Answer: strings.Repeat("<!channel> ```x``` ", 20)})
		}
		fs = append(fs, Finding{Finding: finding.Finding{ID: fmt.Sprintf("RECORD_CHANGED_%d", i), Severity: finding.Warning, Subject: strings.Repeat("w", 500), Message: strings.Repeat("m", 5000), Evidence: ev}})
	}
	m := &Message{Kind: KindUpdate, Domain: "d.com", Severity: finding.Warning, Title: strings.Repeat("T", 400), Text: "<!here>", Findings: fs,
		ContactSheet: strings.Repeat("contact ", 2000), Playbooks: []string{"p"}, At: t0}
	blocks := Blocks(m)
	if len(blocks) > maxBlocks {
		t.Fatalf("%d blocks", len(blocks))
	}
	for _, s := range sectionTexts(t, blocks) {
		if len(s) > maxSectionText {
			t.Fatalf("section of %d chars", len(s))
		}
		if strings.Contains(s, "<!channel>") || strings.Contains(s, "<!here>") {
			t.Fatalf("unescaped mention: %.200s", s)
		}
		if strings.Count(s, "```")%2 != 0 {
			t.Fatalf("unbalanced code fence: %.300s…", s)
		}
	}
	if _, err := json.Marshal(blocks); err != nil {
		t.Fatal(err)
	}
	if len(Text(m)) > maxFallbackText {
		t.Fatalf("fallback text of %d chars", len(Text(m)))
	}
}
