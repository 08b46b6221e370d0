package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	whoisparser "github.com/likexian/whois-parser"
)

// whoisData is what one WHOIS answer says about a domain.
type whoisData struct {
	Domain    string
	Registrar Registrar
	Statuses  []string
	Other     []string
	Created   time.Time
	Updated   time.Time
	Expiry    time.Time
	NS        []string
	DNSSEC    DNSSEC
	// Referral is the registrar WHOIS server the answer names, if any.
	Referral string
	// Registrant is the registrant organisation, "" when redacted or absent.
	Registrant string
	// Notes say how a field was read where whois-parser and nsguard's
	// own reading disagreed, or only one of them read it
	// ("expiry: ..."), for Record.ParseNotes.
	Notes []string
}

// libraryParse runs whois-parser, which runs many regular expressions over
// text a stranger wrote: a bug there must cost one reading, not the daemon.
func libraryParse(answer string) (info whoisparser.WhoisInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = whoisparser.WhoisInfo{}, fmt.Errorf("%w: whois-parser failed: %v", ErrMalformed, r)
		}
	}()
	return whoisparser.Parse(answer)
}

// parseWhois reads one WHOIS answer about a domain under tld: whois-parser's
// reading and nsguard's own (readWhois), combined field by field. It returns
// ErrNotRegistered, ErrRateLimited or ErrMalformed (wrapped) when the
// answer is not a registration record. Whatever whois-parser concludes
// from phrases ("not found", "limit exceeded"), an answer that states a
// registration (dates, name servers, a registrar) is read as one: a
// record in Spanish, or one whose addresses say "NOT AVAILABLE", is not a
// missing domain.
func parseWhois(answer, tld string) (*whoisData, error) {
	if strings.TrimSpace(answer) == "" {
		return nil, fmt.Errorf("%w: empty answer", ErrMalformed)
	}
	r := readWhois(answer, tld)
	facts := r.hasFacts()
	if !facts && quotaPhrase(answer) {
		return nil, fmt.Errorf("%w: %q", ErrRateLimited, firstLine(answer))
	}
	info, perr := libraryParse(answer)
	switch {
	case facts:
	case errors.Is(perr, whoisparser.ErrNotFoundDomain),
		errors.Is(perr, whoisparser.ErrReservedDomain),
		errors.Is(perr, whoisparser.ErrPremiumDomain),
		errors.Is(perr, whoisparser.ErrBlockedDomain):
		return nil, fmt.Errorf("%w (%q)", ErrNotRegistered, firstLine(answer))
	case errors.Is(perr, whoisparser.ErrDomainLimitExceed):
		return nil, fmt.Errorf("%w: %q", ErrRateLimited, firstLine(answer))
	case perr != nil:
		return nil, fmt.Errorf("%w: not a WHOIS registration record (%q)", ErrMalformed, firstLine(answer))
	}
	if tld == "de" && strings.Contains(answer, "Status: free") {
		return nil, fmt.Errorf("%w (DENIC: Status: free)", ErrNotRegistered)
	}
	lib := info.Domain
	if perr != nil || lib == nil {
		lib = &whoisparser.Domain{}
	}

	wd := &whoisData{Domain: strings.ToLower(lib.Punycode)}
	var libNS []string
	for _, n := range lib.NameServers {
		if h := hostIn(n); h != "" {
			libNS = append(libNS, h)
		}
	}
	wd.NS = libNS
	if len(wd.NS) == 0 {
		wd.NS = r.ns
	}
	wd.DNSSEC.DelegationSigned = lib.DNSSec

	// Statuses: EPP names either reading found (whois-parser keeps only
	// the first word of "client transfer prohibited"); the rest as the
	// answer prints them.
	libEPP, libOther := splitStatuses(lib.Status, false)
	ourEPP, ourOther := splitStatuses(r.statuses, false)
	wd.Statuses = sortedUnique(append(ourEPP, libEPP...))
	wd.Other = libOther
	if r.hadStatus {
		wd.Other = ourOther
	}

	wd.Registrar.Name = combineRegistrar(r, info.Registrar, wd)
	if info.Registrar != nil {
		wd.Registrar.URL = info.Registrar.ReferralURL
	}
	for _, f := range r.fields {
		switch f.key {
		case "registrar iana id", "sponsoring registrar iana id":
			wd.Registrar.IANAID = f.value
		case "registrar abuse contact email":
			wd.Registrar.AbuseEmail = strings.ToLower(f.value)
		case "registrar abuse contact phone":
			wd.Registrar.AbusePhone = f.value
		case "dnssec ds data", "ds data", "ds record":
			wd.DNSSEC.DS = append(wd.DNSSEC.DS, strings.ToUpper(strings.Join(strings.Fields(f.value), " ")))
		case "dnssec":
			switch strings.ToLower(strings.Join(strings.Fields(f.value), "")) {
			case "signeddelegation", "signed", "yes", "active":
				wd.DNSSEC.DelegationSigned = true
			}
		case "registrar whois server", "whois server":
			if wd.Referral == "" && f.value != "" {
				wd.Referral = cleanReferral(f.value)
			}
		}
	}
	if len(wd.DNSSEC.DS) > 0 {
		wd.DNSSEC.DelegationSigned = true
	}
	wd.Registrant = whoisRegistrant(r.fields)

	created := combineDate("created", r.created, lib.CreatedDate, lib.CreatedDateInTime, r, nil)
	updated := combineDate("updated", r.updated, lib.UpdatedDate, lib.UpdatedDateInTime, r, nil)
	wd.Created, wd.Updated = created.t, updated.t
	exp := combineDate("expiry", r.expiry, lib.ExpirationDate, lib.ExpirationDateInTime, r, &consistency{created: wd.Created, updated: wd.Updated})
	wd.Expiry = exp.t
	for _, c := range []combined{created, updated, exp} {
		if c.note != "" {
			wd.Notes = append(wd.Notes, c.note)
		}
	}
	wd.detach()
	return wd, nil
}

// combineRegistrar takes nsguard's registrar when whois-parser has none,
// or has the same name with more appended (it joins a block's address
// lines onto the name); when they name different registrars, the better
// labelled one, and says so.
func combineRegistrar(r *reading, c *whoisparser.Contact, wd *whoisData) string {
	lib := ""
	if c != nil {
		lib = c.Name
		if lib == "" {
			lib = c.Organization
		}
		lib = cleanRegistrar(lib)
	}
	ours := r.registrar
	switch {
	case ours == "":
		return lib
	case lib == "":
		return ours
	}
	o, l := normaliseRegistrarName(ours), normaliseRegistrarName(lib)
	if o == l || strings.HasPrefix(l, o) {
		return ours
	}
	if r.registrarRank <= 2 {
		wd.Notes = append(wd.Notes, fmt.Sprintf("registrar: %q from %q; whois-parser read %q", ours, r.registrarLabel, lib))
		return ours
	}
	wd.Notes = append(wd.Notes, fmt.Sprintf("registrar: %q as whois-parser read it; nsguard read %q from %q", lib, ours, r.registrarLabel))
	return lib
}

// consistency is what an expiry date must agree with: it follows the
// registration's creation and last update.
type consistency struct{ created, updated time.Time }

// score counts how well t fits the answer's other dates: after creation
// (by at most a century), not before the last update.
func (c *consistency) score(t time.Time) int {
	if c == nil {
		return 0
	}
	s := 0
	if !c.created.IsZero() {
		switch {
		case !t.After(c.created):
			s -= 3
		case t.Sub(c.created) > 100*365*24*time.Hour:
			s -= 2
		default:
			s += 2
		}
	}
	if !c.updated.IsZero() {
		if t.After(c.updated.Add(-24 * time.Hour)) {
			s++
		} else {
			s--
		}
	}
	return s
}

type combined struct {
	t    time.Time
	note string
}

// combineDate joins nsguard's reading of a date with whois-parser's.
// The library's value is re-read from its raw text with the answer's
// context (zone, day/month order); its own parse stands when nsguard
// cannot read that text. When both read a date and they differ by more
// than a zone, the one consistent with the answer's other dates wins
// (then the better label, then nsguard's), and the note says which.
func combineDate(name string, ours dateReading, libRaw string, libT *time.Time, r *reading, cons *consistency) combined {
	var lib time.Time
	libRead := ""
	if libRaw != "" {
		if p, ok := parseDate(libRaw, r.ctx); ok {
			lib = p.t
		}
	}
	if lib.IsZero() && libT != nil && plausibleYear(libT.Year()) {
		lib = *libT
		if lib.Location() == time.UTC && !hasZoneMark(libRaw) {
			// whois-parser reads a zone-less date as UTC; the registry
			// meant its own zone.
			lib = time.Date(lib.Year(), lib.Month(), lib.Day(), lib.Hour(), lib.Minute(), lib.Second(), 0, r.ctx.loc).UTC()
		}
	}
	if libT != nil && !lib.IsZero() && !sameDay(*libT, lib) {
		libRead = fmt.Sprintf("; whois-parser read %s", libT.Format(time.DateOnly))
	}
	lib = canonicalTime(lib)
	switch {
	case !ours.ok && lib.IsZero():
		return combined{}
	case !ours.ok:
		return combined{t: lib, note: fmt.Sprintf("%s: %s as whois-parser read it from %q (nsguard's own reading found none)",
			name, lib.Format(time.DateOnly), libRaw)}
	}
	o := canonicalTime(ours.p.t)
	how := ""
	if ours.p.ambiguous {
		how = fmt.Sprintf(", %s by %s", ours.p.order, ours.p.ordered)
	}
	switch {
	case lib.IsZero():
		if how == "" {
			return combined{t: o}
		}
		return combined{t: o, note: fmt.Sprintf("%s: %s from %q (%q%s)", name, o.Format(time.DateOnly), ours.label, ours.raw, how)}
	case ours.raw == libRaw || sameDay(o, lib):
		if libRead == "" && how == "" {
			return combined{t: o}
		}
		return combined{t: o, note: fmt.Sprintf("%s: %s from %q (%q%s)%s", name, o.Format(time.DateOnly), ours.label, ours.raw, how, libRead)}
	}
	// Different dates: which fits the answer?
	so, sl := cons.score(o), cons.score(lib)
	libRank := rankExpiry
	for _, f := range r.fields {
		if f.value == libRaw {
			if m, rank := classify(f); m == mExpiry {
				libRank = rank
			}
			break
		}
	}
	pickOurs := so > sl || (so == sl && ours.rank <= libRank)
	why := "consistent with the answer's other dates"
	if so == sl {
		why = "better labelled"
	}
	if pickOurs {
		return combined{t: o, note: fmt.Sprintf("%s: %s from %q (%q%s), %s; whois-parser read %s from %q",
			name, o.Format(time.DateOnly), ours.label, ours.raw, how, why, lib.Format(time.DateOnly), libRaw)}
	}
	return combined{t: lib, note: fmt.Sprintf("%s: %s as whois-parser read it from %q, %s; nsguard read %s from %q (%q)",
		name, lib.Format(time.DateOnly), libRaw, why, o.Format(time.DateOnly), ours.label, ours.raw)}
}

// hasZoneMark reports whether a date's text names its zone.
func hasZoneMark(s string) bool {
	l := strings.ToLower(s)
	if strings.HasSuffix(l, "z") || strings.Contains(l, "utc") || strings.Contains(l, "gmt") {
		return true
	}
	if i := strings.LastIndexAny(s, "+-"); i > 10 {
		return true
	}
	for w := range strings.FieldsSeq(l) {
		if _, ok := zoneNames[strings.Trim(w, "()")]; ok {
			return true
		}
	}
	return false
}

// detach copies every string read out of the answer. They are substrings
// of it, so a cached record would otherwise keep the whole answer (up to
// MaxAnswer) alive for a registration period after its Raw is dropped.
// Statuses are EPP names from a table and share its strings already.
func (wd *whoisData) detach() {
	r := &wd.Registrar
	for _, s := range []*string{&wd.Domain, &wd.Referral, &wd.Registrant,
		&r.Name, &r.IANAID, &r.AbuseEmail, &r.AbusePhone, &r.URL, &r.Server} {
		*s = strings.Clone(*s)
	}
	for _, list := range [][]string{wd.Other, wd.NS, wd.DNSSEC.DS, wd.Notes} {
		for i := range list {
			list[i] = strings.Clone(list[i])
		}
	}
	wd.Statuses = slices.Clone(wd.Statuses)
}

// cleanReferral turns "whois://whois.example.net:43/" or
// "http://whois.example.net" into "whois.example.net[:port]".
func cleanReferral(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"whois://", "rwhois://", "https://", "http://"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimRight(s, "/")
	if i := strings.IndexAny(s, "/ \t"); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
