// Package resolver is nsguard's DNS client: queries to one named server
// (UDP with TCP fallback on truncation, EDNS0, timeouts and retries) over
// shared UDP sockets and pipelined TCP connections, a token bucket per
// server, bounded concurrency, a per-cycle cache so no question goes to
// the same server twice in a cycle, and iterative resolution from root
// hints.
package resolver

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/nsguard/nsguard/config"
)

//go:embed named.root
var builtinHints string

// EDNSBufferSize is the UDP payload size nsguard advertises (the DNS flag
// day 2020 value: large enough for DNSKEY sets, small enough not to fragment).
const EDNSBufferSize = 1232

// NameServer is a server name and its addresses.
type NameServer struct {
	Name  string       `json:"name"`
	Addrs []netip.Addr `json:"addrs,omitempty"`
}

// Resolver holds what outlives a cycle: settings, root hints, rate limiters,
// the concurrency bound, and the UDP sockets and TCP connections.
type Resolver struct {
	cfg      config.Resolver
	port     uint16
	roots    []NameServer
	log      *slog.Logger
	sem      chan struct{}
	limiters sync.Map // netip.AddrPort → *rate.Limiter
	udp      *udpTransport
	tcp      *tcpTransport
	sent     atomic.Int64
}

// New builds a resolver from the resolver section of the config.
func New(cfg config.Resolver, log *slog.Logger) (*Resolver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hints := builtinHints
	if cfg.RootHints != "" {
		b, err := os.ReadFile(cfg.RootHints)
		if err != nil {
			return nil, fmt.Errorf("resolver: reading root hints: %w", err)
		}
		hints = string(b)
	}
	roots, err := ParseHints(hints, cfg.IPv6)
	if err != nil {
		return nil, fmt.Errorf("resolver: root hints %s: %w", cfg.RootHints, err)
	}
	conc := cfg.MaxConcurrency
	if conc < 1 {
		conc = 1
	}
	return &Resolver{
		cfg:   cfg,
		port:  uint16(cfg.Port),
		roots: roots,
		log:   log.With("component", "resolver"),
		sem:   make(chan struct{}, conc),
		udp:   newUDPTransport(),
		tcp:   newTCPTransport(),
	}, nil
}

// ParseHints reads a named.root-style file into root name servers.
func ParseHints(text string, ipv6 bool) ([]NameServer, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "")
	var names []string
	addrs := map[string][]netip.Addr{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch v := rr.(type) {
		case *dns.NS:
			if v.Hdr.Name == "." {
				names = append(names, CanonicalName(v.Ns))
			}
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				n := CanonicalName(v.Hdr.Name)
				addrs[n] = append(addrs[n], a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok && ipv6 {
				n := CanonicalName(v.Hdr.Name)
				addrs[n] = append(addrs[n], a)
			}
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	var out []NameServer
	for _, n := range names {
		if len(addrs[n]) > 0 {
			out = append(out, NameServer{Name: n, Addrs: addrs[n]})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no root server with an address")
	}
	return out, nil
}

// Port is the port servers are asked on.
func (r *Resolver) Port() uint16 { return r.port }

// MaxNSPerDelegation is how many name server names of one delegation are
// tried at most (resolver.max_ns_per_delegation).
func (r *Resolver) MaxNSPerDelegation() int {
	if r.cfg.MaxNSPerDelegation < 1 {
		return config.DefaultMaxNSPerDelegation
	}
	return r.cfg.MaxNSPerDelegation
}

// IPv6 reports whether IPv6 addresses are used.
func (r *Resolver) IPv6() bool { return r.cfg.IPv6 }

// Roots returns the root name servers from the hints.
func (r *Resolver) Roots() []NameServer { return r.roots }

// Sent returns how many queries have gone out on the network in total.
func (r *Resolver) Sent() int64 { return r.sent.Load() }

// AddrPort returns a at the resolver's port.
func (r *Resolver) AddrPort(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, r.port) }

// Close closes the resolver's sockets and connections (those busy when
// their queries end). The resolver stays usable: later queries open new ones.
func (r *Resolver) Close() {
	r.udp.close()
	r.tcp.close()
}

func (r *Resolver) limiter(ap netip.AddrPort) *rate.Limiter {
	if l, ok := r.limiters.Load(ap); ok {
		return l.(*rate.Limiter)
	}
	burst := int(r.cfg.MaxQPSPerServer / 10)
	if burst < 1 {
		burst = 1
	}
	l, _ := r.limiters.LoadOrStore(ap, rate.NewLimiter(rate.Limit(r.cfg.MaxQPSPerServer), burst))
	return l.(*rate.Limiter)
}

// counterKey carries a per-domain query counter through a context.
type counterKey struct{}

// WithCounter returns a context whose network queries are counted in n.
func WithCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, n)
}

func countQuery(ctx context.Context) {
	if n, ok := ctx.Value(counterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}

func (r *Resolver) timeout() time.Duration { return r.cfg.Timeout.D() }
