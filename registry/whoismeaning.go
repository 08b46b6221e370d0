package registry

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// meaning is what a WHOIS label says a value is.
type meaning int

const (
	mNone meaning = iota
	mExpiry
	mCreated
	mUpdated
	mRegistrar
	mStatus
	mNS
)

// Expiry label ranks, best first: a registry answer can print the
// registry's date beside the registrar's, and some print a renewal or
// paid-until date only.
const (
	rankRegistryExpiry  = 1 // "Registry Expiry Date"
	rankExpiry          = 2 // any label meaning expiry, in any language
	rankRegistrarExpiry = 3 // "Registrar Registration Expiration Date"
	rankRenewal         = 4 // "renewal date" (.pl), "paid-till" (.ru)
)

// Vocabularies, matched against normKey'd labels (lower-case, accents
// folded, punctuation as spaces). They name meanings, not registries: a
// label is an expiry if it says expiry, in whatever words.
var (
	expiryStems = []string{
		"expir", "exp date", "vencimiento", "vencimento", "vence", "caducidad", "echeance", "ablauf",
		"gultig bis", "gueltig bis", "scadenza", "vervaldatum", "verloopdatum", "verloop", "wygasniecia",
		"wygasa", "bitis tarihi", "sona erme", "lejarat", "utlop", "udlob", "galioja iki", "valid until",
		"valid till", "valid to", "platnost do", "het han", "kedaluwarsa", "berakhir",
		"过期", "到期", "有效期", "截止", "有効期限", "期限", "만료", "종료일", "срок", "окончани", "истека",
		"закінч", "انقضا", "انتهاء",
	}
	renewalStems = []string{"paid till", "paid until", "оплачен", "renewal", "renew", "bezahlt bis", "opłacon", "oplacon"}
	createdStems = []string{
		"creat", "creac", "creaz", "criac", "registered", "fecha de alta", "registration date", "registration time", "activated", "acivated", "activation",
		"commencement", "fecha de registro", "data de registo", "data de registro", "enregistrement",
		"registriert", "since", "등록일", "注册时间", "注册日期", "登録年月日", "создан", "дата регистрации",
	}
	updatedStems = []string{
		"updat", "modif", "changed", "last change", "actualiz", "atualiz", "aktualis", "geandert",
		"변경일", "更新", "изменен",
	}
	// Words that make a dated label about something other than the
	// domain's registration: an option, the database, a trademark, a
	// contact's own record.
	dateExclusions = []string{
		"option", "free", "delete", "deletion", "purge", "hold", "outzone", "certificate", "ssl", "signature",
		"rrsig", "key", "password", "accreditation", "privacy", "trademark", "database", "whois", "contract",
		"redemption", "grace", "status", "period", "auth", "registrar", "transfer",
	}
	contactWords = []string{
		"owner", "admin", "administrative", "tech", "technical", "billing", "bill", "registrant", "holder",
		"contact", "contacto", "titular", "zone", "ac", "person", "responsavel", "entidade",
	}
	registrarKeys = map[string]int{
		"registrar": 0, "sponsoring registrar": 0, "registrar name": 0, "registrar organization": 0,
		"registrar organisation": 0, "registrar company": 0, "registrar of record": 0, "current registrar": 0,
		"registrador": 0, "agente registrador": 0, "bureau d enregistrement": 0, "注册商": 0,
		"注册服务机构": 0, "所属注册商": 0,
		"registration service provider": 3, "registered through": 3, "authorized agency": 3,
		"registrado por": 3, "등록대행자": 3, "registration service provided by": 3,
	}
	registrarSections = map[string]bool{
		"registrar": true, "registrar information": true, "registrar details": true, "sponsoring registrar": true,
		"registrar data": true, "registrar info": true,
	}
	statusKeys = pipeSet("status|domain status|state|estado|estatus|estatus del dominio|etat|statut|stato|" +
		"registration status|eppstatus|epp status|lock status|domain prohibit status|状态|域名状态|状態|ロック状態|상태")
	nsExact = pipeSet("nserver|dns|ns|nameserver|nameservers|hostname|host name|호스트이름|네임서버|域名服务器|ネームサーバ|name server|name servers")
)

func pipeSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Split(s, "|") {
		m[k] = true
	}
	return m
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// hasWord reports whether one of words is a whole word of s.
func hasWord(s string, words []string) bool {
	for _, w := range strings.Fields(s) {
		for _, want := range words {
			if w == want {
				return true
			}
		}
	}
	return false
}

// isContactSection reports whether a block holds a contact's or the
// registrar's own record, whose dates are not the domain's.
func isContactSection(section string) bool {
	return section != "" && (hasWord(section, contactWords) || strings.Contains(section, "registrar"))
}

// classify says what a field means and, for expiry and registrar, how
// good a source it is (lower is better).
func classify(f field) (meaning, int) {
	k := f.key
	if k == "" {
		return mNone, 0
	}
	if f.plain {
		switch {
		case registrarSections[f.section]:
			return mRegistrar, 1
		case isNSKey(k, ""):
			return mNS, 0
		case statusKeys[k] && !f.object:
			return mStatus, 0
		}
		return mNone, 0
	}
	if r, ok := registrarKeys[k]; ok && !isContactSection(f.section) {
		return mRegistrar, r
	}
	if registrarSections[f.section] {
		switch k {
		case "organization", "organisation", "org", "company", "registrar name":
			return mRegistrar, 1
		case "name":
			return mRegistrar, 2
		}
	}
	if statusKeys[k] && !isContactSection(f.section) && !f.object {
		return mStatus, 0
	}
	if isNSKey(k, f.section) {
		return mNS, 0
	}
	// Dates: not a contact's own, not about something else.
	firstWord, _, _ := strings.Cut(k, " ")
	if f.object || isContactSection(f.section) || hasWord(firstWord, contactWords) {
		return mNone, 0
	}
	excluded := hasWord(k, dateExclusions) && !strings.Contains(k, "registrar registration expiration") &&
		!strings.Contains(k, "registrar expiration") && !strings.Contains(k, "registrar expiry")
	switch {
	case strings.Contains(k, "registry expiry") || strings.Contains(k, "registry expiration"):
		return mExpiry, rankRegistryExpiry
	case strings.Contains(k, "registrar registration expiration") || strings.Contains(k, "registrar expiration") ||
		strings.Contains(k, "registrar expiry"):
		return mExpiry, rankRegistrarExpiry
	case excluded:
		return mNone, 0
	case containsAny(k, expiryStems):
		return mExpiry, rankExpiry
	case containsAny(k, renewalStems):
		return mExpiry, rankRenewal
	case containsAny(k, createdStems):
		return mCreated, 0
	case containsAny(k, updatedStems):
		return mUpdated, 0
	}
	return mNone, 0
}

func isNSKey(k, section string) bool {
	if nsExact[k] {
		return k != "host name" && k != "hostname" && k != "호스트이름" || strings.Contains(section, "server") || strings.Contains(section, "네임서버")
	}
	if strings.Contains(k, "whois") || strings.Contains(k, "referral") || strings.Contains(k, "registrar") {
		return false
	}
	server := strings.Contains(k, "server") || strings.Contains(k, "servidor") || strings.Contains(k, "serveur")
	named := strings.Contains(k, "name") || strings.Contains(k, "nombre") || strings.Contains(k, "dns") ||
		strings.Contains(k, "domain") || strings.Contains(k, "noms")
	return server && named
}

// dateReading is one date nsguard read, and where from.
type dateReading struct {
	p     parsedDate
	label string // as printed
	raw   string // the value as printed
	rank  int
	ok    bool
}

// reading is nsguard's own reading of one answer, before the library's
// is combined with it.
type reading struct {
	expiry, created, updated dateReading
	registrar                string
	registrarLabel           string
	registrarRank            int
	statuses                 []string
	hadStatus                bool
	ns                       []string
	ctx                      dateContext
	fields                   []field
}

// domainKeys label the domain's own name.
var domainKeys = pipeSet("domain|domain name|dominio|nombre de dominio|nome de dominio domain name|nom de domaine|" +
	"도메인이름|域名|ドメイン名|query")

// objectKeys open another object's record in RIPE-style answers
// (.ua, .cz, .fr, .br, .ee): a contact, a role, a name server set.
var objectKeys = pipeSet("person|role|contact|nic hdl|nic hdl br|nsset|keyset|registrar|organisation|organization|org|holder|mntner")

// markObjects flags the fields of paragraphs that hold another object's
// record: after the paragraph naming the domain, a paragraph that opens
// with a contact, role or registrar key. Their dates and statuses are
// that object's, not the domain's.
func markObjects(fields []field) {
	domainPara := -1
	for _, f := range fields {
		if f.key == "domain" || f.key == "domain name" {
			domainPara = f.para
			break
		}
	}
	if domainPara < 0 {
		return
	}
	object, para := false, -1
	for i := range fields {
		f := &fields[i]
		if f.para != para {
			para = f.para
			object = para > domainPara && objectKeys[f.key]
		}
		f.object = object
	}
}

// hasFacts reports whether the answer states anything only a
// registration record states: a date, a name server or a registrar.
func (r *reading) hasFacts() bool {
	return r.expiry.ok || r.created.ok || r.updated.ok || len(r.ns) > 0 || r.registrar != ""
}

// readWhois reads an answer by meaning: every label is classified by
// what it says, every date by its parts in the context of the answer's
// other dates.
func readWhois(answer, tld string) *reading {
	r := &reading{fields: whoisFields(answer), registrarRank: 99}
	r.ctx = newDateContext(tld)
	r.ctx.order, r.ctx.why = answerOrder(answer, r.fields)
	markObjects(r.fields)
	names := map[string]bool{}
	for _, f := range r.fields {
		if domainKeys[f.key] && f.value != "" {
			names[strings.ToLower(strings.TrimSuffix(strings.Fields(f.value)[0], "."))] = true
		}
	}
	for _, f := range r.fields {
		if f.value == "" {
			continue
		}
		m, rank := classify(f)
		switch m {
		case mExpiry, mCreated, mUpdated:
			ctx := r.ctx
			if o := labelHint(f.label); o != orderUnknown {
				ctx.order, ctx.why = o, fmt.Sprintf("its label %q", f.label)
			}
			p, ok := parseDate(f.value, ctx)
			if !ok {
				continue
			}
			d := dateReading{p: p, label: f.label, raw: f.value, rank: rank, ok: true}
			dst := map[meaning]*dateReading{mExpiry: &r.expiry, mCreated: &r.created, mUpdated: &r.updated}[m]
			if !dst.ok || (m == mExpiry && rank < dst.rank) {
				*dst = d
			}
		case mRegistrar:
			if v := cleanRegistrar(f.value); v != "" && rank < r.registrarRank {
				r.registrar, r.registrarRank, r.registrarLabel = v, rank, f.label
			}
		case mStatus:
			r.hadStatus = true
			for _, s := range strings.Split(f.value, ",") {
				if s = cleanStatus(s); s != "" {
					r.statuses = append(r.statuses, s)
				}
			}
		case mNS:
			// .dk prints "DNS: example.dk", the domain's own name.
			if h := hostIn(f.value); h != "" && !names[h] {
				r.ns = append(r.ns, h)
			}
		}
	}
	return r
}

// answerOrder decides how the answer writes numeric dates with the year
// last, from the answer itself: a format note ("complete date format :
// DD/MM/YYYY", "(dd/mm/yyyy)"), else its dates whose day cannot be a
// month (18/12/2001 is day first, 12/18/2001 month first). Conflicting
// evidence decides nothing.
func answerOrder(answer string, fields []field) (dateOrder, string) {
	lower := strings.ToLower(answer)
	if len(lower) > 1<<16 {
		lower = lower[:1<<16]
	}
	var hint dateOrder
	for _, h := range []struct {
		s string
		o dateOrder
	}{
		{"dd/mm/yyyy", dayFirst}, {"dd.mm.yyyy", dayFirst}, {"dd-mm-yyyy", dayFirst}, {"jj/mm/aaaa", dayFirst},
		{"tt.mm.jjjj", dayFirst}, {"mm/dd/yyyy", monthFirst}, {"mm-dd-yyyy", monthFirst}, {"mm.dd.yyyy", monthFirst},
	} {
		if strings.Contains(lower, h.s) {
			if hint != orderUnknown && hint != h.o {
				hint = orderUnknown
				break
			}
			hint = h.o
		}
	}
	if hint != orderUnknown {
		return hint, "the answer's own date format note"
	}
	var order dateOrder
	why := ""
	for _, f := range fields {
		p, q, ok := leadingPair(f.value)
		if !ok {
			continue
		}
		var o dateOrder
		switch {
		case p > 12 && q <= 12:
			o = dayFirst
		case q > 12 && p <= 12:
			o = monthFirst
		default:
			continue
		}
		if order != orderUnknown && order != o {
			return orderUnknown, ""
		}
		if order == orderUnknown {
			why = fmt.Sprintf("the answer's %q (%s)", f.value, o)
		}
		order = o
	}
	return order, why
}

// leadingPair reads the first two numbers of a numeric date with the year
// last ("12/18/2001 10:00").
func leadingPair(v string) (p, q int, ok bool) {
	var nums []string
	cur := ""
	for i, r := range v {
		if i > 24 {
			break
		}
		if r >= '0' && r <= '9' {
			cur += string(r)
			continue
		}
		if cur != "" {
			nums = append(nums, cur)
			cur = ""
		}
		if len(nums) == 3 || (r != '/' && r != '-' && r != '.') {
			break
		}
	}
	if cur != "" && len(nums) < 3 {
		nums = append(nums, cur)
	}
	if len(nums) < 3 || len(nums[0]) > 2 || len(nums[1]) > 2 || len(nums[2]) != 4 {
		return 0, 0, false
	}
	return atoi(nums[0]), atoi(nums[1]), true
}

// labelHint reads a format hint in a label: "Creation Date (dd/mm/yyyy)".
func labelHint(label string) dateOrder {
	w := strings.FieldsFunc(strings.ToLower(label), func(r rune) bool { return !unicode.IsLetter(r) })
	for i := 0; i+2 < len(w); i++ {
		if o := hintOrder(w[i], w[i+1], w[i+2]); o != orderUnknown {
			return o
		}
	}
	return orderUnknown
}

// cleanRegistrar reduces a registrar value to the registrar's name:
// Nominet's "Markmonitor Inc. t/a Markmonitor [Tag = MARKMONITOR]" is
// "Markmonitor Inc.", "Whois Corp.(http://whois.co.kr)" is "Whois Corp.".
// URLs, e-mail addresses, handles made of digits and placeholders are no
// name at all.
func cleanRegistrar(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.Index(v, "[Tag ="); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(strings.ToLower(v), " t/a "); i > 0 {
		v = v[:i]
	}
	for _, open := range []string{"(http", "(www", "http://", "https://"} {
		if i := strings.Index(strings.ToLower(v), open); i > 0 {
			v = v[:i]
		}
	}
	v = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(v), ",;"))
	l := strings.ToLower(v)
	switch {
	case v == "", v == "-", strings.HasPrefix(l, "http"), strings.HasPrefix(l, "www."), strings.Contains(l, "@"),
		l == "n/a", l == "none", l == "not available", strings.HasPrefix(l, "refer to"), strings.HasPrefix(l, "not shown"):
		return ""
	}
	if isDigits(strings.ReplaceAll(v, " ", "")) {
		return ""
	}
	return boundName(v, maxRegistrant)
}

// cleanStatus trims a status value: a trailing full stop, a parenthesised
// comment ("ok (paid and in zone)"), keeping ICANN's URL for
// NormaliseStatus to drop.
func cleanStatus(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "http"); i > 0 {
		s = s[:i] // ICANN's explanation URL
	}
	if i := strings.Index(s, " ("); i > 0 {
		s = s[:i] // CoCCA's "(Secured by ... Registry Lock)", .ee's "(paid and in zone)"
	}
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ".-"))
}

// hostIn finds the name server in a value: "ns1.example.net",
// "ns1.example.net 192.0.2.1", "ns1.example.net. [192.0.2.1]", dns.pt's
// "example.pt NS ns1.example.net.".
func hostIn(v string) string {
	words := strings.Fields(v)
	for i, w := range words {
		if strings.EqualFold(w, "NS") && i+1 < len(words) {
			words = words[i+1:]
			break
		}
	}
	if len(words) == 0 {
		return ""
	}
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(words[0], "-,;"), "."))
	if len(h) > 253 || !strings.Contains(h, ".") {
		return ""
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return ""
		}
	}
	if _, err := parseIPish(h); err == nil {
		return ""
	}
	return h
}

// parseIPish reports an IPv4 literal, which is glue, not a name.
func parseIPish(h string) (bool, error) {
	for _, r := range h {
		if r != '.' && (r < '0' || r > '9') {
			return false, fmt.Errorf("not an address")
		}
	}
	return true, nil
}

// sameDay reports whether two readings of a date fall within a day of
// each other: the same date read in two zones.
func sameDay(a, b time.Time) bool {
	d := a.Sub(b)
	return d < 24*time.Hour && d > -24*time.Hour
}
