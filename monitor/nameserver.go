package monitor

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// checkNameServers probes every name server name × address of the child
// zone — the parent's NS set first, then names only the child lists — over
// UDP (SOA, NS) and TCP (SOA).
func (c *domainCheck) checkNameServers(ctx context.Context) {
	glue := map[string][]netip.Addr{}
	for _, g := range c.obs.Parent.Glue {
		for _, a := range g.Addrs {
			if addr, err := netip.ParseAddr(a); err == nil {
				glue[g.Name] = append(glue[g.Name], addr)
			}
		}
	}
	childAddrs := map[string][]string{}
	servers := c.probeNames(ctx, c.obs.Parent.NS, glue, true, childAddrs)
	childNS := c.childNS(servers)
	var extra []string
	for _, n := range childNS {
		if !containsStr(c.obs.Parent.NS, n) {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		servers = append(servers, c.probeNames(ctx, extra, nil, false, childAddrs)...)
	}
	for i := range servers {
		servers[i].InChild = containsStr(childNS, servers[i].Name)
	}
	c.obs.Servers = servers

	c.reachability(servers)
	c.consistency(servers, childNS)
	c.glueMismatch(glue, childAddrs)
	c.prefixDiversity(servers)
}

// probeNames resolves each name (glue plus the name's own A/AAAA) and probes
// every address. childAddrs receives each name's looked-up addresses.
func (c *domainCheck) probeNames(ctx context.Context, names []string, glue map[string][]netip.Addr, inParent bool, childAddrs map[string][]string) []Server {
	var mu sync.Mutex
	var out []Server
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			looked, err := c.cycle.LookupAddrs(ctx, name)
			addrs := map[netip.Addr]bool{}
			for _, a := range glue[name] {
				addrs[a] = true
			}
			for _, a := range looked {
				addrs[a] = true
			}
			mu.Lock()
			if err == nil {
				childAddrs[name] = addrStrings(looked)
			}
			mu.Unlock()
			if len(addrs) == 0 {
				mu.Lock()
				out = append(out, Server{Name: name, InParent: inParent, Error: errText(err)})
				mu.Unlock()
				return
			}
			var swg sync.WaitGroup
			for a := range addrs {
				if a.Is6() && !c.m.res.IPv6() {
					continue
				}
				swg.Add(1)
				go func() {
					defer swg.Done()
					s := c.probe(ctx, name, a)
					s.InParent = inParent
					mu.Lock()
					out = append(out, s)
					mu.Unlock()
				}()
			}
			swg.Wait()
		}()
	}
	wg.Wait()
	return out
}

// probe asks one address two questions: the zone's SOA over UDP (AA bit,
// serial, signatures) and its NS set over TCP (TCP reachability, the NS
// RRset). Two queries per address keep a domain with two single-address
// name servers at four child-side queries.
func (c *domainCheck) probe(ctx context.Context, name string, a netip.Addr) Server {
	ap := c.m.res.AddrPort(a)
	s := Server{Name: name, Addr: a.String()}
	var wg sync.WaitGroup
	var soaU, nsT *resolver.Response
	wg.Add(2)
	go func() {
		defer wg.Done()
		soaU = c.cycle.Exchange(ctx, ap, resolver.Query{Name: c.name, Type: dns.TypeSOA, Proto: resolver.UDP, DO: true})
	}()
	go func() {
		defer wg.Done()
		nsT = c.cycle.Exchange(ctx, ap, resolver.Query{Name: c.name, Type: dns.TypeNS, Proto: resolver.TCP, DO: true})
	}()
	wg.Wait()
	s.UDP = c.soaProbe(soaU)
	s.TCP = c.nsProbe(nsT)
	return s
}

// nsProbe classifies a server's answer to the apex NS question.
func (c *domainCheck) nsProbe(r *resolver.Response) Probe {
	p, m := c.authoritative(r)
	if p.Status != "" {
		return p
	}
	for _, rr := range m.Answer {
		if ns, ok := rr.(*dns.NS); ok && dns.CanonicalName(ns.Hdr.Name) == c.name {
			p.NS = append(p.NS, dns.CanonicalName(ns.Ns))
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
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == c.name {
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
			owner := dns.CanonicalName(ns.Hdr.Name)
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
			unresolvable = append(unresolvable, finding.Evidence{Server: s.Name, Query: s.Name + " A/AAAA", Answer: s.Error})
			continue
		}
		total++
		for _, pr := range []struct {
			proto string
			p     Probe
		}{{"udp", s.UDP}, {"tcp", s.TCP}} {
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
		if total == 0 {
			usev = finding.Critical
		}
		c.addSev(NSNameUnresolvable, usev, "", fmt.Sprintf("%d name server name(s) of %s have no address", len(unresolvable), c.d.Name), unresolvable...)
	}
}

func darkNote(dark bool) string {
	if dark {
		return " — no server answers for the zone: the domain is down"
	}
	return ""
}

// consistency compares NS sets and serials across servers and with the parent.
func (c *domainCheck) consistency(servers []Server, childNS []string) {
	sets := map[string][]string{}
	serials := map[uint32][]string{}
	for _, s := range servers {
		who := s.Name + " " + s.Addr
		if s.TCP.Status == ProbeOK {
			k := strings.Join(s.TCP.NS, ", ")
			sets[k] = append(sets[k], who)
		}
		if s.UDP.Status == ProbeOK {
			serials[s.UDP.Serial] = appendOnce(serials[s.UDP.Serial], who)
		}
	}
	if len(sets) > 1 {
		var ev []finding.Evidence
		for k, who := range sets {
			ev = append(ev, finding.Evidence{Server: strings.Join(who, ", "), Query: c.d.Name + " NS", Answer: "NS " + k})
		}
		sortEvidence(ev)
		c.add(ChildNSInconsistent, "", fmt.Sprintf("the name servers of %s answer %d different NS sets", c.d.Name, len(sets)), ev...)
	}
	if len(childNS) > 0 && !sameSet(childNS, c.obs.Parent.NS) {
		c.add(ParentChildNSMismatch, "", fmt.Sprintf("the %s zone delegates %s to %s but the zone itself lists %s",
			zoneName(c.obs.Parent.Zone), c.d.Name, strings.Join(c.obs.Parent.NS, ", "), strings.Join(childNS, ", ")),
			finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: strings.Join(c.obs.Parent.NS, ", ")},
			finding.Evidence{Query: c.d.Name + " NS (child)", Answer: strings.Join(childNS, ", ")})
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

// glueMismatch compares the parent's glue with each name's own addresses.
func (c *domainCheck) glueMismatch(glue map[string][]netip.Addr, childAddrs map[string][]string) {
	var ev []finding.Evidence
	var names []string
	for name := range glue {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		child, ok := childAddrs[name]
		if !ok {
			continue // no authoritative answer to compare with
		}
		var g []netip.Addr
		for _, a := range glue[name] {
			if a.Is4() || c.m.res.IPv6() {
				g = append(g, a)
			}
		}
		if !sameSet(addrStrings(g), child) {
			ev = append(ev, finding.Evidence{Server: name, Query: name + " A/AAAA",
				Answer: fmt.Sprintf("glue %s, authoritative %s", strings.Join(addrStrings(g), " "), strings.Join(child, " "))})
		}
	}
	if len(ev) > 0 {
		c.add(GlueMismatch, "", fmt.Sprintf("the %s zone's glue for %s's name servers differs from their own address records", zoneName(c.obs.Parent.Zone), c.d.Name), ev...)
	}
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
