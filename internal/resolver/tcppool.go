package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// tcpPool keeps a few idle TCP connections per server, so a cycle that asks
// one server thousands of questions over TCP does not pay a handshake for
// each (RFC 7766 connection reuse).
type tcpPool struct {
	mu      sync.Mutex
	idle    map[netip.AddrPort][]*dns.Conn
	maxIdle int
}

func newTCPPool(maxIdle int) *tcpPool {
	return &tcpPool{idle: map[netip.AddrPort][]*dns.Conn{}, maxIdle: maxIdle}
}

func (p *tcpPool) get(server netip.AddrPort) *dns.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := p.idle[server]
	if len(conns) == 0 {
		return nil
	}
	c := conns[len(conns)-1]
	p.idle[server] = conns[:len(conns)-1]
	return c
}

func (p *tcpPool) put(server netip.AddrPort, c *dns.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[server]) >= p.maxIdle {
		c.Close()
		return
	}
	p.idle[server] = append(p.idle[server], c)
}

func (p *tcpPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, conns := range p.idle {
		for _, c := range conns {
			c.Close()
		}
		delete(p.idle, k)
	}
}

// exchange sends m over a pooled or new connection. A reused connection the
// server has meanwhile closed is retried once on a fresh one.
func (p *tcpPool) exchange(ctx context.Context, server netip.AddrPort, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	if c := p.get(server); c != nil {
		in, err := p.roundTrip(ctx, c, m, timeout)
		if err == nil {
			p.put(server, c)
			return in, nil
		}
		c.Close()
		if !staleConn(err) {
			return nil, classify(err)
		}
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, classify(err)
	}
	c := &dns.Conn{Conn: nc}
	in, err := p.roundTrip(ctx, c, m, timeout)
	if err != nil {
		c.Close()
		return nil, classify(err)
	}
	p.put(server, c)
	return in, nil
}

func (p *tcpPool) roundTrip(ctx context.Context, c *dns.Conn, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if err := c.WriteMsg(m); err != nil {
		return nil, err
	}
	// Skip stale answers to earlier queries on this connection; a bounded
	// number, so a server spewing wrong IDs cannot hold us past the deadline.
	for i := 0; i < 8; i++ {
		in, err := c.ReadMsg()
		if err != nil {
			return nil, err
		}
		if in.Id == m.Id {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%w: no reply with id %d", ErrMismatch, m.Id)
}

func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
