package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
)

// The transports are tested against servers written for each test on raw
// sockets, so the tests decide the order, timing, IDs and sources of the
// answers.

func newTestResolver(t *testing.T, port int, timeout time.Duration) *Resolver {
	t.Helper()
	r, err := New(config.Resolver{Port: port, Timeout: config.Duration(timeout), MaxQPSPerServer: 1e6, MaxConcurrency: 1024}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// answerFor is the test servers' answer: an A record whose last octet
// tells which name was asked (name "q<N>.test.").
func answerFor(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	var n int
	fmt.Sscanf(q.Question[0].Name, "q%d.", &n)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A: net.IPv4(192, 0, 2, byte(n%250)).To4()}}
	return m
}

func wantAnswer(t *testing.T, resp *Response, n int) {
	t.Helper()
	if resp.Err != nil {
		t.Errorf("q%d: %v", n, resp.Err)
		return
	}
	if len(resp.Msg.Answer) != 1 || resp.Msg.Answer[0].(*dns.A).A[3] != byte(n%250) {
		t.Errorf("q%d: got the answer %v", n, resp.Msg.Answer)
	}
}

// udpServer reads queries on addr; handle decides what to send back.
type udpTestServer struct {
	pc    *net.UDPConn
	mu    sync.Mutex
	ports map[int]bool
	ids   map[[2]int]bool // source port and ID
}

func startUDP(t *testing.T, addr string, port int, handle func(s *udpTestServer, from *net.UDPAddr, q *dns.Msg)) *udpTestServer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(addr), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpTestServer{pc: pc, ports: map[int]bool{}, ids: map[[2]int]bool{}}
	pc.SetReadBuffer(4 << 20)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			s.mu.Lock()
			s.ports[from.Port] = true
			s.ids[[2]int{from.Port, int(q.Id)}] = true
			s.mu.Unlock()
			handle(s, from, q)
		}
	}()
	return s
}

func (s *udpTestServer) port() int { return s.pc.LocalAddr().(*net.UDPAddr).Port }

// seen returns how many source ports, and pairs of port and ID, queries
// came with.
func (s *udpTestServer) seen() (ports, ids int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ports), len(s.ids)
}

func (s *udpTestServer) send(to *net.UDPAddr, m *dns.Msg) {
	b, _ := m.Pack()
	s.pc.WriteToUDP(b, to)
}

// TestUDPSharesSocketsAndMatchesAnswers: 300 queries at once to one server
// go out on one socket, the server answers them in a random order, and
// each query gets the answer to its own question.
func TestUDPSharesSocketsAndMatchesAnswers(t *testing.T) {
	const n = 300
	type pendingQ struct {
		from *net.UDPAddr
		q    *dns.Msg
	}
	var mu sync.Mutex
	var held []pendingQ
	srv := startUDP(t, "127.78.1.1", 0, func(s *udpTestServer, from *net.UDPAddr, q *dns.Msg) {
		mu.Lock()
		held = append(held, pendingQ{from, q})
		first := len(held) == 1
		mu.Unlock()
		if first {
			// Hold what comes in the next 20 ms, then answer it shuffled.
			time.AfterFunc(20*time.Millisecond, func() {
				mu.Lock()
				batch := held
				held = nil
				mu.Unlock()
				for _, i := range rand.Perm(len(batch)) {
					s.send(batch[i].from, answerFor(batch[i].q))
				}
			})
		}
	})
	r := newTestResolver(t, srv.port(), 5*time.Second)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.1.1:%d", srv.port()))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantAnswer(t, r.Exchange(context.Background(), server, Query{Name: fmt.Sprintf("q%d.test.", i), Type: dns.TypeA}), i)
		}()
	}
	wg.Wait()
	ports, ids := srv.seen()
	if ports != 1 {
		t.Errorf("%d queries came from %d source ports, want one socket", n, ports)
	}
	if ids != n {
		t.Errorf("%d queries in flight at once used %d distinct IDs (on their sockets)", n, ids)
	}
}

// TestUDPIgnoresForgedAndStrayAnswers: an answer with the right ID and
// question sent from another address, and one from the server with a wrong
// ID, are dropped; the server's own answer is taken.
func TestUDPIgnoresForgedAndStrayAnswers(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.78.1.3")})
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	srv := startUDP(t, "127.78.1.2", 0, func(s *udpTestServer, from *net.UDPAddr, q *dns.Msg) {
		forged := answerFor(q)
		forged.Answer[0].(*dns.A).A = net.IPv4(203, 0, 113, 66).To4()
		b, _ := forged.Pack()
		spoofer.WriteToUDP(b, from)
		stray := answerFor(q)
		stray.Id++
		stray.Answer[0].(*dns.A).A = net.IPv4(203, 0, 113, 67).To4()
		s.send(from, stray)
		time.Sleep(20 * time.Millisecond)
		s.send(from, answerFor(q))
	})
	r := newTestResolver(t, srv.port(), 2*time.Second)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.1.2:%d", srv.port()))
	for i := 0; i < 5; i++ {
		wantAnswer(t, r.Exchange(context.Background(), server, Query{Name: fmt.Sprintf("q%d.test.", i), Type: dns.TypeA}), i)
	}
}

// TestUDPSocketsAreRetired: a socket carries at most udpQueriesPerSocket
// queries, so the source port of a long cycle keeps changing.
func TestUDPSocketsAreRetired(t *testing.T) {
	srv := startUDP(t, "127.78.1.4", 0, func(s *udpTestServer, from *net.UDPAddr, q *dns.Msg) { s.send(from, answerFor(q)) })
	r := newTestResolver(t, srv.port(), 2*time.Second)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.1.4:%d", srv.port()))
	const n = 3 * udpQueriesPerSocket
	for i := 0; i < n; i++ {
		if resp := r.Exchange(context.Background(), server, Query{Name: fmt.Sprintf("q%d.test.", i), Type: dns.TypeA}); resp.Err != nil {
			t.Fatal(resp.Err)
		}
	}
	if ports, _ := srv.seen(); ports < n/udpQueriesPerSocket {
		t.Errorf("%d queries came from %d source ports, want at least %d", n, ports, n/udpQueriesPerSocket)
	}
}

// TestUDPUnreachableAndUnparsable: a port nobody listens on fails at once
// (the ICMP error), not after the timeout; a server answering garbage is a
// malformed answer, whether the garbage carries the query's ID or not.
func TestUDPUnreachableAndUnparsable(t *testing.T) {
	ctx := context.Background()
	t.Run("port unreachable", func(t *testing.T) {
		pc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.78.1.5")})
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		r := newTestResolver(t, port, 3*time.Second)
		start := time.Now()
		resp := r.Exchange(ctx, netip.MustParseAddrPort(fmt.Sprintf("127.78.1.5:%d", port)), Query{Name: "q1.test.", Type: dns.TypeA})
		if !errors.Is(resp.Err, ErrNetwork) || time.Since(start) > time.Second {
			t.Errorf("want a network error at once, got %v after %s", resp.Err, time.Since(start))
		}
	})
	for _, tc := range []struct {
		name    string
		rightID bool
	}{{"garbage with the query's ID", true}, {"garbage with another ID", false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startUDP(t, "127.78.1.6", 0, func(s *udpTestServer, from *net.UDPAddr, q *dns.Msg) {
				b := []byte{0, 0, 0x81, 0x80, 0xff, 0xff, 1, 2, 3}
				id := q.Id + 1
				if tc.rightID {
					id = q.Id
				}
				binary.BigEndian.PutUint16(b, id)
				s.pc.WriteToUDP(b, from)
			})
			r := newTestResolver(t, srv.port(), 300*time.Millisecond)
			resp := r.Exchange(ctx, netip.MustParseAddrPort(fmt.Sprintf("127.78.1.6:%d", srv.port())), Query{Name: "q1.test.", Type: dns.TypeA})
			if !errors.Is(resp.Err, ErrMalformed) {
				t.Errorf("want a malformed answer, got %v", resp.Err)
			}
		})
	}
}

// tcpTestServer accepts connections on addr and hands each to serveConn.
func startTCP(t *testing.T, addr string, serveConn func(c net.Conn)) (port int, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				serveConn(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, conns
}

func readTCPQuery(c net.Conn) (*dns.Msg, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	q := new(dns.Msg)
	return q, q.Unpack(b)
}

func writeTCP(c net.Conn, m *dns.Msg) error {
	b, _ := m.Pack()
	_, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	return err
}

func tcpQuery(i int) Query {
	return Query{Name: fmt.Sprintf("q%d.test.", i), Type: dns.TypeA, Proto: TCP}
}

// TestTCPPipelinesOutOfOrder: 200 queries at once share at most
// tcpConnsPerServer connections, answered in reverse order per connection.
func TestTCPPipelinesOutOfOrder(t *testing.T) {
	const n = 200
	port, conns := startTCP(t, "127.78.2.1", func(c net.Conn) {
		queries := make(chan *dns.Msg, n)
		go func() {
			defer close(queries)
			for {
				q, err := readTCPQuery(c)
				if err != nil {
					return
				}
				queries <- q
			}
		}()
		// Take what has come in a burst, answer it backwards.
		for q := range queries {
			batch := []*dns.Msg{q}
			for more := true; more; {
				select {
				case q, ok := <-queries:
					if !ok {
						more = false
						break
					}
					batch = append(batch, q)
				case <-time.After(20 * time.Millisecond):
					more = false
				}
			}
			for i := len(batch) - 1; i >= 0; i-- {
				if writeTCP(c, answerFor(batch[i])) != nil {
					return
				}
			}
		}
	})
	r := newTestResolver(t, port, 5*time.Second)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.2.1:%d", port))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := r.Exchange(context.Background(), server, tcpQuery(i))
			wantAnswer(t, resp, i)
		}()
	}
	wg.Wait()
	if c := conns.Load(); c > tcpConnsPerServer {
		t.Errorf("%d TCP queries at once opened %d connections, want at most %d", n, c, tcpConnsPerServer)
	}
}

// TestTCPServerThatClosesAfterOneAnswer: a server that answers one query a
// connection and closes it (older servers, some middleboxes) still answers
// every query: the rest are asked again, one a connection.
func TestTCPServerThatClosesAfterOneAnswer(t *testing.T) {
	port, _ := startTCP(t, "127.78.2.2", func(c net.Conn) {
		q, err := readTCPQuery(c)
		if err == nil {
			writeTCP(c, answerFor(q))
		}
	})
	r := newTestResolver(t, port, 5*time.Second)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.2.2:%d", port))
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantAnswer(t, r.Exchange(context.Background(), server, tcpQuery(i)), i)
		}()
	}
	wg.Wait()
	// And later, one at a time.
	for i := 30; i < 35; i++ {
		wantAnswer(t, r.Exchange(context.Background(), server, tcpQuery(i)), i)
	}
}

// TestTCPWrongIDsTimeOut: answers with IDs nothing asked are no answers.
func TestTCPWrongIDsTimeOut(t *testing.T) {
	port, _ := startTCP(t, "127.78.2.3", func(c net.Conn) {
		for {
			q, err := readTCPQuery(c)
			if err != nil {
				return
			}
			m := answerFor(q)
			m.Id++
			writeTCP(c, m)
		}
	})
	res := newTestResolver(t, port, 300*time.Millisecond)
	resp := res.Exchange(context.Background(), netip.MustParseAddrPort(fmt.Sprintf("127.78.2.3:%d", port)), tcpQuery(1))
	if !errors.Is(resp.Err, ErrTimeout) {
		t.Errorf("want a timeout, got %v", resp.Err)
	}
}
