// Package dnslab is nsguard's simulated Internet: root servers, TLD servers,
// two independent DNS providers, an attacker and public resolvers, each on
// its own 127.B.x.y address and all on one port, serving realistic zones
// from in-process miekg/dns servers (or from real BIND 9, see bind.go).
// Scenario methods break it the way the real Internet breaks; Reset heals it.
package dnslab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Options configure a lab.
type Options struct {
	// Base is the second octet of the lab's 127.Base.0.0/16 (default 53).
	// Labs that must not collide (two BIND labs in parallel test binaries)
	// use different bases.
	Base byte
	// Port every server listens on; 0 picks a free one.
	Port int
	// Dir holds the hints file (and BIND's files); empty means a new temp dir.
	Dir string
	// Now is the lab's clock for DNSSEC signatures (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// World replaces the default world (benchmarks build bigger ones).
	World func(base byte, now time.Time) *World
	// Backend serves the zones: nil means in-process miekg/dns servers.
	Backend Backend
}

// Backend serves the lab's zone data on the lab's addresses (BIND, say).
// The lab itself always serves public resolvers and faulty hosts.
type Backend interface {
	// Sync makes the backend serve w on every address in addrs at port.
	Sync(ctx context.Context, w *World, addrs []netip.Addr, port int) error
	Close() error
}

// Lab is a running simulated Internet.
type Lab struct {
	opts     Options
	port     int
	dir      string
	ownDir   bool
	log      *slog.Logger
	mu       sync.RWMutex
	world    *World
	pristine *World

	lmu       sync.Mutex
	listeners map[netip.Addr]*listener
	queries   atomic.Int64
	perAddr   sync.Map // netip.Addr → *atomic.Int64
	closed    bool
}

type listener struct {
	udp, tcp *dns.Server
}

// Start builds the default world and starts serving it.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Base == 0 {
		opts.Base = 53
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(ioDiscard{}, nil))
	}
	build := opts.World
	if build == nil {
		build = DefaultWorld
	}
	l := &Lab{opts: opts, log: opts.Logger.With("component", "dnslab"), listeners: map[netip.Addr]*listener{}}
	l.pristine = build(opts.Base, opts.Now())
	l.world = l.pristine.Clone()
	l.dir = opts.Dir
	if l.dir == "" {
		d, err := os.MkdirTemp("", "nsguard-lab-")
		if err != nil {
			return nil, fmt.Errorf("dnslab: temp dir: %w", err)
		}
		l.dir, l.ownDir = d, true
	}
	if err := os.WriteFile(l.HintsFile(), []byte(l.world.RootHints()), 0o644); err != nil {
		return nil, fmt.Errorf("dnslab: writing hints: %w", err)
	}
	if err := l.listen(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// listen picks the port and starts the servers the lab itself runs.
func (l *Lab) listen(ctx context.Context) error {
	ports := []int{l.opts.Port}
	if l.opts.Port == 0 {
		ports = nil
		for i := 0; i < 20; i++ {
			ports = append(ports, 20000+mrand.IntN(40000))
		}
	}
	var lastErr error
	for _, p := range ports {
		l.port = p
		if err := l.syncListeners(ctx); err != nil {
			lastErr = err
			l.stopAll()
			if !errors.Is(err, syscall.EADDRINUSE) {
				// Only a taken port is worth another try: a backend that
				// cannot start (BIND's config, say) fails the same way on
				// every port, and each try can cost its whole wait.
				return fmt.Errorf("dnslab: starting the lab on port %d: %w", p, err)
			}
			continue
		}
		return nil
	}
	return fmt.Errorf("dnslab: no free port for the lab: %w", lastErr)
}

// ownAddrs returns the addresses the lab serves itself: all of them
// in-process, or only resolvers and faulty hosts when a backend serves zones.
func (l *Lab) ownAddrs(w *World) (own, backend []netip.Addr) {
	if l.opts.Backend == nil {
		return w.Addrs(), nil
	}
	own = append(own, w.Resolvers...)
	for _, h := range w.Hosts {
		if h.Fault != FaultNone {
			own = append(own, h.Addr)
		} else {
			backend = append(backend, h.Addr)
		}
	}
	return own, backend
}

func (l *Lab) syncListeners(ctx context.Context) error {
	l.mu.RLock()
	own, backend := l.ownAddrs(l.world)
	var w *World
	if l.opts.Backend != nil {
		w = l.world.Clone() // the backend renders it while scenarios go on
	}
	l.mu.RUnlock()
	l.lmu.Lock()
	defer l.lmu.Unlock()
	want := map[netip.Addr]bool{}
	for _, a := range own {
		want[a] = true
	}
	// Stop the lab's listeners first so a backend can take the address.
	for a, ln := range l.listeners {
		if !want[a] {
			ln.stop()
			delete(l.listeners, a)
		}
	}
	if l.opts.Backend != nil {
		if err := l.opts.Backend.Sync(ctx, w, backend, l.port); err != nil {
			return fmt.Errorf("dnslab: backend: %w", err)
		}
	}
	for _, a := range own {
		if _, ok := l.listeners[a]; ok {
			continue
		}
		ln, err := l.startListener(a)
		if err != nil {
			return err
		}
		l.listeners[a] = ln
	}
	return nil
}

func (l *Lab) startListener(a netip.Addr) (*listener, error) {
	ap := netip.AddrPortFrom(a, uint16(l.port)).String()
	pc, err := net.ListenPacket("udp", ap)
	if err != nil {
		return nil, fmt.Errorf("dnslab: listen udp %s: %w", ap, err)
	}
	tl, err := net.Listen("tcp", ap)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dnslab: listen tcp %s: %w", ap, err)
	}
	h := l.handler(a)
	ln := &listener{
		udp: &dns.Server{PacketConn: pc, Handler: h, TsigProvider: labTSIG{l}, MsgAcceptFunc: acceptUpdates},
		tcp: &dns.Server{Listener: tl, Handler: h, TsigProvider: labTSIG{l}, MsgAcceptFunc: acceptUpdates,
			ReadTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 5 * time.Second }},
	}
	started := make(chan struct{}, 2)
	ln.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	ln.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go ln.udp.ActivateAndServe()
	go ln.tcp.ActivateAndServe()
	<-started
	<-started
	return ln, nil
}

func (ln *listener) stop() {
	ln.udp.Shutdown()
	ln.tcp.Shutdown()
}

func (l *Lab) stopAll() {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	for a, ln := range l.listeners {
		ln.stop()
		delete(l.listeners, a)
	}
}

// Close stops every server and removes the lab's temp dir.
func (l *Lab) Close() error {
	l.lmu.Lock()
	if l.closed {
		l.lmu.Unlock()
		return nil
	}
	l.closed = true
	l.lmu.Unlock()
	l.stopAll()
	var err error
	if l.opts.Backend != nil {
		err = l.opts.Backend.Close()
	}
	if l.ownDir {
		os.RemoveAll(l.dir)
	}
	return err
}

// Port is the port every lab server listens on.
func (l *Lab) Port() int { return l.port }

// Dir is the lab's working directory.
func (l *Lab) Dir() string { return l.dir }

// HintsFile is the path of the lab's root hints file (resolver.root_hints).
func (l *Lab) HintsFile() string { return filepath.Join(l.dir, "root.hints") }

// Queries returns how many queries the lab's own servers have answered.
func (l *Lab) Queries() int64 { return l.queries.Load() }

// QueriesAt returns how many queries the server at a has answered.
func (l *Lab) QueriesAt(a netip.Addr) int64 {
	if v, ok := l.perAddr.Load(a); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// World returns a snapshot of the lab's current world (a deep copy).
func (l *Lab) World() *World {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.world.Clone()
}

// Resolvers returns the public resolvers' addresses.
func (l *Lab) Resolvers() []netip.Addr {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]netip.Addr(nil), l.world.Resolvers...)
}

// AddrOf returns the address of the host named name.
func (l *Lab) AddrOf(name string) netip.Addr {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if h := l.world.Host(name); h != nil {
		return h.Addr
	}
	return netip.Addr{}
}

// Mutate applies f to the world under the lab's lock and makes every server
// serve the result. Scenario methods are built on it; tests may use it for
// one-off changes.
func (l *Lab) Mutate(ctx context.Context, f func(w *World) error) error {
	l.mu.Lock()
	// A backend that took dynamic updates hands them back first, so the
	// world stays the truth and the change builds on them (bind_update.go).
	if p, ok := l.opts.Backend.(updatePuller); ok {
		if err := p.PullUpdates(ctx, l.world); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	err := f(l.world)
	l.world.reindex()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.syncListeners(ctx)
}

// Reset restores the healthy world.
func (l *Lab) Reset(ctx context.Context) error {
	return l.Mutate(ctx, func(w *World) error {
		*w = *l.pristine.Clone()
		return nil
	})
}

func (l *Lab) count(a netip.Addr) {
	l.queries.Add(1)
	v, ok := l.perAddr.Load(a)
	if !ok {
		v, _ = l.perAddr.LoadOrStore(a, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// handler serves one address: the host's zones, or recursion for a resolver.
func (l *Lab) handler(a netip.Addr) dns.HandlerFunc {
	return func(rw dns.ResponseWriter, r *dns.Msg) {
		l.count(a)
		tcp := rw.LocalAddr().Network() == "tcp"
		var m *dns.Msg
		fault := FaultNone
		if r.Opcode == dns.OpcodeUpdate {
			// Updates change the world: they take the write lock (update.go).
			m, fault = l.answerUpdate(a, r, rw.TsigStatus())
		} else {
			l.mu.RLock()
			w := l.world
			if h := w.HostAt(a); h != nil {
				fault = h.Fault
				m = w.Answer(h, r)
			} else {
				m = w.Resolve(a, r)
			}
			l.mu.RUnlock()
		}
		// Name compression, as every real server uses: a large RRset (a
		// referral to a thousand name servers) must fit in one TCP message.
		m.Compress = true
		switch fault {
		case FaultTimeout:
			return
		case FaultTCPBroken:
			if tcp {
				rw.Close()
				return
			}
		case FaultGarbage:
			b := make([]byte, 64+mrand.IntN(200))
			rand.Read(b)
			rw.Write(b)
			return
		case FaultWrongID:
			m.Id++
		case FaultTruncated:
			if b, err := m.Pack(); err == nil {
				rw.Write(b[:len(b)/2])
			}
			return
		case FaultOversized:
			m.Answer = oversized(r)
			m.Compress = false
		case FaultTruncatedAlways:
			m.Truncated = true
			m.Answer, m.Ns, m.Extra = nil, nil, nil
			m.Rcode = dns.RcodeSuccess
		case FaultIntercept:
			if !tcp {
				m = intercepted(r)
			}
		}
		if !tcp {
			size := dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			if fault != FaultOversized {
				m.Truncate(size)
			}
		}
		if err := rw.WriteMsg(m); err != nil && !errors.Is(err, net.ErrClosed) {
			l.log.Debug("write failed", "addr", a, "err", err)
		}
	}
}

// intercepted is what a DNS-intercepting middlebox answers to everything:
// NXDOMAIN, recursion available, no authority, nothing else.
func intercepted(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeNameError)
	m.RecursionAvailable = true
	m.Authoritative = false
	return m
}

// oversized fills an answer with ~60 KB of TXT records.
func oversized(r *dns.Msg) []dns.RR {
	name := "."
	if len(r.Question) > 0 {
		name = r.Question[0].Name
	}
	var out []dns.RR
	chunk := strings.Repeat("x", 250)
	for i := 0; i < 230; i++ {
		out = append(out, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{chunk}})
	}
	return out
}
