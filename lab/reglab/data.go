package reglab

import (
	"strings"
	"time"
)

// DefaultTLDs are the TLDs a new lab knows, modelled on the real
// operators: com and net (Verisign, thin WHOIS with a registrar referral),
// org (PIR), with RDAP; cn (CNNIC), de (DENIC), jp (JPRS), WHOIS only.
func DefaultTLDs() []TLD {
	verisign := Contact{Name: "Registry Customer Service", Organisation: "VeriSign Global Registry Services",
		Email: "info@verisign-grs.com", Phone: "+1 703 925-6999"}
	return []TLD{
		{Name: "com", Operator: "VeriSign Global Registry Services", Admin: verisign, Tech: verisign, RDAP: true, Format: "verisign"},
		{Name: "net", Operator: "VeriSign Global Registry Services", Admin: verisign, Tech: verisign, RDAP: true, Format: "verisign"},
		{Name: "org", Operator: "Public Interest Registry (PIR)", RDAP: true, Format: "pir",
			Admin: Contact{Name: "Chief Executive Officer", Organisation: "Public Interest Registry (PIR)", Email: "ceo@pir.org", Phone: "+1 703 889 5778"},
			Tech:  Contact{Name: "Chief Technology Officer", Organisation: "Public Interest Registry (PIR)", Email: "ops@pir.org", Phone: "+1 703 889 5778"}},
		{Name: "cn", Operator: "China Internet Network Information Center (CNNIC)", Format: "cnnic",
			Admin: Contact{Name: "Director, Domain Registry", Organisation: "China Internet Network Information Center", Email: "service@cnnic.cn", Phone: "+86 10 5881 3000"},
			Tech:  Contact{Name: "Director, Operations", Organisation: "China Internet Network Information Center", Email: "noc@cnnic.cn", Phone: "+86 10 5881 3000"}},
		{Name: "de", Operator: "DENIC eG", Format: "denic",
			Admin: Contact{Name: "Business Services", Organisation: "DENIC eG", Email: "dbs@denic.de", Phone: "+49 69 27235 270"},
			Tech:  Contact{Name: "DENIC Operations", Organisation: "DENIC eG", Email: "ops@denic.de", Phone: "+49 69 27235 272"}},
		{Name: "jp", Operator: "Japan Registry Services Co., Ltd.", Format: "jprs",
			Admin: Contact{Name: "Customer Support", Organisation: "Japan Registry Services Co., Ltd.", Email: "info@jprs.jp", Phone: "+81 3 5215 8451"},
			Tech:  Contact{Name: "Technical Operations", Organisation: "Japan Registry Services Co., Ltd.", Email: "tech@jprs.jp", Phone: "+81 3 5215 8451"}},
	}
}

// RegistryLock is the full lock set a tier-0 policy asks for.
var RegistryLock = []string{
	"clientDeleteProhibited", "clientTransferProhibited", "clientUpdateProhibited",
	"serverDeleteProhibited", "serverTransferProhibited", "serverUpdateProhibited",
}

// Healthy returns a well-kept registration at MarkMonitor: registry-locked,
// expiring in a year, two name servers, as of now.
func Healthy(name string, now time.Time) Domain {
	name = canonical(name)
	now = now.UTC().Truncate(time.Second)
	label := strings.SplitN(name, ".", 2)[0]
	return Domain{
		Name:       name,
		Registrar:  "MarkMonitor Inc.",
		IANAID:     "292",
		AbuseEmail: "abusecomplaints@markmonitor.com",
		AbusePhone: "+1.2086851750",
		Statuses:   append([]string(nil), RegistryLock...),
		Created:    now.AddDate(-12, 0, 0),
		Updated:    now.AddDate(0, -2, 0),
		Expiry:     now.AddDate(1, 0, 0),
		NS:         []string{"ns1." + label + "-dns.net", "ns2." + label + "-dns.org"},
		Registrant: "Example Shop Ltd",
	}
}

// SeedDemo loads the demo's domains: a tier-0 shop on .com with its backup
// on .net, and one registration per other TLD the lab models.
func (l *Lab) SeedDemo(now time.Time) {
	for _, n := range []string{"shop-example.com", "shop-backup.net", "example.org", "example.cn", "example.jp"} {
		l.SetDomain(Healthy(n, now))
	}
	cn := Healthy("example.cn", now)
	cn.Registrar = "Alibaba Cloud Computing (Beijing) Co., Ltd."
	cn.IANAID, cn.AbuseEmail, cn.AbusePhone = "", "", ""
	l.SetDomain(cn)
	jp := Healthy("example.jp", now)
	jp.Statuses = nil
	jp.OtherStatuses = []string{"DomainTransferLocked", "AgentChangeLocked"}
	l.SetDomain(jp)
	de := Healthy("example.de", now)
	de.Registrar, de.IANAID, de.AbuseEmail, de.AbusePhone = "", "", "", ""
	de.Statuses = nil
	de.OtherStatuses = []string{"connect"}
	l.SetDomain(de)
}
