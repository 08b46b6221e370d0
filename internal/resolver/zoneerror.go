package resolver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Failure kinds of one server asked for a zone, from "not the server's
// fault" to "the server answered, uselessly".
const (
	// FailNoAddress: the server's name has no address (or its lookup failed).
	FailNoAddress = "no address"
	// FailUnreachable: no answer at all (timeouts, network errors): the
	// network may be at fault as much as the server.
	FailUnreachable = "unreachable"
	// FailBroken: an answer nsguard cannot use (REFUSED, SERVFAIL, a lame
	// or upward referral, malformed, truncated even over TCP).
	FailBroken = "broken answer"
	// FailNotAuthoritative: a negative answer (NXDOMAIN or NODATA) without
	// the AA bit: a resolver or a middlebox answered, not the zone's server.
	FailNotAuthoritative = "not authoritative"
	// FailSkipped: not asked, past resolver.max_ns_per_delegation names.
	FailSkipped = "not asked"
)

// ServerFailure is why one server of a zone gave no usable answer.
type ServerFailure struct {
	Name   string
	Addr   netip.Addr // invalid when the name had no address
	Kind   string
	Detail string
	err    error
}

// ZoneError says why no server of a zone gave a usable answer to a
// question, server by server, so callers can tell a network problem (every
// server unreachable) from servers that answer badly (a server finding) or
// from answers that are not authoritative at all (DNS intercepted).
type ZoneError struct {
	Zone     string
	Query    Query
	Failures []ServerFailure
}

func (e *ZoneError) Error() string {
	if len(e.Failures) == 0 {
		return fmt.Sprintf("zone %s has no name servers", zoneText(e.Zone))
	}
	var parts []string
	for i, f := range e.Failures {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Failures)-i))
			break
		}
		who := strings.TrimSuffix(f.Name, ".")
		if f.Addr.IsValid() {
			who += " " + f.Addr.String()
		}
		parts = append(parts, who+": "+f.Detail)
	}
	return fmt.Sprintf("no server of zone %s gave a usable answer to %s: %s", zoneText(e.Zone), e.Query, strings.Join(parts, "; "))
}

// Unwrap returns the last server's transport error, so errors.Is(err,
// ErrTimeout) still says "nothing answered in time".
func (e *ZoneError) Unwrap() error {
	for i := len(e.Failures) - 1; i >= 0; i-- {
		if e.Failures[i].err != nil {
			return e.Failures[i].err
		}
	}
	return nil
}

// Answered reports whether at least one server answered, however badly:
// the network works, so the servers are at fault.
func (e *ZoneError) Answered() bool {
	for _, f := range e.Failures {
		if f.Kind == FailBroken || f.Kind == FailNotAuthoritative {
			return true
		}
	}
	return false
}

// Intercepted reports whether every answer that came was a negative one
// without authority, the mark of a middlebox answering port 53 itself
// (or of a resolver configured as a root hint).
func (e *ZoneError) Intercepted() bool {
	seen := false
	for _, f := range e.Failures {
		switch f.Kind {
		case FailNotAuthoritative:
			seen = true
		case FailBroken:
			return false
		}
	}
	return seen
}

// IsZoneError returns the ZoneError in err's chain.
func IsZoneError(err error) (*ZoneError, bool) {
	var ze *ZoneError
	ok := errors.As(err, &ze)
	return ze, ok
}

// Usable judges an answer from a server of zone: a referral below the
// zone, or an answer with authority (or with data). A negative answer
// without the AA bit is no evidence that a name does not exist.
func Usable(m *dns.Msg, zone string) (kind, detail string, ok bool) {
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return FailBroken, "answered " + dns.RcodeToString[m.Rcode], false
	}
	if m.Authoritative || (m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0) {
		return "", "", true
	}
	if ReferralZone(m, zone) != "" {
		return "", "", true
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Ns) > 0 && hasNS(m.Ns) {
		return FailBroken, "lame: a referral that is not below the zone (upward or sideways)", false
	}
	what := "NODATA"
	if m.Rcode == dns.RcodeNameError {
		what = "NXDOMAIN"
	}
	detail = what + " without the AA bit"
	if m.RecursionAvailable {
		detail += " (recursion available: a resolver or a middlebox answered)"
	}
	return FailNotAuthoritative, detail, false
}

func hasNS(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if _, ok := rr.(*dns.NS); ok {
			return true
		}
	}
	return false
}

func failureOf(name string, a netip.Addr, r *Response, zone string) (ServerFailure, bool) {
	f := ServerFailure{Name: name, Addr: a}
	if r.Err != nil {
		f.err = r.Err
		f.Kind, f.Detail = FailUnreachable, r.Err.Error()
		if !errors.Is(r.Err, ErrTimeout) && !errors.Is(r.Err, ErrNetwork) {
			f.Kind = FailBroken // it answered: malformed, mismatched, truncated
		}
		return f, false
	}
	kind, detail, ok := Usable(r.Msg, zone)
	f.Kind, f.Detail = kind, detail
	return f, ok
}

func zoneText(z string) string {
	if z == "." {
		return "."
	}
	return strings.TrimSuffix(z, ".")
}
