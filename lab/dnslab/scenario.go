package dnslab

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// The scenarios break the lab the way the real Internet breaks. Each one
// names the domain (or server) it breaks; Reset heals everything.

// Hijack makes the TLD delegate domain to the attacker's name servers, which
// serve a forged copy of the zone.
func (l *Lab) Hijack(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain = dns.CanonicalName(domain)
		parent := w.Zone(w.ParentOf(domain))
		if parent == nil {
			return fmt.Errorf("dnslab: no parent zone for %s", domain)
		}
		parent.Replace(domain, dns.TypeNS,
			fmt.Sprintf("%s 172800 IN NS ns1.attacker.net.", domain),
			fmt.Sprintf("%s 172800 IN NS ns2.attacker.net.", domain))
		parent.Remove(domain, dns.TypeDS)
		resignIfSigned(parent, w)
		// The victim's providers keep the real zone as it is now.
		real := w.Zone(domain).Clone()
		forged := NewZone(domain).Add(
			soaRecord(domain, "ns1.attacker.net.", 1),
			fmt.Sprintf("%s 300 IN NS ns1.attacker.net.", domain),
			fmt.Sprintf("%s 300 IN NS ns2.attacker.net.", domain),
			fmt.Sprintf("%s 300 IN A %s", domain, AttackerAddr),
		)
		for _, d := range w.Domains {
			if dns.CanonicalName(d.Name) != domain {
				continue
			}
			for _, name := range d.Watch {
				forgeWatched(forged, real, watchFQDN(name, domain))
			}
		}
		w.Zones[domain] = forged
		for _, h := range w.Hosts {
			if h.Role == "attacker" {
				h.Zones = appendOnce(h.Zones, domain)
			}
		}
		// The victim's providers still hold the real zone as their own copy.
		for _, h := range w.Hosts {
			if h.Role != "attacker" && contains(h.Zones, domain) {
				if h.Override == nil {
					h.Override = map[string]*Zone{}
				}
				h.Override[domain] = real.Clone()
			}
		}
		return nil
	})
}

// AttackerAddr is where the attacker's forged records point.
const AttackerAddr = "203.0.113.66"

// forgeWatched puts a watched name into the attacker's copy of a zone the
// way a careful attacker copies it: an alias stays the alias it was (a
// resolver then shows the same CNAME as the real servers) and whatever
// name the alias ends at inside the zone points at the attacker.
func forgeWatched(forged, real *Zone, name string) {
	for hops := 0; hops < 8; hops++ {
		cname := real.RRset(name, dns.TypeCNAME)
		if len(cname) == 0 {
			if len(forged.RRset(name, dns.TypeA)) == 0 && len(forged.RRset(name, dns.TypeCNAME)) == 0 {
				forged.Add(fmt.Sprintf("%s 300 IN A %s", name, AttackerAddr))
			}
			return
		}
		if len(forged.RRset(name, dns.TypeCNAME)) == 0 {
			forged.AddRR(dns.Copy(cname[0]))
		}
		name = dns.CanonicalName(cname[0].(*dns.CNAME).Target)
		if !dns.IsSubDomain(forged.Origin, name) {
			return // an alias out of the zone (a CDN) still leads where it did
		}
	}
}

// Restore undoes Hijack for domain alone: the registry's delegation (NS
// and DS) and the real zone come back; the rest of the lab stays as it is.
func (l *Lab) Restore(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain = dns.CanonicalName(domain)
		parentName := w.ParentOf(domain)
		parent, orig := w.Zone(parentName), l.pristine.Zone(parentName)
		if parent == nil || orig == nil {
			return fmt.Errorf("dnslab: no parent zone for %s", domain)
		}
		parent.Remove(domain, dns.TypeNS)
		parent.Remove(domain, dns.TypeDS)
		for _, t := range []uint16{dns.TypeNS, dns.TypeDS} {
			for _, rr := range orig.RRset(domain, t) {
				parent.AddRR(dns.Copy(rr))
			}
		}
		resignIfSigned(parent, w)
		w.Zones[domain] = l.pristine.Zone(domain).Clone()
		for _, h := range w.Hosts {
			if h.Role == "attacker" {
				h.Zones = remove(h.Zones, domain)
			} else {
				delete(h.Override, domain)
			}
		}
		return nil
	})
}

// HijackCircular delegates domain to two name servers without glue whose
// own zones are delegated to each other: no address can ever be found for
// them. An attacker who wants the monitor stuck, not just fooled, does this.
func (l *Lab) HijackCircular(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		domain = dns.CanonicalName(domain)
		parent := w.Zone(w.ParentOf(domain))
		com, net := w.Zone("com."), w.Zone("net.")
		if parent == nil || com == nil || net == nil {
			return fmt.Errorf("dnslab: no parent zone for %s", domain)
		}
		parent.Replace(domain, dns.TypeNS,
			fmt.Sprintf("%s 172800 IN NS ns1.evil-a.net.", domain),
			fmt.Sprintf("%s 172800 IN NS ns1.evil-b.com.", domain))
		parent.Remove(domain, dns.TypeDS)
		com.Replace("evil-b.com.", dns.TypeNS, "evil-b.com. 172800 IN NS ns1.evil-a.net.")
		net.Replace("evil-a.net.", dns.TypeNS, "evil-a.net. 172800 IN NS ns1.evil-b.com.")
		for _, z := range []*Zone{parent, com, net} {
			resignIfSigned(z, w)
		}
		return nil
	})
}

// Suspend removes domain's delegation from its TLD (a registry suspension,
// serverHold, or a deletion).
func (l *Lab) Suspend(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		parent := w.Zone(w.ParentOf(domain))
		parent.Remove(domain, 0)
		resignIfSigned(parent, w)
		return nil
	})
}

// Lame makes server stop serving domain (it answers REFUSED).
func (l *Lab) Lame(ctx context.Context, domain, server string) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		if h == nil {
			return fmt.Errorf("dnslab: no server %s", server)
		}
		h.Zones = remove(h.Zones, dns.CanonicalName(domain))
		return nil
	})
}

// NSMismatch makes the child's NS RRset (on every server) name an extra
// server the parent does not delegate to.
func (l *Lab) NSMismatch(ctx context.Context, domain, extraNS string) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		z.Add(fmt.Sprintf("%s 86400 IN NS %s", dns.CanonicalName(domain), dns.Fqdn(extraNS)))
		resignIfSigned(z, w)
		return nil
	})
}

// SerialDrift gives server a copy of domain with a newer SOA serial.
func (l *Lab) SerialDrift(ctx context.Context, domain, server string, delta uint32) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		z := w.override(h, domain)
		z.SetSerial(z.Serial() + delta)
		resignIfSigned(z, w)
		return nil
	})
}

// GlueMismatch changes the parent's glue for nsName to addr.
func (l *Lab) GlueMismatch(ctx context.Context, domain, nsName, addr string) error {
	return l.Mutate(ctx, func(w *World) error {
		parent := w.Zone(w.ParentOf(domain))
		parent.Replace(nsName, dns.TypeA, fmt.Sprintf("%s 172800 IN A %s", dns.Fqdn(nsName), addr))
		return nil
	})
}

// DropGlue removes the parent's glue for nsName.
func (l *Lab) DropGlue(ctx context.Context, domain, nsName string) error {
	return l.Mutate(ctx, func(w *World) error {
		w.Zone(w.ParentOf(domain)).Remove(nsName, dns.TypeA)
		return nil
	})
}

// BreakDS replaces the parent's DS for domain with one matching no key.
func (l *Lab) BreakDS(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		parent := w.Zone(w.ParentOf(domain))
		ds := parent.RRset(domain, dns.TypeDS)
		if len(ds) == 0 {
			return fmt.Errorf("dnslab: %s has no DS", domain)
		}
		bad := dns.Copy(ds[0]).(*dns.DS)
		bad.KeyTag++
		bad.Digest = "0000000000000000000000000000000000000000000000000000000000000000"
		parent.Remove(domain, dns.TypeDS)
		parent.AddRR(bad)
		resignIfSigned(parent, w)
		return nil
	})
}

// ExpireRRSIG re-signs domain with signatures that expire after validFor.
func (l *Lab) ExpireRRSIG(ctx context.Context, domain string, validFor time.Duration) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		if !z.Signed() {
			return fmt.Errorf("dnslab: %s is not signed", domain)
		}
		z.Sign(w.Now.Add(-time.Hour), w.Now.Add(validFor))
		return nil
	})
}

// CorruptRRSIG re-signs domain with signatures that do not verify.
func (l *Lab) CorruptRRSIG(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		z.corruptSigs = true
		z.resign()
		return nil
	})
}

// SignKeysWithZSK re-signs domain's DNSKEY set with its ZSK alone: the KSK,
// which the parent's DS points to, no longer signs it (a signer that lost
// the KSK, or a provider's signing that ignores it). Every signature
// verifies; validators still fail the domain.
func (l *Lab) SignKeysWithZSK(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		if !z.Signed() {
			return fmt.Errorf("dnslab: %s is not signed", domain)
		}
		z.keysByZSK = true
		z.resign()
		return nil
	})
}

// Unsign strips domain's keys and signatures while its DS stays at the parent.
func (l *Lab) Unsign(ctx context.Context, domain string) error {
	return l.Mutate(ctx, func(w *World) error {
		z := w.Zone(domain)
		z.stripSignature = true
		z.resign()
		return nil
	})
}

// UnsignOn makes one server serve domain unsigned (no DNSKEY, no RRSIG)
// while the others and the parent's DS stay as they are: a provider that
// stopped signing, or a secondary that never did.
func (l *Lab) UnsignOn(ctx context.Context, domain, server string) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		if h == nil {
			return fmt.Errorf("dnslab: no server %s", server)
		}
		z := w.override(h, domain)
		z.stripSignature = true
		z.resign()
		return nil
	})
}

// ParentDisagree gives one parent server a delegation of domain to other
// name servers than the rest of the parent servers hand out.
func (l *Lab) ParentDisagree(ctx context.Context, domain, server string, ns ...string) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		z := w.override(h, w.ParentOf(domain))
		var recs []string
		for _, n := range ns {
			recs = append(recs, fmt.Sprintf("%s 172800 IN NS %s", dns.Fqdn(domain), dns.Fqdn(n)))
		}
		z.Replace(domain, dns.TypeNS, recs...)
		resignIfSigned(z, w)
		return nil
	})
}

// ChangeRecord replaces name/type in domain on one server only (server "")
// or on every server.
func (l *Lab) ChangeRecord(ctx context.Context, domain, server, record string) error {
	return l.Mutate(ctx, func(w *World) error {
		rr, err := dns.NewRR(record)
		if err != nil {
			return fmt.Errorf("dnslab: %w", err)
		}
		z := w.Zone(domain)
		if server != "" {
			z = w.override(w.Host(server), domain)
		}
		z.Replace(rr.Header().Name, rr.Header().Rrtype, record)
		resignIfSigned(z, w)
		return nil
	})
}

// Poison makes the public resolver at index answer name/TYPE with record.
func (l *Lab) Poison(ctx context.Context, resolver int, record string) error {
	return l.Mutate(ctx, func(w *World) error {
		rr, err := dns.NewRR(record)
		if err != nil {
			return fmt.Errorf("dnslab: %w", err)
		}
		if resolver >= len(w.Resolvers) {
			return fmt.Errorf("dnslab: no resolver %d", resolver)
		}
		a := w.Resolvers[resolver]
		if w.Poison[a] == nil {
			w.Poison[a] = map[string][]dns.RR{}
		}
		k := poisonKey(rr.Header().Name, rr.Header().Rrtype)
		w.Poison[a][k] = append(w.Poison[a][k], rr)
		return nil
	})
}

// SetFault makes server misbehave on the network (timeouts, broken TCP,
// garbage, wrong IDs, truncation, oversized answers).
func (l *Lab) SetFault(ctx context.Context, server string, f Fault) error {
	return l.Mutate(ctx, func(w *World) error {
		h := w.Host(server)
		if h == nil {
			return fmt.Errorf("dnslab: no server %s", server)
		}
		h.Fault = f
		return nil
	})
}

func resignIfSigned(z *Zone, w *World) {
	if z.Signed() {
		z.Sign(z.sigInception, z.sigExpiration)
	}
}

// watchFQDN turns a watch entry ("www", "@", "www.example.com.") into a name.
func watchFQDN(name, domain string) string {
	if name == "@" {
		return dns.Fqdn(domain)
	}
	if dns.IsFqdn(name) {
		return dns.CanonicalName(name)
	}
	return dns.CanonicalName(name + "." + dns.Fqdn(domain))
}

func appendOnce(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
