package dnslab

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/lab/reglab"
)

// AuditWorld is DefaultWorld grown into an inventory that holds every case
// `nsguard audit` judges, each in its own domain so a test can name the
// reason it expects:
//
//	portal-example.com  tier 0, 7 services (limit 3): DOMAIN_SHARED, critical (> 2× the limit)
//	group-example.com   tier 2, 5 services: DOMAIN_SHARED, warning; one DNS provider: NS_SINGLE_PROVIDER
//	pay-example.org     tier 0, no backup: DOMAIN_UNBACKED, critical
//	corp-example.net    tier 1, no backup: DOMAIN_UNBACKED, warning
//	shop-example.com    backup shop-backup.net shares both DNS providers (provider-a.net, provider-b.org)
//	news-example.com    backup news-backup.com: same TLD, same registrar, same registrant
//	mail-example.com    backup mail-backup.org: a white-label name server in the primary's /24
//	id-example.com      backup id-backup.net expires in 45 days
//	shop-example.cn     backup shop-backup.cn is neither registered nor delegated
//	portal-backup.net   the one independent backup (different registrar, providers, networks, TLD, registrant)
//	promo-example.com   both name servers in 127.B.1.0/24: NS_SAME_PREFIX
//	shop-example.com    api CNAME api.shop-cdn.net (undeclared), which CNAMEs to api.edge-cache.org (undeclared, one level further)
//	mail-example.com    MX mx1.mail-hoster.net (undeclared)
//
// The DNS providers' own domains are in the inventory (tier 3, owner
// dns-vendors): the remedy DEPENDENCY_UNDECLARED asks for. New hosts:
//
//	provider C  ns1/ns2.provider-c.net    127.B.5.1, 127.B.6.1
//	provider D  ns1/ns2.provider-d.org    127.B.7.1, 127.B.8.1
//	white label ns1/ns2.whitelabel-dns.net 127.B.1.2 (provider A's /24), 127.B.9.1
//
// Registration data for the same inventory comes from SeedAuditRegistry;
// AuditExtraYAML adds the matching policy and registry sections.
func AuditWorld(base byte, now time.Time) *World {
	w := DefaultWorld(base, now)
	a := w.Addr
	com, net, org := w.Zone("com"), w.Zone("net"), w.Zone("org")

	host := func(name, role string, addr [2]byte) {
		w.Hosts = append(w.Hosts, &Host{Name: dns.Fqdn(name), Role: role, Addr: a(addr[0], addr[1])})
	}
	host("ns1.provider-c.net", "provider-c", [2]byte{5, 1})
	host("ns2.provider-c.net", "provider-c", [2]byte{6, 1})
	host("ns1.provider-d.org", "provider-d", [2]byte{7, 1})
	host("ns2.provider-d.org", "provider-d", [2]byte{8, 1})
	host("ns1.whitelabel-dns.net", "whitelabel", [2]byte{1, 2})
	host("ns2.whitelabel-dns.net", "whitelabel", [2]byte{9, 1})

	// zone creates origin's zone, delegates it from parent (with glue for
	// in-bailiwick names) and has every listed name server serve it.
	zone := func(parent *Zone, origin string, ns []string, recs ...string) *Zone {
		fq := dns.Fqdn(origin)
		z := NewZone(fq).Add(soaRecord(fq, dns.Fqdn(ns[0]), DefaultSerial))
		for _, n := range ns {
			n = dns.Fqdn(n)
			z.Add(fmt.Sprintf("%s 86400 IN NS %s", fq, n))
			parent.Add(fmt.Sprintf("%s 172800 IN NS %s", fq, n))
			h := w.Host(n)
			if h == nil {
				panic("dnslab: audit world: no host " + n)
			}
			if dns.IsSubDomain(fq, n) {
				parent.Add(fmt.Sprintf("%s 172800 IN A %s", n, h.Addr))
				z.Add(fmt.Sprintf("%s 3600 IN A %s", n, h.Addr))
			}
			h.Zones = appendOnce(h.Zones, z.Origin)
		}
		z.Add(recs...)
		w.Zones[z.Origin] = z
		return z
	}
	var (
		a1, a2 = "ns1.provider-a.net", "ns2.provider-a.net"
		b1, b2 = "ns1.provider-b.org", "ns2.provider-b.org"
		c1, c2 = "ns1.provider-c.net", "ns2.provider-c.net"
		d1, d2 = "ns1.provider-d.org", "ns2.provider-d.org"
		w1, w2 = "ns1.whitelabel-dns.net", "ns2.whitelabel-dns.net"
	)
	ns := map[string][]string{
		"provider-c.net":     {c1, c2},
		"provider-d.org":     {d1, d2},
		"whitelabel-dns.net": {w1, w2},
		"portal-example.com": {a1, b1},
		"portal-backup.net":  {c1, d1},
		"group-example.com":  {c1, c2},
		"news-example.com":   {c2, d2},
		"news-backup.com":    {a2, b2},
		"mail-example.com":   {a1, b1},
		"mail-backup.org":    {w1, d1},
		"mail-hoster.net":    {c1, c2},
		"promo-example.com":  {a1, w1},
		"id-example.com":     {a1, b1},
		"id-backup.net":      {c2, d1},
		"edge-cache.org":     {d1, d2},
	}
	zone(net, "provider-c.net", ns["provider-c.net"])
	zone(org, "provider-d.org", ns["provider-d.org"])
	zone(net, "whitelabel-dns.net", ns["whitelabel-dns.net"])
	site := func(parent *Zone, origin, addr string, extra ...string) {
		zone(parent, origin, ns[origin], append([]string{"@ A " + addr, "www A " + addr}, extra...)...)
	}
	site(com, "portal-example.com", "192.0.2.100")
	site(net, "portal-backup.net", "198.51.100.100")
	site(com, "group-example.com", "192.0.2.110")
	site(com, "news-example.com", "192.0.2.120")
	site(com, "news-backup.com", "198.51.100.120")
	site(com, "mail-example.com", "192.0.2.130", "@ MX 10 mx1.mail-hoster.net.")
	site(org, "mail-backup.org", "198.51.100.130")
	site(com, "promo-example.com", "192.0.2.140")
	site(com, "id-example.com", "192.0.2.150")
	site(net, "id-backup.net", "198.51.100.150")
	// Undeclared dependencies: the mail hoster, and the CDN's own CDN.
	zone(net, "mail-hoster.net", ns["mail-hoster.net"], "mx1 A 192.0.2.135")
	zone(org, "edge-cache.org", ns["edge-cache.org"], "api A 192.0.2.90")
	w.Zone("shop-cdn.net").Replace("api.shop-cdn.net.", dns.TypeA, "api.shop-cdn.net. 300 IN CNAME api.edge-cache.org.")
	// The org zone is signed: new delegations need fresh signatures.
	resignIfSigned(org, w)

	for i := range w.Domains {
		if w.Domains[i].Name == "shop-example.cn" {
			w.Domains[i].Backups = []string{"shop-backup.cn"}
		}
	}
	d := func(name string, tier int, owner string, services, backups []string) LabDomain {
		var watch []string
		if tier < 3 {
			watch = []string{"www"}
		}
		return LabDomain{Name: name, Tier: tier, Owner: owner, Services: services, Backups: backups,
			Watch: watch, Nameservers: ns[name]}
	}
	w.Domains = append(w.Domains,
		d("portal-example.com", 0, "platform", []string{"portal-web", "portal-api", "portal-admin",
			"partner-web", "partner-api", "careers-web", "status-page"}, []string{"portal-backup.net"}),
		d("portal-backup.net", 2, "platform", []string{"portal-standby"}, nil),
		d("group-example.com", 2, "corporate", []string{"group-web", "investor-web", "press-web", "brand-assets", "jobs-api"}, nil),
		d("news-example.com", 1, "media", []string{"news-web"}, []string{"news-backup.com"}),
		d("news-backup.com", 2, "media", []string{"news-standby"}, nil),
		d("mail-example.com", 1, "it", []string{"mail-relay"}, []string{"mail-backup.org"}),
		d("mail-backup.org", 2, "it", []string{"mail-relay-standby"}, nil),
		d("promo-example.com", 2, "marketing", []string{"promo-web"}, nil),
		d("id-example.com", 0, "identity", []string{"sso", "login-api"}, []string{"id-backup.net"}),
		d("id-backup.net", 2, "identity", []string{"sso-standby"}, nil),
		LabDomain{Name: "provider-a.net", Tier: 3, Owner: "dns-vendors", Nameservers: []string{a1, a2}},
		LabDomain{Name: "provider-b.org", Tier: 3, Owner: "dns-vendors", Nameservers: []string{b1, b2}},
		d("provider-c.net", 3, "dns-vendors", nil, nil),
		d("provider-d.org", 3, "dns-vendors", nil, nil),
		d("whitelabel-dns.net", 3, "dns-vendors", nil, nil),
	)
	return w
}

// AuditApprovedRegistrars are the registrars the audit lab's policy approves.
var AuditApprovedRegistrars = []string{"MarkMonitor Inc.", "CSC Corporate Domains, Inc."}

// SeedAuditRegistry loads the registration side of AuditWorld into a
// registration lab: every inventory domain registered with the name
// servers the DNS lab delegates it to (so REGISTRY_NS_MISMATCH stays
// quiet), and these differences:
//
//	shop-backup.net, portal-backup.net, mail-backup.org, id-backup.net
//	                   at CSC (approved), registered to a separate continuity company
//	news-backup.com    at MarkMonitor, registered to the primary's company
//	id-backup.net      expires in 45 days
//	pay-example.org    no registry lock (server*Prohibited missing): LOCK_MISSING
//	corp-example.net   at GoDaddy (not approved): REGISTRAR_NOT_APPROVED
//	shop-example.cn    at Alibaba Cloud (not approved): REGISTRAR_NOT_APPROVED
//	shop-backup.cn     not registered
func SeedAuditRegistry(reg *reglab.Lab, now time.Time) {
	w := AuditWorld(53, now)
	registrant := map[string]string{
		"shop-example.com": "Example Shop Ltd", "shop-backup.net": "Example Shop Continuity Ltd",
		"pay-example.org": "Example Payments Ltd", "corp-example.net": "Example Group plc",
		"shop-example.cn":    "Example Shop (Shanghai) Co., Ltd.",
		"portal-example.com": "Example Group plc", "portal-backup.net": "Example Continuity Ltd",
		"group-example.com": "Example Group plc",
		"news-example.com":  "Example Media Ltd", "news-backup.com": "Example Media Ltd",
		"mail-example.com": "Example Group plc", "mail-backup.org": "Example Continuity Ltd",
		"promo-example.com": "Example Group plc",
		"id-example.com":    "Example Identity Ltd", "id-backup.net": "Example Continuity Ltd",
	}
	atCSC := map[string]bool{"shop-backup.net": true, "portal-backup.net": true, "mail-backup.org": true, "id-backup.net": true}
	for _, ld := range w.Domains {
		d := reglab.Healthy(ld.Name, now)
		d.NS = nil
		for _, n := range ld.Nameservers {
			d.NS = append(d.NS, strings.TrimSuffix(n, "."))
		}
		if r, ok := registrant[ld.Name]; ok {
			d.Registrant = r
		} else {
			d.Registrant = "DNS Vendor Inc."
		}
		if atCSC[ld.Name] {
			d.Registrar, d.IANAID = "CSC Corporate Domains, Inc.", "299"
			d.AbuseEmail, d.AbusePhone = "domainabuse@cscglobal.com", "+1.8887802723"
		}
		switch ld.Name {
		case "id-backup.net":
			d.Expiry = now.UTC().Truncate(time.Second).AddDate(0, 0, 45)
		case "pay-example.org":
			d.Statuses = []string{"clientDeleteProhibited", "clientTransferProhibited", "clientUpdateProhibited"}
		case "corp-example.net":
			d.Registrar, d.IANAID = "GoDaddy.com, LLC", "146"
			d.AbuseEmail, d.AbusePhone = "abuse@godaddy.com", "+1.4805058800"
			d.Statuses = []string{"clientDeleteProhibited", "clientTransferProhibited", "clientUpdateProhibited"}
		case "shop-example.cn":
			d.Registrar, d.IANAID = "Alibaba Cloud Computing (Beijing) Co., Ltd.", ""
			d.AbuseEmail, d.AbusePhone = "", ""
			d.Statuses = []string{"clientTransferProhibited"}
		}
		reg.SetDomain(d)
	}
	// shop-backup.cn is deliberately absent: the registry answers "no match".
}

// AuditExtraYAML is the config the audit lab runs with besides what
// Lab.ConfigYAML writes: the approved registrars, the locks each tier
// needs, three services per domain, and the registration lab's servers.
func AuditExtraYAML(reg *reglab.Lab) string {
	var b strings.Builder
	b.WriteString("policy:\n  approved_registrars: [")
	for i, r := range AuditApprovedRegistrars {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", r)
	}
	b.WriteString("]\n")
	b.WriteString("  required_locks:\n" +
		"    tier0: [serverTransferProhibited, serverUpdateProhibited, serverDeleteProhibited, clientTransferProhibited]\n" +
		"    tier1: [clientTransferProhibited]\n")
	b.WriteString("  max_services_per_domain: 3\n")
	fmt.Fprintf(&b, "registry:\n  rdap_bootstrap: %q\n  iana_whois: %q\n  timeout: 2s\n  max_qps_per_server: 1000\n",
		reg.BootstrapURL(), reg.IANAWhoisAddr())
	return b.String()
}
