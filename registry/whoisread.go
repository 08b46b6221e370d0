package registry

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// field is one labelled value of a WHOIS answer: "Key: value", JPRS
// "[Key] value", a label followed by a date ("Record expires on
// 2021-02-05"), or a plain line inside a block ("Registrar:" then
// "    Markmonitor Inc." on the next line).
type field struct {
	// key is the label lower-case, runs of spaces collapsed; label is
	// the label as printed (for parse notes).
	key, label, value string
	// section is the key of the block the field sits in ("registrar" in
	// .it's "Registrar\n  Organization: X"), "" at the top level.
	section string
	// plain is set for a block's unlabelled lines.
	plain bool
	// para counts the blank-line separated paragraphs before the field;
	// object is set when the paragraph is another object's record (a
	// contact, a name server set) rather than the domain's.
	para   int
	object bool
}

// Bounds on what one answer can make nsguard hold: MaxAnswer bounds the
// text, these the work done on it.
const (
	maxFields    = 4096
	maxLineBytes = 1024
	maxLabelLen  = 80
)

// whoisFields splits an answer into fields by shape, not by registry:
// comment and banner lines are skipped, a label with an empty value (or a
// short heading line followed by indented lines) opens a block whose
// lines belong to it until a blank line.
func whoisFields(text string) []field {
	var (
		out         []field
		block       string // key of the open block
		blockIndent int
		blockLabels bool // the block may hold labelled lines at its own indent
		blockEmpty  bool // no line in the block yet
		pending     string
		pendingInd  int
		para        int
		lastInd     = -1 // indent of the last top-level labelled field
	)
	lines := strings.Split(text, "\n")
	for n, raw := range lines {
		if len(out) >= maxFields {
			break
		}
		if len(raw) > maxLineBytes {
			raw = raw[:maxLineBytes]
		}
		raw = strings.TrimRight(raw, "\r \t")
		t := strings.TrimSpace(raw)
		if t == "" {
			// A list of name servers may start after a blank line
			// ("Name Servers Information:", blank, the names); any other
			// block ends at one.
			if !(block != "" && blockEmpty && isNSKey(block, "")) {
				block = ""
			}
			pending, lastInd = "", -1
			if n > 0 && strings.TrimSpace(lines[n-1]) != "" {
				para++
			}
			continue
		}
		if isCommentLine(t) {
			continue
		}
		ind := indentOf(raw)
		t = strings.TrimSpace(strings.TrimLeft(t, "*"))
		if pending != "" {
			// A heading without a colon ("Registrar" in .it, "Nameservers"
			// in .dk) opens a block when what follows is indented under it
			// or the heading names a block.
			if ind > pendingInd || isSectionKey(pending) {
				block, blockIndent, blockLabels, blockEmpty = pending, pendingInd, true, true
			}
			pending = ""
		}
		k, v, ok := splitLabel(t)
		if ok && block != "" && ind <= blockIndent && !blockLabels {
			block = "" // the next field at the same indent: the empty one was just empty
		}
		switch {
		case ok && v == "":
			out = append(out, field{key: normKey(k), label: k, section: block, para: para})
			block, blockIndent, blockEmpty = normKey(k), ind, true
			blockLabels = isSectionKey(block) || nextIndented(lines, n, ind)
			lastInd = -1
		case ok:
			out = append(out, field{key: normKey(k), label: k, value: v, section: block, para: para})
			blockEmpty = false
			if block == "" {
				lastInd = ind
			}
		case block != "":
			v := strings.TrimSpace(strings.TrimPrefix(t, "- "))
			out = append(out, field{key: block, label: block, value: v, section: block, plain: true, para: para})
			blockEmpty = false
		case lastInd >= 0 && ind > lastInd && len(out) > 0:
			// A continuation of the field above (.pl: "nameservers:" then
			// the next server on an indented line of its own).
			prev := out[len(out)-1]
			out = append(out, field{key: prev.key, label: prev.label, value: t, section: prev.section, para: para})
		default:
			if isHeading(t) {
				pending, pendingInd = normKey(t), ind
			}
		}
	}
	return out
}

func isCommentLine(t string) bool {
	return strings.HasPrefix(t, "%") || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ">>>") ||
		strings.HasPrefix(t, ";") || strings.HasPrefix(t, "--") || strings.HasPrefix(t, "==") ||
		(strings.HasPrefix(t, "[ ") && strings.HasSuffix(t, " ]")) // JPRS banner
}

func indentOf(s string) int {
	n := 0
	for _, r := range s {
		switch r {
		case ' ':
			n++
		case '\t':
			n += 8
		default:
			return n
		}
	}
	return n
}

// nextIndented reports whether the line after lines[n] is indented
// deeper than ind.
func nextIndented(lines []string, n, ind int) bool {
	if n+1 >= len(lines) {
		return false
	}
	l := strings.TrimRight(lines[n+1], "\r")
	if strings.TrimSpace(l) == "" {
		return false
	}
	return indentOf(l) > ind
}

// isHeading reports whether a line without a colon can name a block:
// a few words, no digits ("Registrar", "Nameservers", "Admin Contact").
func isHeading(t string) bool {
	if len(t) > 40 || strings.ContainsAny(t, ":@/") {
		return false
	}
	for _, r := range t {
		if unicode.IsDigit(r) {
			return false
		}
	}
	return len(strings.Fields(t)) <= 4
}

// splitLabel splits "Label: value", "Label.......: value", "[Label] value"
// and "Label followed by a date" lines. The label must read as one: it
// starts with a letter, carries no URL and no date or clock (.tw prints
// "Record expires on 2021-12-09 12:30:05", whose first colon is the
// clock's).
func splitLabel(t string) (label, value string, ok bool) {
	// JPRS: "[Expires on]    2026/05/31", also "a. [Domain Name] X".
	s := t
	if len(s) > 3 && s[1] == '.' && s[2] == ' ' && s[0] >= 'a' && s[0] <= 'z' {
		s = strings.TrimSpace(s[3:])
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 1 {
			return cleanLabel(s[1:end]), strings.TrimSpace(s[end+1:]), cleanLabel(s[1:end]) != ""
		}
	}
	if i := strings.IndexByte(t, ':'); i > 0 {
		l := cleanLabel(t[:i])
		if isLabel(l) && !strings.HasPrefix(t[i:], "://") {
			return l, strings.TrimSpace(t[i+1:]), true
		}
	}
	// No usable colon: a label, then a date ("Record expires on
	// 2021-02-05", "Record expires on Jun 9 2014").
	for i, r := range t {
		if !unicode.IsDigit(r) {
			continue
		}
		l := cleanLabel(t[:i])
		if words := strings.Fields(l); len(words) > 1 && monthNames[strings.ToLower(words[len(words)-1])] != 0 {
			last := words[len(words)-1]
			i = strings.LastIndex(t[:i], last)
			l = cleanLabel(t[:i])
		}
		v := strings.TrimSpace(t[i:])
		if isLabel(l) && len(strings.Fields(l)) >= 2 {
			if _, ok := parseDate(v, newDateContext("")); ok {
				return l, v, true
			}
		}
		break
	}
	return "", "", false
}

// cleanLabel trims a label's dot leaders and padding ("Expires on.....").
func cleanLabel(s string) string {
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ".:"))
}

func isLabel(l string) bool {
	if l == "" || len(l) > maxLabelLen || !utf8.ValidString(l) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(l)
	if !unicode.IsLetter(r) {
		return false
	}
	digits := 0
	for _, r := range l {
		if unicode.IsDigit(r) {
			digits++
		}
	}
	// "Address1", "1st name server" are labels; "Record created on
	// 2018-02-05 22" is not.
	return digits <= 2
}

// normKey is a label lower-case with punctuation as spaces and accents
// dropped, runs of spaces collapsed: "Fecha de expiración" and "fecha de
// expiracion" are one key; "paid-till" is "paid till".
func normKey(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		r = foldAccent(r)
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
			continue
		}
		space = true
	}
	return b.String()
}

// foldAccent maps the Latin letters with diacritics that registry labels
// use to their base letter.
func foldAccent(r rune) rune {
	if r < 0xC0 || r > 0x17F {
		return r
	}
	if b, ok := accentFold[r]; ok {
		return b
	}
	return r
}

var accentFold = func() map[rune]rune {
	m := map[rune]rune{}
	for base, accented := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćč", 'd': "ď", 'e': "èéêëēęě", 'i': "ìíîïīı", 'n': "ñńň",
		'o': "òóôõöøōő", 'u': "ùúûüūůű", 'y': "ýÿ", 's': "śšş", 't': "ţť", 'z': "źżž",
		'g': "ğ", 'l': "ł", 'r': "ŕř",
	} {
		for _, r := range accented {
			m[r] = base
		}
	}
	return m
}()

// isSectionKey reports whether a label names a block of fields rather
// than a field that happens to be empty: "Registrar:", "Registrant:",
// "Administrative Contact:", "Name servers:", "Relevant dates:".
func isSectionKey(k string) bool {
	switch k {
	case "registrar", "registrant", "holder", "titular", "owner", "domain", "registrar of record",
		"sponsoring registrar", "dnssec", "keys", "dns", "status":
		return true
	}
	for _, suffix := range []string{" contact", " contacts", " information", " info", " servers", "nameservers",
		" dates", " contact s", "contacto", "contacto administrativo", "contacto tecnico", "contacto financiero"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return strings.HasPrefix(k, "contacto ") || strings.HasPrefix(k, "servidor")
}
