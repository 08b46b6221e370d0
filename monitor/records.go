package monitor

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

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
		return dns.CanonicalName(name)
	}
	return dns.CanonicalName(name + "." + dns.Fqdn(domain))
}

// recordData renders the records of an answer owned by name as "TYPE rdata",
// sorted: the owner's CNAME or its records of type t.
func recordData(m *dns.Msg, name string, t uint16) []string {
	var out []string
	for _, rr := range m.Answer {
		if dns.CanonicalName(rr.Header().Name) != name {
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
// and flags servers that disagree.
func (c *domainCheck) checkRecords(ctx context.Context) {
	items := WatchItems(c.d)
	if len(items) == 0 {
		return
	}
	type target struct{ name, addr string }
	var targets []target
	for _, s := range c.obs.Servers {
		if s.UDP.Status == ProbeOK {
			targets = append(targets, target{s.Name, s.Addr})
		}
	}
	for _, it := range items {
		for _, t := range it.Types {
			rec := Record{Name: it.Name, Type: dns.TypeToString[t], Answers: make([]ServerAnswer, len(targets))}
			var wg sync.WaitGroup
			for i, tg := range targets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, _ := netip.ParseAddr(tg.addr)
					rec.Answers[i] = c.askRecord(ctx, c.m.res.AddrPort(a), tg.name, it.Name, t)
				}()
			}
			wg.Wait()
			c.obs.Records = append(c.obs.Records, rec)
			c.recordConsistency(rec)
		}
	}
}

func (c *domainCheck) askRecord(ctx context.Context, ap netip.AddrPort, server, name string, t uint16) ServerAnswer {
	a := ServerAnswer{Server: server, Addr: ap.Addr().String()}
	r := c.cycle.Exchange(ctx, ap, resolver.Query{Name: name, Type: t, Proto: resolver.UDP})
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
// networks see.
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
			names = c.obs.Parent.NS
		}
		for _, n := range fqdns(names) {
			trusted = append(trusted, resolver.NameServer{Name: n})
		}
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
			answered := false
			for _, ap := range truth {
				a := c.askRecord(ctx, ap, "", it.Name, t)
				if a.Error == "" && (a.Rcode == "NOERROR" || a.Rcode == "NXDOMAIN") {
					answered = true
					for _, d := range a.Data {
						expected[d] = true
					}
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
				v := c.resolverView(ctx, ap, it.Name, t, want)
				c.obs.Resolvers = append(c.obs.Resolvers, v)
				if v.Error == "" && !sameSet(v.Data, want) {
					got := dataText(v.Data)
					if v.Rcode != "NOERROR" {
						got = v.Rcode
					}
					ev = append(ev, finding.Evidence{Server: "resolver " + ap.String(), Query: q, Answer: got})
				}
			}
			if len(ev) > before {
				diverging = append(diverging, q)
				ev = append(ev, finding.Evidence{Server: "trusted name servers", Query: q, Answer: dataText(want)})
			}
		}
	}
	if len(ev) > 0 {
		c.add(ResolverAnswerDiverges, "", fmt.Sprintf("public resolvers answer %s differently from %s's trusted name servers: cache poisoning, or a hijack seen from some networks",
			strings.Join(diverging, ", "), c.d.Name), ev...)
	}
}

func dataText(d []string) string {
	if len(d) == 0 {
		return "no records"
	}
	return strings.Join(d, ", ")
}

func (c *domainCheck) resolverView(ctx context.Context, ap netip.AddrPort, name string, t uint16, want []string) ResolverView {
	v := ResolverView{Resolver: ap.String(), Name: name, Type: dns.TypeToString[t], Expected: want}
	r := c.cycle.Exchange(ctx, ap, resolver.Query{Name: name, Type: t, Proto: resolver.UDP, RD: true})
	if r.Err != nil {
		v.Error = probeError(r.Err)
		return v
	}
	v.Rcode = dns.RcodeToString[r.Msg.Rcode]
	v.Data = recordData(r.Msg, name, t)
	return v
}
