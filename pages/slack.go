package pages

import (
	"html"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/nsguard/nsguard/notify"
)

// A message is shown as Slack shows it: notify.Blocks renders the stored
// message to the very Block Kit the receiver posts, and this file turns
// those blocks into values for the template. Slack's mrkdwn is parsed
// into runs of plain text, bold, code and preformatted text; the template
// escapes every run, so nothing in a message (which quotes DNS answers
// and WHOIS fields) can become markup.

// slackBlock is one Block Kit block, ready for the template.
type slackBlock struct {
	// Kind is "header", "section", "divider" or "context".
	Kind  string
	Text  string // header
	Lines []mrkdwnBlock
}

// mrkdwnBlock is a paragraph or a preformatted block.
type mrkdwnBlock struct {
	Pre  bool
	Text string // for Pre
	Runs []run
}

// run is a stretch of text with one style; Break ends a line.
type run struct {
	Style string // "", "b", "i", "code", "time"
	Text  string
	Break bool
	// ISO is the machine-readable time of a "time" run.
	ISO string
}

// slackView renders a message's blocks.
func slackView(m *notify.Message) []slackBlock {
	var out []slackBlock
	for _, b := range notify.Blocks(m) {
		switch v := b.(type) {
		case *slackapi.HeaderBlock:
			if v.Text != nil {
				out = append(out, slackBlock{Kind: "header", Text: v.Text.Text})
			}
		case *slackapi.SectionBlock:
			if v.Text != nil {
				out = append(out, slackBlock{Kind: "section", Lines: parseMrkdwn(v.Text.Text)})
			}
		case *slackapi.DividerBlock:
			out = append(out, slackBlock{Kind: "divider"})
		case *slackapi.ContextBlock:
			var lines []mrkdwnBlock
			for _, e := range v.ContextElements.Elements {
				if t, ok := e.(*slackapi.TextBlockObject); ok {
					lines = append(lines, parseMrkdwn(t.Text)...)
				}
			}
			out = append(out, slackBlock{Kind: "context", Lines: lines})
		}
	}
	return out
}

// emoji are the short codes notify writes.
var emoji = strings.NewReplacer(
	":red_circle:", "🔴", ":large_orange_circle:", "🟠", ":large_blue_circle:", "🔵", ":white_check_mark:", "✅",
	":warning:", "⚠️", ":rotating_light:", "🚨",
)

// parseMrkdwn splits Slack mrkdwn into paragraphs and ``` blocks, then
// styles the paragraphs. The text arrives escaped for Slack (&amp; &lt;
// &gt;); each run is unescaped here and escaped again for HTML by the
// template.
func parseMrkdwn(s string) []mrkdwnBlock {
	var out []mrkdwnBlock
	for i, part := range strings.Split(s, "```") {
		if i%2 == 1 {
			out = append(out, mrkdwnBlock{Pre: true, Text: html.UnescapeString(strings.Trim(part, "\n"))})
			continue
		}
		if strings.Trim(part, "\n") == "" {
			continue
		}
		out = append(out, mrkdwnBlock{Runs: styleRuns(strings.Trim(part, "\n"))})
	}
	return out
}

func styleRuns(s string) []run {
	var runs []run
	var plain strings.Builder
	flush := func() {
		if plain.Len() > 0 {
			runs = append(runs, run{Text: emoji.Replace(html.UnescapeString(plain.String()))})
			plain.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			flush()
			runs = append(runs, run{Break: true})
			i++
			continue
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j >= 0 {
				flush()
				runs = append(runs, run{Style: "code", Text: html.UnescapeString(s[i+1 : i+1+j])})
				i += j + 2
				continue
			}
		case c == '*' || c == '_':
			// Slack styles *bold* and _italic_ when the marks hug a word.
			if j := strings.IndexByte(s[i+1:], c); j > 0 && s[i+1] != ' ' && s[i+j] != ' ' && !strings.Contains(s[i+1:i+1+j], "\n") &&
				(i == 0 || !isWordByte(s[i-1])) {
				flush()
				style := "b"
				if c == '_' {
					style = "i"
				}
				runs = append(runs, run{Style: style, Text: emoji.Replace(html.UnescapeString(s[i+1 : i+1+j]))})
				i += j + 2
				continue
			}
		case c == '<':
			// Only nsguard writes raw '<' (network text is escaped to
			// &lt;): <!date^UNIX^format|fallback> is a time.
			if j := strings.IndexByte(s[i:], '>'); j > 0 {
				inner := s[i+1 : i+j]
				if strings.HasPrefix(inner, "!date^") {
					flush()
					runs = append(runs, dateRun(inner))
					i += j + 1
					continue
				}
			}
		}
		plain.WriteByte(c)
		i++
	}
	flush()
	return runs
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// dateRun reads "!date^1700000000^{date_short_pretty} {time}|fallback".
func dateRun(inner string) run {
	parts := strings.SplitN(strings.TrimPrefix(inner, "!date^"), "^", 2)
	fallback := inner
	if _, fb, ok := strings.Cut(inner, "|"); ok {
		fallback = fb
	}
	r := run{Style: "time", Text: html.UnescapeString(fallback)}
	if sec, err := strconv.ParseInt(parts[0], 10, 64); err == nil {
		t := time.Unix(sec, 0).UTC()
		r.ISO, r.Text = t.Format(time.RFC3339), t.Format("2006-01-02 15:04 UTC")
	}
	return r
}
