package audit

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"unicode"

	"github.com/nsguard/nsguard/registry"
)

// Registrant returns the registrant organisation of a registration:
// in.Registrant when the caller set it, else what the raw RDAP or WHOIS
// answers kept in the record say. "" means unknown (redacted, or no raw
// answer kept).
//
// registry.Record has no registrant field yet, so this reads the raw
// answers the record keeps (bounded by registry.MaxRaw): an RDAP entity
// with the "registrant" role (vCard org, else fn), or a WHOIS
// "Registrant Organization:" / "Registrant:" line. Once the record
// carries the registrant, this becomes a field read.
func Registrant(in Input) string {
	if in.Registrant != "" {
		return in.Registrant
	}
	if in.Registration == nil {
		return ""
	}
	return registrantFromRaw(in.Registration)
}

func registrantFromRaw(rec *registry.Record) string {
	raw := rec.Raw
	if raw == "" {
		return ""
	}
	if rec.Source == registry.SourceRDAP || strings.HasPrefix(strings.TrimSpace(raw), "{") {
		// The raw RDAP answers are JSON documents one after the other (the
		// registry's, then the registrar's).
		dec := json.NewDecoder(strings.NewReader(raw))
		found := ""
		for {
			var doc any
			if err := dec.Decode(&doc); err != nil {
				break
			}
			if r := rdapRegistrant(doc, 0); r != "" {
				found = r // the registrar's answer, later, is the thicker one
			}
		}
		if found != "" || rec.Source == registry.SourceRDAP {
			return found
		}
	}
	return whoisRegistrant(raw)
}

// rdapRegistrant finds the org (else fn) of an entity with the registrant
// role anywhere in an RDAP document; depth bounds nesting.
func rdapRegistrant(v any, depth int) string {
	if depth > 8 {
		return ""
	}
	switch t := v.(type) {
	case map[string]any:
		if roles, ok := t["roles"].([]any); ok {
			for _, r := range roles {
				if s, _ := r.(string); strings.EqualFold(s, "registrant") {
					if n := vcardName(t["vcardArray"]); n != "" {
						return n
					}
				}
			}
		}
		if ents, ok := t["entities"].([]any); ok {
			for _, e := range ents {
				if n := rdapRegistrant(e, depth+1); n != "" {
					return n
				}
			}
		}
	case []any:
		for _, e := range t {
			if n := rdapRegistrant(e, depth+1); n != "" {
				return n
			}
		}
	}
	return ""
}

// vcardName reads ["vcard", [[name, params, type, value], ...]]: org
// first (the registrant organisation), fn when org is absent.
func vcardName(v any) string {
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return ""
	}
	props, ok := arr[1].([]any)
	if !ok {
		return ""
	}
	get := func(key string) string {
		for _, p := range props {
			f, ok := p.([]any)
			if !ok || len(f) < 4 {
				continue
			}
			if k, _ := f[0].(string); k == key {
				switch val := f[3].(type) {
				case string:
					return usable(val)
				case []any:
					if len(val) > 0 {
						s, _ := val[0].(string)
						return usable(s)
					}
				}
			}
		}
		return ""
	}
	if o := get("org"); o != "" {
		return o
	}
	return get("fn")
}

// whoisRegistrantKeys are the WHOIS labels that carry the registrant, best
// first: gTLD thick WHOIS, its British spelling, CNNIC, then a person's name.
var whoisRegistrantKeys = []string{"registrant organization", "registrant organisation", "registrant", "registrant name"}

func whoisRegistrant(raw string) string {
	best, bestRank := "", len(whoisRegistrantKeys)
	sc := bufio.NewScanner(io.LimitReader(strings.NewReader(raw), registry.MaxRaw+1024))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		for rank, want := range whoisRegistrantKeys {
			if k == want && rank < bestRank {
				if val := usable(v); val != "" {
					best, bestRank = val, rank
				}
			}
		}
	}
	return best
}

// usable returns s trimmed, or "" when it is a redaction placeholder.
func usable(s string) string {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	for _, p := range []string{"redacted", "privacy", "not disclosed", "withheld", "data protected", "gdpr", "statutory masking"} {
		if strings.Contains(l, p) {
			return ""
		}
	}
	return s
}

// sameEntity compares two organisation (or registrar) names ignoring case,
// punctuation and a trailing company form: "Example Shop Ltd" and
// "EXAMPLE SHOP LIMITED" are one legal entity for this purpose.
func sameEntity(a, b string) bool {
	na, nb := normaliseEntity(a), normaliseEntity(b)
	return na != "" && na == nb
}

var companyForms = map[string]bool{
	"inc": true, "incorporated": true, "llc": true, "ltd": true, "limited": true, "corp": true,
	"corporation": true, "co": true, "company": true, "gmbh": true, "ag": true, "sa": true, "sas": true,
	"sarl": true, "bv": true, "nv": true, "plc": true, "pty": true, "kk": true, "srl": true, "spa": true,
	"ab": true, "as": true, "oy": true, "lp": true, "llp": true,
}

func normaliseEntity(s string) string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for len(words) > 1 && companyForms[words[len(words)-1]] {
		words = words[:len(words)-1]
	}
	return strings.Join(words, " ")
}
