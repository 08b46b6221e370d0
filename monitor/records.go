package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// WatchItem is one watched name with the record types asked for it.
type WatchItem struct {
	Name  string // FQDN
	Types []uint16
}

// WatchItems expands a domain's watch entries: "www" (A and AAAA), "@ MX",
// "mail.example.com. A". Exported for the baseline and audit code.
func WatchItems(d config.Domain) []WatchItem {
	var out []WatchItem
	for _, w := range d.Watch {
		f := strings.Fields(w)
		if len(f) == 0 {
			continue
		}
		item := WatchItem{Name: watchName(f[0], d.Name)}
		for _, t := range f[1:] {
			if qt, ok := dns.StringToType[strings.ToUpper(t)]; ok {
				item.Types = append(item.Types, qt)
			}
		}
		if len(item.Types) == 0 {
			item.Types = []uint16{dns.TypeA, dns.TypeAAAA}
		}
		out = append(out, item)
	}
	return out
}

func watchName(name, domain string) string {
	if name == "@" {
		return dns.Fqdn(strings.ToLower(domain))
	}
	if dns.IsFqdn(name) {
		return resolver.CanonicalName(name)
	}
	return resolver.CanonicalName(name + "." + dns.Fqdn(domain))
}

// recordData renders the records of an answer owned by name as "TYPE rdata",
// sorted: the owner's CNAME or its records of type t.
func recordData(m *dns.Msg, name string, t uint16) []string {
	var out []string
	for _, rr := range m.Answer {
		if resolver.CanonicalName(rr.Header().Name) != name {
			continue
		}
		rt := rr.Header().Rrtype
		if rt == t || rt == dns.TypeCNAME {
			out = append(out, dns.TypeToString[rt]+" "+rdata(rr))
		}
	}
	sort.Strings(out)
	return out
}

func answerKey(a ServerAnswer) string {
	if a.Rcode != "" && a.Rcode != "NOERROR" {
		return a.Rcode
	}
	if len(a.Data) == 0 {
		return "no records"
	}
	return strings.Join(a.Data, ", ")
}

// checkRecords asks every authoritative server for each watched name/type
// — all the questions at once — and flags servers that disagree.
func (c *domainCheck) checkRecords(ctx context.Context) {
	items := WatchItems(c.d)
	if len(items) == 0 {
		return
	}
	type target struct {
		name string
		ap   netip.AddrPort
	}
	var targets []target
	for _, s := range c.obs.Servers {
		if s.UDP.Status != ProbeOK {
			continue
		}
		if a, err := netip.ParseAddr(s.Addr); err == nil {
			targets = append(targets, target{s.Name, c.m.res.AddrPort(a)})
		}
	}
	var asks []resolver.Ask
	for _, it := range items {
		for _, t := range it.Types {
			for _, tg := range targets {
				asks = append(asks, resolver.Ask{Server: tg.ap, Query: resolver.Query{Name: it.Name, Type: t, Proto: resolver.UDP}})
			}
		}
	}
	resps := c.cycle.ExchangeAll(ctx, asks)
	for _, it := range items {
		for _, t := range it.Types {
			rec := Record{Name: it.Name, Type: dns.TypeToString[t], Answers: make([]ServerAnswer, len(targets))}
			for i, tg := range targets {
				rec.Answers[i] = recordAnswer(resps[0], tg.ap, tg.name, it.Name, t)
				resps = resps[1:]
			}
			c.obs.Records = append(c.obs.Records, rec)
			c.recordConsistency(rec)
		}
	}
}

// recordAnswer is what server (at ap) answered for name/t.
func recordAnswer(r *resolver.Response, ap netip.AddrPort, server, name string, t uint16) ServerAnswer {
	a := ServerAnswer{Server: server, Addr: ap.Addr().String()}
	if r.Err != nil {
		a.Error = probeError(r.Err)
		return a
	}
	a.Rcode = dns.RcodeToString[r.Msg.Rcode]
	a.Data = recordData(r.Msg, name, t)
	return a
}

func (c *domainCheck) recordConsistency(rec Record) {
	groups := map[string][]string{}
	for _, a := range rec.Answers {
		if a.Error != "" {
			continue
		}
		k := answerKey(a)
		groups[k] = append(groups[k], a.Server+" "+a.Addr)
	}
	if len(groups) < 2 {
		return
	}
	var ev []finding.Evidence
	for k, who := range groups {
		ev = append(ev, finding.Evidence{Server: strings.Join(who, ", "), Query: strings.TrimSuffix(rec.Name, ".") + " " + rec.Type, Answer: k})
	}
	sortEvidence(ev)
	sev, err := finding.ParseSeverity(c.d.WatchSeverity)
	if err != nil || sev == finding.OK {
		sev = finding.Warning
	}
	c.addSev(RecordChanged, sev, strings.TrimSuffix(rec.Name, ".")+"/"+rec.Type,
		fmt.Sprintf("the name servers of %s give %d different answers for %s %s", c.d.Name, len(groups), strings.TrimSuffix(rec.Name, "."), rec.Type), ev...)
}

// checkResolverView asks each public resolver for the watched names and
// compares with what the trusted name servers (approved baseline, else
// declared, else delegated) answer: poisoning or a hijack that only some
// networks see. Both sides follow CNAME chains to their end (maxChain hops,
// loops stopped) and the final answers are compared: a watched alias of
// the apex or of a CDN name is only as safe as what it ends at.
func (c *domainCheck) checkResolverView(ctx context.Context) {
	items := WatchItems(c.d)
	resolvers := c.m.cfg.Resolver.PublicResolvers
	if len(items) == 0 || len(resolvers) == 0 {
		return
	}
	trusted := c.trusted
	if len(trusted) == 0 {
		names := c.d.Nameservers
		if len(names) == 0 {
			names, _ = c.capNames(c.obs.Parent.NS)
		}
		for _, n := range fqdns(names) {
			trusted = append(trusted, resolver.NameServer{Name: n})
		}
	}
	if limit := c.m.res.MaxNSPerDelegation(); len(trusted) > limit {
		trusted = trusted[:limit]
	}
	var truth []netip.AddrPort
	for _, ns := range trusted {
		addrs, err := c.cycle.ServerAddrs(ctx, ns)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Is4() || c.m.res.IPv6() {
				truth = append(truth, c.m.res.AddrPort(a))
			}
		}
	}
	if len(truth) == 0 {
		return
	}
	// One finding per domain: a poisoned resolver usually serves several
	// forged names at once, and the on-call needs one page, not one per name.
	var ev []finding.Evidence
	var diverging []string
	for _, it := range items {
		for _, t := range it.Types {
			expected := map[string]bool{}
			var expectedChain []string
			answered := false
			for _, ap := range truth {
				ch := followChain(ctx, it.Name, t, c.trustedSource(ap, t))
				if ch.Error != "" || (ch.Rcode != dns.RcodeSuccess && ch.Rcode != dns.RcodeNameError) {
					continue
				}
				if !answered {
					expectedChain = ch.Hops
				}
				answered = true
				for _, d := range ch.Data {
					expected[d] = true
				}
			}
			if !answered {
				continue
			}
			want := keys(expected)
			q := strings.TrimSuffix(it.Name, ".") + " " + dns.TypeToString[t]
			before := len(ev)
			for _, rs := range resolvers {
				ap, err := config.ParseServer(rs, int(c.m.res.Port()))
				if err != nil {
					continue
				}
				v := c.resolverView(ctx, ap, it.Name, t, want, expectedChain)
				c.obs.Resolvers = append(c.obs.Resolvers, v)
				if v.Error == "" && !sameSet(v.Data, want) {
					got := chainText(v.Chain, v.Data)
					if v.Rcode != "NOERROR" {
						got = chainText(v.Chain, nil) + v.Rcode
						if len(v.Chain) == 0 {
							got = v.Rcode
						}
					}
					ev = append(ev, finding.Evidence{Server: "resolver " + ap.String(), Query: q, Answer: got})
				}
			}
			if len(ev) > before {
				diverging = append(diverging, q)
				ev = append(ev, finding.Evidence{Server: "trusted name servers", Query: q, Answer: chainText(expectedChain, want)})
			}
		}
	}
	if len(ev) > 0 {
		c.add(ResolverAnswerDiverges, "", fmt.Sprintf("public resolvers answer %s differently from %s's trusted name servers: cache poisoning, or a hijack seen from some networks",
			strings.Join(diverging, ", "), c.d.Name), ev...)
	}
}

// chainText renders a chain for evidence: "CNAME shop-example.com. → A
// 192.0.2.10".
func chainText(hops []string, data []string) string {
	var parts []string
	for _, h := range hops {
		if f := strings.Fields(h); len(f) == 3 {
			parts = append(parts, "CNAME "+f[2])
		}
	}
	if data != nil || len(parts) == 0 {
		parts = append(parts, dataText(data))
	}
	return strings.Join(parts, " → ")
}

func dataText(d []string) string {
	if len(d) == 0 {
		return "no records"
	}
	return strings.Join(d, ", ")
}

func (c *domainCheck) resolverView(ctx context.Context, ap netip.AddrPort, name string, t uint16, want, wantChain []string) ResolverView {
	v := ResolverView{Resolver: ap.String(), Name: name, Type: dns.TypeToString[t], Expected: want, ExpectedChain: wantChain}
	ch := followChain(ctx, name, t, func(ctx context.Context, n string) (hopAnswer, error) {
		r := c.cycle.Exchange(ctx, ap, resolver.Query{Name: n, Type: t, Proto: resolver.UDP, RD: true})
		if r.Err != nil {
			return hopAnswer{}, errors.New(probeError(r.Err))
		}
		return hopAnswer{rrs: r.Msg.Answer, rcode: r.Msg.Rcode, carries: func(string) bool { return true }}, nil
	})
	v.Chain, v.Data, v.Error = ch.Hops, ch.Data, ch.Error
	if ch.Error == "" {
		v.Rcode = dns.RcodeToString[ch.Rcode]
	}
	return v
}

// trustedSource answers a chain's hops the way the truth is known: names
// inside the domain from the trusted server ap (the zone's own data, even
// while the delegation is hijacked), names elsewhere — another zone, a CDN
// — by iterative resolution, shared with the whole cycle. A hop that the
// trusted server refers to a zone below the domain is resolved too.
func (c *domainCheck) trustedSource(ap netip.AddrPort, t uint16) hopSource {
	inDomain := func(n string) bool { return resolver.IsSubDomain(c.name, n) }
	outside := func(n string) bool { return !inDomain(n) }
	return func(ctx context.Context, n string) (hopAnswer, error) {
		if inDomain(n) {
			r := c.cycle.Exchange(ctx, ap, resolver.Query{Name: n, Type: t, Proto: resolver.UDP})
			if r.Err != nil {
				return hopAnswer{}, errors.New(probeError(r.Err))
			}
			if resolver.ReferralZone(r.Msg, c.name) == "" {
				return hopAnswer{rrs: r.Msg.Answer, rcode: r.Msg.Rcode, carries: inDomain}, nil
			}
			// A zone delegated below the domain: its own servers know.
		}
		rrs, err := c.cycle.Lookup(ctx, n, t)
		if err != nil {
			return hopAnswer{}, err
		}
		// Lookup hides NXDOMAIN: an empty end of chain reads "no records".
		return hopAnswer{rrs: rrs, rcode: dns.RcodeSuccess, carries: outside}, nil
	}
}

// maxChain bounds the CNAME hops followed for one watched name, as
// resolvers bound theirs.
const maxChain = 8

// hopAnswer is one source's answer for one name of a chain: the records,
// the rcode, and which owners' records this source may be taken at its
// word for (the rest are asked again).
type hopAnswer struct {
	rrs     []dns.RR
	rcode   int
	carries func(owner string) bool
}

type hopSource func(ctx context.Context, name string) (hopAnswer, error)

// chain is a CNAME chain followed to its end.
type chain struct {
	Hops  []string // "www.example.com. CNAME example.com."
	Data  []string // the final records of the type asked, "A 192.0.2.10"
	Rcode int
	Error string
}

// followChain follows name's CNAMEs through the answers source gives, at
// most maxChain hops, and stops at a loop. Each hop's target is taken from
// the same answer when the answer carries it (and the source may speak for
// it), else asked again.
func followChain(ctx context.Context, name string, t uint16, source hopSource) chain {
	var ch chain
	cur := resolver.CanonicalName(name)
	seen := map[string]bool{cur: true}
	for {
		ans, err := source(ctx, cur)
		if err != nil {
			ch.Error = err.Error()
			return ch
		}
		ch.Rcode = ans.rcode
		for {
			data, target := ownedBy(ans.rrs, cur, t)
			if len(data) > 0 || target == "" {
				ch.Data = data
				return ch
			}
			ch.Hops = append(ch.Hops, cur+" CNAME "+target)
			switch {
			case seen[target]:
				ch.Error = "CNAME loop at " + strings.TrimSuffix(target, ".")
				return ch
			case len(ch.Hops) >= maxChain:
				ch.Error = fmt.Sprintf("CNAME chain longer than %d", maxChain)
				return ch
			}
			seen[target] = true
			cur = target
			if !ans.carries(cur) || !owns(ans.rrs, cur) {
				break // ask for the next hop
			}
		}
	}
}

// ownedBy returns name's records of type t in rrs ("TYPE rdata", sorted)
// or, when it has none, the target of its CNAME.
func ownedBy(rrs []dns.RR, name string, t uint16) ([]string, string) {
	var data []string
	target := ""
	for _, rr := range rrs {
		if resolver.CanonicalName(rr.Header().Name) != name {
			continue
		}
		switch rt := rr.Header().Rrtype; {
		case rt == t:
			data = append(data, dns.TypeToString[rt]+" "+rdata(rr))
		case rt == dns.TypeCNAME:
			target = resolver.CanonicalName(rr.(*dns.CNAME).Target)
		}
	}
	sort.Strings(data)
	if len(data) > 0 {
		return data, ""
	}
	return nil, target
}

func owns(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if resolver.CanonicalName(rr.Header().Name) == name {
			return true
		}
	}
	return false
}
