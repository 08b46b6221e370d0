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
	var one [1]exchangeState
	one[0].init(server, q)
	r.exchangeAll(ctx, one[:])
	return one[0].resp
}

// exchangeState is one Exchange under way in exchangeAll: its attempt
// (1 + retries on timeouts), whether this attempt's UDP answer came
// truncated (so it is asked over TCP), and the query on the wire.
type exchangeState struct {
	server   netip.AddrPort
	q        Query
	qs       question
	attempt  int
	fallback bool
	done     bool
	resp     Response // the last send's, and when done the exchange's
	f        flight
}

func (e *exchangeState) init(server netip.AddrPort, q Query) {
	if q.Proto == "" {
		q.Proto = UDP
	}
	*e = exchangeState{server: server, q: q, qs: question{name: dns.Fqdn(q.Name), qtype: q.Type, rd: q.RD, do: q.DO}}
}

// exchangeAll runs every exchange of ex at once from the calling
// goroutine: each round sends one query for each exchange not done, all
// before it waits for any, then settles each answer (done, or a TCP
// fallback or a retry for the next round). A domain's parallel questions
// so need no goroutine each; the servers see the same queries, with the
// same timeouts running side by side, as from goroutines.
func (r *Resolver) exchangeAll(ctx context.Context, ex []exchangeState) {
	for {
		pending := false
		for i := range ex {
			if !ex[i].done {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		r.sendAll(ctx, ex)
		for i := range ex {
			if !ex[i].done {
				r.settle(ctx, &ex[i])
			}
		}
	}
}

// settle decides what an exchange does after its last send's answer: as
// Exchange always has, a truncated UDP answer is asked again over TCP
// (RFC 7766), TC even over TCP is an error, and a timeout is retried while
// attempts and the context last.
func (r *Resolver) settle(ctx context.Context, e *exchangeState) {
	resp := e.resp
	if !e.fallback && e.q.Proto == UDP && resp.Err == nil && resp.Msg.Truncated {
		e.fallback = true
		return
	}
	if resp.Err == nil && resp.Proto == TCP && resp.Msg.Truncated {
		// TC over TCP (RFC 7766 §6.2.1 forbids it): no transport is
		// left, and a half-empty message must not pass for an answer.
		e.resp = Response{Proto: TCP, RTT: resp.RTT, Err: fmt.Errorf("%w: the answer has the TC bit even over TCP", ErrTruncated)}
	}
	if e.resp.Err == nil || !errors.Is(e.resp.Err, ErrTimeout) || ctx.Err() != nil || e.attempt >= r.cfg.Retries {
		e.done = true
		return
	}
	e.attempt++
	e.fallback = false
}

// sendAll sends one query for each exchange of ex not done, then waits
// for all their answers. Each query waits for its server's token bucket
// and takes a slot of resolver.max_concurrency, held until its answer
// arrives (or, without one, until it is waited for).
// When no slot is free, the oldest query this call has out is waited for
// first: a caller never blocks on a slot while it holds one (at
// max_concurrency 1, two callers that each held a slot and wanted another
// would wait for each other for ever).
func (r *Resolver) sendAll(ctx context.Context, ex []exchangeState) {
	oldest := 0 // no query of ex[:oldest] is out
	landOldest := func(before int) bool {
		for ; oldest < before; oldest++ {
			if f := &ex[oldest].f; f.out() {
				ex[oldest].resp = r.land(ctx, f)
				oldest++
				return true
			}
		}
		return false
	}
	for i := range ex {
		e := &ex[i]
		if e.done {
			continue
		}
		proto := e.q.Proto
		if e.fallback {
			proto = TCP
		}
		err := r.limiter(e.server).Wait(ctx)
		for err == nil && !r.trySlot() {
			if !landOldest(i) {
				err = r.waitSlot(ctx)
				break
			}
		}
		if err != nil {
			e.resp = Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, err)}
			continue
		}
		e.resp = r.launch(ctx, &e.f, e.server, e.qs, proto)
	}
	for i := range ex {
		if f := &ex[i].f; f.out() {
			ex[i].resp = r.land(ctx, f)
		}
	}
}

func (r *Resolver) trySlot() bool {
	select {
	case r.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Resolver) waitSlot(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flight is one query on the wire: sent on a slot, its answer not yet
// waited for. The zero flight has no query out.
type flight struct {
	proto           Proto
	server          netip.AddrPort
	q               question
	start, deadline time.Time
	c               *call      // nil: no query out
	sock            *udpSocket // UDP
	mark            uint64
	conn            *tcpConn // TCP
	frame           []byte
}

func (f *flight) out() bool { return f.c != nil }

// launch sends q to server on the slot the caller took. When the query
// cannot leave (no socket, no connection), it gives the slot back and
// returns why; else the flight is out until land.
func (r *Resolver) launch(ctx context.Context, f *flight, server netip.AddrPort, q question, proto Proto) Response {
	r.sent.Add(1)
	countQuery(ctx)
	start := time.Now()
	deadline := start.Add(r.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	*f = flight{proto: proto, server: server, q: q, start: start, deadline: deadline, c: getCall()}
	f.c.holdSlot(r.sem)
	var err error
	if proto == TCP {
		f.conn, f.frame, err = r.tcp.begin(ctx, server, q, f.c, deadline)
	} else {
		f.sock, f.mark, err = r.udp.begin(server, q, f.c)
	}
	if err != nil {
		f.c.releaseSlot()
		putCall(f.c)
		*f = flight{}
		return Response{Proto: proto, RTT: time.Since(start), Err: err}
	}
	return Response{}
}

// land waits for f's answer, gives its slot back and checks the answer
// against the question. The RTT runs to when the answer arrived, not to
// when land got to it.
func (r *Resolver) land(ctx context.Context, f *flight) Response {
	var in *dns.Msg
	var id uint16
	var err error
	if f.proto == TCP {
		in, id, err = r.tcp.end(ctx, f.server, f.conn, f.frame, f.c, f.start, f.deadline)
	} else {
		in, id, err = r.udp.end(ctx, f.sock, f.mark, f.c, f.start, f.deadline)
	}
	rtt := time.Since(f.start)
	if err == nil {
		rtt = f.c.answered.Sub(f.start)
	}
	proto, q := f.proto, f.q
	f.c.releaseSlot() // unless the reply's arrival did
	putCall(f.c)
	*f = flight{}
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
