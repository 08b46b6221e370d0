package notify

import (
	"fmt"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/nsguard/nsguard/finding"
)

// Slack's limits (api.slack.com/reference/block-kit): 50 blocks a message,
// 3000 characters a section, 150 a header. Rendering stays inside them
// whatever the findings hold, because a message Slack rejects is a page
// that never arrives.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxHeaderText      = 150
	maxFindingsShown   = 20
	maxEvidenceShown   = 12
	maxFallbackText    = 3000
	maxContactSheetLen = 2500
)

// Emoji for a severity, so the channel reads at a glance.
func Emoji(s finding.Severity) string {
	switch s {
	case finding.Critical:
		return ":red_circle:"
	case finding.Warning:
		return ":large_orange_circle:"
	case finding.Info:
		return ":large_blue_circle:"
	}
	return ":white_check_mark:"
}

// Escape makes untrusted text safe in Slack mrkdwn: '<' would otherwise let
// a DNS answer write "<!channel>" and page everyone, and a run of
// backticks would close the code block the evidence sits in.
func Escape(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return strings.ReplaceAll(s, "```", "ˋˋˋ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary and say so.
	cut := n - len("…")
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// slackDate renders t in each reader's own time zone, with UTC as the
// fallback for clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func duration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "under a minute"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h >= 48:
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// heading is the first line of a message, by kind.
func heading(m *Message) string {
	sev := strings.ToUpper(m.Severity.String())
	switch m.Kind {
	case KindOpen:
		return fmt.Sprintf("%s · %s", sev, m.Domain)
	case KindUpdate:
		return fmt.Sprintf("Update · %s · %s", sev, m.Domain)
	case KindRepeat:
		return fmt.Sprintf("Still open · %s · %s", sev, m.Domain)
	case KindResolved:
		return fmt.Sprintf("Resolved · %s", m.Domain)
	}
	if m.Domain != "" && !strings.Contains(m.Title, m.Domain) {
		return m.Title + " · " + m.Domain
	}
	return m.Title
}

// Text is the plain fallback Slack shows in notifications and that the
// webhook receiver sends beside the blocks.
func Text(m *Message) string {
	var b strings.Builder
	switch m.Kind {
	case KindResolved:
		fmt.Fprintf(&b, "[RESOLVED] %s: %s", m.Domain, m.Title)
	case KindOpen, KindUpdate, KindRepeat:
		fmt.Fprintf(&b, "[%s] %s: %s", strings.ToUpper(m.Severity.String()), m.Domain, m.Title)
		if m.Kind == KindRepeat {
			b.WriteString(" (still open)")
		}
	default:
		b.WriteString(heading(m))
		if m.Text != "" {
			b.WriteString(": ")
			b.WriteString(m.Text)
		}
	}
	return truncate(Escape(b.String()), maxFallbackText)
}

func section(mrkdwn string) *slackapi.SectionBlock {
	return slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, truncate(mrkdwn, maxSectionText), false, false), nil, nil)
}

func contextBlock(mrkdwn string) *slackapi.ContextBlock {
	return slackapi.NewContextBlock("", slackapi.NewTextBlockObject(slackapi.MarkdownType, truncate(mrkdwn, maxSectionText), false, false))
}

// findingText renders one finding: what, where, and the evidence server by
// server, which for a baseline finding reads "approved … → now …". Each
// part has a budget, so a long answer shortens the evidence instead of
// cutting the code block open.
func findingText(f Finding) string {
	var b strings.Builder
	title := f.Title
	if title == "" {
		title = f.ID
	}
	fmt.Fprintf(&b, "%s *%s*", Emoji(f.Severity), truncate(Escape(title), 200))
	switch f.State {
	case StateNew:
		b.WriteString("  `NEW`")
	case StateCleared:
		b.WriteString("  `CLEARED`")
	}
	fmt.Fprintf(&b, "\n`%s`", truncate(Escape(f.ID), 100))
	if f.Subject != "" {
		fmt.Fprintf(&b, " · %s", truncate(Escape(f.Subject), 200))
	}
	if !f.Since.IsZero() {
		fmt.Fprintf(&b, " · since %s", slackDate(f.Since))
	}
	if f.State == StateCleared && !f.ClearedAt.IsZero() {
		fmt.Fprintf(&b, " · cleared %s", slackDate(f.ClearedAt))
	}
	if f.Message != "" {
		b.WriteString("\n")
		b.WriteString(truncate(Escape(f.Message), 800))
	}
	if len(f.Evidence) == 0 || f.State == StateCleared {
		return b.String()
	}
	const fence = "\n```"
	budget := maxSectionText - b.Len() - 2*len(fence) - 40
	var ev strings.Builder
	for i, e := range f.Evidence {
		line := "\n" + truncate(Escape(e.String()), 400)
		if i == maxEvidenceShown || ev.Len()+len(line) > budget {
			fmt.Fprintf(&ev, "\n… and %d more", len(f.Evidence)-i)
			break
		}
		ev.WriteString(line)
	}
	if ev.Len() == 0 {
		return b.String()
	}
	b.WriteString(fence)
	b.WriteString(ev.String())
	b.WriteString(fence)
	return b.String()
}

// markdownToMrkdwn converts the few Markdown forms a contact sheet uses
// (headings, **bold**) to Slack's dialect, after escaping.
func markdownToMrkdwn(md string) string {
	lines := strings.Split(Escape(md), "\n")
	for i, l := range lines {
		if t := strings.TrimLeft(l, "#"); len(t) < len(l) && strings.HasPrefix(t, " ") {
			lines[i] = "*" + strings.TrimSpace(t) + "*"
			continue
		}
		lines[i] = strings.ReplaceAll(l, "**", "*")
	}
	return strings.Join(lines, "\n")
}

// Blocks renders a message as Block Kit, inside Slack's limits.
func Blocks(m *Message) []slackapi.Block {
	now := m.At
	if now.IsZero() {
		now = time.Now()
	}
	var blocks []slackapi.Block
	add := func(b slackapi.Block) { blocks = append(blocks, b) }

	head := heading(m)
	if m.Kind == KindResolved {
		head = "✅ " + head
	} else if m.Kind == KindOpen || m.Kind == KindUpdate || m.Kind == KindRepeat {
		head = map[finding.Severity]string{finding.Critical: "🔴 ", finding.Warning: "🟠 ", finding.Info: "🔵 "}[m.Severity] + head
	}
	add(slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, truncate(head, maxHeaderText), true, false)))

	var intro strings.Builder
	fmt.Fprintf(&intro, "*%s*", Escape(m.Title))
	switch m.Kind {
	case KindOpen, KindUpdate, KindRepeat:
		if !m.Since.IsZero() {
			fmt.Fprintf(&intro, "\nOpen since %s (%s)", slackDate(m.Since), duration(now.Sub(m.Since)))
		}
	case KindResolved:
		if !m.Since.IsZero() {
			fmt.Fprintf(&intro, "\nWas open %s, since %s", duration(now.Sub(m.Since)), slackDate(m.Since))
		}
	}
	if m.Text != "" {
		intro.WriteString("\n")
		intro.WriteString(Escape(m.Text))
	}
	add(section(intro.String()))

	if len(m.Findings) > 0 {
		add(slackapi.NewDividerBlock())
		shown := 0
		for _, f := range m.Findings {
			if shown == maxFindingsShown {
				add(contextBlock(fmt.Sprintf("… and %d more findings", len(m.Findings)-shown)))
				break
			}
			add(section(findingText(f)))
			shown++
		}
	}

	var actions []string
	if m.Kind != KindResolved {
		for _, p := range m.Playbooks {
			actions = append(actions, fmt.Sprintf("*Fail over:* `%s`", Escape(PlaybookCommand(p))))
		}
		if m.AcceptCommand != "" {
			actions = append(actions, fmt.Sprintf("*Planned change?* Accept it as the new baseline: `%s`", Escape(m.AcceptCommand)))
		}
	}
	if len(actions) > 0 {
		add(slackapi.NewDividerBlock())
		add(section(strings.Join(actions, "\n")))
	}
	if m.ContactSheet != "" && m.Kind != KindResolved {
		add(section("*Contacts*\n" + truncate(markdownToMrkdwn(m.ContactSheet), maxContactSheetLen)))
	}

	var foot []string
	if m.IncidentID != 0 {
		foot = append(foot, fmt.Sprintf("incident #%d", m.IncidentID))
	}
	foot = append(foot, "nsguard "+string(m.Kind))
	add(contextBlock(strings.Join(foot, " · ")))

	// The findings loop caps itself; this guards future additions.
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], contextBlock("… message shortened"))
	}
	return blocks
}
