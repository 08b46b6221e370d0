package dnslab

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Delegation and name server edge cases: each one is a misconfiguration
// seen on real name servers serving a DNS checker's published scenarios,
// reproduced here so that both the in-process servers and BIND serve it.

// Alias turns name in domain into a CNAME to target (replacing whatever
// name held): a watched name that is an alias of the apex, of a name in
// another zone, or of a CDN's name.
func (l *Lab) Alias(ctx context.Context, domain, name, target string) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		if z == nil {
			return fmt.Errorf("dnslab: no zone %s", domain)
		}
		owner := watchFQDN(name, dns.CanonicalName(domain))
		z.Remove(owner, 0)
		z.Add(fmt.Sprintf("%s 300 IN CNAME %s", owner, dns.Fqdn(target)))
		resignIfSigned(z, w)
		return nil
	})
}

// GlueWithoutChildRecord adds ns (a name inside domain) to the delegation,
// with glue at the parent pointing at addr, while the zone itself has no
// record at all for ns: it answers NXDOMAIN for the very name its parent
// glues (a name server retired from the zone and left at the registry).
// The zone's own NS set does not name it: BIND refuses to load a zone
// whose NS names an in-zone host without an address.
func (l *Lab) GlueWithoutChildRecord(ctx context.Context, domain, ns, addr string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain, ns = dns.CanonicalName(domain), dns.CanonicalName(ns)
		parent, child := w.Zone(w.ParentOf(domain)), w.Zone(domain)
		if parent == nil || child == nil || !dns.IsSubDomain(domain, ns) {
			return fmt.Errorf("dnslab: %s is not a name server inside %s", ns, domain)
		}
		parent.Add(fmt.Sprintf("%s 172800 IN NS %s", domain, ns), glueRecord(ns, addr))
		child.Remove(ns, 0)
		resignIfSigned(parent, w)
		resignIfSigned(child, w)
		return nil
	})
}

// ChildAddressOtherFamily makes the zone publish only an IPv6 address for
// ns (a name inside domain) while the parent keeps its IPv4 glue: the two
// sides agree on nothing, as when a server was renumbered to IPv6 in the
// zone and the registry's host object kept the old address.
func (l *Lab) ChildAddressOtherFamily(ctx context.Context, domain, ns, v6 string) error {
	return l.Mutate(ctx, func(w *World) error {
		child := w.Zone(domain)
		if child == nil {
			return fmt.Errorf("dnslab: no zone %s", domain)
		}
		ns = dns.CanonicalName(ns)
		child.Remove(ns, 0)
		child.Add(fmt.Sprintf("%s 3600 IN AAAA %s", ns, v6))
		resignIfSigned(child, w)
		return nil
	})
}

// IPv6OnlyNameServers re-delegates domain to name servers that have IPv6
// addresses only, at the parent (AAAA glue for the name inside domain) and
// in their own zones: an IPv4-only resolver cannot reach the domain. ns is
// the in-domain name (with AAAA glue) and other an extra name added to
// provider B's zone with an AAAA record only. The zone's data stays on
// provider A and B's servers.
func (l *Lab) IPv6OnlyNameServers(ctx context.Context, domain, ns, other string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain, ns, other = dns.CanonicalName(domain), dns.CanonicalName(ns), dns.CanonicalName(other)
		parent, child := w.Zone(w.ParentOf(domain)), w.Zone(domain)
		otherZone := w.Zone(w.ParentOf(other))
		if parent == nil || child == nil || otherZone == nil || !dns.IsSubDomain(domain, ns) {
			return fmt.Errorf("dnslab: cannot make %s IPv6-only with %s and %s", domain, ns, other)
		}
		for _, rr := range parent.RRset(domain, dns.TypeNS) {
			if old := dns.CanonicalName(rr.(*dns.NS).Ns); dns.IsSubDomain(domain, old) {
				parent.Remove(old, dns.TypeA) // the domain's own glue; sibling glue serves others
			}
		}
		parent.Replace(domain, dns.TypeNS,
			fmt.Sprintf("%s 172800 IN NS %s", domain, ns), fmt.Sprintf("%s 172800 IN NS %s", domain, other))
		parent.Add(fmt.Sprintf("%s 172800 IN AAAA %s", ns, w.v6(1)))
		child.Replace(domain, dns.TypeNS, fmt.Sprintf("%s 86400 IN NS %s", domain, ns), fmt.Sprintf("%s 86400 IN NS %s", domain, other))
		child.Remove(ns, 0)
		child.Add(fmt.Sprintf("%s 3600 IN AAAA %s", ns, w.v6(1)))
		otherZone.Remove(other, 0)
		otherZone.Add(fmt.Sprintf("%s 3600 IN AAAA %s", other, w.v6(2)))
		for _, z := range []*Zone{parent, child, otherZone} {
			resignIfSigned(z, w)
		}
		return nil
	})
}

// v6 is an address in the lab's documentation-prefix IPv6 range (nothing
// listens there: the lab is IPv4, as nsguard is with resolver.ipv6 false).
func (w *World) v6(n int) string { return fmt.Sprintf("2001:db8:%d::%d", w.Base, n) }

// ReplaceDS swaps the parent's DS RRset of domain for records given as
// "keytag algorithm digesttype digest".
func (l *Lab) ReplaceDS(ctx context.Context, domain string, ds ...string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain = dns.CanonicalName(domain)
		parent := w.Zone(w.ParentOf(domain))
		if parent == nil {
			return fmt.Errorf("dnslab: no parent zone for %s", domain)
		}
		parent.Remove(domain, dns.TypeDS)
		for _, d := range ds {
			parent.Add(fmt.Sprintf("%s 86400 IN DS %s", domain, d))
		}
		resignIfSigned(parent, w)
		return nil
	})
}

// ParentHostsChild makes a parent zone's server serve the child zone too:
// asked for the child's NS it answers with authority from the child's own
// data (NS in the answer, addresses in the additional section), not with a
// referral; the other parent servers still refer.
func (l *Lab) ParentHostsChild(ctx context.Context, domain, server string) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		if h == nil || w.Zone(domain) == nil {
			return fmt.Errorf("dnslab: no server %s or zone %s", server, domain)
		}
		h.Zones = appendOnce(h.Zones, dns.CanonicalName(domain))
		return nil
	})
}

// Intercept puts a DNS-intercepting middlebox between nsguard and every
// lab server (FaultIntercept on every host): each UDP query is answered
// NXDOMAIN, `qr ra`, no `aa`, by the box.
func (l *Lab) Intercept(ctx context.Context) error {
	return l.SetFaultAll(ctx, FaultIntercept)
}

// SetFaultAll gives every lab host (roots, TLDs, providers, the attacker)
// the same fault: FaultTimeout is a network where no server ever answers.
func (l *Lab) SetFaultAll(ctx context.Context, f Fault) error {
	return l.Mutate(ctx, func(w *World) error {
		for _, h := range w.Hosts {
			h.Fault = f
		}
		return nil
	})
}

// FloodNameServers delegates domain to n glueless name servers whose names
// do not exist (under an undelegated zone): a referral built to make a
// resolver (or a monitor) send thousands of queries.
func (l *Lab) FloodNameServers(ctx context.Context, domain string, n int) error {
	return l.Mutate(ctx, func(w *World) error {
		domain = dns.CanonicalName(domain)
		parent := w.Zone(w.ParentOf(domain))
		if parent == nil {
			return fmt.Errorf("dnslab: no parent zone for %s", domain)
		}
		recs := make([]string, n)
		for i := range recs {
			recs[i] = fmt.Sprintf("%s 172800 IN NS ns%04d.flood-example.net.", domain, i)
		}
		parent.Replace(domain, dns.TypeNS, recs...)
		parent.Remove(domain, dns.TypeDS)
		resignIfSigned(parent, w)
		return nil
	})
}

// ServeUndelegated creates zone on the given servers (a copy of the
// default zone shape: SOA, NS naming those servers, an apex and a www
// address) without any delegation at its parent: the state a zone is in
// before a move to a new DNS provider, ready to be pre-flighted.
func (l *Lab) ServeUndelegated(ctx context.Context, zone string, servers ...string) error {
	return l.Mutate(ctx, func(w *World) error {
		zone = dns.CanonicalName(zone)
		if len(servers) == 0 {
			return fmt.Errorf("dnslab: no servers for %s", zone)
		}
		z := NewZone(zone).Add(soaRecord(zone, dns.Fqdn(servers[0]), DefaultSerial))
		for _, s := range servers {
			h := w.Host(s)
			if h == nil {
				return fmt.Errorf("dnslab: no server %s", s)
			}
			z.Add(fmt.Sprintf("%s 86400 IN NS %s", zone, h.Name))
			h.Zones = appendOnce(h.Zones, zone)
		}
		z.Add("@ A 192.0.2.90", "www A 192.0.2.90")
		w.Zones[zone] = z
		return nil
	})
}

func glueRecord(name, addr string) string {
	t := "A"
	if strings.Contains(addr, ":") {
		t = "AAAA"
	}
	return fmt.Sprintf("%s 172800 IN %s %s", dns.Fqdn(name), t, addr)
}
