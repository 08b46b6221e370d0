package notify

import "strings"

// Slack mrkdwn has no escape character. Text that came from the network (a
// DNS answer, a WHOIS field, a registrar's name) is escaped before it goes
// into a message, so it can neither mention (<!channel>), link (<url|x>),
// nor format the page (*bold*, _italic_, ~strike~, `code`):
//
//   - '&', '<' and '>' become the three entities Slack decodes;
//   - '*', '_', '~' and '`' become a date token whose format is invalid, so
//     Slack shows its fallback text, the character itself, as plain text
//     (the technique jsx-slack uses; the character survives copy and paste);
//   - a '>' at the start of a line would still quote it, so a soft hyphen
//     goes before it.
//
// Inside code (```…``` or `…`) formatting is already off and tokens would
// show raw: EscapeCode keeps the entities and replaces the backtick, which
// would close the code, with a look-alike.

// literalOpen starts a token that Slack renders as the one character
// between '|' and '>'.
const literalOpen = "<!date^00000000^{_}|"

// Escape makes untrusted text safe in Slack mrkdwn prose.
func Escape(s string) string {
	if !strings.ContainsAny(s, "&<>*_~`") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	lineStart := true
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			if lineStart {
				b.WriteString("\u00ad")
			}
			b.WriteString("&gt;")
		case '*', '_', '~', '`':
			b.WriteString(literalOpen)
			b.WriteRune(r)
			b.WriteByte('>')
		default:
			b.WriteRune(r)
		}
		lineStart = r == '\n' || (lineStart && (r == ' ' || r == '\t'))
	}
	return b.String()
}

// EscapeCode makes untrusted text safe inside a code span or block.
func EscapeCode(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "ˋ").Replace(s)
}

// truncate cuts s to at most n bytes on a rune boundary, saying so with
// "…", and never inside an entity or a token the escaping made: half a
// token would show its raw text, or swallow the rest of the message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	kept := s[:cut]
	if i := strings.LastIndexByte(kept, '<'); i >= 0 && !strings.Contains(kept[i:], ">") {
		kept = kept[:i]
	}
	if i := strings.LastIndexByte(kept, '&'); i >= 0 && !strings.Contains(kept[i:], ";") {
		kept = kept[:i]
	}
	return kept + "…"
}
