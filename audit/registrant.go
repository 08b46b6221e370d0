package audit

import (
	"strings"
	"unicode"
)

// Registrant returns the registrant organisation of a registration:
// in.Registrant when the caller set it, else the one the registry client
// read during the lookup (registry.Record.Registrant). "" means unknown
// (redacted, not published, or no registration).
func Registrant(in Input) string {
	if in.Registrant != "" {
		return in.Registrant
	}
	if in.Registration == nil {
		return ""
	}
	return in.Registration.Registrant
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
