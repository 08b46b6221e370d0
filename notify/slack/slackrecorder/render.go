package slackrecorder

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	slackDate = regexp.MustCompile(`<!date\^[^|>]*\|([^>]*)>`)
	slackLink = regexp.MustCompile(`<([^|>]+)\|([^>]+)>`)
)

// Render turns Block Kit JSON into the lines a person reads in Slack:
// dates as their fallback, links as their label, entities decoded,
// formatting marks dropped. fallback is used when there are no blocks.
func Render(raw json.RawMessage, fallback string) []string {
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Text string `json:"text"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil || len(blocks) == 0 {
		return []string{fallback}
	}
	var out []string
	add := func(t string) {
		// Bold markers first: escaped text's literal '*' comes back from
		// its date token after.
		t = strings.NewReplacer("```", "", "*", "").Replace(t)
		t = slackDate.ReplaceAllString(t, "$1")
		t = slackLink.ReplaceAllString(t, "$2")
		t = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "\u00ad", "").Replace(t)
		for _, l := range strings.Split(t, "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	for _, b := range blocks {
		switch b.Type {
		case "divider":
			out = append(out, strings.Repeat("─", 40))
		case "context":
			for _, e := range b.Elements {
				add(e.Text)
			}
		default:
			if b.Text != nil {
				add(b.Text.Text)
			}
		}
	}
	return out
}

// Box renders one post as a terminal box: a thread's first message opens
// a box in its channel, replies are indented under it.
func Box(p Post) string {
	var b strings.Builder
	head := fmt.Sprintf("┌─ Slack #%s", strings.TrimPrefix(p.Channel, "#"))
	if p.ThreadTS != "" {
		head = "├─ reply in thread"
		if p.Broadcast {
			head += " (also sent to the channel)"
		}
	}
	b.WriteString(head + "\n")
	for _, line := range Render(p.Blocks, p.Text) {
		b.WriteString("│ " + line + "\n")
	}
	b.WriteString("└─\n")
	return b.String()
}

// EditLine renders an edit of a thread's first message in one line.
func EditLine(u Update) string {
	lines := Render(u.Blocks, u.Text)
	if len(lines) > 2 {
		lines = lines[:2]
	}
	return "✎ the page above now reads: " + strings.Join(lines, " · ") + "\n"
}

// Transcript renders every accepted post and edit, in the order Slack took
// them.
func (r *Recorder) Transcript() string {
	type item struct {
		n    int
		text string
	}
	var items []item
	for _, p := range r.Posts() {
		items = append(items, item{p.N, Box(p)})
	}
	for _, u := range r.Updates() {
		items = append(items, item{u.N, EditLine(u)})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	var b strings.Builder
	for _, it := range items {
		b.WriteString(it.text)
	}
	return b.String()
}
