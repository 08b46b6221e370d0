// Package registry reads and judges registration data for critical domains:
// RDAP first (IANA bootstrap, then the registrar's RDAP server), WHOIS as
// the fallback for registries without RDAP, normalised to one Record with
// EPP status spelling. Evaluate turns a Record into findings against the
// company's policy; Contacts builds the on-call's emergency contact sheet.
package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Source names where a Record's data came from.
const (
	SourceRDAP  = "rdap"
	SourceWHOIS = "whois"
)

// MaxRaw bounds the raw answer kept in a Record: enough to read a WHOIS
// record or an RDAP document by eye, small enough to store every cycle.
const MaxRaw = 64 << 10

// Record is the normalised registration data of one domain. It is stored
// and diffed against an approved baseline, so its JSON is stable: slices
// are sorted and de-duplicated, times are UTC whole seconds (RFC 3339), and
// there are no maps. Volatile fields (fetched_at, stale, trail, raw) are
// dropped by Baseline.
type Record struct {
	// Domain is the name asked, lower-case, IDN labels in punycode.
	Domain string `json:"domain"`
	// Source is "rdap" or "whois".
	Source string `json:"source"`
	// Server is the registry server that answered (an RDAP base URL or a
	// WHOIS host:port); Query is what it was asked.
	Server string `json:"server"`
	Query  string `json:"query"`

	Registrar Registrar `json:"registrar"`
	// Registrant is the registrant organisation (a person's name when the
	// registry shows no organisation), "" when redacted or not published.
	// The audit compares it between a domain and its backup.
	Registrant string `json:"registrant,omitempty"`
	// Statuses are the EPP statuses (RFC 5731/3915 spelling), sorted.
	Statuses []string `json:"statuses"`
	// OtherStatuses are statuses with no EPP equivalent, verbatim, sorted
	// (DENIC "connect", JPRS "Active", RDAP "locked").
	OtherStatuses []string `json:"other_statuses,omitempty"`

	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// Expiry is the date policy judges: the earlier of RegistryExpiry and
	// RegistrarExpiry when both are known (a registry's auto-renew moves its
	// date a year on while the registrar may still let the name lapse).
	Expiry          time.Time `json:"expiry,omitzero"`
	RegistryExpiry  time.Time `json:"registry_expiry,omitzero"`
	RegistrarExpiry time.Time `json:"registrar_expiry,omitzero"`
	// ExpiryNote explains a missing expiry ("DENIC does not publish ...").
	ExpiryNote string `json:"expiry_note,omitempty"`

	// Nameservers are the registry's NS names, lower-case, no trailing dot, sorted.
	Nameservers []string `json:"nameservers"`
	DNSSEC      DNSSEC   `json:"dnssec"`
	// Redacted names fields the server withheld (RFC 9537), sorted.
	Redacted []string `json:"redacted,omitempty"`

	// ParseNotes say how WHOIS fields were read where whois-parser and
	// nsguard's own reading disagreed or only one of them read the field
	// ("expiry: 2020-03-02 from ... ; whois-parser read 2020-02-03"),
	// sorted. Evaluate quotes them in the evidence of the field's finding.
	ParseNotes []string `json:"parse_notes,omitempty"`

	// FetchedAt is when the registry answered.
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// Cached is set when the record was served from nsguard's cache
	// rather than asked of the registry for this lookup; CacheAge is how
	// old it was then ("3h12m"). Evaluate says so in every finding.
	Cached   bool   `json:"cached,omitempty"`
	CacheAge string `json:"cache_age,omitempty"`
	// Stale is set when this is a cached record served because a fresh
	// lookup failed; it says why. Evaluate reports it.
	Stale string `json:"stale,omitempty"`
	// Trail lists every server asked for this record, in order.
	Trail []Attempt `json:"trail,omitempty"`
	// Raw is the answers as received, bounded by MaxRaw. Only a fresh
	// lookup carries it: the caches keep records without it (Lookup's
	// cache hits have none), and Baseline drops it.
	Raw string `json:"raw,omitempty"`
}

// Registrar is the sponsoring registrar as the registry (or registrar) reports it.
type Registrar struct {
	Name       string `json:"name,omitempty"`
	IANAID     string `json:"iana_id,omitempty"`
	AbuseEmail string `json:"abuse_email,omitempty"`
	AbusePhone string `json:"abuse_phone,omitempty"`
	URL        string `json:"url,omitempty"`
	// Server is the registrar's RDAP URL or WHOIS server when it was asked.
	Server string `json:"server,omitempty"`
}

// String renders "Name (IANA 292)".
func (r Registrar) String() string {
	switch {
	case r.Name == "" && r.IANAID == "":
		return "unknown registrar"
	case r.IANAID == "":
		return r.Name
	case r.Name == "":
		return "IANA ID " + r.IANAID
	}
	return r.Name + " (IANA " + r.IANAID + ")"
}

// DNSSEC is the registry's view of the delegation's DNSSEC state.
type DNSSEC struct {
	DelegationSigned bool `json:"delegation_signed"`
	// DS holds "keytag algorithm digesttype DIGEST", sorted.
	DS []string `json:"ds,omitempty"`
}

// Attempt is one question put to one server while building a record.
type Attempt struct {
	Protocol string `json:"protocol"` // rdap, whois, bootstrap
	Server   string `json:"server"`
	Query    string `json:"query"`
	// Result is "ok" or what went wrong, worded for the operator.
	Result string `json:"result"`
}

// Baseline returns a copy without the fields that change on every lookup
// (fetch time, cache age, staleness, trail, raw answer), for storing and
// diffing against an approved state.
func (r *Record) Baseline() Record {
	b := *r
	b.FetchedAt = time.Time{}
	b.Cached, b.CacheAge = false, ""
	b.Stale = ""
	b.Trail = nil
	b.Raw = ""
	return b
}

// normalise makes the record canonical: sorted, de-duplicated slices,
// UTC whole-second times, the judged expiry computed.
func (r *Record) normalise() {
	r.Statuses = sortedUnique(r.Statuses)
	r.OtherStatuses = sortedUnique(r.OtherStatuses)
	r.Redacted = sortedUnique(r.Redacted)
	r.ParseNotes = sortedUnique(r.ParseNotes)
	r.DNSSEC.DS = sortedUnique(r.DNSSEC.DS)
	ns := make([]string, 0, len(r.Nameservers))
	for _, n := range r.Nameservers {
		if n = canonicalHost(n); n != "" {
			ns = append(ns, n)
		}
	}
	r.Nameservers = sortedUnique(ns)
	if r.Statuses == nil {
		r.Statuses = []string{}
	}
	if r.Nameservers == nil {
		r.Nameservers = []string{}
	}
	for _, t := range []*time.Time{&r.Created, &r.Updated, &r.RegistryExpiry, &r.RegistrarExpiry, &r.FetchedAt} {
		*t = canonicalTime(*t)
	}
	r.Expiry = earliest(r.RegistryExpiry, r.RegistrarExpiry)
	r.Registrant = boundName(r.Registrant, maxRegistrant)
	if len(r.Raw) > MaxRaw {
		r.Raw = r.Raw[:MaxRaw] + "\n[truncated by nsguard]"
	}
}

func canonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

func canonicalHost(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		// WHOIS often appends addresses: "ns1.example.com 192.0.2.1".
		s = s[:i]
	}
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// earliest returns the earlier non-zero time (zero when both are zero).
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CacheNote says where a record came from for people: "cached 3h12m ago"
// for a record served from the cache, "" for one asked for just now.
func (r *Record) CacheNote(now time.Time) string {
	if r == nil || !r.Cached {
		return ""
	}
	return "cached " + Age(now.Sub(r.FetchedAt)) + " ago"
}

// Age renders a duration the way the cache notes speak: "42s", "12m",
// "3h12m", "2d3h".
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
