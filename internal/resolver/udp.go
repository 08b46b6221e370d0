package resolver

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The UDP transport multiplexes the queries to one server over a socket
// connected to it, instead of opening a socket per query (a socket, a
// connect, an epoll registration and a close each: most of the client's
// CPU time before). A reader goroutine per socket hands each datagram to
// the query in flight with its ID, and one writer sends what the queries
// queue, each socket's share with one sendmmsg (batching per server).
//
// Spoofing resistance is kept as with a socket per query:
//   - a socket talks to one server (connected: the kernel drops datagrams
//     from any other address), so a server — say an attacker's, reached
//     through a hijacked delegation — that sees the port of its own socket
//     learns nothing about the ports other servers are asked from;
//   - each socket gets a random ephemeral port from the kernel, and is
//     retired after udpQueriesPerSocket queries or udpSocketMaxAge, so a
//     port is never long-lived;
//   - IDs are random (ChaCha8 from OS entropy) and unique among the
//     queries in flight on a socket; a reply must match the ID, come back
//     on the socket it was sent from and (checkReply) carry the question.
//
// An off-path attacker still has to guess port and ID (about 31 bits) for
// each query, as before.
const (
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
	sockets  uint64

	// The send queue: queries wait here for the writer, a goroutine that
	// runs while there is something to send. The writer's buffers are
	// its alone (writing says one runs).
	qmu     sync.Mutex
	queue   []outPacket
	writing bool
	batch   []outPacket
	msgs    []ipv4.Message
	bufs    [][]byte
}

type udpServer struct {
	addr *net.UDPAddr
	sock *udpSocket // the socket new queries go out on
}

// outPacket is a query waiting to be sent, with a copy of its bytes: a
// query that gives up meanwhile reuses its own buffer.
type outPacket struct {
	s   *udpSocket
	c   *call
	id  uint16
	n   int
	buf [maxQuerySize]byte
}

type udpSocket struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	born time.Time
	seq  uint64 // orders the writer's batches by socket

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

// begin puts c in flight to server with a fresh ID and queues its query
// for the writer; end then waits for the reply. A query begun is ended.
func (t *udpTransport) begin(server netip.AddrPort, q question, c *call) (*udpSocket, uint64, error) {
	pkt, err := packQuery(c.buf, 0, 0, q)
	if err != nil {
		return nil, 0, err
	}
	s, mark, err := t.register(server, c)
	if err != nil {
		return nil, 0, err
	}
	binary.BigEndian.PutUint16(pkt, c.id)
	t.send(s, c, pkt)
	return s, mark, nil
}

// end waits for the reply to c, begun on s, and returns it unpacked (not
// yet checked against the question: the caller does that with the ID).
func (t *udpTransport) end(ctx context.Context, s *udpSocket, mark uint64, c *call, start, deadline time.Time) (*dns.Msg, uint16, error) {
	if err := c.wait(ctx, start, deadline, func() bool { return s.abandon(c, c.id) }); err != nil {
		if errors.Is(err, ErrTimeout) && s.garbledSince(mark) {
			return nil, c.id, fmt.Errorf("%w: the server sent a datagram that does not parse", ErrMalformed)
		}
		return nil, c.id, err
	}
	return c.reply, c.id, nil
}

// register puts c in flight on server's socket with a fresh ID.
func (t *udpTransport) register(server netip.AddrPort, c *call) (*udpSocket, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	srv := t.servers[server]
	if srv == nil {
		srv = &udpServer{addr: net.UDPAddrFromAddrPort(server)}
		t.servers[server] = srv
	}
	s := srv.sock
	if s == nil {
		var err error
		if s, err = t.open(srv); err != nil {
			return nil, 0, err
		}
		srv.sock = s
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := t.ids.next(func(id uint16) bool { _, ok := s.calls[id]; return ok })
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNetwork, err)
	}
	c.id = id
	s.calls[id] = c
	s.sent++
	if s.sent >= udpQueriesPerSocket || time.Since(s.born) > udpSocketMaxAge {
		// Retired: the next query to this server gets a new socket (a new
		// random port); this one closes when its last query ends.
		s.retired = true
		srv.sock = nil
	}
	return s, s.garbled, nil
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
	t.sockets++
	s := &udpSocket{conn: conn, pc: ipv4.NewPacketConn(conn), born: time.Now(), seq: t.sockets, calls: map[uint16]*call{}}
	if !t.sweeping {
		t.sweeping = true
		go t.sweep()
	}
	go s.read()
	return s, nil
}

// send queues pkt, c's query on s, for the writer.
func (t *udpTransport) send(s *udpSocket, c *call, pkt []byte) {
	t.qmu.Lock()
	t.queue = append(t.queue, outPacket{s: s, c: c, id: c.id, n: len(pkt)})
	copy(t.queue[len(t.queue)-1].buf[:], pkt)
	start := !t.writing
	t.writing = true
	t.qmu.Unlock()
	if start {
		go t.writer()
	}
}

// writer sends the queued queries. Before it takes the queue it lets the
// goroutines that are ready to run go first: under load they queue their
// queries too, and one sendmmsg per socket carries them all (a syscall,
// and a wakeup of the server, for several queries: 8% less CPU for nsguard
// and 10% for BIND on the 10,000-zone lab). When nothing else is ready,
// as in a quiet daemon, the query leaves at once.
func (t *udpTransport) writer() {
	runtime.Gosched()
	for {
		t.qmu.Lock()
		if len(t.queue) == 0 {
			t.writing = false
			t.qmu.Unlock()
			return
		}
		batch := t.queue
		t.queue, t.batch = t.batch[:0], batch
		t.qmu.Unlock()
		t.sendBatch(batch)
	}
}

// sendBatch sends each socket's queries in batch with one sendmmsg.
func (t *udpTransport) sendBatch(batch []outPacket) {
	// Each socket's queries together, in the order they came.
	slices.SortStableFunc(batch, func(a, b outPacket) int { return cmp.Compare(a.s.seq, b.s.seq) })
	if cap(t.bufs) < len(batch) {
		t.bufs = make([][]byte, len(batch))
		t.msgs = make([]ipv4.Message, len(batch))
	}
	bufs, msgs := t.bufs[:len(batch)], t.msgs[:len(batch)]
	for i := 0; i < len(batch); {
		s := batch[i].s
		j := i
		for ; j < len(batch) && batch[j].s == s; j++ {
			bufs[j] = batch[j].buf[:batch[j].n]
			msgs[j] = ipv4.Message{Buffers: bufs[j : j+1]}
		}
		for k := i; k < j; {
			n, err := s.pc.WriteBatch(msgs[k:j], 0)
			if err != nil {
				// The queries not sent end with the error, unless they
				// ended already (a deadline, an ICMP error the reader saw).
				for ; k < j; k++ {
					if s.abandon(batch[k].c, batch[k].id) {
						batch[k].c.deliver(nil, classify(err))
					}
				}
				break
			}
			k += n
		}
		i = j
	}
	for k := range batch {
		batch[k].s, batch[k].c = nil, nil
		bufs[k] = nil
		msgs[k] = ipv4.Message{}
	}
}

// read hands each datagram to the query with its ID until the socket closes.
func (s *udpSocket) read() {
	// Each reply buffer is EDNSBufferSize, what nsguard advertises: a
	// server that sends more is cut here and fails to parse, as before.
	// Up to udpReadBatch replies waiting on the socket come in one
	// recvmmsg.
	msgs := make([]ipv4.Message, udpReadBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, EDNSBufferSize)}
	}
	for {
		n, err := s.pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP error (port unreachable): the connected socket talks
			// to one server, and that server cannot be reached.
			s.failAll(classify(err))
			continue
		}
		for _, m := range msgs[:n] {
			s.handle(m.Buffers[0][:m.N])
		}
	}
}

// udpReadBatch is how many replies one read takes at most.
const udpReadBatch = 8

// handle gives one datagram to the query with its ID.
func (s *udpSocket) handle(dg []byte) {
	if len(dg) < 2 {
		s.garble()
		return
	}
	id := binary.BigEndian.Uint16(dg)
	s.mu.Lock()
	c := s.calls[id]
	if c != nil {
		delete(s.calls, id)
	}
	s.mu.Unlock()
	if c == nil {
		// No query with this ID (any more): a late answer to a query that
		// timed out, or a forgery. Dropped, as a socket of its own would
		// have; noted if it does not parse at all.
		var h dns.Msg
		if h.Unpack(dg) != nil {
			s.garble()
		}
		return
	}
	c.deliver(dg, nil)
	s.ended()
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

// abandon takes c, in flight with id, off s (a deadline, a cancellation,
// a failed send); false means someone else took it and is delivering.
func (s *udpSocket) abandon(c *call, id uint16) bool {
	s.mu.Lock()
	if s.calls[id] != c {
		s.mu.Unlock()
		return false
	}
	delete(s.calls, id)
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
			if s := srv.sock; s != nil {
				s.mu.Lock()
				idle := len(s.calls) == 0 && now.Sub(s.last) > udpIdle && now.Sub(s.born) > udpIdle
				if idle {
					s.retired = true
					srv.sock = nil
				}
				s.mu.Unlock()
				if idle {
					s.ended()
				}
			}
			if srv.sock == nil {
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
		if s := srv.sock; s != nil {
			s.mu.Lock()
			s.retired = true
			s.mu.Unlock()
			socks = append(socks, s)
		}
		delete(t.servers, ap)
	}
	t.mu.Unlock()
	for _, s := range socks {
		s.ended()
	}
}
