package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Cycle is one monitoring cycle's view of the DNS: answers are cached for
// the cycle's lifetime, so every question goes to a server at most once, and
// zone cuts learned for one domain serve the next.
type Cycle struct {
	r       *Resolver
	mu      sync.Mutex
	answers map[cacheKey]*pending
	cuts    map[string]*Delegation
	addrs   map[string]*pendingAddrs
}

type cacheKey struct {
	server netip.AddrPort
	name   string
	qtype  uint16
	proto  Proto
	do, rd bool
}

// pending is a question in flight or answered. Most questions are asked
// once: the channel is made only for a second asker that has to wait.
type pending struct {
	done     chan struct{} // made by the first waiter, closed when answered
	answered bool          // guarded by the cache's mutex
	resp     Response
}

type pendingAddrs struct {
	done  chan struct{}
	addrs []netip.Addr
	err   error
	// owner is the goroutine (chain of nested lookups) computing it.
	owner *waiter
}

// waiter is one chain of nested lookups; waitingOn (guarded by Cycle.mu)
// is the name whose lookup, owned by another chain, it is waiting for: the
// edges of the wait-for graph circular() walks.
type waiter struct{ waitingOn string }

type waiterKey struct{}

// circular reports whether waiting on name's lookup would close a circle:
// its owner waits (directly or through others) on a lookup in chain.
// Called with c.mu held.
func (c *Cycle) circular(name string, chain []string) bool {
	in := map[string]bool{}
	for _, n := range chain {
		in[n] = true
	}
	for n, steps := name, 0; n != "" && steps < 64; steps++ {
		if in[n] {
			return true
		}
		e, ok := c.addrs[n]
		if !ok || e.owner == nil {
			return false
		}
		n = e.owner.waitingOn
	}
	return false
}

// Delegation is a zone cut: a zone and the name servers it is delegated to,
// with the addresses known from glue (others are looked up when needed).
type Delegation struct {
	Zone    string
	Servers []NameServer
}

// scope is a cache for the questions about one domain: they are asked by
// that domain's check alone, so they are dropped with it instead of
// growing the cycle's cache by every answer of every domain.
type scope struct {
	zone    string
	mu      sync.Mutex
	answers map[cacheKey]*pending
}

type scopeKey struct{}

// WithScope caches questions about names under zone in a cache that lives
// as long as the returned context is used, not the whole cycle.
func WithScope(ctx context.Context, zone string) context.Context {
	return context.WithValue(ctx, scopeKey{}, &scope{zone: CanonicalName(zone), answers: map[cacheKey]*pending{}})
}

// NewCycle starts a cycle with an empty cache.
func (r *Resolver) NewCycle() *Cycle {
	c := &Cycle{
		r:       r,
		answers: map[cacheKey]*pending{},
		cuts:    map[string]*Delegation{},
		addrs:   map[string]*pendingAddrs{},
	}
	c.cuts["."] = &Delegation{Zone: ".", Servers: r.roots}
	return c
}

// Resolver returns the resolver the cycle belongs to.
func (c *Cycle) Resolver() *Resolver { return c.r }

// Exchange asks server q, once per cycle: a repeated question gets the
// first answer (or waits for it when it is still in flight).
func (c *Cycle) Exchange(ctx context.Context, server netip.AddrPort, q Query) *Response {
	if q.Proto == "" {
		q.Proto = UDP
	}
	cl := c.claim(ctx, server, q)
	if !cl.own {
		return c.await(ctx, cl, q.Proto)
	}
	c.publish(ctx, cl, c.r.exchange(ctx, server, q))
	return &cl.p.resp
}

// Ask is one question for one server, for ExchangeAll.
type Ask struct {
	Server netip.AddrPort
	Query  Query
}

// ExchangeAll is Exchange for each of asks at once, from the calling
// goroutine: their queries all leave before it waits for any answer, so a
// domain's questions to its several servers take as long as the slowest,
// without a goroutine each. The responses are in the order of asks.
func (c *Cycle) ExchangeAll(ctx context.Context, asks []Ask) []*Response {
	out := make([]*Response, len(asks))
	claims := make([]claim, len(asks))
	owned := 0
	for i, a := range asks {
		q := a.Query
		if q.Proto == "" {
			q.Proto = UDP
		}
		claims[i] = c.claim(ctx, a.Server, q)
		if claims[i].own {
			owned++
		}
	}
	if owned > 0 {
		ex := make([]exchangeState, 0, owned)
		for i, a := range asks {
			if claims[i].own {
				ex = append(ex, exchangeState{})
				ex[len(ex)-1].init(a.Server, a.Query)
			}
		}
		c.r.exchangeAll(ctx, ex)
		j := 0
		for i := range asks {
			if claims[i].own {
				c.publish(ctx, claims[i], ex[j].resp)
				out[i] = &claims[i].p.resp
				j++
			}
		}
	}
	// Questions another asker (or an earlier ask of the same question)
	// had out: waited for only now, with none of this call's queries
	// out, so two callers waiting on each other's questions both finish.
	for i := range asks {
		if out[i] == nil {
			out[i] = c.await(ctx, claims[i], claims[i].k.proto)
		}
	}
	return out
}

// claim is a question's entry in the cache its context uses: to be
// answered by this caller (own), or by another asker.
type claim struct {
	k       cacheKey
	mu      *sync.Mutex
	answers map[cacheKey]*pending
	p       *pending
	own     bool
}

// claim finds q's entry, or makes one this caller owns and must publish.
// An entry still in flight gets the channel its waiters wait on.
func (c *Cycle) claim(ctx context.Context, server netip.AddrPort, q Query) claim {
	k := cacheKey{server: server, name: CanonicalName(q.Name), qtype: q.Type, proto: q.Proto, do: q.DO, rd: q.RD}
	mu, answers := &c.mu, c.answers
	if s, ok := ctx.Value(scopeKey{}).(*scope); ok && IsSubDomain(s.zone, k.name) {
		mu, answers = &s.mu, s.answers
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := answers[k]; ok {
		if !p.answered && p.done == nil {
			p.done = make(chan struct{})
		}
		return claim{k: k, p: p}
	}
	p := &pending{}
	answers[k] = p
	return claim{k: k, mu: mu, answers: answers, p: p, own: true}
}

// publish stores the owner's answer and wakes the askers waiting for it.
func (c *Cycle) publish(ctx context.Context, cl claim, resp Response) {
	cl.mu.Lock()
	cl.p.resp, cl.p.answered = resp, true
	if ctx.Err() != nil {
		delete(cl.answers, cl.k) // cut short by this caller's deadline: not an answer
	}
	done := cl.p.done
	cl.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// await returns the answer to a question another asker owns.
func (c *Cycle) await(ctx context.Context, cl claim, proto Proto) *Response {
	if cl.p.done == nil {
		return &cl.p.resp // answered when claimed
	}
	select {
	case <-cl.p.done:
		return &cl.p.resp
	case <-ctx.Done():
		return &Response{Proto: proto, Err: fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())}
	}
}

// ServerAddrs returns ns's addresses: its glue, or a lookup of its name.
func (c *Cycle) ServerAddrs(ctx context.Context, ns NameServer) ([]netip.Addr, error) {
	if len(ns.Addrs) > 0 {
		return ns.Addrs, nil
	}
	return c.LookupAddrs(ctx, ns.Name)
}

// depthKey bounds nested lookups (name server names without glue whose own
// zones have name servers without glue…).
type depthKey struct{}

// chainKey carries the names whose address lookups are in progress.
type chainKey struct{}

func depth(ctx context.Context) int { d, _ := ctx.Value(depthKey{}).(int); return d }

const maxDepth = 6

// ErrNoAddress means a name has no A/AAAA record.
var ErrNoAddress = errors.New("no address")

// LookupAddrs resolves name's A (and AAAA when IPv6 is on) records
// iteratively. Results are shared for the cycle.
func (c *Cycle) LookupAddrs(ctx context.Context, name string) ([]netip.Addr, error) {
	name = CanonicalName(name)
	// Most lookups are of a provider's name server another domain looked
	// up already: take the finished answer without the bookkeeping below.
	if p := c.finishedAddrs(name); p != nil {
		return p.addrs, p.err
	}
	// A name server whose only path to an address runs through itself (no
	// glue for an in-bailiwick name) would wait on its own lookup forever.
	chain, _ := ctx.Value(chainKey{}).([]string)
	for _, n := range chain {
		if n == name {
			return nil, fmt.Errorf("%s: %w (its lookup depends on itself: missing glue?)", strings.TrimSuffix(name, "."), ErrNoAddress)
		}
	}
	ctx = context.WithValue(ctx, chainKey{}, append(append([]string(nil), chain...), name))
	me, _ := ctx.Value(waiterKey{}).(*waiter)
	if me == nil {
		me = &waiter{}
		ctx = context.WithValue(ctx, waiterKey{}, me)
	}
	c.mu.Lock()
	if p, ok := c.addrs[name]; ok {
		// Another goroutine owns this lookup. Two name servers without glue
		// that live in each other's zones would make two owners wait on each
		// other for ever (an attacker can set that up on purpose): follow
		// what the owner waits on, and refuse to close a circle.
		if c.circular(name, chain) {
			c.mu.Unlock()
			return nil, fmt.Errorf("%s: %w (circular glueless delegation)", strings.TrimSuffix(name, "."), ErrNoAddress)
		}
		me.waitingOn = name
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			me.waitingOn = ""
			c.mu.Unlock()
		}()
		select {
		case <-p.done:
			return p.addrs, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &pendingAddrs{done: make(chan struct{}), owner: me}
	c.addrs[name] = p
	c.mu.Unlock()
	defer func() {
		if ctx.Err() != nil {
			// A lookup cut short by one domain's deadline is not an answer
			// for every other domain in the cycle.
			c.mu.Lock()
			delete(c.addrs, name)
			c.mu.Unlock()
		}
		close(p.done)
	}()

	types := []uint16{dns.TypeA}
	if c.r.cfg.IPv6 {
		types = append(types, dns.TypeAAAA)
	}
	var firstErr error
	for _, t := range types {
		rrs, err := c.Lookup(ctx, name, t)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					p.addrs = append(p.addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					p.addrs = append(p.addrs, a)
				}
			}
		}
	}
	sort.Slice(p.addrs, func(i, j int) bool { return p.addrs[i].Less(p.addrs[j]) })
	if len(p.addrs) == 0 {
		p.err = fmt.Errorf("%s: %w", strings.TrimSuffix(name, "."), ErrNoAddress)
		if firstErr != nil {
			p.err = fmt.Errorf("%s: %w (%v)", strings.TrimSuffix(name, "."), ErrNoAddress, firstErr)
		}
	}
	return p.addrs, p.err
}

// KnowsAddrs reports whether this cycle has looked name's addresses up
// already and found some: LookupAddrs then returns them without a query.
func (c *Cycle) KnowsAddrs(name string) bool {
	p := c.finishedAddrs(CanonicalName(name))
	return p != nil && p.err == nil && len(p.addrs) > 0
}

// finishedAddrs returns the cycle's finished lookup of name (canonical),
// or nil while there is none or it is still running.
func (c *Cycle) finishedAddrs(name string) *pendingAddrs {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.addrs[name]; ok {
		select {
		case <-p.done:
			return p
		default:
		}
	}
	return nil
}

// Lookup resolves name/qtype iteratively from the closest known zone cut,
// following CNAMEs, and returns the final answer records (CNAMEs included).
// NXDOMAIN and NODATA are an empty answer and no error.
func (c *Cycle) Lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	if depth(ctx) > maxDepth {
		return nil, fmt.Errorf("resolving %s: too many nested lookups", name)
	}
	ctx = context.WithValue(ctx, depthKey{}, depth(ctx)+1)
	var out []dns.RR
	target := CanonicalName(name)
	for hop := 0; hop < 8; hop++ {
		m, err := c.iterate(ctx, target, qtype)
		if err != nil {
			return out, err
		}
		// Walk the CNAME chain as far as this answer carries it.
		cur := target
		for {
			cname := ""
			for _, rr := range m.Answer {
				if !strings.EqualFold(rr.Header().Name, cur) {
					continue
				}
				out = append(out, rr)
				if cn, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
					cname = CanonicalName(cn.Target)
				}
			}
			if cname == "" {
				return out, nil
			}
			cur = cname
			if !owns(m.Answer, cur) || len(out) > 16 {
				break
			}
		}
		target = cur
	}
	return out, fmt.Errorf("resolving %s: CNAME chain too long", name)
}

// Resolve asks name/qtype iteratively from the closest known zone cut, as
// Lookup does, and returns the last zone's answer itself, CNAMEs not
// followed: its rcode and AA bit tell NXDOMAIN from NODATA. It shares
// Lookup's questions, so asking both costs nothing more.
func (c *Cycle) Resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	if depth(ctx) > maxDepth {
		return nil, fmt.Errorf("resolving %s: too many nested lookups", name)
	}
	ctx = context.WithValue(ctx, depthKey{}, depth(ctx)+1)
	return c.iterate(ctx, CanonicalName(name), qtype)
}

func owns(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// iterate follows referrals from the closest cached cut to an answer.
func (c *Cycle) iterate(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	cut := c.closestCut(name, false)
	for hop := 0; hop < 16; hop++ {
		resp, err := c.AskZone(ctx, cut, Query{Name: name, Type: qtype, Proto: UDP, DO: true})
		if err != nil {
			return nil, err
		}
		ref := Referral(resp.Msg, cut.Zone, c.r.cfg.IPv6)
		if ref == nil {
			return resp.Msg, nil
		}
		if !IsSubDomain(ref.Zone, name) {
			return nil, fmt.Errorf("resolving %s: %s referred to unrelated zone %s", name, cut.Zone, ref.Zone)
		}
		c.storeCut(ref)
		cut = ref
	}
	return nil, fmt.Errorf("resolving %s: too many referrals", name)
}

// FindParent returns the delegation of the zone that delegates domain: the
// parent whose servers are asked for the domain's NS, glue and DS.
func (c *Cycle) FindParent(ctx context.Context, domain string) (*Delegation, error) {
	domain = CanonicalName(domain)
	cut := c.closestCut(domain, true)
	for hop := 0; hop < 16; hop++ {
		resp, err := c.AskZone(ctx, cut, Query{Name: domain, Type: dns.TypeNS, Proto: UDP, DO: true})
		if err != nil {
			return nil, err
		}
		if to := ReferralZone(resp.Msg, cut.Zone); to == "" || to == domain {
			return cut, nil
		}
		ref := Referral(resp.Msg, cut.Zone, c.r.cfg.IPv6)
		if !IsSubDomain(ref.Zone, domain) {
			return nil, fmt.Errorf("finding the parent of %s: %s referred to unrelated zone %s", domain, cut.Zone, ref.Zone)
		}
		c.storeCut(ref)
		cut = ref
	}
	return nil, fmt.Errorf("finding the parent of %s: too many referrals", domain)
}

// AskZone asks the zone's servers in turn until one gives a usable answer:
// a referral below the zone, or an answer with authority (a negative answer
// without the AA bit is nobody's evidence). Servers with glue are asked
// first; at most resolver.max_ns_per_delegation names are tried, so a
// delegation to thousands of glueless names costs a bounded number of
// lookups. When none answers usably the error is a *ZoneError.
func (c *Cycle) AskZone(ctx context.Context, d *Delegation, q Query) (*Response, error) {
	var failures []ServerFailure // built only when a server fails
	limit := c.r.MaxNSPerDelegation()
	tried := 0
	for _, ns := range glueFirst(d.Servers) {
		if tried == limit {
			failures = append(failures, ServerFailure{Name: ns.Name, Kind: FailSkipped,
				Detail: fmt.Sprintf("not asked: more than %d name servers (resolver.max_ns_per_delegation)", limit)})
			break
		}
		tried++
		addrs, err := c.ServerAddrs(ctx, ns)
		if err != nil {
			failures = append(failures, ServerFailure{Name: ns.Name, Kind: FailNoAddress, Detail: err.Error(), err: err})
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		for _, a := range addrs {
			resp := c.Exchange(ctx, c.r.AddrPort(a), q)
			f, ok := failureOf(ns.Name, a, resp, d.Zone)
			if ok {
				return resp, nil
			}
			failures = append(failures, f)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, &ZoneError{Zone: d.Zone, Query: q, Failures: failures}
}

// glueFirst orders servers with addresses before those that need a lookup
// (stable otherwise): an answer from a glued server saves every lookup.
func glueFirst(servers []NameServer) []NameServer {
	ordered := true
	for i := 1; i < len(servers); i++ {
		if len(servers[i].Addrs) > 0 && len(servers[i-1].Addrs) == 0 {
			ordered = false
			break
		}
	}
	if ordered {
		return servers // the callers only read it
	}
	out := make([]NameServer, 0, len(servers))
	for _, ns := range servers {
		if len(ns.Addrs) > 0 {
			out = append(out, ns)
		}
	}
	for _, ns := range servers {
		if len(ns.Addrs) == 0 {
			out = append(out, ns)
		}
	}
	return out
}

// closestCut returns the deepest cached cut enclosing name (strictly above
// it when strict is set).
func (c *Cycle) closestCut(name string, strict bool) *Delegation {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Each enclosing name is a suffix of name (which is an FQDN): walk the
	// label boundaries instead of splitting and joining.
	for off, end, first := 0, name == "" || name == ".", true; !end; first = false {
		if !strict || !first {
			if d, ok := c.cuts[dns.Fqdn(name[off:])]; ok {
				return d
			}
		}
		off, end = dns.NextLabel(name, off)
	}
	return c.cuts["."]
}

func (c *Cycle) storeCut(d *Delegation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cuts[d.Zone]; !ok {
		c.cuts[d.Zone] = d
	}
}

// Referral returns the delegation in m when m is a referral from zone to a
// zone below it, nil otherwise. Glue outside zone's bailiwick is ignored.
func Referral(m *dns.Msg, zone string, ipv6 bool) *Delegation {
	to := ReferralZone(m, zone)
	if to == "" {
		return nil
	}
	d := &Delegation{Zone: to}
	for _, rr := range m.Ns {
		if ns, ok := rr.(*dns.NS); ok && CanonicalName(ns.Hdr.Name) == to {
			d.Servers = append(d.Servers, NameServer{Name: CanonicalName(ns.Ns)})
		}
	}
	glue := Glue(m, zone, ipv6)
	for i := range d.Servers {
		d.Servers[i].Addrs = glue[d.Servers[i].Name]
	}
	return d
}

// ReferralZone is the zone Referral(m, zone, …) delegates to, or "" when m
// is not a referral below zone; it builds nothing (a cycle asks it of
// every answer).
func ReferralZone(m *dns.Msg, zone string) string {
	if m == nil || m.Authoritative || m.Rcode != dns.RcodeSuccess || len(m.Answer) > 0 {
		return ""
	}
	zone = CanonicalName(zone)
	to := ""
	for _, rr := range m.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := CanonicalName(ns.Hdr.Name)
		if owner == zone || !IsSubDomain(zone, owner) {
			return "" // upward or sideways referral: lame
		}
		if to == "" {
			to = owner
		}
	}
	return to
}

// Glue returns the A/AAAA records of m's additional section by owner, for
// owners inside zone (the bailiwick rule).
func Glue(m *dns.Msg, zone string, ipv6 bool) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, rr := range m.Extra {
		owner := CanonicalName(rr.Header().Name)
		if !IsSubDomain(zone, owner) {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out[owner] = append(out[owner], a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok && ipv6 {
				out[owner] = append(out[owner], a)
			}
		}
	}
	return out
}
