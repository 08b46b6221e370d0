package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

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
	limit := c.m.res.MaxNSPerDelegation()
	for i, ns := range parent.Servers {
		if i == limit {
			break // a parent zone's own delegation is bounded like any other
		}
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
	asks := make([]resolver.Ask, len(targets))
	for i, t := range targets {
		asks[i] = resolver.Ask{Server: c.m.res.AddrPort(t.addr), Query: resolver.Query{Name: c.name, Type: dns.TypeNS, Proto: resolver.UDP, DO: true}}
	}
	resps := c.cycle.ExchangeAll(ctx, asks)
	answers := make([]ParentServer, len(targets))
	var answered []int
	for i, t := range targets {
		answers[i] = c.parentAnswer(t.name, t.addr, parent.Zone, resps[i])
		if answers[i].Status == StatusAnswered {
			answered = append(answered, i)
		}
	}
	// A parent server that answered for the child itself (it serves both
	// zones) is asked for the DS as well.
	fanOut(len(answered), func(j int) {
		i := answered[j]
		c.answeredDS(ctx, asks[i].Server, &answers[i])
	})
	p.Servers = append(p.Servers, answers...)

	var delegating, denying, usable, broken []ParentServer
	notAuth := 0
	for _, s := range p.Servers {
		switch s.Status {
		case StatusDelegated, StatusAnswered:
			delegating = append(delegating, s)
			usable = append(usable, s)
		case StatusNXDomain, StatusNoData:
			denying = append(denying, s)
			usable = append(usable, s)
		case StatusNotAuthoritative:
			notAuth++
			broken = append(broken, s)
		case StatusLame:
			broken = append(broken, s)
		}
	}
	if len(usable) == 0 {
		summary := parentSummary(p.Servers)
		switch {
		case notAuth > 0 && notAuth == len(broken):
			// Nothing but negative answers without authority: a middlebox
			// (or a resolver) answers port 53, not the parent's servers.
			return fmt.Errorf("checking the %s servers for %s: %w (%s)", zoneName(parent.Zone), c.d.Name, ErrIntercepted, summary)
		case len(broken) > 0 && ctx.Err() == nil:
			c.parentServerErrors(broken, len(p.Servers), true)
			return nil
		}
		return fmt.Errorf("no server of the parent zone %s gave a usable answer for %s (%s)",
			strings.TrimSuffix(parent.Zone, ".")+".", c.d.Name, summary)
	}
	if len(broken) > 0 {
		c.parentServerErrors(broken, len(p.Servers), false)
	}
	// The union: a hijack on one parent server still shows up in the set.
	c.glue = map[string]map[netip.Addr]bool{}
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
		c.rememberGlue(s.Glue)
		c.rememberGlue(s.GlueUnused)
	}
	for name, addrs := range glue {
		p.Glue = append(p.Glue, Glue{Name: name, Addrs: keys(addrs)})
	}
	sortGlue(p.Glue)

	if len(delegating) == 0 {
		// Only authoritative negative answers reach this point: denying is
		// every usable server.
		c.add(DelegationMissing, "", fmt.Sprintf("the %s zone does not delegate %s: %d of its servers answer %s with authority — the domain does not resolve (suspended, on hold or deleted?)",
			zoneName(parent.Zone), c.d.Name, len(denying), denyingText(denying)), parentEvidence(c.name, p.Servers)...)
		return nil
	}
	c.parentConsistency(usable)
	c.declared(delegating)
	c.providerDiversity()
	c.glueMissing(delegating)
	return nil
}

// checkPreflight stands the given delegation in for the parent's: nothing
// is asked at the parent; the checks that judge a delegation's content
// (count, providers, glue for names inside the domain) still apply.
func (c *domainCheck) checkPreflight() {
	p := &c.obs.Parent
	pf := c.preflight
	s := ParentServer{Name: "pre-flight", Status: StatusDelegated}
	c.glue = map[string]map[netip.Addr]bool{}
	for _, ns := range pf.NS {
		name := resolver.CanonicalName(ns.Name)
		s.NS = append(s.NS, name)
		var usable, other []netip.Addr
		for _, a := range ns.Addrs {
			if a.Is4() || c.m.res.IPv6() {
				usable = append(usable, a)
			} else {
				other = append(other, a)
			}
		}
		if len(usable) > 0 {
			s.Glue = append(s.Glue, Glue{Name: name, Addrs: addrStrings(usable)})
		}
		if len(other) > 0 {
			s.GlueUnused = append(s.GlueUnused, Glue{Name: name, Addrs: addrStrings(other)})
		}
	}
	for _, d := range pf.DS {
		if ds, err := config.ParseDS(c.d.Name, d); err == nil {
			s.DS = append(s.DS, dsString(ds))
		}
	}
	sort.Strings(s.NS)
	sort.Strings(s.DS)
	sortGlue(s.Glue)
	p.NS, p.DS, p.Glue = union(nil, s.NS), union(nil, s.DS), append([]Glue(nil), s.Glue...)
	c.rememberGlue(s.Glue)
	c.rememberGlue(s.GlueUnused)
	c.providerDiversity()
	c.glueMissing([]ParentServer{s})
}

func (c *domainCheck) rememberGlue(gs []Glue) {
	for _, g := range gs {
		if c.glue[g.Name] == nil {
			c.glue[g.Name] = map[netip.Addr]bool{}
		}
		for _, a := range g.Addrs {
			if addr, err := netip.ParseAddr(a); err == nil {
				c.glue[g.Name][addr] = true
			}
		}
	}
}

// parentServerErrors reports parent servers that answered, but unusably:
// a server problem at the registry's DNS, which a resolver that happens to
// ask those servers suffers. When none answered usably it is critical.
func (c *domainCheck) parentServerErrors(broken []ParentServer, total int, all bool) {
	var ev []finding.Evidence
	for _, s := range broken {
		ev = append(ev, finding.Evidence{Server: strings.TrimSpace(s.Name + " " + s.Addr), Query: c.d.Name + " NS", Answer: parentAnswerText(s)})
	}
	sortEvidence(ev)
	if all {
		c.addSev(ParentServerError, finding.Critical, "", fmt.Sprintf("no server of the %s zone gives a usable answer for %s: resolvers cannot find the delegation (a server problem, not proof that the delegation is gone)",
			zoneName(c.obs.Parent.Zone), c.d.Name), ev...)
		return
	}
	c.add(ParentServerError, "", fmt.Sprintf("%d of %d servers of the %s zone answer %s NS unusably; resolvers that ask them fail or retry",
		len(broken), total, zoneName(c.obs.Parent.Zone), c.d.Name), ev...)
}

func denyingText(denying []ParentServer) string {
	set := map[string]bool{}
	for _, s := range denying {
		set[strings.ToUpper(s.Status)] = true
	}
	return strings.Join(keys(set), " or ")
}

func (c *domainCheck) parentAnswer(name string, addr netip.Addr, zone string, resp *resolver.Response) ParentServer {
	s := ParentServer{Name: name, Addr: addr.String(), RTTMS: ms(resp.RTT)}
	if resp.Err != nil {
		s.Status, s.Error = StatusError, probeError(resp.Err)
		if !errors.Is(resp.Err, resolver.ErrTimeout) && !errors.Is(resp.Err, resolver.ErrNetwork) {
			s.Status = StatusLame // it answered: truncated even over TCP, malformed, mismatched
		}
		return s
	}
	m := resp.Msg
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		if !m.Authoritative {
			s.Status, s.Error = StatusNotAuthoritative, notAuthText(m, "NXDOMAIN")
			return s
		}
		s.Status = StatusNXDomain
		return s
	default:
		s.Status, s.Error = StatusLame, dns.RcodeToString[m.Rcode]
		return s
	}
	if ref := resolver.Referral(m, zone, true); ref != nil {
		if ref.Zone != c.name {
			s.Status, s.Error = StatusLame, "referral to "+ref.Zone
			return s
		}
		s.Status = StatusDelegated
		for _, ns := range ref.Servers {
			s.NS = append(s.NS, ns.Name)
			var usable, other []netip.Addr
			for _, a := range ns.Addrs {
				if a.Is4() || c.m.res.IPv6() {
					usable = append(usable, a)
				} else {
					other = append(other, a)
				}
			}
			if len(usable) > 0 {
				s.Glue = append(s.Glue, Glue{Name: ns.Name, Addrs: addrStrings(usable)})
			}
			if len(other) > 0 {
				s.GlueUnused = append(s.GlueUnused, Glue{Name: ns.Name, Addrs: addrStrings(other)})
			}
		}
		for _, rr := range m.Ns {
			if ds, ok := rr.(*dns.DS); ok && resolver.CanonicalName(ds.Hdr.Name) == c.name {
				s.DS = append(s.DS, dsString(ds))
			}
		}
		// Servers shuffle RRsets (BIND does): compare sets, not orders.
		sort.Strings(s.NS)
		sort.Strings(s.DS)
		sortGlue(s.Glue)
		sortGlue(s.GlueUnused)
		return s
	}
	if !m.Authoritative {
		if len(m.Answer) == 0 && !hasNSRecord(m.Ns) {
			s.Status, s.Error = StatusNotAuthoritative, notAuthText(m, "NODATA")
			return s
		}
		s.Status, s.Error = StatusLame, "neither a referral nor an authoritative answer"
		if isUpwardReferral(m, c.name) {
			s.Error = "upward referral"
		}
		return s
	}
	for _, rr := range m.Answer {
		if ns, ok := rr.(*dns.NS); ok && resolver.CanonicalName(ns.Hdr.Name) == c.name {
			s.NS = append(s.NS, resolver.CanonicalName(ns.Ns))
		}
	}
	if len(s.NS) == 0 {
		s.Status = StatusNoData
		return s
	}
	// The server hosts the child zone too and answered from it: the NS set
	// is the child's and its additional addresses are the child's (not
	// glue). The DS is asked on its own (answeredDS).
	sort.Strings(s.NS)
	s.Status = StatusAnswered
	return s
}

// answeredDS asks a parent server that answered from the child zone for
// the DS, which lives in the parent zone: such a server answers DS from
// the parent side (RFC 4035 §3.1.4.1). One more query, for this case only.
func (c *domainCheck) answeredDS(ctx context.Context, ap netip.AddrPort, s *ParentServer) {
	r := c.cycle.Exchange(ctx, ap, resolver.Query{Name: c.name, Type: dns.TypeDS, Proto: resolver.UDP, DO: true})
	if r.Err != nil || r.Msg.Rcode != dns.RcodeSuccess {
		s.Error = "DS: " + responseText(r)
		return
	}
	for _, rr := range r.Msg.Answer {
		if ds, ok := rr.(*dns.DS); ok && resolver.CanonicalName(ds.Hdr.Name) == c.name {
			s.DS = append(s.DS, dsString(ds))
		}
	}
	sort.Strings(s.DS)
}

func notAuthText(m *dns.Msg, what string) string {
	t := what + " without the AA bit: not the zone's server answering"
	if m.RecursionAvailable {
		t += " (recursion available: a resolver or a middlebox)"
	}
	return t
}

func hasNSRecord(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if _, ok := rr.(*dns.NS); ok {
			return true
		}
	}
	return false
}

// parentConsistency reports parent servers that hand out different answers:
// NS and DS across every usable server; glue among the servers that refer
// (a server that also hosts the child answers from the child, with no glue).
func (c *domainCheck) parentConsistency(usable []ParentServer) {
	// The servers of a healthy domain give the same answer, field for
	// field: nothing to group (every key below would be the same).
	agree := true
	for _, s := range usable[min(1, len(usable)):] {
		if !sameParentAnswer(usable[0], s) {
			agree = false
			break
		}
	}
	if agree {
		return
	}
	// Grouped by the whole answer, shown bounded (a hostile NS set can hold
	// thousands of names).
	groups := map[string][]string{}
	shown := map[string]string{}
	for _, s := range usable {
		k, text := parentAnswerKey(s), parentAnswerText(s)
		if s.Status == StatusDelegated || s.Status == StatusAnswered {
			k, text = delegationKey(s), delegationText(s)
		}
		groups[k] = append(groups[k], s.Name+" "+s.Addr)
		shown[k] = text
	}
	if len(groups) < 2 {
		groups = map[string][]string{}
		for _, s := range usable {
			if s.Status == StatusDelegated {
				k := parentAnswerKey(s)
				groups[k] = append(groups[k], s.Name+" "+s.Addr)
				shown[k] = parentAnswerText(s)
			}
		}
		if len(groups) < 2 {
			return
		}
	}
	var ev []finding.Evidence
	for k, servers := range groups {
		sort.Strings(servers)
		ev = append(ev, finding.Evidence{Server: strings.Join(servers, ", "), Query: c.d.Name + " NS", Answer: shown[k]})
	}
	sort.Slice(ev, func(i, j int) bool { return ev[i].Server < ev[j].Server })
	c.add(ParentServersDisagree, "", fmt.Sprintf("the %s servers hand out %d different answers for %s",
		zoneName(c.obs.Parent.Zone), len(groups), c.d.Name), ev...)
}

// sameParentAnswer reports whether a and b answered alike in every field
// parentAnswerKey reads.
func sameParentAnswer(a, b ParentServer) bool {
	return a.Status == b.Status && a.Error == b.Error && slices.Equal(a.NS, b.NS) && slices.Equal(a.DS, b.DS) &&
		slices.EqualFunc(a.Glue, b.Glue, sameGlue) && slices.EqualFunc(a.GlueUnused, b.GlueUnused, sameGlue)
}

func sameGlue(a, b Glue) bool { return a.Name == b.Name && slices.Equal(a.Addrs, b.Addrs) }

// delegationText is an answer's NS and DS, without glue.
func delegationText(s ParentServer) string {
	t := "NS " + nameList(s.NS)
	if len(s.DS) > 0 {
		t += "; DS " + strings.Join(s.DS, "; ")
	}
	return t
}

// delegationKey and parentAnswerKey are the texts above in full, to group by.
func delegationKey(s ParentServer) string {
	return strings.Join(s.NS, ",") + "|" + strings.Join(s.DS, ";")
}

// parentAnswerKey reads the fields sameParentAnswer compares: a field added
// here goes there too, or agreeing servers hide a disagreement.
func parentAnswerKey(s ParentServer) string {
	k := s.Status + "|" + delegationKey(s) + "|" + s.Error
	for _, g := range append(append([]Glue(nil), s.Glue...), s.GlueUnused...) {
		k += "|" + g.Name + "=" + strings.Join(g.Addrs, ",")
	}
	return k
}

// nameList joins names for a message or an evidence line, at most ten.
func nameList(names []string) string {
	if len(names) <= 10 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:10], ", ") + fmt.Sprintf(", … %d more", len(names)-10)
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
				ev = append(ev, finding.Evidence{Server: s.Name + " " + s.Addr, Query: c.d.Name + " NS", Answer: "NS " + nameList(s.NS)})
			}
		}
		if len(ev) > 0 {
			ev = append(ev, finding.Evidence{Query: "declared nameservers", Answer: nameList(want)})
			c.add(NSNotAsDeclared, "", fmt.Sprintf("%d of %d parent servers delegate %s to %s, not to the declared %s — hijack, unauthorised change or registry error",
				len(wrong), len(delegating), c.d.Name, nameList(nsUnion(wrong)), nameList(want)), ev...)
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
			finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: nameList(ns)})
	}
	providers := map[string]bool{}
	for _, n := range ns {
		providers[registrable(n)] = true
	}
	if len(providers) == 1 && len(ns) > 0 {
		c.add(NSSingleProvider, "", fmt.Sprintf("every name server of %s is under %s: one provider's outage or account compromise takes the domain down",
			c.d.Name, keys(providers)[0]), finding.Evidence{Query: c.d.Name + " NS (parent)", Answer: nameList(ns)})
	}
}

// glueMissing flags in-bailiwick name servers a referral gives no glue for
// (in either address family: AAAA-only glue is glue, whether or not
// nsguard uses IPv6). A server that answers from the child zone itself
// gives no referral, so no glue, and is not asked for any.
func (c *domainCheck) glueMissing(delegating []ParentServer) {
	var ev []finding.Evidence
	for _, s := range delegating {
		if s.Status != StatusDelegated {
			continue
		}
		have := map[string]bool{}
		for _, g := range append(append([]Glue(nil), s.Glue...), s.GlueUnused...) {
			have[g.Name] = true
		}
		for _, n := range s.NS {
			if resolver.IsSubDomain(c.name, n) && !have[n] {
				ev = append(ev, finding.Evidence{Server: strings.TrimSpace(s.Name + " " + s.Addr), Query: c.d.Name + " NS", Answer: "no glue for " + n})
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
		ns := "NS "
		if s.Status == StatusAnswered {
			ns = "authoritative NS (hosts the child) "
		}
		parts = append(parts, ns+nameList(s.NS))
		for _, g := range s.Glue {
			parts = append(parts, fmt.Sprintf("glue %s %s", g.Name, strings.Join(g.Addrs, " ")))
		}
		for _, g := range s.GlueUnused {
			parts = append(parts, fmt.Sprintf("glue %s %s (not used: resolver.ipv6 is false)", g.Name, strings.Join(g.Addrs, " ")))
		}
		if len(s.DS) > 0 {
			parts = append(parts, "DS "+strings.Join(s.DS, "; "))
		}
		return strings.Join(parts, "; ")
	case StatusError, StatusLame, StatusNotAuthoritative:
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

// sameSet reports whether a and b hold the same strings (duplicates and
// order aside). Small sets, the usual case, are compared in place.
func sameSet(a, b []string) bool {
	if len(a)*len(b) > 1024 {
		return strings.Join(union(a, nil), "\x00") == strings.Join(union(b, nil), "\x00")
	}
	return allIn(a, b) && allIn(b, a)
}

func allIn(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	sort.Strings(out)
	return out
}
