package registry

import (
	"strings"
	"time"
)

// Registries that print local time without a zone: CNNIC prints Beijing
// time ("Expiration Time: 2026-03-17 12:48:36"), JPRS Japan time
// ("[Expires on] 2026/05/31"). Fixed zones keep nsguard independent of the
// host's tzdata; neither country observes daylight saving time.
var (
	zoneChina = time.FixedZone("CST", 8*3600)
	zoneJapan = time.FixedZone("JST", 9*3600)
)

// registryZone is the zone a TLD's registry means when it prints no zone.
func registryZone(tld string) *time.Location {
	switch tld {
	case "cn":
		return zoneChina
	case "jp":
		return zoneJapan
	}
	return time.UTC
}

// Layouts seen in registry answers, with a zone first so a zone in the text
// always wins over the registry default.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05-0700",     // registrar WHOIS (MarkMonitor)
	"2006-01-02T15:04:05.000-0700", // some registrar WHOIS
	"2006-01-02 15:04:05-07",
	"2006-01-02 15:04:05 -0700",
	time.RFC1123Z,
	// No layouts with zone abbreviations ("MST"): Go reads an unknown
	// abbreviation as UTC, a silent guess.
}

var localLayouts = []string{
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006/01/02 15:04:05",
	"2006.01.02 15:04:05",
	"02.01.2006 15:04:05",
	"02-Jan-2006 15:04:05",
	"2006-01-02",
	"2006/01/02",
	"2006.01.02",
	"02.01.2006",
	"02-Jan-2006",
	"02-January-2006",
	"January 2 2006",
	"20060102",
}

// parseRegistryDate reads a date as a registry printed it. A trailing zone
// name in parentheses ("2017/06/01 01:05:09 (JST)") is honoured; a date
// without a zone is in the registry's zone. ok is false for anything else:
// a wrong guess at an expiry date is worse than none.
func parseRegistryDate(s, tld string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	loc := registryZone(tld)
	if i := strings.LastIndex(s, "("); i > 0 && strings.HasSuffix(s, ")") {
		switch strings.ToUpper(strings.TrimSpace(s[i+1 : len(s)-1])) {
		case "JST":
			loc = zoneJapan
		case "CST", "UTC+8", "GMT+8":
			loc = zoneChina
		case "UTC", "GMT", "Z":
			loc = time.UTC
		}
		s = strings.TrimSpace(s[:i])
	}
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
