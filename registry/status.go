package registry

import (
	"strings"

	"github.com/nsguard/nsguard/config"
)

// rdapToEPP is RFC 8056 section 2: RDAP status values and the EPP domain
// statuses they stand for. Keys are lower-case with spaces removed so one
// table serves RDAP ("client transfer prohibited") and WHOIS
// ("clientTransferProhibited", "CLIENT TRANSFER PROHIBITED").
var rdapToEPP = map[string]string{}

// rdapOnly are RFC 8056 RDAP values whose EPP name differs from the
// RDAP words: "active" is EPP "ok".
var rdapOnly = map[string]string{
	"active": "ok",
}

// holdStatuses take a domain out of the DNS or are about to delete it.
var holdStatuses = []string{"clientHold", "serverHold", "pendingDelete", "redemptionPeriod", "inactive"}

func init() {
	for _, s := range config.EPPStatuses {
		rdapToEPP[strings.ToLower(s)] = s
	}
}

// NormaliseStatus maps one status as a registry spelled it to its EPP
// name. ok is false for statuses EPP has no name for (DENIC "connect",
// JPRS "Active", RDAP "locked"): callers keep those verbatim.
//
// WHOIS appends an ICANN URL ("clientHold https://icann.org/epp#clientHold");
// that is dropped. RDAP's "active" is EPP "ok" only in RDAP (fromRDAP),
// since a ccTLD WHOIS "Active" is the registry's own word, not EPP.
func NormaliseStatus(s string, fromRDAP bool) (epp string, ok bool) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "http"); i > 0 {
		s = s[:i]
	}
	s = strings.Trim(strings.TrimSpace(s), "()")
	key := strings.ToLower(strings.Join(strings.Fields(s), ""))
	if key == "" {
		return "", false
	}
	if fromRDAP {
		if v, found := rdapOnly[key]; found {
			return v, true
		}
	}
	if v, found := rdapToEPP[key]; found {
		return v, true
	}
	return strings.TrimSpace(s), false
}

// splitStatuses normalises a list of registry statuses into EPP names and
// the rest.
func splitStatuses(in []string, fromRDAP bool) (epp, other []string) {
	for _, s := range in {
		v, ok := NormaliseStatus(s, fromRDAP)
		switch {
		case ok:
			epp = append(epp, v)
		case v != "":
			other = append(other, v)
		}
	}
	return epp, other
}
