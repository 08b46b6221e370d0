package resolver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// The TCP transport pipelines queries (RFC 7766 §6.2.1.1): a few
// connections per server, each carrying up to tcpPipeline queries at once,
// a reader goroutine per connection matching answers to queries by ID (a
// server may answer out of order). Before, every query in flight took a
// connection of its own, and a busy cycle dialled one per query.
const (
	tcpConnsPerServer = 2
	tcpPipeline       = 64
	// tcpIdle is how long an idle connection is kept for the server's next
	// question (BIND closes its side after 30 s).
	tcpIdle = 10 * time.Second
	// tcpRetries bounds how often one query is asked again after its
	// connection broke under it.
	tcpRetries = 2
	// tcpStrays bounds answers with IDs nobody asked on one connection
	// (beyond late answers to queries that timed out on it).
	tcpStrays = 8
)

type tcpTransport struct {
	ids      *idSource
	mu       sync.Mutex
	servers  map[netip.AddrPort]*tcpServer
	sweeping bool // a sweeper runs
}

type tcpServer struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	conns   []*tcpConn
	dialing chan struct{} // closed when the dial in progress ends
	// serial is set when the server closed a connection after one answer
	// with more queries on it: from then on, one query per connection.
	serial bool
}

type tcpConn struct {
	t   *tcpTransport
	srv *tcpServer
	nc  net.Conn
	// Frames wait in wbuf while one query's goroutine writes: it takes
	// them all (group commit), one write for several queries.
	wmu      sync.Mutex
	wbuf     []byte
	spare    []byte
	flushing bool

	mu        sync.Mutex
	calls     map[uint16]*call
	answered  int
	abandoned int // queries that timed out or were cancelled on it
	strays    int
	draining  bool // takes no new queries; closed when the last one ends
	closed    bool
	last      time.Time
	owner     *call // the query it was dialled for
}

// connError is a connection's failure, delivered to every query on it.
// retry says the query may be asked again on a connection of its own: the
// server closed a connection it had answered on, or one that carried other
// queries too (a server that closes idle connections, or that answers one
// query a connection). A query alone on a connection dialled for it that
// fails before any answer is not asked again: that failure is the
// server's answer.
type connError struct {
	err   error
	retry bool
}

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func newTCPTransport() *tcpTransport {
	return &tcpTransport{ids: newIDSource(), servers: map[netip.AddrPort]*tcpServer{}}
}

// begin puts c in flight on one of server's connections with a fresh ID
// and writes its query; end then waits for the reply. It returns the
// framed query, which end writes again if the connection breaks.
func (t *tcpTransport) begin(ctx context.Context, server netip.AddrPort, q question, c *call, deadline time.Time) (*tcpConn, []byte, error) {
	frame, err := packQuery(c.buf, 2, 0, q)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-2))
	cn, err := t.acquire(ctx, server, c, deadline)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(frame[2:], c.id)
	cn.write(c, frame, deadline)
	return cn, frame, nil
}

// end waits for the reply to c, begun on cn, and returns it unpacked. A
// connection the server closed under it is retried on one of its own.
func (t *tcpTransport) end(ctx context.Context, server netip.AddrPort, cn *tcpConn, frame []byte, c *call, start, deadline time.Time) (*dns.Msg, uint16, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Asked again on a connection of its own, written first: a
			// server that answers one query a connection answers it.
			var err error
			if cn, err = t.dialFor(ctx, server, c, deadline); err != nil {
				return nil, 0, err
			}
			binary.BigEndian.PutUint16(frame[2:], c.id)
			cn.write(c, frame, deadline)
			cn.adopt()
		}
		err := c.wait(ctx, start, deadline, func() bool { return cn.abandon(c) })
		var ce *connError
		if errors.As(err, &ce) {
			if ce.retry && attempt < tcpRetries {
				continue // the server closed a connection it had answered on
			}
			return nil, c.id, classify(ce.err)
		}
		if err != nil {
			return nil, c.id, err
		}
		return c.reply, c.id, nil
	}
}

// server returns addr's entry, made on first use.
func (t *tcpTransport) server(addr netip.AddrPort) *tcpServer {
	t.mu.Lock()
	defer t.mu.Unlock()
	srv := t.servers[addr]
	if srv == nil {
		srv = &tcpServer{addr: addr}
		t.servers[addr] = srv
	}
	return srv
}

// acquire puts c in flight, with a fresh ID, on one of server's
// connections: the least busy one, or a new one while there are fewer
// than tcpConnsPerServer and the others are full.
func (t *tcpTransport) acquire(ctx context.Context, server netip.AddrPort, c *call, deadline time.Time) (*tcpConn, error) {
	srv := t.server(server)
	for {
		srv.mu.Lock()
		limit, maxConns := tcpPipeline, tcpConnsPerServer
		if srv.serial {
			limit, maxConns = 1, int(^uint(0)>>1)
		}
		var best *tcpConn
		bestLoad, live := 0, 0
		for _, cn := range srv.conns {
			load := cn.load()
			if load < 0 {
				continue
			}
			live++
			if best == nil || load < bestLoad {
				best, bestLoad = cn, load
			}
		}
		if best != nil && (bestLoad < limit || live >= maxConns) && best.register(c, t.ids) {
			srv.mu.Unlock()
			return best, nil
		}
		if srv.dialing != nil {
			// Someone is dialling this server: wait for that connection
			// rather than dial another.
			ch := srv.dialing
			srv.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, classify(ctx.Err())
			case <-time.After(time.Until(deadline)):
				return nil, fmt.Errorf("%w: connecting to %s", ErrTimeout, server)
			}
		}
		ch := make(chan struct{})
		srv.dialing = ch
		srv.mu.Unlock()
		cn, err := t.dial(ctx, srv, deadline, c)
		srv.mu.Lock()
		srv.dialing = nil
		close(ch)
		if err != nil {
			srv.mu.Unlock()
			return nil, err
		}
		cn.register(c, t.ids)
		srv.conns = append(srv.conns, cn)
		srv.mu.Unlock()
		return cn, nil
	}
}

// dialFor opens a connection to server for c alone; adopt then shares it.
func (t *tcpTransport) dialFor(ctx context.Context, server netip.AddrPort, c *call, deadline time.Time) (*tcpConn, error) {
	srv := t.server(server)
	cn, err := t.dial(ctx, srv, deadline, c)
	if err != nil {
		return nil, err
	}
	cn.register(c, t.ids)
	return cn, nil
}

// adopt makes a connection from dialFor available to other queries.
func (cn *tcpConn) adopt() {
	cn.mu.Lock()
	closed := cn.closed
	cn.mu.Unlock()
	if closed {
		return
	}
	cn.srv.mu.Lock()
	cn.srv.conns = append(cn.srv.conns, cn)
	cn.srv.mu.Unlock()
}

// dial opens a connection to srv for owner (which registers on it next).
func (t *tcpTransport) dial(ctx context.Context, srv *tcpServer, deadline time.Time, owner *call) (*tcpConn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", srv.addr.String())
	if err != nil {
		return nil, classify(err)
	}
	cn := &tcpConn{t: t, srv: srv, nc: nc, calls: map[uint16]*call{}, last: time.Now(), owner: owner}
	t.mu.Lock()
	if !t.sweeping {
		t.sweeping = true
		go t.sweep()
	}
	t.mu.Unlock()
	go cn.read()
	return cn, nil
}

// load is the number of queries in flight, or -1 when cn takes no more.
func (cn *tcpConn) load() int {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.draining {
		return -1
	}
	return len(cn.calls)
}

func (cn *tcpConn) register(c *call, ids *idSource) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.draining {
		return false
	}
	id, err := ids.next(func(id uint16) bool { _, ok := cn.calls[id]; return ok })
	if err != nil {
		return false
	}
	c.id = id
	cn.calls[id] = c
	return true
}

// write sends one framed query; a failed write breaks the connection
// (and so ends c, with the others on it). When no write is under way the
// caller becomes the writer: it lets the goroutines ready to run queue
// their frames first, then writes all there are, until none is left.
func (cn *tcpConn) write(c *call, frame []byte, deadline time.Time) {
	cn.wmu.Lock()
	cn.wbuf = append(cn.wbuf, frame...)
	if cn.flushing {
		cn.wmu.Unlock()
		return
	}
	cn.flushing = true
	cn.wmu.Unlock()
	runtime.Gosched()
	for {
		cn.wmu.Lock()
		buf := cn.wbuf
		if len(buf) == 0 {
			cn.flushing = false
			cn.wmu.Unlock()
			return
		}
		cn.wbuf = cn.spare[:0]
		cn.wmu.Unlock()
		cn.nc.SetWriteDeadline(deadline)
		_, err := cn.nc.Write(buf)
		cn.wmu.Lock()
		cn.spare = buf[:0]
		cn.wmu.Unlock()
		if err != nil {
			cn.wmu.Lock()
			cn.wbuf, cn.flushing = cn.wbuf[:0], false
			cn.wmu.Unlock()
			cn.fail(err)
			return
		}
	}
}

// read hands each answer to the query with its ID until the connection
// breaks. A length prefix bounds every read (64 KB).
func (cn *tcpConn) read() {
	br := bufio.NewReaderSize(cn.nc, 4096)
	var lenb [2]byte
	buf := make([]byte, 0, 2048)
	for {
		if _, err := io.ReadFull(br, lenb[:]); err != nil {
			cn.fail(err)
			return
		}
		n := int(binary.BigEndian.Uint16(lenb[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			cn.fail(err)
			return
		}
		var id uint16
		if n >= 2 {
			id = binary.BigEndian.Uint16(buf)
		}
		cn.mu.Lock()
		c := cn.calls[id]
		if c != nil && n >= 2 {
			delete(cn.calls, id)
			cn.answered++
		} else {
			c = nil
			cn.strays++
		}
		confused := cn.strays > tcpStrays+cn.abandoned
		cn.mu.Unlock()
		if confused {
			cn.fail(fmt.Errorf("%w: more than %d answers with IDs nothing asked", ErrMismatch, tcpStrays))
			return
		}
		if c != nil {
			c.deliver(buf, nil)
			cn.ended()
		}
	}
}

// fail breaks the connection: every query on it ends with err.
func (cn *tcpConn) fail(err error) {
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return
	}
	cn.closed, cn.draining = true, true
	calls := make([]*call, 0, len(cn.calls))
	for id, c := range cn.calls {
		delete(cn.calls, id)
		calls = append(calls, c)
	}
	stale := staleConn(err)
	alone := len(calls) == 1 && cn.answered == 0 && calls[0] == cn.owner
	// Closed with several queries on it before answering more than one:
	// this server takes one query a connection.
	serial := stale && len(calls) > 1 && cn.answered <= 1
	cn.mu.Unlock()
	cn.nc.Close()
	cn.forget()
	if serial {
		cn.srv.mu.Lock()
		cn.srv.serial = true
		cn.srv.mu.Unlock()
	}
	for _, c := range calls {
		c.deliver(nil, &connError{err: err, retry: stale && !alone})
	}
}

// abandon takes c off the connection (deadline or cancellation): the
// connection takes no more queries, like a connection given up on before.
// False means the reader already took c and is delivering.
func (cn *tcpConn) abandon(c *call) bool {
	cn.mu.Lock()
	if cn.calls[c.id] != c {
		cn.mu.Unlock()
		return false
	}
	delete(cn.calls, c.id)
	cn.abandoned++
	cn.draining = true
	cn.mu.Unlock()
	cn.ended()
	return true
}

// ended closes a draining connection once nothing is in flight on it.
func (cn *tcpConn) ended() {
	cn.mu.Lock()
	cn.last = time.Now()
	done := cn.draining && !cn.closed && len(cn.calls) == 0
	if done {
		cn.closed = true
	}
	cn.mu.Unlock()
	if done {
		cn.nc.Close()
		cn.forget()
	}
}

// forget drops a closed connection from its server's list.
func (cn *tcpConn) forget() {
	cn.srv.mu.Lock()
	for i, x := range cn.srv.conns {
		if x == cn {
			cn.srv.conns = append(cn.srv.conns[:i], cn.srv.conns[i+1:]...)
			break
		}
	}
	cn.srv.mu.Unlock()
}

// sweep closes connections idle for tcpIdle; it runs while the transport
// knows any server.
func (t *tcpTransport) sweep() {
	tick := time.NewTicker(tcpIdle / 2)
	defer tick.Stop()
	for range tick.C {
		if t.closeIdle(tcpIdle) == 0 {
			return
		}
	}
}

// closeIdle closes the connections with nothing in flight for idle, forgets
// servers left without any, and returns how many servers it still knows
// (the sweeper stops at zero; the next dial starts another).
func (t *tcpTransport) closeIdle(idle time.Duration) int {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for ap, srv := range t.servers {
		srv.mu.Lock()
		conns := append([]*tcpConn(nil), srv.conns...)
		srv.mu.Unlock()
		for _, cn := range conns {
			cn.mu.Lock()
			if len(cn.calls) == 0 && now.Sub(cn.last) >= idle {
				cn.draining = true
			}
			cn.mu.Unlock()
			cn.ended()
		}
		srv.mu.Lock()
		if len(srv.conns) == 0 && srv.dialing == nil {
			delete(t.servers, ap)
		}
		srv.mu.Unlock()
	}
	t.sweeping = len(t.servers) > 0
	return len(t.servers)
}

// close closes idle connections; busy ones close when their queries end.
// The transport stays usable.
func (t *tcpTransport) close() {
	t.mu.Lock()
	var all []*tcpConn
	for _, srv := range t.servers {
		srv.mu.Lock()
		all = append(all, srv.conns...)
		srv.mu.Unlock()
	}
	t.mu.Unlock()
	for _, cn := range all {
		cn.mu.Lock()
		cn.draining = true
		cn.mu.Unlock()
		cn.ended()
	}
}

func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
