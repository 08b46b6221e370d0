package registry

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Registries that print local time without a zone: CNNIC, TWNIC, HKIRC
// print their local time, JPRS and KISA Japan/Korea time (midnight of the
// printed day). Fixed zones keep nsguard independent of the host's tzdata;
// none of these observes daylight saving time.
var (
	zoneChina = time.FixedZone("CST", 8*3600)
	zoneJapan = time.FixedZone("JST", 9*3600)
	zoneKorea = time.FixedZone("KST", 9*3600)
)

// registryZone is the zone a TLD's registry means when it prints no zone.
func registryZone(tld string) *time.Location {
	switch tld {
	case "cn", "tw", "hk", "mo":
		return zoneChina
	case "jp":
		return zoneJapan
	case "kr":
		return zoneKorea
	}
	return time.UTC
}

// dateOrder is how an answer writes a numeric date with the year last:
// 03/02/2020 is 3 February day first, 2 March month first.
type dateOrder int

const (
	orderUnknown dateOrder = iota
	dayFirst
	monthFirst
)

func (o dateOrder) String() string {
	switch o {
	case dayFirst:
		return "day first"
	case monthFirst:
		return "month first"
	}
	return "order unknown"
}

// monthFirstTLDs are registries known to print month first (US style)
// when nothing in the answer says otherwise: .us, and Freenom's .tk, .ml,
// .ga, .cf, .gq. Everyone else, and every dotted date (04.07.2020), is
// read day first.
var monthFirstTLDs = map[string]bool{"us": true, "tk": true, "ml": true, "ga": true, "cf": true, "gq": true}

// dateContext is what the rest of an answer says about reading one date in
// it: the registry's zone and the day/month order.
type dateContext struct {
	loc   *time.Location
	order dateOrder
	// why says where order came from ("the answer's 12/18/2001", "the
	// registry's convention"), for the record's parse notes.
	why string
	// conventional is the registry's order when the answer says nothing.
	conventional dateOrder
	tld          string
}

func newDateContext(tld string) dateContext {
	c := dateContext{loc: registryZone(tld), tld: tld, conventional: dayFirst}
	if monthFirstTLDs[tld] {
		c.conventional = monthFirst
	}
	return c
}

// parsedDate is one date read from an answer.
type parsedDate struct {
	t time.Time
	// ambiguous: a numeric date whose day and month could both be either
	// (03/02/2020); ordered says how it was settled.
	ambiguous bool
	order     dateOrder
	ordered   string
	// zoned: the text carried its own zone or offset.
	zoned bool
}

// Fast path: the layouts most answers use, exactly.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05-0700",     // registrar WHOIS (MarkMonitor)
	"2006-01-02T15:04:05.000-0700", // some registrar WHOIS
	"2006-01-02 15:04:05-07",
	"2006-01-02 15:04:05 -0700",
	time.RFC1123Z,
}

// parseRegistryDate reads a date as a registry printed it, with no other
// context than the TLD (RDAP events, tests).
func parseRegistryDate(s, tld string) (time.Time, bool) {
	p, ok := parseDate(s, newDateContext(tld))
	return p.t, ok
}

// maxDateLen bounds the text read as one date: real dates are under 40
// characters with their zone; a stranger's 1 MiB line is not a date.
const maxDateLen = 96

// parseDate reads a date by its parts rather than a fixed layout: ISO,
// numeric with any separator (2020-05-19, 19.05.2020, 2020. 05. 19.,
// 05/19/2020), compact (20200519, 20200519120000), month names in several
// languages (19-May-2020, 19 de mayo de 2020, May 19 2020, 2020-May-19),
// weekday-first (Tue May 19 12:00:00 GMT 2020), CJK markers (2020年5月19日),
// with or without a time, an offset (+08:00, UTC+8), a zone name (GMT, CEST,
// JST; CST is China in .cn/.tw/.hk/.mo and US Central elsewhere) or a format
// hint in parentheses ("(dd/mm/yyyy)"). A date without a zone is in the
// registry's zone. ok is false for anything that is not one date: a wrong
// guess at an expiry date is worse than none.
func parseDate(s string, ctx dateContext) (parsedDate, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxDateLen || !utf8.ValidString(s) {
		return parsedDate{}, false
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil && plausibleYear(t.Year()) {
			return parsedDate{t: t.UTC(), zoned: true}, true
		}
	}
	toks := tokenizeDate(s)
	if toks == nil {
		return parsedDate{}, false
	}
	return interpretDate(toks, ctx)
}

type tokKind int

const (
	tokNum tokKind = iota
	tokWord
	tokSep
)

type dateTok struct {
	kind tokKind
	s    string // digits, lower-case word, or the separator rune
}

// tokenizeDate splits s into digit runs, words and separators, dropping a
// trailing "#comment" (registro.br: "20110630 #8516780"). nil when s has
// characters no date has.
func tokenizeDate(s string) []dateTok {
	if i := strings.IndexByte(s, '#'); i > 0 {
		s = s[:i]
	}
	var out []dateTok
	rs := []rune(strings.ToLower(s))
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r >= '0' && r <= '9':
			j := i
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				j++
			}
			out = append(out, dateTok{tokNum, string(rs[i:j])})
			i = j
		case isCJKDateMarker(r):
			out = append(out, dateTok{tokWord, string(r)})
			i++
		case unicode.IsLetter(r):
			j := i
			for j < len(rs) && unicode.IsLetter(rs[j]) && !isCJKDateMarker(rs[j]) {
				j++
			}
			out = append(out, dateTok{tokWord, string(rs[i:j])})
			i = j
		case unicode.IsSpace(r):
			i++
			out = append(out, dateTok{tokSep, " "})
		case strings.ContainsRune("-/.:,+()_'", r):
			out = append(out, dateTok{tokSep, string(r)})
			i++
		default:
			return nil
		}
		if len(out) > 48 {
			return nil
		}
	}
	return out
}

func isCJKDateMarker(r rune) bool {
	return strings.ContainsRune("年月日년월일", r)
}

// interpretDate assigns the tokens to year, month, day, time and zone.
func interpretDate(toks []dateTok, ctx dateContext) (parsedDate, bool) {
	var (
		nums             []dateTok // date numbers, in order
		numSep           []string  // the separators before each date number
		month            int
		monthAt          = -1 // how many date numbers preceded the month name
		hour, min        int
		sec, nsec        int
		hasTime, pm, am  bool
		loc              *time.Location
		zoned            bool
		hint             dateOrder
		cjkY, cjkM, cjkD = -1, -1, -1
		seps             strings.Builder
	)
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokSep:
			seps.WriteString(t.s)
			continue
		case tokWord:
			w := t.s
			_, isZone := zoneNames[w]
			switch {
			case w == "年" || w == "년":
				cjkY = len(nums) - 1
			case w == "月" || w == "월":
				cjkM = len(nums) - 1
			case w == "日" || w == "일":
				cjkD = len(nums) - 1
			case w == "pm":
				pm = true
			case w == "am":
				am = true
			case w == "t" && len(nums) > 0:
				// ISO's date/time separator.
			case monthNames[w] != 0 && month == 0:
				month, monthAt = monthNames[w], len(nums)
			case formatHint(toks, i) != orderUnknown:
				hint = formatHint(toks, i)
				i = skipHint(toks, i)
			case isZone || w == "z" || w == "utc" || w == "gmt" || w == "ut":
				switch {
				case w == "cst":
					loc = cstFor(ctx.tld)
				case zoneNames[w] != nil:
					loc = zoneNames[w]
				default:
					loc = time.UTC
				}
				zoned = true
				// UTC+8, GMT+08:00
				if off, end, ok := readOffset(toks, i+1); ok {
					loc, i = off, end
				}
			case fillerWords[w], weekdayNames[w]:
			default:
				return parsedDate{}, false
			}
			seps.Reset()
			continue
		}
		// A number: a clock, an offset after the clock, or a date part.
		sep := seps.String()
		seps.Reset()
		if i+1 < len(toks) && toks[i+1].s == ":" && !hasTime && len(t.s) <= 2 {
			h, m, s, ns, end, ok := readClock(toks, i)
			if !ok {
				return parsedDate{}, false
			}
			hour, min, sec, nsec, hasTime, i = h, m, s, ns, true, end
			continue
		}
		if hasTime && (strings.HasSuffix(sep, "+") || strings.HasSuffix(sep, "-")) {
			// An offset after the clock wins over a zone name: "(BRT -03:00)".
			if off, end, ok := readOffset(toks, i-1); ok {
				loc, zoned, i = off, true, end
				continue
			}
		}
		if len(nums) == 3 {
			return parsedDate{}, false
		}
		nums = append(nums, t)
		numSep = append(numSep, sep)
	}
	if pm && hasTime && hour < 12 {
		hour += 12
	}
	if am && hasTime && hour == 12 {
		hour = 0
	}

	y, m, d := 0, 0, 0
	out := parsedDate{zoned: zoned}
	switch {
	case cjkY >= 0 && cjkM >= 0 && cjkD >= 0 && len(nums) == 3:
		y, m, d = atoiTok(nums[cjkY]), atoiTok(nums[cjkM]), atoiTok(nums[cjkD])
	case len(nums) == 1 && month == 0 && (len(nums[0].s) == 8 || len(nums[0].s) == 12 || len(nums[0].s) == 14):
		// Compact: 20200519, 202005191200, 20200519120000.
		c := nums[0].s
		y, m, d = atoi(c[0:4]), atoi(c[4:6]), atoi(c[6:8])
		if len(c) >= 12 && !hasTime {
			hour, min, hasTime = atoi(c[8:10]), atoi(c[10:12]), true
			if len(c) == 14 {
				sec = atoi(c[12:14])
			}
		}
	case month != 0:
		if len(nums) != 2 {
			return parsedDate{}, false
		}
		m = month
		a, b := nums[0], nums[1]
		switch {
		case len(a.s) == 4 && len(b.s) <= 2:
			y, d = atoiTok(a), atoiTok(b)
		case len(b.s) == 4 && len(a.s) <= 2:
			y, d = atoiTok(b), atoiTok(a)
		case len(a.s) <= 2 && len(b.s) == 2 && monthAt == 1:
			// 01-Nov-21: day, month, two-digit year.
			d, y = atoiTok(a), twoDigitYear(atoiTok(b))
		default:
			return parsedDate{}, false
		}
	case len(nums) == 3:
		a, b, c := nums[0], nums[1], nums[2]
		switch {
		case len(a.s) == 4 && len(b.s) <= 2 && len(c.s) <= 2:
			y, m, d = atoiTok(a), atoiTok(b), atoiTok(c)
		case len(c.s) == 4 && len(a.s) <= 2 && len(b.s) <= 2:
			y = atoiTok(c)
			p, q := atoiTok(a), atoiTok(b)
			order := dayFirst
			switch {
			case p > 12 || q > 12 || p == q:
				if q > 12 {
					order = monthFirst
				}
			default:
				out.ambiguous = true
				switch {
				case hint != orderUnknown:
					order, out.ordered = hint, "its format hint"
				case strings.Contains(numSep[1], "."):
					order, out.ordered = dayFirst, "dotted dates are day first"
				case ctx.order != orderUnknown:
					order, out.ordered = ctx.order, ctx.why
				default:
					order, out.ordered = ctx.conventional, "the ."+ctx.tld+" registry's convention"
				}
			}
			if out.ambiguous {
				out.order = order
			}
			if order == dayFirst {
				d, m = p, q
			} else {
				m, d = p, q
			}
		default:
			return parsedDate{}, false
		}
	default:
		return parsedDate{}, false
	}
	if !plausibleYear(y) || m < 1 || m > 12 || d < 1 || d > 31 || hour > 23 || min > 59 || sec > 60 {
		return parsedDate{}, false
	}
	if sec == 60 {
		sec = 59
	}
	if loc == nil {
		loc = ctx.loc
		if loc == nil {
			loc = time.UTC
		}
	}
	t := time.Date(y, time.Month(m), d, hour, min, sec, nsec, loc)
	if t.Day() != d {
		return parsedDate{}, false // 31 February
	}
	out.t = t.UTC()
	return out, true
}

func plausibleYear(y int) bool { return y >= 1980 && y <= 2199 }

func twoDigitYear(y int) int {
	if y < 70 {
		return 2000 + y
	}
	return 1900 + y
}

func atoiTok(t dateTok) int { n, _ := strconv.Atoi(t.s); return n }

// readClock reads hh:mm[:ss[.frac]] starting at toks[i] and returns the
// index of its last token.
func readClock(toks []dateTok, i int) (h, m, s, ns, end int, ok bool) {
	num := func(j, width int) bool {
		return j < len(toks) && toks[j].kind == tokNum && (width == 0 || len(toks[j].s) == width)
	}
	sep := func(j int, any string) bool {
		return j < len(toks) && toks[j].kind == tokSep && strings.Contains(any, toks[j].s)
	}
	if !sep(i+1, ":") || !num(i+2, 2) {
		return 0, 0, 0, 0, 0, false
	}
	h, m, end = atoiTok(toks[i]), atoiTok(toks[i+2]), i+2
	if sep(i+3, ":") && num(i+4, 2) {
		s, end = atoiTok(toks[i+4]), i+4
		if sep(i+5, ".,") && num(i+6, 0) && len(toks[i+6].s) <= 9 {
			ns = atoi(toks[i+6].s + strings.Repeat("0", 9-len(toks[i+6].s)))
			end = i + 6
		}
	}
	return h, m, s, ns, end, true
}

// readOffset reads "+hh:mm", "+hhmm", "+hh" or "+h" whose sign is toks[i]
// and returns the index of its last token.
func readOffset(toks []dateTok, i int) (*time.Location, int, bool) {
	if i < 0 || i+1 >= len(toks) || toks[i].kind != tokSep || (toks[i].s != "+" && toks[i].s != "-") || toks[i+1].kind != tokNum {
		return nil, 0, false
	}
	sign := 1
	if toks[i].s == "-" {
		sign = -1
	}
	digits, end := toks[i+1].s, i+1
	hh, mm := 0, 0
	switch len(digits) {
	case 1, 2:
		hh = atoi(digits)
		if i+3 < len(toks) && toks[i+2].s == ":" && toks[i+3].kind == tokNum && len(toks[i+3].s) == 2 {
			mm, end = atoi(toks[i+3].s), i+3
		}
	case 4:
		hh, mm = atoi(digits[:2]), atoi(digits[2:])
	default:
		return nil, 0, false
	}
	if hh > 14 || mm > 59 {
		return nil, 0, false
	}
	if off := sign * (hh*3600 + mm*60); off != 0 {
		return time.FixedZone("", off), end, true
	}
	return time.UTC, end, true
}

// formatHint reads a format written next to a date, "dd/mm/yyyy",
// "mm/dd/yyyy" or "yyyy-mm-dd", starting at the word toks[i] (dns.pt:
// "Expiration Date (dd/mm/yyyy): 28/02/2015").
func formatHint(toks []dateTok, i int) dateOrder {
	var parts []string
	for j := i; j < len(toks) && len(parts) < 3; j++ {
		switch toks[j].kind {
		case tokWord:
			parts = append(parts, toks[j].s)
		case tokNum:
			return orderUnknown
		}
	}
	if len(parts) < 3 {
		return orderUnknown
	}
	return hintOrder(parts[0], parts[1], parts[2])
}

// hintOrder is the order a three-part format hint gives.
func hintOrder(a, b, c string) dateOrder {
	isD := func(s string) bool { return s == "dd" || s == "d" || s == "jj" || s == "tt" || s == "gg" }
	isM := func(s string) bool { return s == "mm" || s == "m" }
	isY := func(s string) bool {
		return strings.HasPrefix(s, "yy") || strings.HasPrefix(s, "aa") || strings.HasPrefix(s, "jj")
	}
	switch {
	case isD(a) && isM(b) && isY(c):
		return dayFirst
	case isM(a) && isD(b) && isY(c):
		return monthFirst
	case isY(a) && isM(b) && isD(c):
		return dayFirst // year first: day/month order of the rest is moot
	}
	return orderUnknown
}

func skipHint(toks []dateTok, i int) int {
	words := 0
	for ; i < len(toks); i++ {
		if toks[i].kind == tokWord {
			if words++; words == 3 {
				return i
			}
		}
	}
	return len(toks) - 1
}

// cstFor resolves the abbreviation CST: China Standard Time for Chinese
// registries, US Central Standard Time elsewhere.
func cstFor(tld string) *time.Location {
	switch tld {
	case "cn", "tw", "hk", "mo", "sg":
		return zoneChina
	}
	return time.FixedZone("CST", -6*3600)
}

// zoneNames are zone abbreviations registries print, with fixed offsets.
// Ambiguous ones take the reading common in WHOIS: IST is India, BST
// British Summer Time, AST Atlantic.
var zoneNames = func() map[string]*time.Location {
	m := map[string]*time.Location{}
	for name, hours := range map[string]float64{
		"wet": 0, "west": 1, "bst": 1, "cet": 1, "cest": 2, "met": 1, "mest": 2, "eet": 2, "eest": 3,
		"msk": 3, "msd": 4, "trt": 3, "gst": 4, "pkt": 5, "ist": 5.5, "ict": 7, "wib": 7,
		"hkt": 8, "sgt": 8, "myt": 8, "pht": 8, "awst": 8, "jst": 9, "kst": 9, "acst": 9.5,
		"aest": 10, "aedt": 11, "nzst": 12, "nzdt": 13,
		"ast": -4, "adt": -3, "est": -5, "edt": -4, "cdt": -5, "mst": -7, "mdt": -6,
		"pst": -8, "pdt": -7, "akst": -9, "akdt": -8, "hst": -10,
		"brt": -3, "brst": -2, "art": -3, "clt": -4, "clst": -3, "uyt": -3, "cot": -5, "pet": -5,
		"vet": -4, "bot": -4, "ect": -5,
	} {
		m[name] = time.FixedZone(strings.ToUpper(name), int(hours*3600))
	}
	m["cst"] = nil // resolved per registry by cstFor
	return m
}()

// monthNames maps month names and abbreviations in the languages registries
// answer in (English, Spanish, Portuguese, French, German, Italian, Dutch,
// Turkish) to month numbers.
var monthNames = func() map[string]int {
	m := map[string]int{}
	for i, names := range [][]string{
		{"january", "jan", "enero", "ene", "janeiro", "janvier", "janv", "januar", "jänner", "gennaio", "gen", "januari", "ocak"},
		{"february", "feb", "febrero", "fevereiro", "fev", "février", "fevrier", "févr", "fevr", "februar", "febbraio", "februari", "şubat", "subat"},
		{"march", "mar", "marzo", "março", "marco", "mars", "märz", "maerz", "mär", "maart", "mrt", "mart"},
		{"april", "apr", "abril", "abr", "avril", "avr", "aprile", "nisan"},
		{"may", "mayo", "maio", "mai", "maggio", "mag", "mei", "mayıs", "mayis"},
		{"june", "jun", "junio", "junho", "juin", "juni", "giugno", "giu", "haziran"},
		{"july", "jul", "julio", "julho", "juillet", "juil", "juli", "luglio", "lug", "temmuz"},
		{"august", "aug", "agosto", "ago", "août", "aout", "augustus", "ağustos", "agustos"},
		{"september", "sep", "sept", "septiembre", "setiembre", "setembro", "set", "septembre", "settembre", "eylül", "eylul"},
		{"october", "oct", "octubre", "outubro", "out", "octobre", "oktober", "okt", "ottobre", "ott", "ekim"},
		{"november", "nov", "noviembre", "novembro", "novembre", "kasım", "kasim"},
		{"december", "dec", "diciembre", "dic", "dezembro", "dez", "décembre", "decembre", "déc", "dezember", "dicembre", "aralık", "aralik"},
	} {
		for _, n := range names {
			m[n] = i + 1
		}
	}
	return m
}()

// weekdayNames and fillerWords are words a date may carry that say nothing
// about which day it is ("Tue Dec 12 2000", "23 de agosto de 2012",
// "before Aug-1996", "14th").
var (
	weekdayNames = wordSet("monday mon tuesday tue tues wednesday wed thursday thu thur thurs friday fri saturday sat sunday sun " +
		"lunes martes miércoles miercoles jueves viernes sábado sabado domingo lundi mardi mercredi jeudi vendredi samedi dimanche " +
		"montag dienstag mittwoch donnerstag freitag samstag sonntag")
	fillerWords = wordSet("de del of the on at le el à a um o before after st nd rd th er eme ème h")
)

func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
