//go:build linux

package dnslab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// This package's BIND labs: 127.61.0.0/16 for the default world, 127.62
// for the big one (monitor's BIND tests use 127.60; go test runs packages
// in parallel and each BIND lab owns its addresses).
const (
	bindBase    byte = 61
	bigBindBase byte = 62
)

func startBIND(t testing.TB, opts Options, bopts BINDOptions) (*Lab, *BIND) {
	t.Helper()
	b, err := NewBIND(bopts)
	if err != nil {
		t.Fatalf("BIND backend: %v", err)
	}
	opts.Backend = b
	l, err := Start(context.Background(), opts)
	if err != nil {
		b.Close()
		t.Fatalf("starting the BIND lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the BIND lab: %v", err)
		}
	})
	return l, b
}

// ask sends one question to addr at the lab's port.
func ask(t testing.TB, l *Lab, addr netip.Addr, name string, qtype uint16, do bool, proto string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, do)
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, netip.AddrPortFrom(addr, uint16(l.Port())).String())
	if err != nil {
		t.Fatalf("%s %s at %s (%s): %v", name, dns.TypeToString[qtype], addr, proto, err)
	}
	return r
}

func soaSerial(t testing.TB, r *dns.Msg) uint32 {
	t.Helper()
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in answer:\n%v", r)
	return 0
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func sigCovers(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == t {
			return true
		}
	}
	return false
}

// TestBINDServesTheWorld asks every host for every zone it serves, over UDP
// and TCP, and checks the DNSSEC behaviour the monitor relies on.
func TestBINDServesTheWorld(t *testing.T) {
	l, _ := startBIND(t, Options{Base: bindBase}, BINDOptions{})
	w := l.World()
	for _, h := range w.Hosts {
		for _, origin := range h.Zones {
			for _, proto := range []string{"udp", "tcp"} {
				r := ask(t, l, h.Addr, origin, dns.TypeSOA, true, proto)
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
					t.Errorf("%s at %s %s (%s): rcode %s aa=%v", origin, h.Name, h.Addr, proto, dns.RcodeToString[r.Rcode], r.Authoritative)
					continue
				}
				if got, want := soaSerial(t, r), w.zoneFor(h, origin).Serial(); got != want {
					t.Errorf("%s at %s: serial %d, want %d", origin, h.Name, got, want)
				}
				signed, present := w.zoneFor(h, origin).Signed(), sigCovers(r.Answer, dns.TypeSOA)
				if present != signed {
					t.Errorf("%s at %s: SOA RRSIG present=%v, zone signed=%v", origin, h.Name, present, signed)
				}
			}
		}
		if n := l.QueriesAt(h.Addr); n != 0 {
			t.Errorf("the in-process lab answered %d queries at %s: BIND should have", n, h.Addr)
		}
	}
	org := l.AddrOf("ns1.nic.org")
	// A host asked for a zone it does not serve refuses, as the lab does.
	if r := ask(t, l, org, "shop-example.com", dns.TypeSOA, false, "udp"); r.Rcode != dns.RcodeRefused {
		t.Errorf("ns1.nic.org asked for shop-example.com: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// One parent query answers NS, glue and DS: with DO, BIND puts the
	// signed DS (and its RRSIG) into the referral from the signed org zone.
	ref := ask(t, l, org, "pay-example.org", dns.TypeNS, true, "udp")
	if ref.Authoritative || !hasType(ref.Ns, dns.TypeNS) || !hasType(ref.Ns, dns.TypeDS) || !sigCovers(ref.Ns, dns.TypeDS) {
		t.Errorf("referral for pay-example.org with DO lacks NS, DS or its RRSIG:\n%v", ref)
	}
	if !hasType(ref.Extra, dns.TypeA) {
		t.Errorf("referral for pay-example.org has no glue for ns1.provider-b.org:\n%v", ref)
	}
	if plain := ask(t, l, org, "pay-example.org", dns.TypeNS, false, "udp"); hasType(plain.Ns, dns.TypeDS) {
		t.Errorf("referral without DO carries DS:\n%v", plain)
	}
	// Sibling glue: net's glue for ns2.provider-a.net (under provider-a.net)
	// comes with the referral for shop-backup.net, as the lab gives it.
	if r := ask(t, l, l.AddrOf("a.gtld-servers.net"), "shop-backup.net", dns.TypeNS, false, "udp"); !hasType(r.Extra, dns.TypeA) {
		t.Errorf("referral for shop-backup.net has no sibling glue:\n%v", r)
	}
	// The signed zone answers DNSKEY with its RRSIG (BIND needs the NSEC
	// chain for that; see nsecChain).
	if r := ask(t, l, l.AddrOf("ns1.provider-b.org"), "pay-example.org", dns.TypeDNSKEY, true, "udp"); !hasType(r.Answer, dns.TypeDNSKEY) || !sigCovers(r.Answer, dns.TypeDNSKEY) {
		t.Errorf("DNSKEY answer lacks keys or RRSIG:\n%v", r)
	}
}

// TestBINDFollowsTheLab mutates the world and checks BIND serves each
// change, in both reload modes: an override on one server, a server handed
// to the lab's fault listener and back, a zone a server stops serving.
func TestBINDFollowsTheLab(t *testing.T) {
	for _, mode := range []ReloadMode{ReloadRNDC, ReloadRestart} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			l, b := startBIND(t, Options{Base: bindBase}, BINDOptions{Reload: mode})
			drifted, other := l.AddrOf("ns1.provider-b.org"), l.AddrOf("ns1.provider-a.net")
			s0 := b.Stats()

			if err := l.SerialDrift(ctx, "shop-example.com", "ns1.provider-b.org", 5); err != nil {
				t.Fatal(err)
			}
			if got := soaSerial(t, ask(t, l, drifted, "shop-example.com", dns.TypeSOA, false, "udp")); got != DefaultSerial+5 {
				t.Errorf("drifted server: serial %d, want %d", got, DefaultSerial+5)
			}
			if got := soaSerial(t, ask(t, l, other, "shop-example.com", dns.TypeSOA, false, "tcp")); got != DefaultSerial {
				t.Errorf("other server: serial %d, want %d", got, DefaultSerial)
			}

			// A faulty host leaves BIND for the lab's fault listener.
			if err := l.SetFault(ctx, "ns1.provider-b.org", FaultGarbage); err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			m.SetQuestion("shop-example.com.", dns.TypeSOA)
			if _, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, netip.AddrPortFrom(drifted, uint16(l.Port())).String()); err == nil {
				t.Error("the garbage-answering host gave a well-formed answer: BIND still holds its address")
			}
			if l.QueriesAt(drifted) == 0 {
				t.Error("the lab's fault listener never saw the query")
			}

			if err := l.Lame(ctx, "shop-example.cn", "ns2.provider-b.org"); err != nil {
				t.Fatal(err)
			}
			if r := ask(t, l, l.AddrOf("ns2.provider-b.org"), "shop-example.cn", dns.TypeSOA, false, "udp"); r.Rcode != dns.RcodeRefused {
				t.Errorf("lame server: %s, want REFUSED", dns.RcodeToString[r.Rcode])
			}

			// Reset gives the address back to BIND, healthy.
			if err := l.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			before := l.QueriesAt(drifted)
			if got := soaSerial(t, ask(t, l, drifted, "shop-example.com", dns.TypeSOA, false, "udp")); got != DefaultSerial {
				t.Errorf("after reset: serial %d, want %d", got, DefaultSerial)
			}
			if l.QueriesAt(drifted) != before {
				t.Error("after reset the lab, not BIND, answered at the healed address")
			}
			if r := ask(t, l, l.AddrOf("ns2.provider-b.org"), "shop-example.cn", dns.TypeSOA, false, "udp"); r.Rcode != dns.RcodeSuccess || !r.Authoritative {
				t.Errorf("after reset: %s aa=%v, want an authoritative answer", dns.RcodeToString[r.Rcode], r.Authoritative)
			}
			// Four changes: four syncs, and a named start each only when restarting.
			s := b.Stats()
			wantStarts := 0
			if mode == ReloadRestart {
				wantStarts = 4
			}
			if s.Syncs-s0.Syncs != 4 || s.Starts-s0.Starts != wantStarts {
				t.Errorf("stats went from %+v to %+v: want 4 syncs and %d named starts", s0, s, wantStarts)
			}
		})
	}
}

// TestBINDRefusesABadZoneClearly: a zone BIND will not load (CNAME beside
// other data) fails the mutation with named's own explanation, and the lab
// recovers on Reset.
func TestBINDRefusesABadZoneClearly(t *testing.T) {
	ctx := context.Background()
	l, _ := startBIND(t, Options{Base: bindBase}, BINDOptions{})
	err := l.Mutate(ctx, func(w *World) error {
		w.Zone("shop-example.com").Add("www CNAME elsewhere.example.")
		return nil
	})
	if err == nil {
		t.Fatal("BIND loaded a zone with a CNAME beside an A record")
	}
	t.Logf("what the operator sees:\n%v", err)
	for _, want := range []string{"could not load", "CNAME and other data", "named's last words"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err := l.Reset(ctx); err != nil {
		t.Fatalf("reset after a bad zone: %v", err)
	}
	if r := ask(t, l, l.AddrOf("ns1.provider-a.net"), "www.shop-example.com", dns.TypeA, false, "udp"); r.Rcode != dns.RcodeSuccess || !hasType(r.Answer, dns.TypeA) {
		t.Errorf("after reset: %v", r)
	}
}

// TestBINDCloseCleansUp: Close stops named, removes exactly the addresses
// the backend added (not one that was already there) and its directory.
func TestBINDCloseCleansUp(t *testing.T) {
	b, err := NewBIND(BINDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := DefaultWorld(bindBase, time.Now())
	pre := w.Host("ns1.provider-a.net").Addr
	if out, err := exec.Command(b.opts.IP, "addr", "add", pre.String()+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s: %v: %s", pre, err, out)
	}
	defer exec.Command(b.opts.IP, "addr", "del", pre.String()+"/32", "dev", "lo").Run()
	l, err := Start(context.Background(), Options{Base: bindBase, Backend: b})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	proc := b.proc
	if proc == nil || proc.exited() {
		t.Fatal("named is not running")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !proc.exited() {
		t.Error("named still runs after Close")
	}
	have, err := b.ifaceAddrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range w.Hosts {
		if h.Addr == pre {
			if !have[h.Addr] {
				t.Errorf("%s was on lo before the lab and was removed", h.Addr)
			}
		} else if have[h.Addr] {
			t.Errorf("%s is still on lo after Close", h.Addr)
		}
	}
	if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
		t.Errorf("the backend's directory %s survived Close (%v)", b.Dir(), err)
	}
}

func TestFindToolNamesTheInstall(t *testing.T) {
	_, err := findTool("", "named-that-is-not-installed")
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y bind9") {
		t.Errorf("want an error naming the install command, got %v", err)
	}
}

// TestNSECChain checks the chain BIND needs: every owner of the signed org
// zone (glue excluded) in canonical order, closing on the apex, bitmaps
// right at delegations, each NSEC signed by the zone's ZSK.
func TestNSECChain(t *testing.T) {
	now := time.Now()
	w := DefaultWorld(bindBase, now)
	org := w.Zone("org")
	chain := nsecChain(org)
	var nsecs []*dns.NSEC
	for i := 0; i < len(chain); i += 2 {
		n, ok := chain[i].(*dns.NSEC)
		sig, sok := chain[i+1].(*dns.RRSIG)
		if !ok || !sok {
			t.Fatalf("chain[%d,%d] = %v, %v: want NSEC then its RRSIG", i, i+1, chain[i], chain[i+1])
		}
		if err := sig.Verify(org.zsk, []dns.RR{n}); err != nil {
			t.Errorf("RRSIG over %s NSEC does not verify: %v", n.Hdr.Name, err)
		}
		if !sig.ValidityPeriod(now) {
			t.Errorf("RRSIG over %s NSEC is not valid now", n.Hdr.Name)
		}
		nsecs = append(nsecs, n)
	}
	want := []struct {
		owner, next string
		types       []uint16
	}{
		{"org.", "ns1.nic.org.", []uint16{dns.TypeNS, dns.TypeSOA, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY}},
		{"ns1.nic.org.", "pay-example.org.", []uint16{dns.TypeA, dns.TypeRRSIG, dns.TypeNSEC}},
		{"pay-example.org.", "provider-b.org.", []uint16{dns.TypeNS, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC}},
		{"provider-b.org.", "org.", []uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC}},
	}
	if len(nsecs) != len(want) {
		t.Fatalf("chain has %d NSEC, want %d: %v", len(nsecs), len(want), chain)
	}
	for i, wn := range want {
		n := nsecs[i]
		if n.Hdr.Name != wn.owner || n.NextDomain != wn.next || fmt.Sprint(n.TypeBitMap) != fmt.Sprint(wn.types) {
			t.Errorf("NSEC %d = %s → %s %v, want %s → %s %v", i, n.Hdr.Name, n.NextDomain, n.TypeBitMap, wn.owner, wn.next, wn.types)
		}
	}
	if nsecChain(w.Zone("com")) != nil {
		t.Error("an unsigned zone got an NSEC chain")
	}
	for _, tc := range []struct{ a, b string }{{"org.", "a.org."}, {"a.b.org.", "z.org."}, {"a.org.", "B.org."}, {"com.", "org."}} {
		if !canonicalLess(tc.a, tc.b) || canonicalLess(tc.b, tc.a) {
			t.Errorf("canonical order: want %s < %s", tc.a, tc.b)
		}
	}
}

// bigWorld adds n delegated domains to the default world, the way the
// benchmark's inventory looks: two name servers each (provider A and B),
// every tenth signed under the signed org zone with its DS, the rest under
// com.
func bigWorld(n int) func(base byte, now time.Time) *World {
	return func(base byte, now time.Time) *World {
		w := DefaultWorld(base, now)
		com, org := w.Zone("com"), w.Zone("org")
		ns := []string{"ns1.provider-a.net.", "ns1.provider-b.org."}
		for i := 0; i < n; i++ {
			parent, tld := com, "com"
			if i%10 == 0 {
				parent, tld = org, "org"
			}
			name := fmt.Sprintf("bench%05d.%s.", i, tld)
			z := NewZone(name).Add(soaRecord(name, ns[0], DefaultSerial),
				name+" 86400 IN NS "+ns[0], name+" 86400 IN NS "+ns[1],
				"@ A 192.0.2.1", "www A 192.0.2.1", "@ MX 10 mail."+name, "mail A 192.0.2.2")
			for _, x := range ns {
				parent.Add(fmt.Sprintf("%s 172800 IN NS %s", name, x))
			}
			if parent == org {
				z.Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))
				org.Add(z.DS().String())
			}
			w.Zones[z.Origin] = z
			for _, h := range []string{"ns1.provider-a.net", "ns1.provider-b.org"} {
				w.Host(h).Zones = append(w.Host(h).Zones, z.Origin)
			}
		}
		org.Sign(now.Add(-time.Hour), now.Add(30*24*time.Hour))
		return w
	}
}

// TestBINDServesAThousandDelegations: BIND loads a world of 1,000
// delegations (2,000 (view, zone) pairs on the providers) and serves each
// domain's referral and zone. How long it takes is BenchmarkBINDStart's
// business, not a test's.
func TestBINDServesAThousandDelegations(t *testing.T) {
	const n = 1000
	start := time.Now()
	l, b := startBIND(t, Options{Base: bigBindBase, World: bigWorld(n)}, BINDOptions{})
	t.Logf("1,000 delegations: lab up in %s (%+v)", time.Since(start).Round(time.Millisecond), b.Stats())
	if s := b.Stats(); s.Zones < 2*n {
		t.Errorf("named serves %d (view, zone) pairs, want at least %d", s.Zones, 2*n)
	}
	gtld, nicOrg, provB := l.AddrOf("a.gtld-servers.net"), l.AddrOf("ns1.nic.org"), l.AddrOf("ns1.provider-b.org")
	for i := 0; i < n; i += 97 {
		parent, tld := gtld, "com"
		if i%10 == 0 {
			parent, tld = nicOrg, "org"
		}
		name := fmt.Sprintf("bench%05d.%s.", i, tld)
		if r := ask(t, l, parent, name, dns.TypeNS, true, "udp"); !hasType(r.Ns, dns.TypeNS) || (tld == "org") != hasType(r.Ns, dns.TypeDS) {
			t.Errorf("referral for %s: %v", name, r)
		}
		if r := ask(t, l, provB, name, dns.TypeSOA, true, "udp"); !r.Authoritative || (tld == "org") != sigCovers(r.Answer, dns.TypeSOA) {
			t.Errorf("SOA of %s at ns1.provider-b.org: %v", name, r)
		}
	}
}

// BenchmarkBINDSync measures one change of the world reaching named (a
// serial drift, then the reset): what every scenario of the BIND tests pays
// twice. go test -run ^$ -bench BINDSync ./lab/dnslab/
func BenchmarkBINDSync(b *testing.B) {
	for _, mode := range []ReloadMode{ReloadRNDC, ReloadRestart} {
		b.Run(mode.String(), func(b *testing.B) {
			ctx := context.Background()
			l, _ := startBIND(b, Options{Base: bindBase}, BINDOptions{Reload: mode})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					if err := l.SerialDrift(ctx, "shop-example.com", "ns1.provider-b.org", 5); err != nil {
						b.Fatal(err)
					}
				} else if err := l.Reset(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBINDStart measures a BIND lab with N delegations from nothing to
// serving every zone, and one change (a serial drift) on top.
// go test -run ^$ -bench BINDStart -benchtime 3x ./lab/dnslab/
func BenchmarkBINDStart(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("delegations=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var sync time.Duration
			for i := 0; i < b.N; i++ {
				bk, err := NewBIND(BINDOptions{})
				if err != nil {
					b.Fatal(err)
				}
				l, err := Start(ctx, Options{Base: bigBindBase, World: bigWorld(n), Backend: bk})
				if err != nil {
					bk.Close()
					b.Fatal(err)
				}
				b.StopTimer()
				t0 := time.Now()
				if err := l.SerialDrift(ctx, "shop-example.com", "ns1.provider-b.org", 5); err != nil {
					b.Fatal(err)
				}
				sync += time.Since(t0)
				l.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(sync.Milliseconds())/float64(b.N), "ms/change")
		})
	}
}

// TestBINDAndTheLabAnswerAlike checks, on both servers, the answers the
// delegation scenarios rely on: an authoritative NS answer carries the
// name servers' addresses in the additional section, a CNAME into another
// zone is not chased, a referral to 1,600 name servers fits one TCP answer.
func TestBINDAndTheLabAnswerAlike(t *testing.T) {
	ctx := context.Background()
	inproc, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inproc.Close()
	bind, _ := startBIND(t, Options{Base: bindBase}, BINDOptions{})
	for _, l := range []*Lab{inproc, bind} {
		mode := "in-process"
		if l == bind {
			mode = "BIND"
		}
		if err := l.Alias(ctx, "shop-backup.net", "www", "www.shop-example.com."); err != nil {
			t.Fatal(err)
		}
		if err := l.FloodNameServers(ctx, "shop-example.com", 1600); err != nil {
			t.Fatal(err)
		}
		r := ask(t, l, l.AddrOf("ns1.provider-a.net"), "corp-example.net", dns.TypeNS, false, "udp")
		if !r.Authoritative || !hasType(r.Extra, dns.TypeA) {
			t.Errorf("%s: the NS answer lacks the name server's address:\n%v", mode, r)
		}
		r = ask(t, l, l.AddrOf("ns2.provider-a.net"), "www.shop-backup.net", dns.TypeA, false, "udp")
		if len(r.Answer) != 1 || !hasType(r.Answer, dns.TypeCNAME) {
			t.Errorf("%s: want the CNAME alone (not chased into shop-example.com):\n%v", mode, r)
		}
		r = ask(t, l, l.AddrOf("a.gtld-servers.net"), "shop-example.com", dns.TypeNS, false, "tcp")
		if n := len(r.Ns); n != 1600 || r.Truncated {
			t.Errorf("%s: the referral to 1,600 name servers has %d NS (truncated %v)", mode, n, r.Truncated)
		}
	}
}
