package dnslab

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Answer builds the reply host h gives to query r from the world's data, as
// an authoritative-only server does. Faults are applied by the listener.
func (w *World) Answer(h *Host, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(1232, do)
	}
	if r.Opcode == dns.OpcodeUpdate {
		// No listener verified a signature on this path: refused unless
		// it came through the lab's handler (update.go).
		m.Rcode = w.update(h, r, "")
		return m
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	q := r.Question[0]
	origin := w.bestZone(h, q)
	if origin == "" {
		m.Rcode = dns.RcodeRefused
		return m
	}
	w.zoneFor(h, origin).respond(m, q, do)
	return m
}

// bestZone picks the served zone closest to the question's name; a DS
// question at a zone apex goes to the parent zone when the host serves it.
func (w *World) bestZone(h *Host, q dns.Question) string {
	qname := dns.CanonicalName(q.Name)
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		origin := qname[off:]
		if !h.served[origin] || w.zoneFor(h, origin) == nil {
			continue
		}
		if q.Qtype == dns.TypeDS && origin == qname && qname != "." && w.parentServed(h, qname) {
			continue
		}
		return origin
	}
	if h.served["."] && w.zoneFor(h, ".") != nil {
		return "."
	}
	return ""
}

// parentServed reports whether h serves a zone above name.
func (w *World) parentServed(h *Host, name string) bool {
	off, end := dns.NextLabel(name, 0)
	for ; !end; off, end = dns.NextLabel(name, off) {
		if h.served[name[off:]] {
			return true
		}
	}
	return h.served["."]
}

// Resolve answers a recursive query the way a public resolver would: by
// iterating from the lab's roots over the world's data, with any poison
// configured for this resolver taking precedence.
func (w *World) Resolve(resolver netip.Addr, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, false)
	}
	q := r.Question[0]
	m.Answer, m.Rcode = w.resolveChain(resolver, q)
	return m
}

// resolveChain follows q's CNAME chain hop by hop, as a resolver's cache
// would: a poisoned entry for any name of the chain is what the resolver
// answers from that hop on (a forged CDN name poisons every alias of it).
func (w *World) resolveChain(resolver netip.Addr, q dns.Question) ([]dns.RR, int) {
	var out []dns.RR
	name := dns.CanonicalName(q.Name)
	seen := map[string]bool{}
	for hop := 0; hop < 8; hop++ {
		if forged, ok := w.Poison[resolver][poisonKey(name, q.Qtype)]; ok {
			return append(out, forged...), dns.RcodeSuccess
		}
		ans, rcode := w.iterate(dns.Question{Name: name, Qtype: q.Qtype, Qclass: dns.ClassINET}, 0, false)
		out = append(out, ans...)
		next := chainEnd(ans, name, q.Qtype)
		if next == "" || rcode != dns.RcodeSuccess {
			return out, rcode
		}
		if seen[next] {
			return out, dns.RcodeServerFailure // a CNAME loop
		}
		seen[next] = true
		name = next
	}
	return out, dns.RcodeServerFailure
}

// chainEnd walks the CNAME chain from name through rrs and returns the
// name it ends at when that name has no data of type t in rrs ("" when the
// chain ends in data, or in nothing).
func chainEnd(rrs []dns.RR, name string, t uint16) string {
	for hops := 0; hops <= len(rrs); hops++ {
		next := ""
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, name) {
				continue
			}
			if rr.Header().Rrtype == t {
				return ""
			}
			if c, ok := rr.(*dns.CNAME); ok && t != dns.TypeCNAME {
				next = dns.CanonicalName(c.Target)
			}
		}
		if next == "" {
			return ""
		}
		if !owned(rrs, next) {
			return next
		}
		name = next
	}
	return ""
}

func owned(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

func poisonKey(name string, t uint16) string {
	return dns.CanonicalName(name) + "/" + dns.TypeToString[t]
}

// iterate resolves q from the roots over in-memory data; chase follows a
// CNAME that leaves the answering zone.
func (w *World) iterate(q dns.Question, depth int, chase bool) ([]dns.RR, int) {
	if depth > 6 {
		return nil, dns.RcodeServerFailure
	}
	servers := w.rootAddrs()
	query := new(dns.Msg)
	query.SetQuestion(dns.CanonicalName(q.Name), q.Qtype)
	for hop := 0; hop < 16; hop++ {
		var resp *dns.Msg
		for _, a := range servers {
			h := w.HostAt(a)
			if h == nil || h.Fault == FaultTimeout || h.Fault == FaultGarbage {
				continue
			}
			if r := w.Answer(h, query); r.Rcode != dns.RcodeRefused {
				resp = r
				break
			}
		}
		if resp == nil {
			return nil, dns.RcodeServerFailure
		}
		if resp.Authoritative || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 {
			ans := resp.Answer
			if n := len(ans); n > 0 && q.Qtype != dns.TypeCNAME && chase {
				if c, ok := ans[n-1].(*dns.CNAME); ok {
					more, rcode := w.iterate(dns.Question{Name: c.Target, Qtype: q.Qtype, Qclass: dns.ClassINET}, depth+1, true)
					return append(ans, more...), rcode
				}
			}
			return ans, resp.Rcode
		}
		// A referral: next servers from glue, or by resolving NS names.
		servers = nil
		for _, rr := range resp.Ns {
			ns, ok := rr.(*dns.NS)
			if !ok {
				continue
			}
			found := false
			for _, x := range resp.Extra {
				if a, ok := x.(*dns.A); ok && strings.EqualFold(a.Hdr.Name, ns.Ns) {
					if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
						servers = append(servers, addr)
						found = true
					}
				}
			}
			if !found {
				ans, _ := w.iterate(dns.Question{Name: ns.Ns, Qtype: dns.TypeA, Qclass: dns.ClassINET}, depth+1, true)
				for _, x := range ans {
					if a, ok := x.(*dns.A); ok {
						if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
							servers = append(servers, addr)
						}
					}
				}
			}
		}
		if len(servers) == 0 {
			return nil, dns.RcodeServerFailure
		}
	}
	return nil, dns.RcodeServerFailure
}

func (w *World) rootAddrs() []netip.Addr {
	var out []netip.Addr
	for _, h := range w.Hosts {
		if h.Role == "root" {
			out = append(out, h.Addr)
		}
	}
	return out
}
