package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors callers branch on. Every lookup error wraps one of these or a
// network error, inside a *LookupError carrying the trail.
var (
	// ErrNotRegistered means the registry answered that the domain does not exist.
	ErrNotRegistered = errors.New("registry says the domain is not registered")
	// ErrRateLimited means a server refused because of query rate (HTTP 429,
	// WHOIS "quota exceeded"); nsguard backs off from it.
	ErrRateLimited = errors.New("rate limited")
	// ErrBackingOff means nsguard did not ask a server because it rate
	// limited us recently.
	ErrBackingOff = errors.New("backing off after a rate limit")
	// ErrTooLarge means an answer exceeded the read limit (MaxAnswer).
	ErrTooLarge = errors.New("answer larger than the read limit")
	// ErrMalformed means an answer could not be parsed.
	ErrMalformed = errors.New("malformed answer")
	// ErrNoServer means neither RDAP nor WHOIS is known for the TLD.
	ErrNoServer = errors.New("no RDAP or WHOIS server known")
	// ErrInvalidDomain means the name asked is not a domain name.
	ErrInvalidDomain = errors.New("invalid domain name")
)

// MaxAnswer bounds every read from an RDAP or WHOIS server; a real
// registration record is a few KiB.
const MaxAnswer = 1 << 20

// LookupError is a failed lookup with every attempt made.
type LookupError struct {
	Domain   string
	Attempts []Attempt
	// Err is the most telling cause (not registered beats rate limited
	// beats a network error).
	Err error
}

func (e *LookupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registration lookup for %s failed: %v", e.Domain, e.Err)
	for _, a := range e.Attempts {
		if a.Result != "ok" {
			fmt.Fprintf(&b, "; %s %s: %s", a.Protocol, a.Server, a.Result)
		}
	}
	return b.String()
}

func (e *LookupError) Unwrap() error { return e.Err }

// backoffError says until when a server is avoided.
type backoffError struct {
	server string
	until  time.Time
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%s rate limited us; not asking again before %s", e.server, e.until.UTC().Format(time.RFC3339))
}

func (e *backoffError) Unwrap() error { return ErrBackingOff }

// rank orders causes for LookupError.Err: the higher, the more useful to
// the operator.
func rank(err error) int {
	switch {
	case errors.Is(err, ErrNotRegistered):
		return 5
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrBackingOff):
		return 4
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrMalformed):
		return 3
	case errors.Is(err, ErrNoServer):
		return 1
	}
	return 2
}
