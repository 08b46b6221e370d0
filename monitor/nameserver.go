package monitor

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// checkNameServers probes every name server name × address of the child
// zone — the parent's NS set first, then names only the child lists — over
// UDP (SOA, NS) and TCP (SOA). At most resolver.max_ns_per_delegation
// names of each set are resolved and probed.
func (c *domainCheck) checkNameServers(ctx context.Context) {
	glue := map[string][]netip.Addr{}
	for _, g := range c.obs.Parent.Glue {
		for _, a := range g.Addrs {
			if addr, err := netip.ParseAddr(a); err == nil {
				glue[g.Name] = append(glue[g.Name], addr)
			}
		}
	}
	parentNS, skipped := c.capNames(c.obs.Parent.NS)
	servers := c.probeNames(ctx, parentNS, glue, true)
	childNS := c.childNS(servers)
	var extra []string
	for _, n := range childNS {
		if !containsStr(c.obs.Parent.NS, n) {
			extra = append(extra, n)
		}
	}
	total := len(c.obs.Parent.NS) + len(extra)
	if len(extra) > 0 {
		var more []string
		extra, more = c.capNames(extra)
		skipped = append(skipped, more...)
		servers = append(servers, c.probeNames(ctx, extra, nil, false)...)
	}
	for i := range servers {
		servers[i].InChild = containsStr(childNS, servers[i].Name)
	}
	c.obs.Servers = servers

	c.tooMany(total, skipped)
	c.reachability(servers)
	c.ipv4Reach(servers)
	c.consistency(servers, childNS)
	c.glueMismatch(ctx)
	c.prefixDiversity(servers)
}

// capNames keeps the first resolver.max_ns_per_delegation names (sorted)
// and returns the rest, which are not asked.
func (c *domainCheck) capNames(names []string) (kept, skipped []string) {
	limit := c.m.res.MaxNSPerDelegation()
	if len(names) <= limit {
		return names, nil
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return sorted[:limit], sorted[limit:]
}

// tooMany reports the names capNames left out.
func (c *domainCheck) tooMany(total int, skipped []string) {
	if len(skipped) == 0 {
		return
	}
	shown := skipped
	if len(shown) > 10 {
		shown = append(append([]string(nil), shown[:10]...), fmt.Sprintf("… %d more", len(skipped)-10))
	}
	c.add(NSTooMany, "", fmt.Sprintf("%s has %d name server names; nsguard checked %d (resolver.max_ns_per_delegation: %d per NS set) and not the other %d — a delegation this large is a mistake, or built to make resolvers send thousands of queries",
		c.d.Name, total, total-len(skipped), c.m.res.MaxNSPerDelegation(), len(skipped)),
		finding.Evidence{Query: c.d.Name + " NS", Answer: fmt.Sprintf("%d names, %d checked", total, total-len(skipped))},
		finding.Evidence{Query: "not checked", Answer: strings.Join(shown, ", ")})
}

// probeNames resolves each name (glue plus the name's own A/AAAA) and probes
// every address. In a pre-flight, a name given with addresses is probed at
// those alone, and a name inside the domain only ever at its glue.
func (c *domainCheck) probeNames(ctx context.Context, names []string, glue map[string][]netip.Addr, inParent bool) []Server {
	// First every name's addresses: most are a provider's name servers
	// the cycle has looked up already, and only the others take a
	// goroutine each for their lookups.
	addrs := make([][]netip.Addr, len(names))
	var failed []Server
	var mu sync.Mutex
	resolve := func(i int) {
		var s *Server
		addrs[i], s = c.serverAddrs(ctx, names[i], glue)
		if s != nil {
			s.InParent = inParent
			mu.Lock()
			failed = append(failed, *s)
			mu.Unlock()
		}
	}
	var lookups []int
	for i, name := range names {
		if c.needsLookup(name, glue) && !c.cycle.KnowsAddrs(name) {
			lookups = append(lookups, i)
		} else {
			resolve(i)
		}
	}
	fanOut(len(lookups), func(j int) { resolve(lookups[j]) })

	// Then every address of every name, all at once.
	var who []Server
	var at []netip.Addr
	for i, name := range names {
		for _, a := range addrs[i] {
			who = append(who, Server{Name: name, Addr: a.String(), InParent: inParent})
			at = append(at, a)
		}
	}
	return append(failed, c.probe(ctx, who, at)...)
}

// needsLookup reports whether name's addresses are looked up, not taken
// from the glue alone (a pre-flight trusts the addresses it is given).
func (c *domainCheck) needsLookup(name string, glue map[string][]netip.Addr) bool {
	return c.preflight == nil || (len(glue[name]) == 0 && !dns.IsSubDomain(c.name, name))
}

// serverAddrs returns the addresses name is probed at (glue and its own
// A/AAAA), or the Server that says why it has none.
func (c *domainCheck) serverAddrs(ctx context.Context, name string, glue map[string][]netip.Addr) ([]netip.Addr, *Server) {
	set := map[netip.Addr]bool{}
	for _, a := range glue[name] {
		set[a] = true
	}
	var err error
	if c.needsLookup(name, glue) {
		var looked []netip.Addr
		looked, err = c.cycle.LookupAddrs(ctx, name)
		for _, a := range looked {
			set[a] = true
		}
	} else if len(set) == 0 {
		err = fmt.Errorf("%s: no address given for a name inside %s (pre-flight: glue needed)", strings.TrimSuffix(name, "."), c.d.Name)
	}
	if len(set) == 0 {
		s := &Server{Name: name, Error: errText(err)}
		if v6 := c.ipv6Only(ctx, name); len(v6) > 0 {
			s.IPv6Only = true
			s.Error = fmt.Sprintf("IPv6 addresses only (%s), which nsguard does not use with resolver.ipv6: false", strings.Join(addrStrings(v6), " "))
		}
		return nil, s
	}
	var out []netip.Addr
	for a := range set {
		if a.Is6() && !c.m.res.IPv6() {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// fanOut runs f(0) … f(n-1) at once, the last on the calling goroutine
// (a goroutine fewer for each of a domain's fan-outs, most of which are
// of one or two).
func fanOut(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n-1; i++ {
		wg.Go(func() { f(i) })
	}
	if n > 0 {
		f(n - 1)
	}
	wg.Wait()
}

// ipv6Only returns name's IPv6 addresses when nsguard does not use IPv6
// and found no IPv4 address for it: from the glue, else from an AAAA
// lookup (asked only for such a name, never for a healthy one).
func (c *domainCheck) ipv6Only(ctx context.Context, name string) []netip.Addr {
	if c.m.res.IPv6() {
		return nil
	}
	var out []netip.Addr
	for a := range c.glue[name] {
		if a.Is6() {
			out = append(out, a)
		}
	}
	if len(out) > 0 || (c.preflight != nil && dns.IsSubDomain(c.name, name)) {
		return out
	}
	if m, err := c.cycle.Resolve(ctx, name, dns.TypeA); err != nil || m.Rcode == dns.RcodeNameError {
		return nil // the name does not exist at all: no AAAA either
	}
	m, err := c.cycle.Resolve(ctx, name, dns.TypeAAAA)
	if err != nil {
		return nil
	}
	for _, rr := range m.Answer {
		if v, ok := rr.(*dns.AAAA); ok && resolver.CanonicalName(v.Hdr.Name) == name {
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// probe asks each server at its address (at[i] for servers[i]) two questions: the zone's SOA over
// UDP (AA bit, serial, signatures) and its NS set over TCP (TCP
// reachability, the NS RRset). Two queries per address keep a domain with
// two single-address name servers at four child-side queries; all of
// them leave at once.
func (c *domainCheck) probe(ctx context.Context, servers []Server, at []netip.Addr) []Server {
	if len(servers) == 0 {
		return nil
	}
	asks := make([]resolver.Ask, 0, 2*len(servers))
	for _, a := range at {
		ap := c.m.res.AddrPort(a)
		asks = append(asks,
			resolver.Ask{Server: ap, Query: resolver.Query{Name: c.name, Type: dns.TypeSOA, Proto: resolver.UDP, DO: true}},
			resolver.Ask{Server: ap, Query: resolver.Query{Name: c.name, Type: dns.TypeNS, Proto: resolver.TCP, DO: true}})
	}
	resps := c.cycle.ExchangeAll(ctx, asks)
	for i := range servers {
		servers[i].UDP = c.soaProbe(resps[2*i])
		servers[i].TCP = c.nsProbe(resps[2*i+1])
	}
	return servers
}

// nsProbe classifies a server's answer to the apex NS question.
func (c *domainCheck) nsProbe(r *resolver.Response) Probe {
	p, m := c.authoritative(r)
	if p.Status != "" {
		return p
	}
	for _, rr := range m.Answer {
		if ns, ok := rr.(*dns.NS); ok && resolver.CanonicalName(ns.Hdr.Name) == c.name {
			p.NS = append(p.NS, resolver.CanonicalName(ns.Ns))
		}
	}
	if len(p.NS) == 0 {
		p.Status, p.Detail = ProbeLame, "authoritative answer without the zone's NS set"
		return p
	}
	sort.Strings(p.NS)
	p.Status = ProbeOK
	return p
}

// soaProbe classifies a server's answer to the apex SOA question.
func (c *domainCheck) soaProbe(r *resolver.Response) Probe {
	p, m := c.authoritative(r)
	if p.Status != "" {
		return p
	}
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok && resolver.CanonicalName(soa.Hdr.Name) == c.name {
			p.Status, p.Serial = ProbeOK, soa.Serial
			return p
		}
	}
	p.Status, p.Detail = ProbeLame, "authoritative answer without the zone's SOA"
	return p
}

// authoritative sorts out the answers that cannot be about the zone: no
// answer (unreachable), an error rcode or no AA bit (lame). A Probe with no
// Status and the message means "authoritative NOERROR: look inside".
func (c *domainCheck) authoritative(r *resolver.Response) (Probe, *dns.Msg) {
	p := Probe{RTTMS: ms(r.RTT)}
	if r.Err != nil {
		p.Status, p.Detail = ProbeUnreachable, probeError(r.Err)
		return p, nil
	}
	m := r.Msg
	p.AA, p.Rcode = m.Authoritative, dns.RcodeToString[m.Rcode]
	switch {
	case m.Rcode != dns.RcodeSuccess:
		p.Status, p.Detail = ProbeLame, "answered "+dns.RcodeToString[m.Rcode]+" for the zone apex"
	case !m.Authoritative:
		p.Status, p.Detail = ProbeLame, "not authoritative"
		if isUpwardReferral(m, c.name) {
			p.Detail = "upward referral"
		}
	}
	return p, m
}

// isUpwardReferral reports a referral to the root or another ancestor: the
// classic sign of a server that does not serve the zone.
func isUpwardReferral(m *dns.Msg, zone string) bool {
	for _, rr := range m.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			owner := resolver.CanonicalName(ns.Hdr.Name)
			if owner != zone && dns.IsSubDomain(owner, zone) {
				return true
			}
		}
	}
	return false
}

// childNS is the union of the NS sets the child's servers answer with.
func (c *domainCheck) childNS(servers []Server) []string {
	var out []string
	for _, s := range servers {
		out = union(out, s.TCP.NS)
	}
	return out
}

// reachability reports unreachable and lame server addresses; when no
// address answers authoritatively over UDP the domain is dark: critical.
func (c *domainCheck) reachability(servers []Server) {
	dark := true
	for _, s := range servers {
		if s.UDP.Status == ProbeOK {
			dark = false
		}
	}
	var unreachable, lame, unresolvable []finding.Evidence
	total := 0
	for _, s := range servers {
		if s.Addr == "" {
			if !s.IPv6Only { // it has addresses, only not of a family nsguard uses: see ipv4Reach
				unresolvable = append(unresolvable, finding.Evidence{Server: s.Name, Query: s.Name + " A/AAAA", Answer: s.Error})
			}
			continue
		}
		total++
		for _, pr := range []struct {
			proto string
			p     Probe
		}{{"udp", s.UDP}, {"tcp", s.TCP}} {
			if pr.p.Status != ProbeUnreachable && pr.p.Status != ProbeLame {
				continue // the evidence is built for the probes that fail alone
			}
			q := c.d.Name + " SOA (udp)"
			if pr.proto == "tcp" {
				q = c.d.Name + " NS (tcp)"
			}
			ev := finding.Evidence{Server: s.Name + " " + s.Addr, Query: q, Answer: pr.p.Detail}
			switch pr.p.Status {
			case ProbeUnreachable:
				unreachable = append(unreachable, ev)
			case ProbeLame:
				lame = append(lame, ev)
			}
		}
	}
	sev := finding.Warning
	if dark {
		sev = finding.Critical
	}
	if len(unreachable) > 0 {
		c.addSev(NSUnreachable, sev, "", fmt.Sprintf("%d name server probe(s) of %s got no usable answer%s", len(unreachable), c.d.Name, darkNote(dark)), unreachable...)
	}
	if len(lame) > 0 {
		c.addSev(NSLame, sev, "", fmt.Sprintf("%d name server probe(s) of %s answered without authority for the zone%s", len(lame), c.d.Name, darkNote(dark)), lame...)
	}
	if len(unresolvable) > 0 {
		usev := finding.Warning
		if total == 0 && !anyIPv6Only(servers) {
			usev = finding.Critical
		}
		c.addSev(NSNameUnresolvable, usev, "", fmt.Sprintf("%d name server name(s) of %s have no address", len(unresolvable), c.d.Name), unresolvable...)
	}
}

func anyIPv6Only(servers []Server) bool {
	for _, s := range servers {
		if s.IPv6Only {
			return true
		}
	}
	return false
}

// ipv4Reach flags a domain none of whose name servers has an IPv4 address
// (glue or its own A record): IPv4-only resolvers, still a large share,
// cannot reach it — nor can nsguard with resolver.ipv6 false.
func (c *domainCheck) ipv4Reach(servers []Server) {
	v4, v6 := false, false
	var ev []finding.Evidence
	for _, s := range servers {
		switch {
		case s.IPv6Only:
			v6 = true
			ev = append(ev, finding.Evidence{Server: s.Name, Query: s.Name + " A/AAAA", Answer: s.Error})
		case s.Addr != "":
			if a, err := netip.ParseAddr(s.Addr); err == nil && a.Is4() {
				v4 = true
			} else if err == nil {
				v6 = true
				ev = append(ev, finding.Evidence{Server: s.Name + " " + s.Addr, Query: s.Name + " A", Answer: "IPv6 only"})
			}
		}
	}
	if v4 || !v6 {
		return
	}
	sortEvidence(ev)
	msg := fmt.Sprintf("no name server of %s has an IPv4 address: IPv4-only resolvers cannot resolve the domain", c.d.Name)
	if !c.m.res.IPv6() {
		msg += ", and nsguard (resolver.ipv6: false) could not probe its servers"
	}
	c.add(NSNoIPv4, "", msg, ev...)
}

func darkNote(dark bool) string {
	if dark {
		return " — no server answers for the zone: the domain is down"
	}
	return ""
}

// consistency compares NS sets and serials across servers and with the parent.
func (c *domainCheck) consistency(servers []Server, childNS []string) {
	sets, shown := map[string][]string{}, map[string][]string{}
	serials := map[uint32][]string{}
	for _, s := range servers {
		who := s.Name + " " + s.Addr
		if s.TCP.Status == ProbeOK {
			// Grouped by the whole set, shown bounded.
			k := strings.Join(s.TCP.NS, ", ")
			sets[k] = append(sets[k], who)
			shown[k] = s.TCP.NS
		}
		if s.UDP.Status == ProbeOK {
			serials[s.UDP.Serial] = appendOnce(serials[s.UDP.Serial], who)
		}
	}
	if len(sets) > 1 {
		var ev []finding.Evidence
		for k, who := range sets {
			ev = append(ev, finding.Evidence{Server: strings.Join(who, ", "), Query: c.d.Name + " NS", Answer: "NS " + nameList(shown[k])})
		}
		sortEvidence(ev)
		c.add(ChildNSInconsistent, "", fmt.Sprintf("the name servers of %s answer %d different NS sets", c.d.Name, len(sets)), ev...)
	}
	if len(childNS) > 0 && !sameSet(childNS, c.obs.Parent.NS) {
		c.add(ParentChildNSMismatch, "", fmt.Sprintf("the %s zone delegates %s to %s but the zone itself lists %s",
			zoneName(c.obs.Parent.Zone), c.d.Name, nameList(c.obs.Parent.NS), nameList(childNS)),
			finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: nameList(c.obs.Parent.NS)},
			finding.Evidence{Query: c.d.Name + " NS (child)", Answer: nameList(childNS)})
	}
	if len(serials) > 1 {
		var ev []finding.Evidence
		for serial, who := range serials {
			ev = append(ev, finding.Evidence{Server: strings.Join(who, ", "), Query: c.d.Name + " SOA", Answer: fmt.Sprintf("serial %d", serial)})
		}
		sortEvidence(ev)
		c.add(SOASerialDrift, "", fmt.Sprintf("the name servers of %s serve %d different SOA serials: zone transfers are failing or lagging", c.d.Name, len(serials)), ev...)
	}
}

// glueMismatch compares, address family by address family, the glue the
// parent gives for each name with what the name's own zone answers: other
// addresses, none of that family, or NXDOMAIN for the very name glued. In a
// pre-flight the domain's own names are asked of its (proposed) servers.
func (c *domainCheck) glueMismatch(ctx context.Context) {
	var names []string
	for name := range c.glue {
		names = append(names, name)
	}
	sort.Strings(names)
	var ev []finding.Evidence
	for _, name := range names {
		var byFamily [2][]netip.Addr
		for a := range c.glue[name] {
			if a.Is4() {
				byFamily[0] = append(byFamily[0], a)
			} else {
				byFamily[1] = append(byFamily[1], a)
			}
		}
		for i, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if t == dns.TypeAAAA && !c.m.res.IPv6() && len(byFamily[1]) == 0 {
				continue // nothing glued in a family nsguard does not ask about
			}
			own, nx, ok := c.ownAddrs(ctx, name, t)
			if !ok {
				continue // no authoritative answer to compare with
			}
			glued := addrStrings(byFamily[i])
			if sameSet(glued, own) {
				continue
			}
			tn := dns.TypeToString[t]
			g := "glue " + tn + " " + strings.Join(glued, " ")
			if len(glued) == 0 {
				g = "no " + tn + " glue"
			}
			zoneSays := "its zone answers " + tn + " " + strings.Join(own, " ")
			switch {
			case nx:
				zoneSays = "its zone answers NXDOMAIN: no such name"
			case len(own) == 0:
				zoneSays = "its zone has no " + tn + " record for it"
			}
			ev = append(ev, finding.Evidence{Server: name, Query: name + " " + tn, Answer: g + "; " + zoneSays})
		}
	}
	if len(ev) > 0 {
		c.add(GlueMismatch, "", fmt.Sprintf("the glue %s gives for %s's name servers differs from what their own zones answer: resolvers get one address from the referral and another (or none) afterwards",
			parentWord(c.obs.Parent.Zone, c.preflight != nil), c.d.Name), ev...)
	}
}

// ownAddrs is what name's own zone answers for its addresses of type t:
// the addresses, whether the name does not exist, and whether there was
// an answer at all.
func (c *domainCheck) ownAddrs(ctx context.Context, name string, t uint16) ([]string, bool, bool) {
	var m *dns.Msg
	if c.preflight != nil && dns.IsSubDomain(c.name, name) {
		m = c.askOwnServers(ctx, name, t)
	} else if r, err := c.cycle.Resolve(ctx, name, t); err == nil {
		m = r
	}
	if m == nil {
		return nil, false, false
	}
	var out []netip.Addr
	for _, rr := range m.Answer {
		if resolver.CanonicalName(rr.Header().Name) != name {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out = append(out, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, a)
			}
		}
	}
	return addrStrings(out), m.Rcode == dns.RcodeNameError, true
}

// askOwnServers asks the domain's probed servers for name until one
// answers with authority.
func (c *domainCheck) askOwnServers(ctx context.Context, name string, t uint16) *dns.Msg {
	for _, s := range c.obs.Servers {
		if s.UDP.Status != ProbeOK {
			continue
		}
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			continue
		}
		r := c.cycle.Exchange(ctx, c.m.res.AddrPort(a), resolver.Query{Name: name, Type: t, Proto: resolver.UDP, DO: true})
		if r.Err == nil && r.Msg.Authoritative && (r.Msg.Rcode == dns.RcodeSuccess || r.Msg.Rcode == dns.RcodeNameError) {
			return r.Msg
		}
	}
	return nil
}

func parentWord(zone string, preflight bool) string {
	if preflight {
		return "the pre-flight delegation"
	}
	return "the " + zoneName(zone) + " zone"
}

// prefixDiversity flags name server addresses all in one /24 (or /48).
func (c *domainCheck) prefixDiversity(servers []Server) {
	prefixes := map[string]bool{}
	var addrs []string
	for _, s := range servers {
		if s.Addr == "" || !s.InParent {
			continue
		}
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			continue
		}
		bits := 24
		if a.Is6() {
			bits = 48
		}
		p, _ := a.Prefix(bits)
		prefixes[p.String()] = true
		addrs = append(addrs, s.Name+" "+s.Addr)
	}
	sort.Strings(addrs)
	if len(prefixes) == 1 && len(addrs) > 1 {
		c.add(NSSamePrefix, "", fmt.Sprintf("every name server address of %s is in %s: one routing incident takes them all", c.d.Name, keys(prefixes)[0]),
			finding.Evidence{Query: c.d.Name + " name server addresses", Answer: strings.Join(addrs, ", ")})
	}
}

func responseText(r *resolver.Response) string {
	if r.Err != nil {
		return probeError(r.Err)
	}
	return dns.RcodeToString[r.Msg.Rcode]
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func appendOnce(list []string, s string) []string {
	if containsStr(list, s) {
		return list
	}
	return append(list, s)
}

func sortEvidence(ev []finding.Evidence) {
	sort.Slice(ev, func(i, j int) bool { return ev[i].Server+ev[i].Answer < ev[j].Server+ev[j].Answer })
}
