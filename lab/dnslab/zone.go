package dnslab

import (
	"crypto"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone's data as an authoritative server holds it: records by
// owner name, plus the signing key when the zone is DNSSEC-signed.
type Zone struct {
	Origin string // FQDN, lower case
	rrs    map[string][]dns.RR
	// signing state; nil key means unsigned.
	ksk, zsk       *dns.DNSKEY
	kskPriv        crypto.Signer
	zskPriv        crypto.Signer
	sigInception   time.Time
	sigExpiration  time.Time
	corruptSigs    bool
	stripSignature bool
	keysByZSK      bool // the DNSKEY set signed by the ZSK alone
}

// NewZone returns an empty zone for origin.
func NewZone(origin string) *Zone {
	return &Zone{Origin: dns.CanonicalName(origin), rrs: map[string][]dns.RR{}}
}

// Add parses records in presentation form (relative names are relative to
// the origin) and adds them.
func (z *Zone) Add(records ...string) *Zone {
	for _, r := range records {
		zp := dns.NewZoneParser(strings.NewReader(r), z.Origin, "")
		zp.SetDefaultTTL(3600)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			z.AddRR(rr)
		}
		if err := zp.Err(); err != nil {
			panic("dnslab: bad record " + r + ": " + err.Error())
		}
	}
	return z
}

// AddRR adds one record.
func (z *Zone) AddRR(rr dns.RR) {
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	n := rr.Header().Name
	z.rrs[n] = append(z.rrs[n], rr)
}

// Remove deletes the RRset owner/type (type 0: every type at owner).
func (z *Zone) Remove(owner string, t uint16) {
	owner = dns.CanonicalName(owner)
	var keep []dns.RR
	for _, rr := range z.rrs[owner] {
		rt := rr.Header().Rrtype
		if t != 0 && rt != t && !(rt == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == t) {
			keep = append(keep, rr)
		}
	}
	if len(keep) == 0 {
		delete(z.rrs, owner)
	} else {
		z.rrs[owner] = keep
	}
}

// Replace swaps the RRset owner/type for records (presentation form).
func (z *Zone) Replace(owner string, t uint16, records ...string) {
	z.Remove(owner, t)
	z.Add(records...)
}

// RRset returns the records at owner with type t (no signatures).
func (z *Zone) RRset(owner string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrs[dns.CanonicalName(owner)] {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// Records returns every record of the zone in a stable order (for zone files).
func (z *Zone) Records() []dns.RR {
	var names []string
	for n := range z.rrs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		// The apex first: BIND wants the SOA at the top of a zone file.
		if names[i] == z.Origin || names[j] == z.Origin {
			return names[i] == z.Origin && names[j] != z.Origin
		}
		return names[i] < names[j]
	})
	var out []dns.RR
	for _, n := range names {
		rrs := append([]dns.RR(nil), z.rrs[n]...)
		sort.SliceStable(rrs, func(i, j int) bool {
			a, b := rrs[i].Header().Rrtype, rrs[j].Header().Rrtype
			if a == dns.TypeSOA || b == dns.TypeSOA {
				return a == dns.TypeSOA && b != dns.TypeSOA
			}
			return a < b
		})
		out = append(out, rrs...)
	}
	return out
}

// Clone returns a deep copy (scenarios mutate copies, never shared data).
func (z *Zone) Clone() *Zone {
	c := *z
	c.rrs = make(map[string][]dns.RR, len(z.rrs))
	for n, rrs := range z.rrs {
		cp := make([]dns.RR, len(rrs))
		for i, rr := range rrs {
			cp[i] = dns.Copy(rr)
		}
		c.rrs[n] = cp
	}
	return &c
}

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 {
	if soa := z.RRset(z.Origin, dns.TypeSOA); len(soa) > 0 {
		return soa[0].(*dns.SOA).Serial
	}
	return 0
}

// SetSerial changes the SOA serial.
func (z *Zone) SetSerial(s uint32) {
	for _, rr := range z.rrs[z.Origin] {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = s
		}
	}
}

func (z *Zone) soa() []dns.RR { return z.RRset(z.Origin, dns.TypeSOA) }

// delegation returns the closest-to-apex zone cut above or at qname.
func (z *Zone) delegation(qname string) string {
	labels := dns.SplitDomainName(qname)
	originLabels := dns.CountLabel(z.Origin)
	// Walk from the label just below the origin down to qname.
	for i := len(labels) - originLabels - 1; i >= 0; i-- {
		name := dns.Fqdn(strings.Join(labels[i:], "."))
		if name == z.Origin {
			continue
		}
		if len(z.RRset(name, dns.TypeNS)) > 0 {
			return name
		}
	}
	return ""
}

func (z *Zone) hasDescendant(name string) bool {
	for n := range z.rrs {
		if n != name && dns.IsSubDomain(name, n) {
			return true
		}
	}
	return false
}

// respond fills m (a reply to q) from the zone's data, as an authoritative
// server without recursion does.
func (z *Zone) respond(m *dns.Msg, q dns.Question, do bool) {
	qname := dns.CanonicalName(q.Name)
	if cut := z.delegation(qname); cut != "" && !(cut == qname && q.Qtype == dns.TypeDS) {
		z.referral(m, cut, do)
		return
	}
	m.Authoritative = true
	// Chase CNAMEs inside the zone, as authoritative servers do.
	name := qname
	for hops := 0; hops < 8; hops++ {
		rrs := shuffled(z.RRset(name, q.Qtype))
		if len(rrs) > 0 {
			m.Answer = append(m.Answer, z.withSigs(name, q.Qtype, rrs, do)...)
			if q.Qtype == dns.TypeNS {
				z.nsAddresses(m, rrs)
			}
			return
		}
		cname := z.RRset(name, dns.TypeCNAME)
		if len(cname) == 0 || q.Qtype == dns.TypeCNAME {
			break
		}
		m.Answer = append(m.Answer, z.withSigs(name, dns.TypeCNAME, cname, do)...)
		target := dns.CanonicalName(cname[0].(*dns.CNAME).Target)
		if !dns.IsSubDomain(z.Origin, target) || z.delegation(target) != "" {
			return
		}
		name = target
	}
	if len(m.Answer) > 0 {
		return
	}
	if _, exists := z.rrs[name]; !exists && !z.hasDescendant(name) {
		m.Rcode = dns.RcodeNameError
	}
	m.Ns = append(m.Ns, z.withSigs(z.Origin, dns.TypeSOA, z.soa(), do)...)
}

// nsAddresses adds the zone's addresses of the name servers in an NS
// answer to the additional section, as BIND does for authoritative answers
// to non-recursive queries.
func (z *Zone) nsAddresses(m *dns.Msg, ns []dns.RR) {
	for _, rr := range ns {
		target := dns.CanonicalName(rr.(*dns.NS).Ns)
		if !dns.IsSubDomain(z.Origin, target) {
			continue
		}
		m.Extra = append(m.Extra, z.RRset(target, dns.TypeA)...)
		m.Extra = append(m.Extra, z.RRset(target, dns.TypeAAAA)...)
	}
}

func (z *Zone) referral(m *dns.Msg, cut string, do bool) {
	ns := shuffled(z.RRset(cut, dns.TypeNS))
	m.Ns = append(m.Ns, ns...)
	// Like BIND, DS goes into a referral only from a signed parent, with
	// its signature.
	if do && z.Signed() {
		if ds := z.RRset(cut, dns.TypeDS); len(ds) > 0 {
			m.Ns = append(m.Ns, z.withSigs(cut, dns.TypeDS, ds, true)...)
		}
	}
	for _, rr := range ns {
		target := dns.CanonicalName(rr.(*dns.NS).Ns)
		if !dns.IsSubDomain(z.Origin, target) {
			continue
		}
		m.Extra = append(m.Extra, z.RRset(target, dns.TypeA)...)
		m.Extra = append(m.Extra, z.RRset(target, dns.TypeAAAA)...)
	}
}

// shuffled returns rrs in random order, as BIND's rrset-order does, so
// nothing in nsguard may depend on the order of records in an answer.
func shuffled(rrs []dns.RR) []dns.RR {
	mrand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs
}

// withSigs appends the RRSIGs covering owner/t when the client asked for DNSSEC.
func (z *Zone) withSigs(owner string, t uint16, rrs []dns.RR, do bool) []dns.RR {
	if !do {
		return rrs
	}
	out := append([]dns.RR(nil), rrs...)
	for _, rr := range z.rrs[owner] {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == t {
			out = append(out, sig)
		}
	}
	return out
}
