package monitor

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/resolver"
)

// FuzzAnswerHandling drives arbitrary (but unpackable) answers through every
// classifier the monitor applies to a server's reply: parent referral, SOA
// probe, watched-record extraction, DNSSEC signature split. None may panic,
// and a probe is only "ok" with an authoritative SOA for the zone.
func FuzzAnswerHandling(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("shop-example.com.", dns.TypeSOA)
	seeds := []*dns.Msg{}
	soa := new(dns.Msg)
	soa.SetReply(q)
	soa.Authoritative = true
	rr, _ := dns.NewRR("shop-example.com. 3600 IN SOA ns1.provider-a.net. hostmaster.shop-example.com. 7 3600 900 1209600 300")
	sig, _ := dns.NewRR("shop-example.com. 3600 IN RRSIG SOA 13 2 3600 20301231000000 20200101000000 12345 shop-example.com. AAAA")
	soa.Answer = []dns.RR{rr, sig}
	seeds = append(seeds, soa)
	ref := new(dns.Msg)
	ref.SetReply(q)
	ns, _ := dns.NewRR("shop-example.com. 172800 IN NS ns1.shop-example.com.")
	glue, _ := dns.NewRR("ns1.shop-example.com. 172800 IN A 127.53.1.1")
	ref.Ns, ref.Extra = []dns.RR{ns}, []dns.RR{glue}
	seeds = append(seeds, ref)
	up := new(dns.Msg)
	up.SetReply(q)
	rootNS, _ := dns.NewRR(". 3600 IN NS a.root-servers.net.")
	up.Ns = []dns.RR{rootNS}
	seeds = append(seeds, up)
	for _, m := range seeds {
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	cfg := config.Default()
	m, err := New(cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	c := &domainCheck{m: m, name: "shop-example.com.", d: config.Domain{Name: "shop-example.com"}, obs: &Observation{}}
	addr := netip.MustParseAddr("127.53.1.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		in := new(dns.Msg)
		if err := in.Unpack(b); err != nil {
			return
		}
		resp := &resolver.Response{Msg: in, Proto: resolver.UDP}
		p := c.soaProbe(resp)
		if p.Status == ProbeOK {
			if !in.Authoritative || in.Rcode != dns.RcodeSuccess {
				t.Fatalf("probe ok without an authoritative NOERROR answer: %+v", p)
			}
		}
		ps := c.parentAnswer("a.gtld-servers.net.", addr, "com.", resp)
		if ps.Status == "" {
			t.Fatalf("parent answer without status")
		}
		if (ps.Status == StatusNXDomain || ps.Status == StatusNoData) && !in.Authoritative {
			t.Fatalf("a negative answer without the AA bit taken as the parent's word: %+v", ps)
		}
		_ = recordData(in, "www.shop-example.com.", dns.TypeA)
		splitSigs(in.Answer, "shop-example.com.", dns.TypeSOA)
		isUpwardReferral(in, "shop-example.com.")
	})
}
