package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// seedReplies are real-shaped answers: a referral with glue and DS, an
// authoritative SOA answer, NXDOMAIN, a truncated reply.
func seedReplies() [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		if b, err := m.Pack(); err == nil {
			out = append(out, b)
		}
	}
	q := new(dns.Msg)
	q.SetQuestion("shop-example.com.", dns.TypeNS)
	q.Id = 4242

	ref := new(dns.Msg)
	ref.SetReply(q)
	ns1, _ := dns.NewRR("shop-example.com. 172800 IN NS ns1.shop-example.com.")
	ns2, _ := dns.NewRR("shop-example.com. 172800 IN NS ns1.provider-b.org.")
	ds, _ := dns.NewRR("shop-example.com. 3600 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF")
	glue, _ := dns.NewRR("ns1.shop-example.com. 172800 IN A 127.53.1.1")
	ref.Ns = []dns.RR{ns1, ns2, ds}
	ref.Extra = []dns.RR{glue}
	add(ref)

	soa := new(dns.Msg)
	soa.SetReply(q)
	soa.Authoritative = true
	rr, _ := dns.NewRR("shop-example.com. 3600 IN SOA ns1.provider-a.net. hostmaster.shop-example.com. 1 3600 900 1209600 300")
	soa.Answer = []dns.RR{rr}
	add(soa)

	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	add(nx)

	tc := new(dns.Msg)
	tc.SetReply(q)
	tc.Truncated = true
	add(tc)
	return out
}

// FuzzReply feeds arbitrary bytes through the path every answer takes:
// unpack, reply validation, referral and glue extraction. It must never
// panic, and what it accepts must be a reply to the question asked.
func FuzzReply(f *testing.F) {
	for _, b := range seedReplies() {
		f.Add(b)
	}
	f.Add([]byte{0x10, 0x92, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q := new(dns.Msg)
		q.SetQuestion("shop-example.com.", dns.TypeNS)
		q.Id = 4242
		in := new(dns.Msg)
		if err := in.Unpack(b); err != nil {
			return
		}
		if err := checkReply(q.Id, question{name: q.Question[0].Name, qtype: q.Question[0].Qtype}, in); err != nil {
			return
		}
		if in.Id != q.Id || !in.Response {
			t.Fatalf("checkReply accepted a reply with id %d response %v", in.Id, in.Response)
		}
		if d := Referral(in, "com.", true); d != nil {
			if !dns.IsSubDomain("com.", d.Zone) || d.Zone == "com." {
				t.Fatalf("referral to %q accepted from com.", d.Zone)
			}
			for _, s := range d.Servers {
				if len(s.Addrs) > 0 && !dns.IsSubDomain("com.", s.Name) {
					t.Fatalf("out-of-bailiwick glue for %s accepted", s.Name)
				}
			}
		}
	})
}
