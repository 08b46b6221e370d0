package monitor

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// checkParent asks every parent server (every address) for the domain's NS:
// one question answers NS, glue and — with the DO bit — DS.
func (c *domainCheck) checkParent(ctx context.Context, parent *resolver.Delegation) error {
	p := &c.obs.Parent
	p.Zone = parent.Zone
	type target struct {
		name string
		addr netip.Addr
	}
	var targets []target
	for _, ns := range parent.Servers {
		addrs, err := c.cycle.ServerAddrs(ctx, ns)
		if err != nil {
			p.Servers = append(p.Servers, ParentServer{Name: ns.Name, Status: StatusError, Error: err.Error()})
			continue
		}
		for _, a := range addrs {
			targets = append(targets, target{ns.Name, a})
		}
	}
	if n := c.m.cfg.Resolver.ParentServers; n > 0 && len(targets) > n {
		targets = targets[:n]
	}
	answers := make([]ParentServer, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := resolver.Query{Name: c.name, Type: dns.TypeNS, Proto: resolver.UDP, DO: true}
			resp := c.cycle.Exchange(ctx, c.m.res.AddrPort(t.addr), q)
			answers[i] = c.parentAnswer(t.name, t.addr, parent.Zone, resp)
		}()
	}
	wg.Wait()
	p.Servers = append(p.Servers, answers...)

	var delegating, denying, usable []ParentServer
	for _, s := range p.Servers {
		switch s.Status {
		case StatusDelegated, StatusAnswered:
			delegating = append(delegating, s)
			usable = append(usable, s)
		case StatusNXDomain, StatusNoData:
			denying = append(denying, s)
			usable = append(usable, s)
		}
	}
	if len(usable) == 0 {
		return fmt.Errorf("no server of the parent zone %s gave a usable answer for %s (%s)",
			strings.TrimSuffix(parent.Zone, ".")+".", c.d.Name, parentSummary(p.Servers))
	}
	// The union: a hijack on one parent server still shows up in the set.
	glue := map[string]map[string]bool{}
	for _, s := range delegating {
		p.NS = union(p.NS, s.NS)
		p.DS = union(p.DS, s.DS)
		for _, g := range s.Glue {
			if glue[g.Name] == nil {
				glue[g.Name] = map[string]bool{}
			}
			for _, a := range g.Addrs {
				glue[g.Name][a] = true
			}
		}
	}
	for name, addrs := range glue {
		p.Glue = append(p.Glue, Glue{Name: name, Addrs: keys(addrs)})
	}
	sortGlue(p.Glue)

	if len(delegating) == 0 {
		c.add(DelegationMissing, "", fmt.Sprintf("the %s zone does not delegate %s: the domain does not resolve (suspended, on hold or deleted?)",
			zoneName(parent.Zone), c.d.Name), parentEvidence(c.name, p.Servers)...)
		return nil
	}
	c.parentConsistency(usable)
	c.declared(delegating)
	c.providerDiversity()
	c.glueMissing(delegating)
	return nil
}

func (c *domainCheck) parentAnswer(name string, addr netip.Addr, zone string, resp *resolver.Response) ParentServer {
	s := ParentServer{Name: name, Addr: addr.String(), RTTMS: ms(resp.RTT)}
	if resp.Err != nil {
		s.Status, s.Error = StatusError, probeError(resp.Err)
		return s
	}
	m := resp.Msg
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		s.Status = StatusNXDomain
		return s
	default:
		s.Status, s.Error = StatusLame, dns.RcodeToString[m.Rcode]
		return s
	}
	if ref := resolver.Referral(m, zone, c.m.res.IPv6()); ref != nil {
		if ref.Zone != c.name {
			s.Status, s.Error = StatusLame, "referral to "+ref.Zone
			return s
		}
		s.Status = StatusDelegated
		for _, ns := range ref.Servers {
			s.NS = append(s.NS, ns.Name)
			if len(ns.Addrs) > 0 {
				s.Glue = append(s.Glue, Glue{Name: ns.Name, Addrs: addrStrings(ns.Addrs)})
			}
		}
		for _, rr := range m.Ns {
			if ds, ok := rr.(*dns.DS); ok && dns.CanonicalName(ds.Hdr.Name) == c.name {
				s.DS = append(s.DS, dsString(ds))
			}
		}
		// Servers shuffle RRsets (BIND does): compare sets, not orders.
		sort.Strings(s.NS)
		sort.Strings(s.DS)
		sortGlue(s.Glue)
		return s
	}
	if m.Authoritative {
		for _, rr := range m.Answer {
			if ns, ok := rr.(*dns.NS); ok && dns.CanonicalName(ns.Hdr.Name) == c.name {
				s.NS = append(s.NS, dns.CanonicalName(ns.Ns))
			}
		}
		if len(s.NS) > 0 {
			sort.Strings(s.NS)
			s.Status = StatusAnswered
			return s
		}
		s.Status = StatusNoData
		return s
	}
	s.Status, s.Error = StatusLame, "neither a referral nor an authoritative answer"
	return s
}

// parentConsistency reports parent servers that hand out different answers.
func (c *domainCheck) parentConsistency(usable []ParentServer) {
	groups := map[string][]string{}
	for _, s := range usable {
		k := parentAnswerText(s)
		groups[k] = append(groups[k], s.Name+" "+s.Addr)
	}
	if len(groups) < 2 {
		return
	}
	var ev []finding.Evidence
	for answer, servers := range groups {
		sort.Strings(servers)
		ev = append(ev, finding.Evidence{Server: strings.Join(servers, ", "), Query: c.d.Name + " NS", Answer: answer})
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].Server < ev[j].Server })
	c.add(ParentServersDisagree, "", fmt.Sprintf("the %s servers hand out %d different answers for %s",
		zoneName(c.obs.Parent.Zone), len(groups), c.d.Name), ev...)
}

// declared compares each delegating parent server with the declared NS and DS.
func (c *domainCheck) declared(delegating []ParentServer) {
	if len(c.d.Nameservers) > 0 {
		want := fqdns(c.d.Nameservers)
		var ev []finding.Evidence
		var wrong []ParentServer
		for _, s := range delegating {
			if !sameSet(s.NS, want) {
				wrong = append(wrong, s)
				ev = append(ev, finding.Evidence{Server: s.Name + " " + s.Addr, Query: c.d.Name + " NS", Answer: "NS " + strings.Join(s.NS, ", ")})
			}
		}
		if len(ev) > 0 {
			ev = append(ev, finding.Evidence{Query: "declared nameservers", Answer: strings.Join(want, ", ")})
			c.add(NSNotAsDeclared, "", fmt.Sprintf("%d of %d parent servers delegate %s to %s, not to the declared %s — hijack, unauthorised change or registry error",
				len(wrong), len(delegating), c.d.Name, strings.Join(nsUnion(wrong), ", "), strings.Join(want, ", ")), ev...)
		}
	}
	if len(c.d.DS) > 0 {
		var want []string
		for _, d := range c.d.DS {
			if ds, err := config.ParseDS(c.d.Name, d); err == nil {
				want = append(want, dsString(ds))
			}
		}
		var ev []finding.Evidence
		for _, s := range delegating {
			if !sameSet(s.DS, want) {
				ans := "no DS"
				if len(s.DS) > 0 {
					ans = "DS " + strings.Join(s.DS, "; ")
				}
				ev = append(ev, finding.Evidence{Server: s.Name + " " + s.Addr, Query: c.d.Name + " DS (referral)", Answer: ans})
			}
		}
		if len(ev) > 0 {
			ev = append(ev, finding.Evidence{Query: "declared ds", Answer: strings.Join(want, "; ")})
			c.add(DSNotAsDeclared, "", fmt.Sprintf("the DS set at %s for %s is not the declared one — a key rollover not yet declared, or a tampered delegation",
				zoneName(c.obs.Parent.Zone), c.d.Name), ev...)
		}
	}
}

// providerDiversity flags too few name servers and a single provider.
func (c *domainCheck) providerDiversity() {
	ns := c.obs.Parent.NS
	if len(ns) < 2 {
		c.add(NSCountLow, "", fmt.Sprintf("%s is delegated to %d name server(s); at least two are needed to survive one failure", c.d.Name, len(ns)),
			finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: strings.Join(ns, ", ")})
	}
	providers := map[string]bool{}
	for _, n := range ns {
		providers[registrable(n)] = true
	}
	if len(providers) == 1 && len(ns) > 0 {
		c.add(NSSingleProvider, "", fmt.Sprintf("every name server of %s is under %s: one provider's outage or account compromise takes the domain down",
			c.d.Name, keys(providers)[0]), finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: strings.Join(ns, ", ")})
	}
}

// glueMissing flags in-bailiwick name servers a parent server gives no glue for.
func (c *domainCheck) glueMissing(delegating []ParentServer) {
	var ev []finding.Evidence
	for _, s := range delegating {
		have := map[string]bool{}
		for _, g := range s.Glue {
			have[g.Name] = true
		}
		for _, n := range s.NS {
			if dns.IsSubDomain(c.name, n) && !have[n] {
				ev = append(ev, finding.Evidence{Server: s.Name + " " + s.Addr, Query: c.d.Name + " NS", Answer: "no glue for " + n})
			}
		}
	}
	if len(ev) > 0 {
		c.add(GlueMissing, "", fmt.Sprintf("the delegation of %s names servers inside the domain without glue: resolvers cannot reach them", c.d.Name), ev...)
	}
}

func parentAnswerText(s ParentServer) string {
	switch s.Status {
	case StatusDelegated, StatusAnswered:
		var parts []string
		parts = append(parts, "NS "+strings.Join(s.NS, ", "))
		for _, g := range s.Glue {
			parts = append(parts, fmt.Sprintf("glue %s %s", g.Name, strings.Join(g.Addrs, " ")))
		}
		if len(s.DS) > 0 {
			parts = append(parts, "DS "+strings.Join(s.DS, "; "))
		}
		return strings.Join(parts, "; ")
	case StatusError, StatusLame:
		return s.Status + ": " + s.Error
	}
	return strings.ToUpper(s.Status)
}

func parentEvidence(qname string, servers []ParentServer) []finding.Evidence {
	var ev []finding.Evidence
	for _, s := range servers {
		ev = append(ev, finding.Evidence{Server: strings.TrimSpace(s.Name + " " + s.Addr), Query: strings.TrimSuffix(qname, ".") + " NS", Answer: parentAnswerText(s)})
	}
	return ev
}

func parentSummary(servers []ParentServer) string {
	var parts []string
	for _, s := range servers {
		parts = append(parts, fmt.Sprintf("%s %s: %s", s.Name, s.Addr, parentAnswerText(s)))
	}
	return strings.Join(parts, "; ")
}

func nsUnion(servers []ParentServer) []string {
	var all []string
	for _, s := range servers {
		all = union(all, s.NS)
	}
	return all
}

// registrable returns the registrable domain (eTLD+1) of a host name.
func registrable(host string) string {
	h := strings.TrimSuffix(host, ".")
	if r, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return r
	}
	return h
}

func dsString(ds *dns.DS) string {
	return fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest))
}

func zoneName(z string) string {
	if z == "." {
		return "root"
	}
	return strings.TrimSuffix(z, ".")
}

func fqdns(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, dns.Fqdn(strings.ToLower(n)))
	}
	sort.Strings(out)
	return out
}

func union(a, b []string) []string {
	set := map[string]bool{}
	for _, x := range a {
		set[x] = true
	}
	for _, x := range b {
		set[x] = true
	}
	return keys(set)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	return strings.Join(union(a, nil), "\x00") == strings.Join(union(b, nil), "\x00")
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	sort.Strings(out)
	return out
}
