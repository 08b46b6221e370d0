package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// DialFunc dials a TCP connection; Options.DialContext overrides it so tests
// can refuse anything but loopback.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// pinnedDialer is the proxy.Dialer handed to likexian/whois. It dials the
// one address nsguard chose for this query, whatever the library asks for:
// the library hard-codes whois.iana.org:43 for TLD queries (we want
// registry.iana_whois) and, were referrals ever enabled, would dial any host
// an answer names. Pinning makes both impossible by construction.
type pinnedDialer struct {
	ctx  context.Context
	addr string
	dial DialFunc
}

func (d pinnedDialer) Dial(network, _ string) (net.Conn, error) {
	conn, err := d.dial(d.ctx, network, d.addr)
	if err != nil {
		return nil, err
	}
	return newBoundedConn(d.ctx, conn, MaxAnswer), nil
}

// boundedConn stops reading after limit bytes (ErrTooLarge) and closes
// itself when ctx ends, so neither a 10 MiB answer nor a server that never
// closes can hold a check.
type boundedConn struct {
	net.Conn
	left int64
	stop func() bool
}

func newBoundedConn(ctx context.Context, c net.Conn, limit int64) *boundedConn {
	return &boundedConn{
		Conn: c,
		left: limit,
		stop: context.AfterFunc(ctx, func() { c.Close() }),
	}
}

func (c *boundedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Exactly limit bytes followed by EOF is fine; one byte more is not.
		var one [1]byte
		if n, err := c.Conn.Read(one[:]); n > 0 {
			return 0, ErrTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *boundedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// limitTransport bounds every HTTP response body to MaxAnswer bytes:
// openrdap reads bodies with io.ReadAll.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxAnswer}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n > 0 {
			return 0, ErrTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// newHTTPClient wraps base (or a default client dialling through dial) with
// the body limit and a redirect policy that keeps redirects in scope.
func newHTTPClient(base *http.Client, dial DialFunc) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = dial
		tr.Proxy = http.ProxyFromEnvironment
		c.Transport = tr
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitTransport{base: rt}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		if err := checkReferral(via[0].URL.Hostname(), req.URL.Hostname()); err != nil {
			return err
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)
		}
		return nil
	}
	return &c
}

// checkReferral keeps referrals (WHOIS "Registrar WHOIS Server", RDAP
// registrar links, HTTP redirects) in scope: a server on a loopback address
// may only send us to loopback addresses. A lab or a test can therefore
// never bounce nsguard onto the Internet, whatever its answers say; real
// registries (host names) refer freely.
func checkReferral(fromHost, toHost string) error {
	if !isLoopback(fromHost) || isLoopback(toHost) {
		return nil
	}
	return fmt.Errorf("refusing referral from loopback server %s to %s", fromHost, toHost)
}

func isLoopback(host string) bool {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// hostOf returns the host of "host", "host:port" or "[v6]:port".
func hostOf(server string) string {
	if h, _, err := net.SplitHostPort(server); err == nil {
		return h
	}
	return strings.Trim(server, "[]")
}

// withPort adds the WHOIS port when server has none.
func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), "43")
}

func defaultDial(timeout time.Duration) DialFunc {
	d := &net.Dialer{Timeout: timeout}
	return d.DialContext
}
