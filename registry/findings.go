package registry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

// Finding IDs this package emits (documented in docs/checks.md).
const (
	IDRegistrarNotApproved    = "REGISTRAR_NOT_APPROVED"
	IDLockMissing             = "LOCK_MISSING"
	IDExpirySoon              = "EXPIRY_SOON"
	IDStatusHold              = "STATUS_HOLD"
	IDRegistryNSMismatch      = "REGISTRY_NS_MISMATCH"
	IDRegistrationUnavailable = "REGISTRATION_UNAVAILABLE"
)

func init() {
	const class = "registration"
	finding.Register(
		finding.Check{ID: IDRegistrarNotApproved, Class: class, Default: finding.Critical,
			Title: "the sponsoring registrar is not an approved registrar", Zonemaster: "none"},
		finding.Check{ID: IDLockMissing, Class: class, Default: finding.Critical,
			Title: "a lock status the domain's tier requires is not set", Zonemaster: "none"},
		finding.Check{ID: IDExpirySoon, Class: class, Default: finding.Warning,
			Title: "the registration expires inside the policy horizon", Zonemaster: "none"},
		finding.Check{ID: IDStatusHold, Class: class, Default: finding.Critical,
			Title: "the domain is on hold, inactive or being deleted", Zonemaster: "none"},
		finding.Check{ID: IDRegistryNSMismatch, Class: class, Default: finding.Warning,
			Title: "the registry's name servers differ from the DNS delegation", Zonemaster: "none"},
		finding.Check{ID: IDRegistrationUnavailable, Class: class, Default: finding.Warning,
			Title: "registration data could not be read", Zonemaster: "none"},
	)
}

var holdMeaning = map[string]string{
	"clientHold":       "the registrar has put the domain on hold: it is out of the DNS",
	"serverHold":       "the registry has put the domain on hold: it is out of the DNS",
	"pendingDelete":    "the registry is about to delete the domain",
	"redemptionPeriod": "the domain was deleted and is in redemption: only the registrar can restore it",
	"inactive":         "the registry has no name servers for the domain: it does not resolve",
}

// Evaluate judges a registration record against policy. It is pure: the
// same inputs give the same findings, sorted worst first.
//
// lookupErr (or a nil rec) gives REGISTRATION_UNAVAILABLE alone, critical
// when the registry said the domain is not registered. A stale record gives
// REGISTRATION_UNAVAILABLE beside the findings of the stale data.
// delegationNS is the NS set the DNS parent serves; REGISTRY_NS_MISMATCH is
// only judged when it is non-empty.
func Evaluate(rec *Record, lookupErr error, d config.Domain, cfg *config.Config, delegationNS []string, now time.Time) []finding.Finding {
	domain := config.CanonicalName(d.Name)
	if lookupErr != nil || rec == nil {
		return []finding.Finding{unavailable(domain, lookupErr)}
	}
	var out []finding.Finding
	// Every piece of evidence says when the data is not fresh: a
	// registrar transfer an hour ago does not show in a record cached
	// for six.
	cached := ""
	if note := rec.CacheNote(now); note != "" {
		cached = " (" + note + ")"
	}
	base := finding.Evidence{Server: rec.Server, Query: rec.Query}
	with := func(answer string) []finding.Evidence {
		e := base
		e.Answer = answer + cached
		return []finding.Evidence{e}
	}
	// notes quotes how a field was read where the WHOIS readings differ.
	notes := func(field string, ev []finding.Evidence) []finding.Evidence {
		for _, n := range rec.ParseNotes {
			if strings.HasPrefix(n, field+": ") || strings.HasPrefix(n, "registrar's answer: "+field+": ") {
				ev = append(ev, finding.Evidence{Server: rec.Server, Query: rec.Query, Answer: "read: " + n})
			}
		}
		return ev
	}
	tierSev := finding.Warning
	if d.Tier <= 1 {
		tierSev = finding.Critical
	}

	if rec.Stale != "" {
		out = append(out, finding.Finding{
			ID: IDRegistrationUnavailable, Severity: finding.Warning, Domain: domain,
			Message:  "registration lookup failed; judging cached data: " + rec.Stale,
			Evidence: with("record fetched " + rec.FetchedAt.Format(time.RFC3339)),
		})
	}

	for _, s := range holdStatuses {
		if slices.Contains(rec.Statuses, s) {
			out = append(out, finding.Finding{
				ID: IDStatusHold, Severity: finding.Critical, Domain: domain, Subject: s,
				Message:  fmt.Sprintf("status %s: %s", s, holdMeaning[s]),
				Evidence: with("statuses: " + listOrNone(rec.Statuses)),
			})
		}
	}

	if approved := cfg.Policy.ApprovedRegistrars; len(approved) > 0 {
		switch {
		case rec.Registrar.Name == "" && rec.Registrar.IANAID == "":
			out = append(out, finding.Finding{
				ID: IDRegistrarNotApproved, Severity: finding.Info, Domain: domain,
				Message:  "the registry does not publish the registrar, so nsguard cannot confirm it is approved",
				Evidence: notes("registrar", with("no registrar in the answer")),
			})
		case !registrarApproved(rec.Registrar, approved):
			out = append(out, finding.Finding{
				ID: IDRegistrarNotApproved, Severity: tierSev, Domain: domain,
				Message: fmt.Sprintf("registrar is %s, not an approved registrar (%s): a transfer may have happened",
					rec.Registrar, strings.Join(approved, ", ")),
				Evidence: notes("registrar", with("registrar: "+rec.Registrar.String())),
			})
		}
	}

	if required := cfg.RequiredLocksFor(d.Tier); len(required) > 0 {
		for _, lock := range required {
			if slices.Contains(rec.Statuses, lock) {
				continue
			}
			msg := fmt.Sprintf("%s is not set; tier %d requires %s", lock, d.Tier, strings.Join(required, ", "))
			if len(rec.OtherStatuses) > 0 {
				msg += fmt.Sprintf(" (the registry also reports %s, which have no EPP equivalent)", strings.Join(rec.OtherStatuses, ", "))
			}
			out = append(out, finding.Finding{
				ID: IDLockMissing, Severity: tierSev, Domain: domain, Subject: lock,
				Message:  msg,
				Evidence: with("statuses: " + listOrNone(rec.Statuses)),
			})
		}
	}

	out = append(out, expiryFindings(rec, domain, cfg.Policy.Expiry, now, base, cached, notes)...)

	if len(delegationNS) > 0 && len(rec.Nameservers) > 0 {
		dns := make([]string, 0, len(delegationNS))
		for _, n := range delegationNS {
			dns = append(dns, canonicalHost(n))
		}
		dns = sortedUnique(dns)
		if !slices.Equal(dns, rec.Nameservers) {
			ev := with("name servers: " + strings.Join(rec.Nameservers, ", "))
			ev = append(ev, finding.Evidence{Server: "DNS parent", Query: domain + " NS", Answer: strings.Join(dns, ", ")})
			out = append(out, finding.Finding{
				ID: IDRegistryNSMismatch, Severity: finding.Warning, Domain: domain,
				Message: fmt.Sprintf("the registry lists %s but the DNS delegation has %s",
					strings.Join(rec.Nameservers, ", "), strings.Join(dns, ", ")),
				Evidence: ev,
			})
		}
	}
	finding.Sort(out)
	return out
}

func expiryFindings(rec *Record, domain string, h config.Horizon, now time.Time, base finding.Evidence,
	cached string, notes func(string, []finding.Evidence) []finding.Evidence) []finding.Finding {
	if rec.Expiry.IsZero() {
		e := base
		e.Answer = "no expiry date" + cached
		return []finding.Finding{{
			ID: IDExpirySoon, Severity: finding.Info, Domain: domain,
			Message:  "expiry cannot be checked: " + rec.ExpiryNote,
			Evidence: notes("expiry", []finding.Evidence{e}),
		}}
	}
	left := rec.Expiry.Sub(now)
	var sev finding.Severity
	switch {
	case left <= h.Critical.D():
		sev = finding.Critical
	case left <= h.Warning.D():
		sev = finding.Warning
	default:
		return nil
	}
	var msg string
	if left < 0 {
		msg = fmt.Sprintf("registration expired %s ago (%s); renew it now", humanDays(-left), rec.Expiry.Format(time.DateOnly))
	} else {
		msg = fmt.Sprintf("registration expires in %s (%s); renew it", humanDays(left), rec.Expiry.Format(time.DateOnly))
	}
	var ev []finding.Evidence
	if !rec.RegistryExpiry.IsZero() {
		e := base
		e.Answer = "registry expiry " + rec.RegistryExpiry.Format(time.RFC3339) + cached
		ev = append(ev, e)
	}
	if !rec.RegistrarExpiry.IsZero() {
		ev = append(ev, finding.Evidence{Server: rec.Registrar.Server, Query: domain,
			Answer: "registrar expiry " + rec.RegistrarExpiry.Format(time.RFC3339) + cached})
		if !rec.RegistryExpiry.IsZero() && !rec.RegistryExpiry.Equal(rec.RegistrarExpiry) {
			msg += "; registry and registrar disagree, the earlier date is judged"
		}
	}
	return []finding.Finding{{ID: IDExpirySoon, Severity: sev, Domain: domain, Message: msg, Evidence: notes("expiry", ev)}}
}

func unavailable(domain string, err error) finding.Finding {
	f := finding.Finding{ID: IDRegistrationUnavailable, Severity: finding.Warning, Domain: domain}
	if err == nil {
		err = errors.New("no registration record")
	}
	f.Message = "registration data could not be read: " + err.Error()
	if errors.Is(err, ErrNotRegistered) {
		// Not a failing lookup but an answer: the registry has no such
		// domain. Deleted, or a typo in the inventory; either needs a human.
		f.Severity = finding.Critical
		f.Message = "the registry says the domain is not registered"
	}
	var le *LookupError
	if errors.As(err, &le) {
		f.Message = fmt.Sprintf("registration data could not be read: %v", le.Err)
		if errors.Is(err, ErrNotRegistered) {
			f.Message = "the registry says the domain is not registered: " + le.Err.Error()
		}
		for _, a := range le.Attempts {
			f.Evidence = append(f.Evidence, finding.Evidence{Server: a.Server, Query: a.Query, Answer: a.Result})
		}
	}
	if len(f.Evidence) == 0 {
		f.Evidence = []finding.Evidence{{Answer: err.Error()}}
	}
	return f
}

// registrarApproved matches a registrar against policy.approved_registrars
// entries: an all-digit entry is an IANA registrar ID, anything else a name
// compared without case, punctuation or a company-form suffix
// ("MarkMonitor, Inc." matches "MarkMonitor Inc.").
func registrarApproved(r Registrar, approved []string) bool {
	name := normaliseRegistrarName(r.Name)
	for _, a := range approved {
		a = strings.TrimSpace(a)
		if isDigits(a) {
			if r.IANAID != "" && strings.TrimLeft(a, "0") == strings.TrimLeft(r.IANAID, "0") {
				return true
			}
			continue
		}
		if name != "" && normaliseRegistrarName(a) == name {
			return true
		}
	}
	return false
}

var companyForms = map[string]bool{
	"inc": true, "incorporated": true, "llc": true, "ltd": true, "limited": true, "corp": true,
	"corporation": true, "co": true, "company": true, "gmbh": true, "ag": true, "sa": true, "sas": true,
	"sarl": true, "bv": true, "nv": true, "plc": true, "pty": true, "kk": true, "srl": true, "spa": true,
	"ab": true, "as": true, "oy": true, "lp": true, "llp": true,
}

func normaliseRegistrarName(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	// "S.A." splits into "s" "a": join single letters back first.
	var words []string
	acc := ""
	for _, w := range f {
		if len([]rune(w)) == 1 {
			acc += w
			continue
		}
		if acc != "" {
			words = append(words, acc)
			acc = ""
		}
		words = append(words, w)
	}
	if acc != "" {
		words = append(words, acc)
	}
	for len(words) > 1 && companyForms[words[len(words)-1]] {
		words = words[:len(words)-1]
	}
	return strings.Join(words, " ")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func humanDays(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(math.Round(d.Hours())))
	}
	return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
