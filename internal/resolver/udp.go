package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The UDP transport multiplexes the queries to one server over a small set
// of sockets connected to it, instead of opening a socket per query (a
// socket, a connect, an epoll registration and a close each: most of the
// client's CPU time before). A reader goroutine per socket hands each
// datagram to the query in flight with its ID.
//
// Spoofing resistance is kept as with a socket per query:
//   - a socket talks to one server (connected: the kernel drops datagrams
//     from any other address), so a server — say an attacker's, reached
//     through a hijacked delegation — that sees the port of its own socket
//     learns nothing about the ports other servers are asked from;
//   - each socket gets a random ephemeral port from the kernel, and is
//     retired after udpQueriesPerSocket queries or udpSocketMaxAge, so a
//     port is never long-lived, and a query picks one of the server's
//     sockets at random;
//   - IDs are random (ChaCha8 from OS entropy) and unique among the
//     queries in flight on a socket; a reply must match the ID, come back
//     on the socket it was sent from and (checkReply) carry the question.
const (
	udpSocketsPerServer = 2
	udpQueriesPerSocket = 512
	udpSocketMaxAge     = 10 * time.Second
	// udpIdle is how long a socket with nothing in flight stays open for
	// the server's next question.
	udpIdle = 2 * time.Second
)

type udpTransport struct {
	ids      *idSource
	mu       sync.Mutex
	servers  map[netip.AddrPort]*udpServer
	sweeping bool // a sweeper runs
}

type udpServer struct {
	addr  *net.UDPAddr
	socks [udpSocketsPerServer]*udpSocket
}

type udpSocket struct {
	conn *net.UDPConn
	born time.Time

	mu      sync.Mutex
	calls   map[uint16]*call
	sent    int
	retired bool // takes no new queries; closed when its last one ends
	closed  bool
	// garbled counts datagrams that could not be matched to a query and
	// do not parse: a query that times out after one arrived reports a
	// malformed answer, as a socket of its own would have.
	garbled uint64
	last    time.Time // when the last query ended (for the sweeper)
}

func newUDPTransport() *udpTransport {
	return &udpTransport{ids: newIDSource(), servers: map[netip.AddrPort]*udpServer{}}
}

// exchange sends q to server and returns its reply, unpacked (not yet
// checked against the question: the caller does that with the ID).
func (t *udpTransport) exchange(ctx context.Context, server netip.AddrPort, q question, start, deadline time.Time) (*dns.Msg, uint16, error) {
	c := getCall()
	defer putCall(c)
	pkt, err := packQuery(c.buf, 0, 0, q)
	if err != nil {
		return nil, 0, err
	}
	s, mark, err := t.register(server, c)
	if err != nil {
		return nil, 0, err
	}
	binary.BigEndian.PutUint16(pkt, c.id)
	abandon := func() bool { return s.abandon(c) }
	if _, err := s.conn.Write(pkt); err != nil {
		if abandon() {
			return nil, c.id, classify(err)
		}
		<-c.done // the reader got to it first (an ICMP error, say)
		return nil, c.id, c.err
	}
	if err := c.wait(ctx, start, deadline, abandon); err != nil {
		if errors.Is(err, ErrTimeout) && s.garbledSince(mark) {
			return nil, c.id, fmt.Errorf("%w: the server sent a datagram that does not parse", ErrMalformed)
		}
		return nil, c.id, err
	}
	return c.reply, c.id, nil
}

// register puts c in flight on one of server's sockets with a fresh ID.
func (t *udpTransport) register(server netip.AddrPort, c *call) (*udpSocket, uint64, error) {
	t.mu.Lock()
	srv := t.servers[server]
	if srv == nil {
		srv = &udpServer{addr: net.UDPAddrFromAddrPort(server)}
		t.servers[server] = srv
	}
	i := int(t.ids.intn(udpSocketsPerServer))
	s := srv.socks[i]
	if s == nil {
		var err error
		if s, err = t.open(srv); err != nil {
			t.mu.Unlock()
			return nil, 0, err
		}
		srv.socks[i] = s
	}
	s.mu.Lock()
	id, err := t.ids.next(func(id uint16) bool { _, ok := s.calls[id]; return ok })
	if err != nil {
		s.mu.Unlock()
		t.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: %v", ErrNetwork, err)
	}
	c.id = id
	s.calls[id] = c
	s.sent++
	mark := s.garbled
	if s.sent >= udpQueriesPerSocket || time.Since(s.born) > udpSocketMaxAge {
		// Retired: the next query to this server gets a new socket (a new
		// random port); this one closes when its last query ends.
		s.retired = true
		srv.socks[i] = nil
	}
	s.mu.Unlock()
	t.mu.Unlock()
	return s, mark, nil
}

// open starts a socket connected to srv (t.mu held).
func (t *udpTransport) open(srv *udpServer) (*udpSocket, error) {
	conn, err := net.DialUDP("udp", nil, srv.addr)
	if err != nil {
		return nil, classify(err)
	}
	// Replies to a burst of queries wait here until the reader gets to
	// them: a larger buffer (the kernel caps it) means fewer drops.
	conn.SetReadBuffer(1 << 20)
	s := &udpSocket{conn: conn, born: time.Now(), calls: map[uint16]*call{}}
	if !t.sweeping {
		t.sweeping = true
		go t.sweep()
	}
	go s.read()
	return s, nil
}

// read hands each datagram to the query with its ID until the socket closes.
func (s *udpSocket) read() {
	// The reply buffer is EDNSBufferSize, what nsguard advertises: a
	// server that sends more is cut here and fails to parse, as before.
	buf := make([]byte, EDNSBufferSize)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP error (port unreachable): the connected socket talks
			// to one server, and that server cannot be reached.
			s.failAll(classify(err))
			continue
		}
		if n < 2 {
			s.garble()
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		s.mu.Lock()
		c := s.calls[id]
		if c != nil {
			delete(s.calls, id)
		}
		s.mu.Unlock()
		if c == nil {
			// No query with this ID (any more): a late answer to a query
			// that timed out, or a forgery. Dropped, as a socket of its own
			// would have; noted if it does not parse at all.
			var h dns.Msg
			if h.Unpack(buf[:n]) != nil {
				s.garble()
			}
			continue
		}
		c.deliver(buf[:n], nil)
		s.ended()
	}
}

func (s *udpSocket) garble() {
	s.mu.Lock()
	s.garbled++
	s.mu.Unlock()
}

func (s *udpSocket) garbledSince(mark uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.garbled != mark
}

// failAll ends every query in flight on s with err.
func (s *udpSocket) failAll(err error) {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.calls))
	for id, c := range s.calls {
		delete(s.calls, id)
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.deliver(nil, err)
	}
	s.ended()
}

// abandon takes c out of flight (deadline, cancellation, a failed write);
// false means the reader already took it and is delivering.
func (s *udpSocket) abandon(c *call) bool {
	s.mu.Lock()
	if s.calls[c.id] != c {
		s.mu.Unlock()
		return false
	}
	delete(s.calls, c.id)
	s.mu.Unlock()
	s.ended()
	return true
}

// ended closes a retired socket once nothing is in flight on it.
func (s *udpSocket) ended() {
	s.mu.Lock()
	s.last = time.Now()
	done := s.retired && len(s.calls) == 0 && !s.closed
	if done {
		s.closed = true
	}
	s.mu.Unlock()
	if done {
		s.conn.Close()
	}
}

// sweep closes sockets that have been idle for udpIdle, so a daemon that
// talked to thousands of servers does not keep a socket open for each.
// It runs while the transport knows any server.
func (t *udpTransport) sweep() {
	tick := time.NewTicker(udpIdle / 2)
	defer tick.Stop()
	for range tick.C {
		now := time.Now()
		t.mu.Lock()
		for ap, srv := range t.servers {
			live := 0
			for i, s := range srv.socks {
				if s == nil {
					continue
				}
				s.mu.Lock()
				idle := len(s.calls) == 0 && now.Sub(s.last) > udpIdle && now.Sub(s.born) > udpIdle
				if idle {
					s.retired = true
					srv.socks[i] = nil
				} else {
					live++
				}
				s.mu.Unlock()
				if idle {
					s.ended()
				}
			}
			if live == 0 {
				delete(t.servers, ap)
			}
		}
		stop := len(t.servers) == 0
		t.sweeping = !stop
		t.mu.Unlock()
		if stop {
			return
		}
	}
}

// close retires every socket; each closes when its last query ends. The
// transport stays usable: a later query opens a new socket.
func (t *udpTransport) close() {
	t.mu.Lock()
	var socks []*udpSocket
	for ap, srv := range t.servers {
		for i, s := range srv.socks {
			if s != nil {
				s.mu.Lock()
				s.retired = true
				s.mu.Unlock()
				socks = append(socks, s)
				srv.socks[i] = nil
			}
		}
		delete(t.servers, ap)
	}
	t.mu.Unlock()
	for _, s := range socks {
		s.ended()
	}
}
