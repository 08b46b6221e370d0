package resolver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// question is what one query asks, in the form the transports pack.
type question struct {
	name   string // FQDN, as given (case kept: it is what the server sees)
	qtype  uint16
	rd, do bool
}

// packQuery writes q as a DNS query with the given ID into buf[off:]
// (buf's capacity must hold it: maxQuerySize): a header, the question and
// an OPT record advertising EDNSBufferSize with the DO bit as asked. It is
// byte for byte what miekg/dns packs for SetQuestion + SetEdns0, without
// building a dns.Msg.
func packQuery(buf []byte, off int, id uint16, q question) ([]byte, error) {
	buf = buf[:cap(buf)]
	if len(buf) < off+maxQuerySize {
		return nil, fmt.Errorf("%w: query buffer too small", ErrMalformed)
	}
	h := buf[off : off+12]
	binary.BigEndian.PutUint16(h[0:], id)
	var flags uint16
	if q.rd {
		flags |= 1 << 8
	}
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint16(h[4:], 1) // QDCOUNT
	binary.BigEndian.PutUint16(h[6:], 0)
	binary.BigEndian.PutUint16(h[8:], 0)
	binary.BigEndian.PutUint16(h[10:], 1) // ARCOUNT: the OPT record
	end, err := dns.PackDomainName(q.name, buf, off+12, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrMalformed, q.name, err)
	}
	t := buf[end : end+15]
	binary.BigEndian.PutUint16(t[0:], q.qtype)
	binary.BigEndian.PutUint16(t[2:], dns.ClassINET)
	t[4] = 0 // OPT owner: the root
	binary.BigEndian.PutUint16(t[5:], dns.TypeOPT)
	binary.BigEndian.PutUint16(t[7:], EDNSBufferSize)
	var ttl uint32 // extended rcode 0, version 0
	if q.do {
		ttl |= 1 << 15
	}
	binary.BigEndian.PutUint32(t[9:], ttl)
	binary.BigEndian.PutUint16(t[13:], 0) // no options
	return buf[:end+15], nil
}

// maxQuerySize bounds a packed query: header, a name of at most 255
// octets, type and class, and the OPT record.
const maxQuerySize = 12 + 255 + 4 + 11

// call is one query in flight on a shared socket or connection: the
// transport's reader unpacks the reply and hands it over through done
// (unpacking there, on the reader's long-lived stack, spares each short
// query goroutine growing its own). Calls are pooled with their buffers.
type call struct {
	id    uint16
	buf   []byte // the packed query (TCP: after a 2-octet length)
	reply *dns.Msg
	err   error
	done  chan struct{} // capacity 1: the reader never blocks on it
	timer *time.Timer
	// answered is when the reply was delivered: a caller with several
	// queries out may wait for this one's after it came.
	answered time.Time
	// slot is the resolver's concurrency bound; held says c still has a
	// slot of it. The reply's arrival gives the slot back at once, not
	// when a caller with several queries out gets to this one; a timeout
	// or an error gives it back when the caller does (releaseSlot).
	slot chan struct{}
	held atomic.Bool
}

// holdSlot records that c holds a slot of sem, taken by the caller.
func (c *call) holdSlot(sem chan struct{}) {
	c.slot = sem
	c.held.Store(true)
}

// releaseSlot gives c's slot back, once, whoever gets there first: the
// reader delivering the reply or the caller ending the query.
func (c *call) releaseSlot() {
	if c.held.CompareAndSwap(true, false) {
		<-c.slot
	}
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{buf: make([]byte, 0, 2+maxQuerySize), done: make(chan struct{}, 1), timer: t}
}}

func getCall() *call { return callPool.Get().(*call) }

// putCall returns c to the pool. The caller owns c: it is in no map and
// its outcome, if any, has been received.
func putCall(c *call) {
	c.timer.Stop()
	c.reply, c.err = nil, nil
	callPool.Put(c)
}

// deliver hands c the reply in wire (unpacked here) or err. Only the
// goroutine that took c out of its transport's map calls it, exactly once.
func (c *call) deliver(wire []byte, err error) {
	if err == nil {
		// The server answered: the query is no longer on the network. (A
		// broken TCP connection's error keeps the slot for the query's
		// retry on a connection of its own.)
		c.releaseSlot()
		c.reply, err = unpackReply(wire)
	}
	c.err = err
	c.answered = time.Now()
	c.done <- struct{}{}
}

func unpackReply(wire []byte) (*dns.Msg, error) {
	if len(wire) < 12 {
		return nil, classify(dns.ErrShortRead)
	}
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return nil, classify(err)
	}
	return m, nil
}

// wait blocks until c's outcome is delivered, its deadline passes or ctx
// ends. abandon removes c from its transport (reporting whether it was
// still there); when it was not, the reader is delivering, and wait takes
// that outcome instead.
func (c *call) wait(ctx context.Context, start, deadline time.Time, abandon func() bool) error {
	c.timer.Reset(time.Until(deadline))
	var err error
	select {
	case <-c.done:
		return c.err
	case <-c.timer.C:
		err = fmt.Errorf("%w: no answer in %s", ErrTimeout, deadline.Sub(start).Round(time.Millisecond))
	case <-ctx.Done():
		err = classify(ctx.Err())
	}
	if abandon() {
		return err
	}
	<-c.done
	return c.err
}

// idSource gives random query IDs from a cryptographically strong stream
// (ChaCha8 seeded from the OS): an off-path attacker cannot predict them.
type idSource struct {
	mu  sync.Mutex
	rng *mrand.ChaCha8
}

func newIDSource() *idSource {
	var seed [32]byte
	crand.Read(seed[:])
	return &idSource{rng: mrand.NewChaCha8(seed)}
}

// next returns a random ID that taken does not report as in use.
func (s *idSource) next(taken func(uint16) bool) (uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 64; i++ {
		id := uint16(s.rng.Uint64())
		if !taken(id) {
			return id, nil
		}
	}
	return 0, errors.New("no free query id")
}
