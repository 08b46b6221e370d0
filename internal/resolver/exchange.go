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
	s := fmt.Sprintf("%s %s", CanonicalName(q.Name), dns.TypeToString[q.Type])
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
	resp := r.exchange(ctx, server, q)
	return &resp
}

// exchange is Exchange returning the Response itself, which Cycle keeps in
// its cache entry (an allocation fewer a query).
func (r *Resolver) exchange(ctx context.Context, server netip.AddrPort, q Query) Response {
	if q.Proto == "" {
		q.Proto = UDP
	}
	qs := question{name: dns.Fqdn(q.Name), qtype: q.Type, rd: q.RD, do: q.DO}
	var last Response
	for attempt := 0; attempt <= r.cfg.Retries; attempt++ {
		proto := q.Proto
		resp := r.send(ctx, server, qs, proto)
		if resp.Err == nil && proto == UDP && resp.Msg.Truncated {
			// RFC 7766: a truncated answer is retried over TCP.
			resp = r.send(ctx, server, qs, TCP)
		}
		if resp.Err == nil && resp.Proto == TCP && resp.Msg.Truncated {
			// TC over TCP (RFC 7766 §6.2.1 forbids it): no transport is
			// left, and a half-empty message must not pass for an answer.
			resp = Response{Proto: TCP, RTT: resp.RTT, Err: fmt.Errorf("%w: the answer has the TC bit even over TCP", ErrTruncated)}
		}
		last = resp
		if resp.Err == nil || !errors.Is(resp.Err, ErrTimeout) || ctx.Err() != nil {
			break
		}
	}
	return last
}

func (r *Resolver) send(ctx context.Context, server netip.AddrPort, q question, proto Proto) Response {
	if err := r.limiter(server).Wait(ctx); err != nil {
		return Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, err)}
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())}
	}
	defer func() { <-r.sem }()
	r.sent.Add(1)
	countQuery(ctx)
	start := time.Now()
	deadline := start.Add(r.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var in *dns.Msg
	var id uint16
	var err error
	if proto == TCP {
		in, id, err = r.tcp.exchange(ctx, server, q, start, deadline)
	} else {
		in, id, err = r.udp.exchange(ctx, server, q, start, deadline)
	}
	rtt := time.Since(start)
	if err != nil {
		return Response{Proto: proto, RTT: rtt, Err: err}
	}
	if err := checkReply(id, q, in); err != nil {
		return Response{Proto: proto, RTT: rtt, Err: err}
	}
	return Response{Msg: in, Proto: proto, RTT: rtt}
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

// checkReply rejects answers that are not replies to the query with ID id
// asking q: wrong ID, no QR bit, another question. A spoofed or confused
// answer is no answer.
func checkReply(id uint16, q question, in *dns.Msg) error {
	if in == nil {
		return fmt.Errorf("%w: empty reply", ErrMalformed)
	}
	if in.Id != id {
		return fmt.Errorf("%w: id %d, sent %d", ErrMismatch, in.Id, id)
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
	got := in.Question[0]
	if !strings.EqualFold(got.Name, q.name) || got.Qtype != q.qtype || got.Qclass != dns.ClassINET {
		return fmt.Errorf("%w: reply is for %s %s", ErrMismatch, got.Name, dns.TypeToString[got.Qtype])
	}
	return nil
}
