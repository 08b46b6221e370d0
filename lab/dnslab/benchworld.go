package dnslab

import (
	"fmt"
	"time"
)

// BenchWorld returns a world builder with n generated critical domains on
// top of the default world: each with two single-address name servers (one
// at each provider), spread over com, net and org, every tenth one
// DNSSEC-signed with its DS at a signed parent. Benchmarks use it.
func BenchWorld(n int) func(base byte, now time.Time) *World {
	return func(base byte, now time.Time) *World {
		w := DefaultWorld(base, now)
		tlds := []string{"com.", "com.", "com.", "com.", "com.", "com.", "com.", "net.", "net.", "org."}
		ns := []string{"ns1.provider-a.net.", "ns1.provider-b.org."}
		provA, provB := w.Host("ns1.provider-a.net"), w.Host("ns1.provider-b.org")
		w.Domains = nil // only the generated domains are checked
		for i := 0; i < n; i++ {
			tld := tlds[i%len(tlds)]
			name := fmt.Sprintf("bench-%05d.%s", i, tld)
			parent := w.Zones[tld]
			for _, s := range ns {
				parent.Add(fmt.Sprintf("%s 172800 IN NS %s", name, s))
			}
			z := NewZone(name).Add(
				soaRecord(name, ns[0], DefaultSerial),
				fmt.Sprintf("%s 86400 IN NS %s", name, ns[0]),
				fmt.Sprintf("%s 86400 IN NS %s", name, ns[1]),
				fmt.Sprintf("%s 300 IN A 192.0.2.%d", name, 1+i%250),
				fmt.Sprintf("www.%s 300 IN A 192.0.2.%d", name, 1+i%250),
			)
			// A tenth of the domains, spread over the TLDs, are signed.
			signed := i%10 == (i/10)%10
			if signed {
				z.Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))
				parent.Add(z.DS().String())
			}
			w.Zones[z.Origin] = z
			provA.Zones = append(provA.Zones, z.Origin)
			provB.Zones = append(provB.Zones, z.Origin)
			w.Domains = append(w.Domains, LabDomain{Name: name[:len(name)-1], Tier: 2, Owner: "bench",
				Services: []string{"svc"}, Nameservers: []string{"ns1.provider-a.net", "ns1.provider-b.org"}, Signed: signed})
		}
		// Real TLDs are signed; BIND hands out DS in referrals only with
		// their signatures, so the bench's parents are signed too.
		for _, tld := range []string{"com.", "net.", "org."} {
			w.Zones[tld].Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))
		}
		return w
	}
}

// BenchQPSPerServer is the resolver.max_qps_per_server of BenchConfigYAML:
// above what one lab server answers (dnsperf measures 40,000–100,000
// queries/s), so a benchmark measures nsguard and the servers, not the
// token bucket that protects real servers on the Internet.
const BenchQPSPerServer = 200000

// BenchConfigYAML is ConfigYAML for benchmarks: the same config with the
// per-server rate limit lifted to BenchQPSPerServer.
func (l *Lab) BenchConfigYAML(storePath string) string {
	return l.configYAML(storePath, "", BenchQPSPerServer)
}
