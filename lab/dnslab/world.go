package dnslab

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Fault is a network misbehaviour of one lab server.
type Fault int

const (
	FaultNone      Fault = iota
	FaultTimeout         // never answers (UDP or TCP)
	FaultTCPBroken       // UDP answers, TCP connections are closed at once
	FaultGarbage         // answers random bytes
	FaultWrongID         // answers with a different message ID
	FaultTruncated       // answers the first half of the message
	FaultOversized       // answers ~60 KB of TXT records whatever was asked
	// FaultTruncatedAlways answers with the TC bit and nothing else, over
	// UDP and over TCP alike: no transport ever gets an answer.
	FaultTruncatedAlways
	// FaultIntercept plays a middlebox in front of the host (hotel and
	// corporate networks): every UDP query is answered NXDOMAIN with RA and
	// without AA by the box itself; TCP reaches the real server.
	FaultIntercept
)

var faultNames = map[Fault]string{
	FaultNone: "none", FaultTimeout: "timeout", FaultTCPBroken: "tcp-broken", FaultGarbage: "garbage",
	FaultWrongID: "wrong-id", FaultTruncated: "truncated", FaultOversized: "oversized",
	FaultTruncatedAlways: "truncated-always", FaultIntercept: "intercept",
}

func (f Fault) String() string { return faultNames[f] }

// Host is one lab server: an address, the name it is known by, the zones it
// serves, and its faults.
type Host struct {
	Name  string // FQDN of the server ("ns1.provider-a.net.")
	Addr  netip.Addr
	Role  string   // root, tld, provider-a, provider-b, attacker, resolver
	Zones []string // origins served (FQDN)
	// Override holds this host's own copy of a zone (serial drift, a
	// changed record on one server), taking precedence over World.Zones.
	Override map[string]*Zone
	Fault    Fault

	// served indexes Zones; reindex rebuilds it after every mutation, so
	// a server holding ten thousand zones answers without scanning them.
	served map[string]bool
}

// reindex rebuilds every host's zone index (under the lab's write lock).
func (w *World) reindex() {
	for _, h := range w.Hosts {
		h.served = make(map[string]bool, len(h.Zones))
		for _, z := range h.Zones {
			h.served[z] = true
		}
	}
}

// World is the lab's simulated Internet: every host and every zone.
type World struct {
	Base      byte // second octet: the lab lives in 127.Base.0.0/16
	Hosts     []*Host
	Zones     map[string]*Zone
	Domains   []LabDomain
	Resolvers []netip.Addr
	// Poison maps resolver → "name/TYPE" → the forged answer it gives.
	Poison map[netip.Addr]map[string][]dns.RR
	Now    time.Time
	// Updatable maps a zone origin to the TSIG key allowed to update it
	// (RFC 2136); TSIG maps key names to base64 hmac-sha256 secrets. See
	// update.go.
	Updatable map[string]string
	TSIG      map[string]string
}

// LabDomain is one critical domain of the lab inventory.
type LabDomain struct {
	Name        string
	Tier        int
	Owner       string
	Services    []string
	Backups     []string
	Watch       []string
	Nameservers []string
	Signed      bool
}

// Addr returns 127.Base.c.d.
func (w *World) Addr(c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{127, w.Base, c, d}) }

// Host returns the host named name (FQDN or not) or nil.
func (w *World) Host(name string) *Host {
	name = dns.CanonicalName(name)
	for _, h := range w.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// HostAt returns the host at addr or nil.
func (w *World) HostAt(a netip.Addr) *Host {
	for _, h := range w.Hosts {
		if h.Addr == a {
			return h
		}
	}
	return nil
}

// Zone returns the shared copy of a zone.
func (w *World) Zone(origin string) *Zone { return w.Zones[dns.CanonicalName(origin)] }

// zoneFor returns the zone data host h serves for origin (its override or
// the shared copy).
func (w *World) zoneFor(h *Host, origin string) *Zone {
	if z, ok := h.Override[origin]; ok {
		return z
	}
	return w.Zones[origin]
}

// override gives host h its own copy of origin and returns it.
func (w *World) override(h *Host, origin string) *Zone {
	origin = dns.CanonicalName(origin)
	if z, ok := h.Override[origin]; ok {
		return z
	}
	if h.Override == nil {
		h.Override = map[string]*Zone{}
	}
	z := w.Zones[origin].Clone()
	h.Override[origin] = z
	return z
}

// ParentOf returns the origin of the zone holding the delegation of domain.
func (w *World) ParentOf(domain string) string {
	domain = dns.CanonicalName(domain)
	best := ""
	for origin := range w.Zones {
		if origin != domain && dns.IsSubDomain(origin, domain) && (best == "" || dns.CountLabel(origin) > dns.CountLabel(best)) {
			best = origin
		}
	}
	return best
}

// Clone deep-copies the world.
func (w *World) Clone() *World {
	c := *w
	c.Zones = make(map[string]*Zone, len(w.Zones))
	for k, z := range w.Zones {
		c.Zones[k] = z.Clone()
	}
	c.Hosts = make([]*Host, len(w.Hosts))
	for i, h := range w.Hosts {
		hc := *h
		hc.Zones = append([]string(nil), h.Zones...)
		if h.Override != nil {
			hc.Override = map[string]*Zone{}
			for k, z := range h.Override {
				hc.Override[k] = z.Clone()
			}
		}
		c.Hosts[i] = &hc
	}
	c.Domains = append([]LabDomain(nil), w.Domains...)
	c.Resolvers = append([]netip.Addr(nil), w.Resolvers...)
	c.reindex()
	c.Updatable = maps.Clone(w.Updatable)
	c.TSIG = maps.Clone(w.TSIG)
	c.Poison = map[netip.Addr]map[string][]dns.RR{}
	for a, m := range w.Poison {
		c.Poison[a] = map[string][]dns.RR{}
		for k, v := range m {
			c.Poison[a][k] = v
		}
	}
	return &c
}

// RootHints renders a named.root-style hints file for the lab's roots.
func (w *World) RootHints() string {
	var b strings.Builder
	b.WriteString("; nsguard lab root hints\n")
	for _, h := range w.Hosts {
		if h.Role == "root" {
			fmt.Fprintf(&b, ".\t3600000\tIN\tNS\t%s\n", h.Name)
		}
	}
	for _, h := range w.Hosts {
		if h.Role == "root" {
			fmt.Fprintf(&b, "%s\t3600000\tIN\tA\t%s\n", h.Name, h.Addr)
		}
	}
	return b.String()
}

// Addrs returns every host address (resolvers included), sorted.
func (w *World) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, h := range w.Hosts {
		out = append(out, h.Addr)
	}
	out = append(out, w.Resolvers...)
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func soaRecord(origin, mname string, serial uint32) string {
	mbox := "hostmaster." + origin
	if origin == "." {
		mbox = "nstld.root-servers.net."
	}
	return fmt.Sprintf("%s 3600 IN SOA %s %s %d 3600 900 1209600 300", origin, mname, mbox, serial)
}

// DefaultSerial is the SOA serial of every lab zone after Reset.
const DefaultSerial = 2026112601

// DefaultWorld builds the lab's healthy Internet in 127.base.0.0/16.
//
//	roots       a/b.root-servers.net      127.B.0.1-2
//	com, net    a/b.gtld-servers.net      127.B.0.3-4
//	org         ns1.nic.org               127.B.0.5   (signed)
//	cn          ns.cnnic.cn               127.B.0.6
//	provider A  ns1/ns2.provider-a.net    127.B.1.1, 127.B.3.1
//	provider B  ns1/ns2.provider-b.org    127.B.2.1, 127.B.4.1
//	attacker    ns1/ns2.attacker.net      127.B.66.1, 127.B.67.1
//	resolvers   public resolvers          127.B.53.1, 127.B.53.2
func DefaultWorld(base byte, now time.Time) *World {
	w := &World{Base: base, Zones: map[string]*Zone{}, Poison: map[netip.Addr]map[string][]dns.RR{}, Now: now}
	a := w.Addr
	host := func(name, role string, addr netip.Addr, zones ...string) {
		w.Hosts = append(w.Hosts, &Host{Name: dns.Fqdn(name), Role: role, Addr: addr, Zones: zones})
	}
	host("a.root-servers.net", "root", a(0, 1), ".")
	host("b.root-servers.net", "root", a(0, 2), ".")
	host("a.gtld-servers.net", "tld", a(0, 3), "com.", "net.")
	host("b.gtld-servers.net", "tld", a(0, 4), "com.", "net.")
	host("ns1.nic.org", "tld", a(0, 5), "org.")
	host("ns.cnnic.cn", "tld", a(0, 6), "cn.")
	provA := []string{"provider-a.net.", "shop-example.com.", "shop-backup.net.", "pay-example.org.", "corp-example.net.", "shop-example.cn."}
	provB := []string{"provider-b.org.", "shop-example.com.", "shop-backup.net.", "pay-example.org.", "corp-example.net.", "shop-example.cn.", "shop-cdn.net."}
	host("ns1.provider-a.net", "provider-a", a(1, 1), provA...)
	host("ns2.provider-a.net", "provider-a", a(3, 1), provA...)
	host("ns1.provider-b.org", "provider-b", a(2, 1), provB...)
	host("ns2.provider-b.org", "provider-b", a(4, 1), provB...)
	host("ns1.attacker.net", "attacker", a(66, 1), "attacker.net.")
	host("ns2.attacker.net", "attacker", a(67, 1), "attacker.net.")
	w.Resolvers = []netip.Addr{a(53, 1), a(53, 2)}

	zone := func(origin, mname string, ns []string, recs ...string) *Zone {
		z := NewZone(origin).Add(soaRecord(dns.Fqdn(origin), dns.Fqdn(mname), DefaultSerial))
		for _, n := range ns {
			z.Add(fmt.Sprintf("%s 86400 IN NS %s", dns.Fqdn(origin), dns.Fqdn(n)))
		}
		z.Add(recs...)
		w.Zones[z.Origin] = z
		return z
	}
	delegate := func(parent *Zone, child string, ns ...string) {
		for _, n := range ns {
			parent.Add(fmt.Sprintf("%s 172800 IN NS %s", dns.Fqdn(child), dns.Fqdn(n)))
		}
	}
	glue := func(z *Zone, name string, addr netip.Addr) {
		z.Add(fmt.Sprintf("%s 172800 IN A %s", dns.Fqdn(name), addr))
	}

	root := zone(".", "a.root-servers.net", []string{"a.root-servers.net", "b.root-servers.net"})
	glue(root, "a.root-servers.net", a(0, 1))
	glue(root, "b.root-servers.net", a(0, 2))
	for _, tld := range []string{"com", "net"} {
		delegate(root, tld, "a.gtld-servers.net", "b.gtld-servers.net")
	}
	glue(root, "a.gtld-servers.net", a(0, 3))
	glue(root, "b.gtld-servers.net", a(0, 4))
	delegate(root, "org", "ns1.nic.org")
	glue(root, "ns1.nic.org", a(0, 5))
	delegate(root, "cn", "ns.cnnic.cn")
	glue(root, "ns.cnnic.cn", a(0, 6))

	com := zone("com", "a.gtld-servers.net", []string{"a.gtld-servers.net", "b.gtld-servers.net"})
	net := zone("net", "a.gtld-servers.net", []string{"a.gtld-servers.net", "b.gtld-servers.net"})
	for _, h := range []string{"a.root-servers.net", "b.root-servers.net", "a.gtld-servers.net", "b.gtld-servers.net"} {
		glue(net, h, w.Host(h).Addr)
	}
	org := zone("org", "ns1.nic.org", []string{"ns1.nic.org"})
	glue(org, "ns1.nic.org", a(0, 5))
	cn := zone("cn", "ns.cnnic.cn", []string{"ns.cnnic.cn"})
	glue(cn, "ns.cnnic.cn", a(0, 6))

	// The DNS providers' own zones, with in-bailiwick glue at their TLDs.
	delegate(net, "provider-a.net", "ns1.provider-a.net", "ns2.provider-a.net")
	glue(net, "ns1.provider-a.net", a(1, 1))
	glue(net, "ns2.provider-a.net", a(3, 1))
	zone("provider-a.net", "ns1.provider-a.net", []string{"ns1.provider-a.net", "ns2.provider-a.net"},
		fmt.Sprintf("ns1 A %s", a(1, 1)), fmt.Sprintf("ns2 A %s", a(3, 1)))
	delegate(org, "provider-b.org", "ns1.provider-b.org", "ns2.provider-b.org")
	glue(org, "ns1.provider-b.org", a(2, 1))
	glue(org, "ns2.provider-b.org", a(4, 1))
	zone("provider-b.org", "ns1.provider-b.org", []string{"ns1.provider-b.org", "ns2.provider-b.org"},
		fmt.Sprintf("ns1 A %s", a(2, 1)), fmt.Sprintf("ns2 A %s", a(4, 1)))
	delegate(net, "attacker.net", "ns1.attacker.net", "ns2.attacker.net")
	glue(net, "ns1.attacker.net", a(66, 1))
	glue(net, "ns2.attacker.net", a(67, 1))
	zone("attacker.net", "ns1.attacker.net", []string{"ns1.attacker.net", "ns2.attacker.net"},
		fmt.Sprintf("ns1 A %s", a(66, 1)), fmt.Sprintf("ns2 A %s", a(67, 1)))

	// The critical domains.
	shopNS := []string{"ns1.provider-a.net", "ns1.provider-b.org"}
	delegate(com, "shop-example.com", shopNS...)
	zone("shop-example.com", "ns1.provider-a.net", shopNS,
		"@ A 192.0.2.10", "@ AAAA 2001:db8::10", "@ MX 10 mail.shop-example.com.",
		`@ TXT "v=spf1 mx -all"`, "www A 192.0.2.10", "api CNAME api.shop-cdn.net.", "mail A 192.0.2.25")

	backupNS := []string{"ns2.provider-a.net", "ns2.provider-b.org"}
	delegate(net, "shop-backup.net", backupNS...)
	zone("shop-backup.net", "ns2.provider-a.net", backupNS,
		"@ A 198.51.100.10", "www A 198.51.100.10", "api A 198.51.100.20", "@ MX 10 mail.shop-backup.net.", "mail A 198.51.100.25")

	payNS := []string{"ns1.provider-b.org", "ns2.provider-a.net"}
	delegate(org, "pay-example.org", payNS...)
	pay := zone("pay-example.org", "ns1.provider-b.org", payNS,
		"@ A 192.0.2.50", "www A 192.0.2.50", `@ TXT "payments"`)

	corpNS := []string{"ns1.corp-example.net", "ns2.provider-b.org"}
	delegate(net, "corp-example.net", corpNS...)
	glue(net, "ns1.corp-example.net", a(1, 1))
	zone("corp-example.net", "ns1.corp-example.net", corpNS,
		fmt.Sprintf("ns1 A %s", a(1, 1)), "www A 192.0.2.60", "@ MX 10 mail.corp-example.net.", "mail A 192.0.2.61")

	cnNS := []string{"ns1.provider-a.net", "ns2.provider-b.org"}
	delegate(cn, "shop-example.cn", cnNS...)
	zone("shop-example.cn", "ns1.provider-a.net", cnNS, "www A 192.0.2.70", "@ A 192.0.2.70")

	cdnNS := []string{"ns1.provider-b.org", "ns2.provider-b.org"}
	delegate(net, "shop-cdn.net", cdnNS...)
	zone("shop-cdn.net", "ns1.provider-b.org", cdnNS, "api A 192.0.2.80", "www A 192.0.2.81")

	// DNSSEC: pay-example.org is signed, its DS is in the signed org zone.
	pay.Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))
	org.Add(pay.DS().String())
	org.Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))

	w.Domains = []LabDomain{
		{Name: "shop-example.com", Tier: 0, Owner: "shop", Services: []string{"shop-web", "shop-api"},
			Backups: []string{"shop-backup.net"}, Watch: []string{"www", "api"}, Nameservers: shopNS},
		{Name: "shop-backup.net", Tier: 1, Owner: "shop", Services: []string{"shop-web-backup"},
			Watch: []string{"www", "api"}, Nameservers: backupNS},
		{Name: "pay-example.org", Tier: 0, Owner: "payments", Services: []string{"pay-api"},
			Watch: []string{"www"}, Nameservers: payNS, Signed: true},
		{Name: "corp-example.net", Tier: 1, Owner: "it", Services: []string{"corp-mail"},
			Watch: []string{"www"}, Nameservers: corpNS},
		{Name: "shop-example.cn", Tier: 1, Owner: "shop-cn", Services: []string{"shop-cn-web"},
			Watch: []string{"www"}, Nameservers: cnNS},
	}
	return w
}
