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
	// A page lists at most this many findings, one line each: it must fit
	// one screen; the rest is in the thread.
	maxPageFindings = 5
	maxSummaryLen   = 220
)

// Emoji for a severity, so the channel reads at a glance. Unicode, not
// :shortcodes:, so the plain-text fallback (notifications, webhooks) shows
// the same thing.
func Emoji(s finding.Severity) string {
	switch s {
	case finding.Critical:
		return "🔴"
	case finding.Warning:
		return "🟠"
	case finding.Info:
		return "🔵"
	}
	return "✅"
}

// slackDate renders t in each reader's own time zone, with UTC as the
// fallback for clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// Duration renders how long something lasted, for people: "under a
// minute", "12m", "3h05m", "2d4h".
func Duration(d time.Duration) string {
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

func sev(s finding.Severity) string { return strings.ToUpper(s.String()) }

// findingTitle is the catalogue title, or the ID.
func findingTitle(f Finding) string {
	if f.Title != "" {
		return f.Title
	}
	return f.ID
}

// summary is a finding in one line: its message, shortened.
func summary(f Finding) string {
	s := f.Message
	if s == "" && len(f.Evidence) > 0 {
		s = f.Evidence[0].String()
	}
	return truncate(s, maxSummaryLen)
}

// titles names findings in a sentence: "A, B and 2 more".
func titles(fs []Finding, max int) string {
	var names []string
	for i, f := range fs {
		if i == max {
			names[len(names)-1] += fmt.Sprintf(" and %d more", len(fs)-i)
			break
		}
		t := findingTitle(f)
		if f.Subject != "" {
			t += " (" + f.Subject + ")"
		}
		names = append(names, t)
	}
	return strings.Join(names, ", ")
}

func (m *Message) findingsIn(states ...FindingState) []Finding {
	var out []Finding
	for _, f := range m.Findings {
		for _, s := range states {
			if f.State == s {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// incidentRef is "shop-example.com · incident #3".
func (m *Message) incidentRef() string {
	if m.IncidentID == 0 {
		return m.Domain
	}
	return fmt.Sprintf("%s · incident #%d", m.Domain, m.IncidentID)
}

// heading is the first line of a message that is not about an incident.
func heading(m *Message) string {
	if m.Domain != "" && !strings.Contains(m.Title, m.Domain) {
		return m.Title + " · " + m.Domain
	}
	return m.Title
}

// Text is the plain fallback Slack shows in notifications and that the
// webhook receiver sends beside the blocks. It says the message's point in
// one line. The fallback is shown as plain text, so only mentions and
// links need defusing; formatting characters stay.
func Text(m *Message) string {
	return truncate(escapeEntities(PlainText(m)), maxFallbackText)
}

// PlainText is the message's point in one line, unescaped: for terminals
// and logs.
func PlainText(m *Message) string {
	var s string
	ref := m.incidentRef()
	active := m.findingsIn(StateNew, StateOngoing)
	switch m.Kind {
	case KindOpen:
		s = fmt.Sprintf("%s [%s] %s: %s", Emoji(m.Severity), sev(m.Severity), ref, m.Title)
	case KindRootUpdate:
		s = fmt.Sprintf("[%s] %s: %s", strings.ToUpper(m.State), ref, m.Title)
	case KindDetail:
		s = fmt.Sprintf("Evidence for %s: %s", ref, titles(active, 3))
	case KindUpdate:
		s = fmt.Sprintf("%s [%s] %s: new: %s", Emoji(m.Severity), sev(m.Severity), ref, titles(m.findingsIn(StateNew), 3))
	case KindCleared:
		s = fmt.Sprintf("✅ %s: cleared: %s; still open: %s", ref, titles(m.findingsIn(StateCleared), 3), titles(active, 3))
	case KindRepeat:
		s = fmt.Sprintf("%s [%s] %s still open (%s), not acknowledged: %s", Emoji(m.Severity), sev(m.Severity), ref, Duration(m.At.Sub(m.Since)), m.Title)
	case KindAck:
		s = fmt.Sprintf("%s acknowledged by %s: %s", ref, m.AckedBy, m.AckReason)
	case KindResolved:
		s = fmt.Sprintf("✅ [RESOLVED] %s after %s: %s", ref, Duration(m.EndedAt.Sub(m.Since)), m.Title)
	case KindClosed:
		s = fmt.Sprintf("[CLOSED] %s: %s", ref, m.Text)
	default:
		s = heading(m)
		if m.Text != "" {
			s += ": " + m.Text
		}
	}
	return s
}

func escapeEntities(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func section(mrkdwn string) *slackapi.SectionBlock {
	return slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, truncate(mrkdwn, maxSectionText), false, false), nil, nil)
}

func contextBlock(mrkdwn string) *slackapi.ContextBlock {
	return slackapi.NewContextBlock("", slackapi.NewTextBlockObject(slackapi.MarkdownType, truncate(mrkdwn, maxSectionText), false, false))
}

func header(text string) *slackapi.HeaderBlock {
	return slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, truncate(text, maxHeaderText), true, false))
}

// evidenceLines folds identical evidence from several servers into one line
// ("a.gtld-servers.net, b.gtld-servers.net: …"): a delegation every parent
// server hands out reads once, not once per server.
func evidenceLines(ev []finding.Evidence) []string {
	type group struct {
		servers []string
		e       finding.Evidence
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range ev {
		k := e.Query + "\x00" + e.Answer
		g, ok := groups[k]
		if !ok {
			g = &group{e: e}
			groups[k] = g
			order = append(order, k)
		}
		if e.Server != "" {
			g.servers = append(g.servers, e.Server)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		g := groups[k]
		e := g.e
		e.Server = strings.Join(g.servers, ", ")
		out = append(out, e.String())
	}
	return out
}

// findingText renders one finding in full: what, where, since when, and
// the evidence server by server, which for a baseline finding reads
// "approved … → now …". Each part has a budget, so a long answer shortens
// the evidence instead of cutting the code block open.
func findingText(f Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s*", Emoji(f.Severity), Escape(truncate(findingTitle(f), 200)))
	switch f.State {
	case StateNew:
		b.WriteString("  `NEW`")
	case StateCleared:
		b.WriteString("  `CLEARED`")
	}
	fmt.Fprintf(&b, "\n`%s`", EscapeCode(truncate(f.ID, 100)))
	if f.Subject != "" {
		fmt.Fprintf(&b, " · %s", Escape(truncate(f.Subject, 200)))
	}
	if !f.Since.IsZero() {
		fmt.Fprintf(&b, " · since %s", slackDate(f.Since))
	}
	if f.State == StateCleared && !f.ClearedAt.IsZero() {
		fmt.Fprintf(&b, " · cleared %s", slackDate(f.ClearedAt))
	}
	if f.Message != "" {
		b.WriteString("\n")
		b.WriteString(Escape(truncate(f.Message, 800)))
	}
	if len(f.Evidence) == 0 || f.State == StateCleared {
		return b.String()
	}
	const fence = "\n```"
	budget := maxSectionText - b.Len() - 2*len(fence) - 40
	lines := evidenceLines(f.Evidence)
	var ev strings.Builder
	for i, l := range lines {
		line := "\n" + EscapeCode(truncate(l, 400))
		if i == maxEvidenceShown || ev.Len()+len(line) > budget {
			fmt.Fprintf(&ev, "\n… and %d more", len(lines)-i)
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

// bullet renders a finding in one line of a page.
func bullet(f Finding) string {
	t := findingTitle(f)
	if f.Subject != "" {
		t += " (" + f.Subject + ")"
	}
	s := fmt.Sprintf("%s *%s*", Emoji(f.Severity), Escape(truncate(t, 150)))
	if sum := summary(f); sum != "" {
		s += " — " + Escape(sum)
	}
	return s
}

// markdownToMrkdwn converts the few Markdown forms a contact sheet uses
// (headings, **bold**) to Slack's dialect. The sheet is nsguard's own
// rendering of configured contacts and registry data, so its values were
// escaped where they were written into it: only entities are needed here.
func markdownToMrkdwn(md string) string {
	md = escapeEntities(md)
	lines := strings.Split(md, "\n")
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
	var blocks []slackapi.Block
	switch m.Kind {
	case KindOpen, KindRootUpdate:
		blocks = pageBlocks(m)
	case KindDetail:
		blocks = detailBlocks(m)
	case KindUpdate, KindCleared, KindRepeat, KindAck, KindResolved, KindClosed:
		blocks = replyBlocks(m)
	default:
		blocks = noteBlocks(m)
	}
	// Every renderer caps itself; this guards future additions.
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], contextBlock("… message shortened"))
	}
	return blocks
}

// pageBlocks is the top-level page: one screen that says what is wrong,
// where, since when and what to do. The evidence is in the thread.
// A root update is the same page with the incident's state on top.
func pageBlocks(m *Message) []slackapi.Block {
	now := m.At
	if now.IsZero() {
		now = time.Now()
	}
	var blocks []slackapi.Block
	head := fmt.Sprintf("%s %s · %s", Emoji(m.Severity), sev(m.Severity), m.Domain)
	switch m.State {
	case "resolved":
		head = fmt.Sprintf("✅ RESOLVED · %s (was %s)", m.Domain, sev(m.Severity))
	case "closed":
		head = fmt.Sprintf("⏹ CLOSED · %s (was %s)", m.Domain, sev(m.Severity))
	}
	blocks = append(blocks, header(head))
	switch {
	case m.State == "resolved" && !m.EndedAt.IsZero():
		blocks = append(blocks, contextBlock(fmt.Sprintf("✅ *Resolved* %s, after %s", slackDate(m.EndedAt), Duration(m.EndedAt.Sub(m.Since)))))
	case m.State == "closed":
		blocks = append(blocks, contextBlock("⏹ *Closed* "+Escape(m.Text)))
	case m.AckedBy != "":
		blocks = append(blocks, contextBlock(fmt.Sprintf("👤 *Acknowledged* by %s %s: %s", Escape(m.AckedBy), slackDate(m.AckedAt), Escape(m.AckReason))))
	}

	var intro strings.Builder
	fmt.Fprintf(&intro, "*%s*", Escape(m.Title))
	if m.IncidentID != 0 {
		fmt.Fprintf(&intro, "\nIncident #%d", m.IncidentID)
	}
	if !m.Since.IsZero() {
		fmt.Fprintf(&intro, " · since %s (%s)", slackDate(m.Since), Duration(now.Sub(m.Since)))
	}
	if len(m.SeenFrom) > 0 {
		fmt.Fprintf(&intro, "\nSeen from %s", Escape(strings.Join(m.SeenFrom, ", ")))
		if len(m.NotSeenFrom) > 0 {
			fmt.Fprintf(&intro, "; not from %s", Escape(strings.Join(m.NotSeenFrom, ", ")))
		}
	}
	if m.Text != "" && m.State != "closed" {
		intro.WriteString("\n")
		intro.WriteString(Escape(m.Text))
	}
	blocks = append(blocks, section(intro.String()))

	if fs := m.findingsIn(StateNew, StateOngoing, ""); len(fs) > 0 {
		var lines []string
		for i, f := range fs {
			if i == maxPageFindings {
				lines = append(lines, fmt.Sprintf("… and %d more in the thread", len(fs)-i))
				break
			}
			lines = append(lines, bullet(f))
		}
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}

	if m.State == "" || m.State == "open" || m.State == "acknowledged" {
		var todo []string
		for _, p := range m.Playbooks {
			todo = append(todo, fmt.Sprintf("• *Fail over:* `%s`, read the plan, then run it with the `--plan-checksum` it prints", EscapeCode(PlanCommand(p))))
		}
		if m.AcceptCommand != "" {
			todo = append(todo, fmt.Sprintf("• *Planned change?* Accept it: `%s`", EscapeCode(m.AcceptCommand)))
		}
		if m.ContactSheet != "" {
			todo = append(todo, fmt.Sprintf("• *Registration:* call the registrar — contacts in the thread, or `%s`", EscapeCode("nsguard contacts "+m.Domain)))
		}
		if m.IncidentID != 0 && m.AckedBy == "" {
			todo = append(todo, fmt.Sprintf("• *Taking it?* `%s`", EscapeCode(AckCommand(m.IncidentID))))
		}
		if len(todo) > 0 {
			blocks = append(blocks, section("*What to do*\n"+strings.Join(todo, "\n")))
		}
	}

	var foot []string
	if m.IncidentID != 0 {
		foot = append(foot, fmt.Sprintf("Evidence in the thread · `%s`", EscapeCode(ShowCommand(m.IncidentID))))
	}
	if rel := relatedText(m.Related); rel != "" {
		foot = append(foot, rel)
	}
	if len(foot) > 0 {
		blocks = append(blocks, contextBlock(strings.Join(foot, " · ")))
	}
	return blocks
}

// relatedText links the domain's other open incidents: "Also open on this
// domain: #12 WARNING one name server lame".
func relatedText(rs []Related) string {
	if len(rs) == 0 {
		return ""
	}
	var parts []string
	for _, r := range rs {
		label := fmt.Sprintf("#%d %s %s", r.IncidentID, sev(r.Severity), truncate(r.Title, 80))
		if r.Acked {
			label += " (acknowledged)"
		}
		if r.URL != "" && !strings.ContainsAny(r.URL, "<>| ") {
			parts = append(parts, fmt.Sprintf("<%s|%s>", r.URL, strings.ReplaceAll(escapeEntities(label), "|", "¦")))
		} else {
			parts = append(parts, Escape(label))
		}
	}
	return "Also open on this domain: " + strings.Join(parts, ", ")
}

// detailBlocks is the page's first reply: everything the page left out.
func detailBlocks(m *Message) []slackapi.Block {
	blocks := []slackapi.Block{section(fmt.Sprintf("*Evidence* · %s", Escape(m.incidentRef())))}
	blocks = append(blocks, findingSections(m.Findings)...)
	if m.ContactSheet != "" {
		blocks = append(blocks, section("*Contacts*\n"+truncate(markdownToMrkdwn(m.ContactSheet), maxContactSheetLen)))
	}
	return blocks
}

func findingSections(fs []Finding) []slackapi.Block {
	var blocks []slackapi.Block
	for i, f := range fs {
		if i == maxFindingsShown {
			blocks = append(blocks, contextBlock(fmt.Sprintf("… and %d more findings", len(fs)-i)))
			break
		}
		blocks = append(blocks, section(findingText(f)))
	}
	return blocks
}

// replyBlocks are the thread's follow-ups: short, one point each, with the
// incident they belong to at the end (broadcast replies show in the
// channel, and webhook messages stand alone).
func replyBlocks(m *Message) []slackapi.Block {
	active := m.findingsIn(StateNew, StateOngoing)
	var lead string
	var blocks []slackapi.Block
	ref := contextBlock(Escape(m.incidentRef()))
	switch m.Kind {
	case KindUpdate:
		fresh := m.findingsIn(StateNew)
		lead = fmt.Sprintf("%s *New in incident #%d* (%s): %s", Emoji(m.Severity), m.IncidentID, sev(m.Severity), Escape(titles(fresh, 3)))
		blocks = append(blocks, section(lead))
		blocks = append(blocks, findingSections(fresh)...)
		return append(blocks, ref)
	case KindCleared:
		lead = fmt.Sprintf("✅ *Cleared:* %s", Escape(titles(m.findingsIn(StateCleared), 5)))
		if len(active) > 0 {
			lead += fmt.Sprintf("\nStill open (%s): %s", sev(m.Severity), Escape(titles(active, 5)))
		}
	case KindRepeat:
		lead = fmt.Sprintf("%s *Still open* after %s, not acknowledged: %s", Emoji(m.Severity), Duration(m.At.Sub(m.Since)), Escape(titles(active, 5)))
		lead += fmt.Sprintf("\nTaking it? `%s`", EscapeCode(AckCommand(m.IncidentID)))
	case KindAck:
		lead = fmt.Sprintf("👤 *Acknowledged* by %s: %s\nRepeats stop; the incident still resolves when its findings clear, and a new problem still pages.",
			Escape(m.AckedBy), Escape(m.AckReason))
	case KindResolved:
		lead = fmt.Sprintf("✅ *Resolved* after %s: %s cleared.", Duration(m.EndedAt.Sub(m.Since)), Escape(titles(m.Findings, 5)))
	case KindClosed:
		lead = "⏹ *Closed:* " + Escape(m.Text)
	}
	if m.Text != "" && m.Kind != KindClosed {
		lead += "\n" + Escape(m.Text)
	}
	return append(blocks, section(lead), ref)
}

// noteBlocks renders what is not an incident: failover progress, digests,
// notes. The header names it once; the text says the rest.
func noteBlocks(m *Message) []slackapi.Block {
	blocks := []slackapi.Block{header(heading(m))}
	switch {
	case m.Text != "" && m.Kind == KindDigest:
		// nsguard's own Markdown (headings, **bold**, lists).
		blocks = append(blocks, section(markdownToMrkdwn(m.Text)))
	case m.Text != "":
		blocks = append(blocks, section(Escape(m.Text)))
	}
	if len(m.Findings) > 0 {
		blocks = append(blocks, slackapi.NewDividerBlock())
		blocks = append(blocks, findingSections(m.Findings)...)
	}
	return blocks
}
