package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Proto is the transport a query used.
type Proto string

const (
	UDP Proto = "udp"
	TCP Proto = "tcp"
)

// Query is one question for one server.
type Query struct {
	Name  string
	Type  uint16
	Proto Proto // UDP (falls back to TCP on truncation) or TCP only
	DO    bool  // ask for DNSSEC records
	RD    bool  // recursion desired (public resolvers)
}

func (q Query) String() string {
	s := fmt.Sprintf("%s %s", dns.CanonicalName(q.Name), dns.TypeToString[q.Type])
	if q.Proto == TCP {
		s += " (tcp)"
	}
	return s
}

// Response is a server's answer to a Query, or why there is none.
type Response struct {
	Msg   *dns.Msg
	RTT   time.Duration
	Proto Proto // the transport that produced Msg (tcp after a truncation)
	Err   error
}

// Error kinds, for callers that classify failures.
var (
	ErrTimeout   = errors.New("timed out")
	ErrMalformed = errors.New("malformed response")
	ErrMismatch  = errors.New("response does not match the question")
	ErrNetwork   = errors.New("network error")
	// ErrTruncated: the answer came with the TC bit even over TCP, where
	// there is nothing left to retry with. The server answered, uselessly.
	ErrTruncated = errors.New("truncated")
)

// Exchange sends q to server once per attempt (1 + retries on timeouts),
// honouring the server's token bucket and the concurrency bound. It is not
// cached; Cycle.Exchange is.
func (r *Resolver) Exchange(ctx context.Context, server netip.AddrPort, q Query) *Response {
	if q.Proto == "" {
		q.Proto = UDP
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.Name), q.Type)
	m.RecursionDesired = q.RD
	m.SetEdns0(EDNSBufferSize, q.DO)
	var last *Response
	for attempt := 0; attempt <= r.cfg.Retries; attempt++ {
		proto := q.Proto
		resp := r.send(ctx, server, m, proto)
		if resp.Err == nil && proto == UDP && resp.Msg.Truncated {
			// RFC 7766: a truncated answer is retried over TCP.
			resp = r.send(ctx, server, m, TCP)
		}
		if resp.Err == nil && resp.Proto == TCP && resp.Msg.Truncated {
			// TC over TCP (RFC 7766 §6.2.1 forbids it): no transport is
			// left, and a half-empty message must not pass for an answer.
			resp = &Response{Proto: TCP, RTT: resp.RTT, Err: fmt.Errorf("%w: the answer has the TC bit even over TCP", ErrTruncated)}
		}
		last = resp
		if resp.Err == nil || !errors.Is(resp.Err, ErrTimeout) || ctx.Err() != nil {
			break
		}
	}
	return last
}

func (r *Resolver) send(ctx context.Context, server netip.AddrPort, m *dns.Msg, proto Proto) *Response {
	if err := r.limiter(server).Wait(ctx); err != nil {
		return &Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, err)}
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return &Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())}
	}
	defer func() { <-r.sem }()
	r.sent.Add(1)
	countQuery(ctx)
	m.Id = dns.Id()
	start := time.Now()
	var in *dns.Msg
	var err error
	if proto == TCP {
		in, err = r.tcp.exchange(ctx, server, m, r.timeout())
	} else {
		in, err = r.udpExchange(ctx, server, m)
	}
	rtt := time.Since(start)
	if err != nil {
		return &Response{Proto: proto, RTT: rtt, Err: err}
	}
	if err := checkReply(m, in); err != nil {
		return &Response{Proto: proto, RTT: rtt, Err: err}
	}
	return &Response{Msg: in, Proto: proto, RTT: rtt}
}

func (r *Resolver) udpExchange(ctx context.Context, server netip.AddrPort, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", UDPSize: EDNSBufferSize, Timeout: r.timeout()}
	in, _, err := c.ExchangeContext(ctx, m, server.String())
	return in, classify(err)
}

// classify maps network and parse errors to the package's error kinds, so
// callers never branch on error strings.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrTimeout, ErrMalformed, ErrMismatch, ErrNetwork, ErrTruncated} {
		if errors.Is(err, known) {
			return err
		}
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, dns.ErrId):
		return fmt.Errorf("%w: %v", ErrMismatch, err)
	case isParseError(err):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %v", ErrNetwork, err)
}

func isParseError(err error) bool {
	var de *dns.Error
	if errors.As(err, &de) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "overflow") || strings.Contains(s, "bad rdata") || strings.Contains(s, "dns: ")
}

// checkReply rejects answers that are not replies to m: wrong ID, no QR
// bit, another question. A spoofed or confused answer is no answer.
func checkReply(m, in *dns.Msg) error {
	if in == nil {
		return fmt.Errorf("%w: empty reply", ErrMalformed)
	}
	if in.Id != m.Id {
		return fmt.Errorf("%w: id %d, sent %d", ErrMismatch, in.Id, m.Id)
	}
	if !in.Response {
		return fmt.Errorf("%w: QR bit not set", ErrMalformed)
	}
	if in.Rcode == dns.RcodeFormatError && len(in.Question) == 0 {
		return nil // FORMERR replies may omit the question
	}
	if len(in.Question) != 1 {
		return fmt.Errorf("%w: %d questions in reply", ErrMismatch, len(in.Question))
	}
	q, s := in.Question[0], m.Question[0]
	if !strings.EqualFold(q.Name, s.Name) || q.Qtype != s.Qtype || q.Qclass != s.Qclass {
		return fmt.Errorf("%w: reply is for %s %s", ErrMismatch, q.Name, dns.TypeToString[q.Qtype])
	}
	return nil
}
