package registry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Backoff after a rate limit without a Retry-After: the first strike waits
// baseBackoff, each further strike doubles it, up to maxBackoff. A server's
// own Retry-After is honoured up to maxBackoff too, so a bogus "one week"
// cannot silence monitoring for a week.
const (
	baseBackoff = time.Minute
	maxBackoff  = 6 * time.Hour
)

// politeness is a token bucket per server plus a backoff deadline after a
// server said we ask too much. Registries ban IPs that ignore this.
type politeness struct {
	qps float64
	now func() time.Time

	mu      sync.Mutex
	servers map[string]*serverState
}

type serverState struct {
	lim     *rate.Limiter
	until   time.Time
	strikes int
}

func newPoliteness(qps float64, now func() time.Time) *politeness {
	return &politeness{qps: qps, now: now, servers: map[string]*serverState{}}
}

func (p *politeness) state(server string) *serverState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.servers[server]
	if !ok {
		// Burst 1: a cycle over many domains on one registry is spread
		// evenly instead of opening with a volley.
		s = &serverState{lim: rate.NewLimiter(rate.Limit(p.qps), 1)}
		p.servers[server] = s
	}
	return s
}

// wait blocks until server may be asked, or says why not.
func (p *politeness) wait(ctx context.Context, server string) error {
	s := p.state(server)
	p.mu.Lock()
	until := s.until
	p.mu.Unlock()
	if p.now().Before(until) {
		return &backoffError{server: server, until: until}
	}
	return s.lim.Wait(ctx)
}

// limited records a rate-limit answer and returns when to ask again.
func (p *politeness) limited(server string, retryAfter time.Duration) time.Time {
	s := p.state(server)
	p.mu.Lock()
	defer p.mu.Unlock()
	d := retryAfter
	if d <= 0 {
		d = baseBackoff << min(s.strikes, 10)
	}
	d = min(d, maxBackoff)
	s.strikes++
	s.until = p.now().Add(d)
	return s.until
}

// ok records a good answer: the next rate limit starts from baseBackoff.
func (p *politeness) ok(server string) {
	s := p.state(server)
	p.mu.Lock()
	s.strikes = 0
	p.mu.Unlock()
}

// retryAfter reads an HTTP Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// quotaPhrases are what WHOIS servers say instead of an answer when we ask
// too often (Verisign, GoDaddy, CNNIC, DENIC, JPRS and registrar servers).
// Each is worded as a refusal: "excessive queries" alone is terms-of-use
// vocabulary ("you agree not to make excessive queries").
var quotaPhrases = []string{
	"quota exceeded",
	"limit exceeded",
	"exceeded the maximum allowable",
	"exceeded your query limit",
	"number of allowed queries exceeded",
	"query rate limit",
	"too many requests",
	"too many queries",
	"restricted due to excessive queries",
	"due to query limit controls",
	"you have exceeded",
	"maximum query rate reached",
	"maximum daily connection limit reached",
	"please try again later",
	"server too busy",
	"access control limit",
	"interval is too short",
}

// termsWords are what terms of use put before a quota phrase: "you
// agree not to exceed our query limit", "must not make too many queries".
var termsWords = []string{"not ", "agree", "prohibit", "may ", "must ", "shall ", "don't", "do not", "will be"}

// quotaPhrase reports whether a short answer says, as a refusal, that we
// asked too often. Only short answers count: a real record mentioning
// "limit exceeded" in its terms of use is still a record.
func quotaPhrase(answer string) bool {
	if len(answer) > 2048 {
		return false
	}
	a := strings.ToLower(answer)
	for _, p := range quotaPhrases {
		for from := 0; ; {
			i := strings.Index(a[from:], p)
			if i < 0 {
				break
			}
			i += from
			before := a[max(0, i-40):i]
			if j := strings.LastIndexAny(before, ".\n"); j >= 0 {
				before = before[j+1:]
			}
			terms := false
			for _, w := range termsWords {
				if strings.Contains(before, w) {
					terms = true
				}
			}
			if !terms {
				return true
			}
			from = i + len(p)
		}
	}
	return false
}

// isQuotaAnswer reports whether a WHOIS answer is a rate-limit refusal: a
// refusal phrase in a short answer that states no registration (dates,
// name servers, a registrar).
func isQuotaAnswer(answer string) bool {
	return quotaPhrase(answer) && !readWhois(answer, "").hasFacts()
}
