package registry

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/openrdap/rdap"
)

// maxRegistrant bounds Record.Registrant: an organisation name, not a
// place for a stranger's server to park 64 KiB in every stored snapshot.
const maxRegistrant = 256

// entityRegistrant finds the name of the first entity with the registrant
// role, depth-first through nested entities (depth bounds the nesting a
// hostile document can make us walk): vCard org, else fn, skipping
// redacted or empty values (RFC 9537 "emptyValue" leaves fn "").
func entityRegistrant(ents []rdap.Entity, depth int) string {
	if depth > 8 {
		return ""
	}
	for i := range ents {
		e := &ents[i]
		if hasRole(e.Roles, "registrant") {
			if n := vcardRegistrant(e.VCard); n != "" {
				return n
			}
		}
		if n := entityRegistrant(e.Entities, depth+1); n != "" {
			return n
		}
	}
	return ""
}

// vcardRegistrant reads org first (the registrant organisation), fn when
// org is absent or redacted.
func vcardRegistrant(v *rdap.VCard) string {
	if v == nil {
		return ""
	}
	first := func(key string) string {
		for _, p := range v.Properties {
			if p == nil || !strings.EqualFold(p.Name, key) {
				continue
			}
			// A structured org ("Example Ltd", "DNS department") names
			// the organisation first.
			if vals := p.Values(); len(vals) > 0 {
				return usableName(vals[0])
			}
			return ""
		}
		return ""
	}
	if o := first("org"); o != "" {
		return o
	}
	return first("fn")
}

// whoisRegistrantKeys are the WHOIS labels that carry the registrant, best
// first: gTLD thick WHOIS, its British spelling, CNNIC "Registrant:" and
// JPRS "[Registrant]" (Nominet prints it on the line below "Registrant:"),
// the Spanish, Portuguese and French words for the holder, JPRS's Japanese
// "[登録者名]" (its Japanese layout prints both; the English name compares
// with other registries' records), then a person's name.
var whoisRegistrantKeys = []string{"registrant organization", "registrant organisation", "registrant",
	"titular", "titulaire", "holder", "登録者名", "registrant name"}

// whoisRegistrant picks the best-ranked usable registrant field of one
// answer ("" when there is none or it is redacted).
func whoisRegistrant(fields []field) string {
	best, bestRank := "", len(whoisRegistrantKeys)
	for _, f := range fields {
		for rank, want := range whoisRegistrantKeys {
			if f.key == want && rank < bestRank {
				if v := usableName(f.value); v != "" {
					best, bestRank = v, rank
				}
				break
			}
		}
	}
	return best
}

// registrantFromRaw reads the registrant out of a record's raw answers.
// Lookups fill Record.Registrant as they parse; this serves records cached
// on disk before the field existed, whose raw answers are dropped on load.
func registrantFromRaw(source, raw string) string {
	if raw == "" {
		return ""
	}
	if source == SourceRDAP || strings.HasPrefix(strings.TrimSpace(raw), "{") {
		// The raw RDAP answers are JSON documents one after the other: the
		// registry's, then the registrar's (thicker, so it wins).
		dec := json.NewDecoder(strings.NewReader(raw))
		found := ""
		for {
			var doc json.RawMessage
			if err := dec.Decode(&doc); err != nil {
				break
			}
			obj, err := rdap.NewDecoder(doc).Decode()
			if d, ok := obj.(*rdap.Domain); ok && err == nil {
				if n := entityRegistrant(d.Entities, 0); n != "" {
					found = n
				}
			}
		}
		if found != "" || source == SourceRDAP {
			return found
		}
	}
	return whoisRegistrant(whoisFields(raw))
}

// usableName returns s trimmed, or "" when it is a redaction or privacy
// placeholder rather than a name.
func usableName(s string) string {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	for _, p := range []string{"redacted", "privacy", "not disclosed", "withheld", "data protected", "gdpr", "statutory masking"} {
		if strings.Contains(l, p) {
			return ""
		}
	}
	return s
}

// boundName trims s to at most max bytes without splitting a character.
func boundName(s string, max int) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "")
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.TrimSpace(s)
}
