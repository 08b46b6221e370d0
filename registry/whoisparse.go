package registry

import (
	"errors"
	"fmt"
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
}

// field is one "Key: value" (or JPRS "[Key] value") line.
type field struct{ key, value string }

// whoisFields splits an answer into fields. Keys are lower-case with
// runs of spaces collapsed; comment and banner lines are skipped.
func whoisFields(text string) []field {
	var out []field
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "%") || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ">>>") {
			continue
		}
		var k, v string
		if strings.HasPrefix(line, "[") {
			// JPRS: "[Expires on]                    2026/05/31"
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			k, v = line[1:end], line[end+1:]
		} else {
			i := strings.IndexByte(line, ':')
			if i <= 0 {
				continue
			}
			k, v = line[:i], line[i+1:]
		}
		k = strings.ToLower(strings.Join(strings.Fields(k), " "))
		v = strings.TrimSpace(v)
		if k == "" || len(k) > 64 {
			continue
		}
		out = append(out, field{k, v})
	}
	return out
}

// Keys naming the same thing across registries, most specific first.
var (
	expiryKeys = []string{
		"registry expiry date",                   // Verisign, PIR (registry)
		"registrar registration expiration date", // registrar WHOIS
		"expiration time",                        // CNNIC
		"expires on",                             // JPRS
		"expiration date", "expiry date", "expire date", "expires", "paid-till", "renewal date",
	}
	createdKeys = []string{"creation date", "registration time", "created on", "created", "registered on", "registered"}
	updatedKeys = []string{"updated date", "last updated", "last modified", "changed"}
	referralKey = []string{"registrar whois server", "whois server"}
)

// parseWhois reads one WHOIS answer about a domain under tld. It returns
// ErrNotRegistered, ErrRateLimited or ErrMalformed (wrapped) when the
// answer is not a registration record.
func parseWhois(answer, tld string) (wd *whoisData, err error) {
	if strings.TrimSpace(answer) == "" {
		return nil, fmt.Errorf("%w: empty answer", ErrMalformed)
	}
	if isQuotaAnswer(answer) {
		return nil, fmt.Errorf("%w: %q", ErrRateLimited, firstLine(answer))
	}
	defer func() {
		// whois-parser runs many regular expressions over text a stranger
		// wrote; a bug there must cost one finding, not the daemon.
		if r := recover(); r != nil {
			wd, err = nil, fmt.Errorf("%w: parser failed: %v", ErrMalformed, r)
		}
	}()
	info, perr := whoisparser.Parse(answer)
	switch {
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

	wd = &whoisData{}
	if info.Domain != nil {
		wd.Domain = strings.ToLower(info.Domain.Punycode)
		wd.NS = info.Domain.NameServers
		wd.Statuses, wd.Other = splitStatuses(info.Domain.Status, false)
		wd.DNSSEC.DelegationSigned = info.Domain.DNSSec
	}
	if info.Registrar != nil {
		wd.Registrar.Name = info.Registrar.Name
		if wd.Registrar.Name == "" {
			wd.Registrar.Name = info.Registrar.Organization
		}
		wd.Registrar.URL = info.Registrar.ReferralURL
	}

	fields := whoisFields(answer)
	get := func(keys []string) string {
		for _, k := range keys {
			for _, f := range fields {
				if f.key == k && f.value != "" {
					return f.value
				}
			}
		}
		return ""
	}
	for _, f := range fields {
		switch f.key {
		case "registrar iana id", "sponsoring registrar iana id":
			wd.Registrar.IANAID = f.value
		case "registrar abuse contact email":
			wd.Registrar.AbuseEmail = strings.ToLower(f.value)
		case "registrar abuse contact phone":
			wd.Registrar.AbusePhone = f.value
		case "lock status":
			// JPRS registry lock names have no published EPP mapping;
			// keep them verbatim rather than guess.
			wd.Other = append(wd.Other, f.value)
		case "dnssec ds data", "ds data", "ds record":
			wd.DNSSEC.DS = append(wd.DNSSEC.DS, strings.ToUpper(strings.Join(strings.Fields(f.value), " ")))
		}
	}
	if wd.Registrar.Name == "" {
		wd.Registrar.Name = get([]string{"registrar", "sponsoring registrar"})
	}
	if v := get([]string{"dnssec"}); v != "" {
		switch strings.ToLower(strings.Join(strings.Fields(v), "")) {
		case "signeddelegation", "signed", "yes", "active":
			wd.DNSSEC.DelegationSigned = true
		}
	}
	if len(wd.DNSSEC.DS) > 0 {
		wd.DNSSEC.DelegationSigned = true
	}
	wd.Registrant = whoisRegistrant(fields)
	wd.Expiry = whoisDate(get(expiryKeys), tld)
	wd.Created = whoisDate(get(createdKeys), tld)
	wd.Updated = whoisDate(get(updatedKeys), tld)
	if ref := get(referralKey); ref != "" {
		wd.Referral = cleanReferral(ref)
	}
	wd.detach()
	return wd, nil
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
	for _, list := range [][]string{wd.Other, wd.NS, wd.DNSSEC.DS} {
		for i := range list {
			list[i] = strings.Clone(list[i])
		}
	}
}

func whoisDate(s, tld string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := parseRegistryDate(s, tld)
	return t
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
