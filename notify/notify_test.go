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

func hijackMessage(kind Kind) *Message {
	ev := []finding.Evidence{
		{Server: "a.gtld-servers.net", Query: "parent NS", Answer: "approved: ns1.shop-dns.net, ns2.shop-dns.net, now: ns1.evil.example"},
		{Server: "b.gtld-servers.net", Query: "parent NS", Answer: "approved: ns1.shop-dns.net, ns2.shop-dns.net, now: ns1.evil.example"},
	}
	return &Message{
		Kind: kind, Domain: "shop-example.com", Severity: finding.Critical, Title: "Parent NS changed and 1 more", At: t0.Add(12 * time.Minute), Since: t0, IncidentID: 42,
		Findings: []Finding{
			{Finding: finding.Finding{ID: "DELEGATION_CHANGED", Severity: finding.Critical, Message: "parent NS changed: approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example",
				Evidence: ev}, Title: "Parent NS changed", Since: t0},
			{Finding: finding.Finding{ID: "NS_SINGLE_PROVIDER", Severity: finding.Warning, Message: "every name server is under evil.example"}, Title: "One provider", Since: t0},
		},
		Playbooks: []string{"shop-to-backup"}, AcceptCommand: AcceptCommand("shop-example.com"),
		ContactSheet: "## Registrar\n**MarkMonitor** abuse desk: +1 208 389 5740",
		Related:      []Related{{IncidentID: 41, Severity: finding.Warning, Title: "one name server lame", URL: "https://example.slack.com/archives/C1/p1"}},
	}
}

// The page fits one screen: what, since when, what to do; the evidence
// and the contacts are in the thread.
func TestPageSaysWhatToDoOnOneScreen(t *testing.T) {
	m := hijackMessage(KindOpen)
	all := strings.Join(sectionTexts(t, Blocks(m)), "\n")
	for _, want := range []string{
		"🔴 CRITICAL · shop-example.com",
		"*Parent NS changed and 1 more*",
		"Incident #42 · since <!date^" + fmt.Sprint(t0.Unix()), "(12m)",
		"🔴 *Parent NS changed* — parent NS changed: approved ns1.shop-dns.net, ns2.shop-dns.net → now ns1.evil.example",
		"🟠 *One provider*",
		"`nsguard failover plan shop-to-backup`", "--plan-checksum",
		"`nsguard baseline approve shop-example.com --reason \"…\"`",
		"`nsguard incident ack 42 --by NAME --reason \"…\"`",
		"`nsguard incident show 42`",
		"<https://example.slack.com/archives/C1/p1|#41 WARNING one name server lame>",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("page lacks %q:\n%s", want, all)
		}
	}
	for _, not := range []string{"```", "MarkMonitor", ":red_circle:", "failover run"} {
		if strings.Contains(all, not) {
			t.Errorf("page holds %q, which belongs in the thread:\n%s", not, all)
		}
	}
	if lines := strings.Count(all, "\n") + 1; lines > 16 {
		t.Errorf("page is %d lines; it must fit one screen:\n%s", lines, all)
	}
	if got := Text(m); got != "🔴 [CRITICAL] shop-example.com · incident #42: Parent NS changed and 1 more" {
		t.Errorf("Text = %q", got)
	}
}

// The first reply holds the evidence, each distinct answer once.
func TestDetailFoldsIdenticalEvidence(t *testing.T) {
	all := strings.Join(sectionTexts(t, Blocks(hijackMessage(KindDetail))), "\n")
	want := "a.gtld-servers.net, b.gtld-servers.net parent NS: approved: ns1.shop-dns.net, ns2.shop-dns.net, now: ns1.evil.example"
	if strings.Count(all, "now: ns1.evil.example") != 1 || !strings.Contains(all, want) {
		t.Errorf("evidence not folded into %q:\n%s", want, all)
	}
	for _, want := range []string{"*Registrar*", "*MarkMonitor*", "`DELEGATION_CHANGED`"} {
		if !strings.Contains(all, want) {
			t.Errorf("detail lacks %q:\n%s", want, all)
		}
	}
}

// A resolved or acknowledged incident's first message says so in place.
func TestRootUpdateShowsTheState(t *testing.T) {
	m := hijackMessage(KindRootUpdate)
	m.State, m.EndedAt = "resolved", t0.Add(47*time.Minute)
	all := strings.Join(sectionTexts(t, Blocks(m)), "\n")
	for _, want := range []string{"✅ RESOLVED · shop-example.com (was CRITICAL)", "after 47m", "*Parent NS changed and 1 more*"} {
		if !strings.Contains(all, want) {
			t.Errorf("resolved root lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "What to do") {
		t.Errorf("a resolved page still says what to do:\n%s", all)
	}
	m.State, m.EndedAt, m.AckedBy, m.AckReason, m.AckedAt = "acknowledged", time.Time{}, "ann", "calling the registry", t0.Add(5*time.Minute)
	all = strings.Join(sectionTexts(t, Blocks(m)), "\n")
	for _, want := range []string{"🔴 CRITICAL · shop-example.com", "👤 *Acknowledged* by ann", "calling the registry", "What to do"} {
		if !strings.Contains(all, want) {
			t.Errorf("acknowledged root lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "incident ack 42") {
		t.Errorf("an acknowledged page still asks to be acknowledged:\n%s", all)
	}
}

func TestRepliesAreShortAndTruthful(t *testing.T) {
	base := hijackMessage(KindOpen)
	for _, tc := range []struct {
		name string
		edit func(m *Message)
		want []string
		not  []string
	}{
		{"update", func(m *Message) {
			m.Kind, m.Severity = KindUpdate, finding.Warning
			m.Findings = []Finding{{Finding: finding.Finding{ID: "RESOLVER_ANSWER_DIVERGES", Severity: finding.Warning, Evidence: []finding.Evidence{{Answer: "A 203.0.113.66"}}}, State: StateNew}}
		}, []string{"🟠 *New in incident #42* (WARNING): RESOLVER_ANSWER_DIVERGES", "A 203.0.113.66"}, []string{"CRITICAL"}},
		{"cleared", func(m *Message) {
			m.Kind, m.Severity = KindCleared, finding.Warning
			m.Findings[0].State, m.Findings[1].State = StateCleared, StateOngoing
		}, []string{"✅ *Cleared:* Parent NS changed", "Still open (WARNING): One provider"}, []string{"CRITICAL"}},
		{"repeat", func(m *Message) { m.Kind = KindRepeat; m.At = t0.Add(4 * time.Hour) },
			[]string{"🔴 *Still open* after 4h00m, not acknowledged", "nsguard incident ack 42"}, nil},
		{"ack", func(m *Message) { m.Kind, m.AckedBy, m.AckReason = KindAck, "ann", "on it" },
			[]string{"👤 *Acknowledged* by ann: on it", "Repeats stop"}, nil},
		{"resolved", func(m *Message) { m.Kind, m.EndedAt = KindResolved, t0.Add(47*time.Minute) },
			[]string{"✅ *Resolved* after 47m: Parent NS changed, One provider cleared."}, []string{"What to do"}},
		{"closed", func(m *Message) { m.Kind, m.Text = KindClosed, "shop-example.com was removed from the inventory" },
			[]string{"⏹ *Closed:* shop-example.com was removed from the inventory"}, []string{"Resolved", "cleared"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := base.Marshal()
			m, _ := Unmarshal(b)
			tc.edit(m)
			all := unescape(strings.Join(sectionTexts(t, Blocks(m)), "\n") + "\n" + Text(m))
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("lacks %q:\n%s", w, all)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(all, n) {
					t.Errorf("holds %q:\n%s", n, all)
				}
			}
		})
	}
}

// unescape reverses Escape the way Slack displays it: tokens show their
// fallback, entities decode, the soft hyphen is invisible.
func unescape(s string) string {
	for {
		i := strings.Index(s, literalOpen)
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		s = s[:i] + s[i+len(literalOpen):i+j] + s[i+j+1:]
	}
	s = strings.ReplaceAll(s, "\u00ad", "")
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// Network text can neither mention, link nor format a page, and reads as
// it was sent.
func TestEscapeHostileText(t *testing.T) {
	for _, in := range []string{
		"<!channel> hijacked",
		"<https://evil.example|click here>",
		"*bold* _italic_ ~strike~ `code`",
		"MarkMonitor *Inc*",
		"_dmarc.shop-example.com TXT",
		"> quoted\n> twice",
		"a ``` fence ``` b",
		"&lt;!here&gt; already escaped",
		"<@U123> and <#C123>",
		"emoji :red_circle: stay text",
		"unicode ✓ 中文 *ok*",
	} {
		got := Escape(in)
		if back := unescape(got); back != in {
			t.Errorf("Escape(%q) reads as %q", in, back)
		}
		// Outside the literal tokens no formatting character and no raw
		// '<' or '>' survives.
		rest := got
		for {
			i := strings.Index(rest, literalOpen)
			if i < 0 {
				break
			}
			rest = rest[:i] + rest[i+len(literalOpen)+2:]
		}
		if strings.ContainsAny(rest, "<>*_~`") {
			t.Errorf("Escape(%q) = %q leaves a control character", in, got)
		}
		for _, line := range strings.Split(got, "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, " "), "&gt;") {
				t.Errorf("Escape(%q): a line starts with a quote: %q", in, line)
			}
		}
		if code := EscapeCode(in); strings.ContainsAny(code, "`<>") {
			t.Errorf("EscapeCode(%q) = %q can close the code or mention", in, code)
		}
	}
}

func TestTruncateNeverSplitsAToken(t *testing.T) {
	s := Escape(strings.Repeat("a*b", 200))
	for n := 10; n < 300; n++ {
		got := truncate(s, n)
		if len(got) > n {
			t.Fatalf("truncate(%d) = %d bytes", n, len(got))
		}
		if strings.Count(got, "<") != strings.Count(got, ">") || strings.Count(got, "&") != strings.Count(got, ";") {
			t.Fatalf("truncate(%d) split a token: %q", n, got)
		}
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
	for _, kind := range []Kind{KindOpen, KindDetail, KindUpdate, KindRepeat, KindResolved, KindFailover} {
		for i := range fs {
			fs[i].State = StateNew
		}
		m := &Message{Kind: kind, Domain: "d.com", Severity: finding.Warning, Title: strings.Repeat("T", 400), Text: "<!here>", Findings: fs,
			ContactSheet: strings.Repeat("contact ", 2000), Playbooks: []string{"p"}, At: t0, IncidentID: 3}
		t.Run(string(kind), func(t *testing.T) { checkLimits(t, m) })
	}
}

func checkLimits(t *testing.T, m *Message) {
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
