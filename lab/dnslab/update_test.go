package dnslab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// sendUpdate sends m to addr at the lab's port over proto, signed with key
// when secret is set, and returns the reply.
func sendUpdate(t testing.TB, port int, addr netip.Addr, m *dns.Msg, key, secret, proto string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	if secret != "" {
		c.TsigSecret = map[string]string{dns.Fqdn(key): secret}
		m.SetTsig(dns.Fqdn(key), TSIGAlgorithm, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil && r == nil {
		t.Fatalf("update to %s: %v", addr, err)
	}
	return r
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// switchUpdate replaces api.shop-switch.com's CNAME, with the value
// expected now as the prerequisite.
func switchUpdate(t testing.TB, from, to string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(SwitchZone)
	m.Used([]dns.RR{rr(t, "api."+SwitchZone+" 0 IN CNAME "+from)})
	m.RemoveRRset([]dns.RR{rr(t, "api."+SwitchZone+" 0 IN CNAME "+from)})
	m.Insert([]dns.RR{rr(t, "api."+SwitchZone+" 60 IN CNAME "+to)})
	return m
}

func cnameAt(t testing.TB, l *Lab, addr netip.Addr, name string) string {
	t.Helper()
	r := ask(t, l, addr, name, dns.TypeCNAME, false, "udp")
	for _, x := range r.Answer {
		if c, ok := x.(*dns.CNAME); ok {
			return c.Target
		}
	}
	return ""
}

func startFailoverLab(t *testing.T) *Lab {
	t.Helper()
	l, err := Start(context.Background(), Options{World: FailoverWorld})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestUpdateInProcess: a signed update with the right prerequisite changes
// the switch on every provider-A server and bumps the serial; everything
// else (stale prerequisite, wrong or unknown key, no signature, a zone
// that is not updatable, a zone the server does not serve) changes nothing.
func TestUpdateInProcess(t *testing.T) {
	l := startFailoverLab(t)
	w := l.World()
	secret := w.TSIG[SwitchKey]
	ns1, ns2 := l.AddrOf("ns1.provider-a.net"), l.AddrOf("ns2.provider-a.net")
	api := "api." + SwitchZone

	refused := []struct {
		name, key, secret string
		addr              netip.Addr
		msg               *dns.Msg
		want              int
	}{
		{"stale prerequisite", SwitchKey, secret, ns1, switchUpdate(t, "api.elsewhere.example.", "api.shop-backup.net."), dns.RcodeNXRrset},
		{"wrong secret", SwitchKey, NewTSIGSecret(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), dns.RcodeNotAuth},
		{"unknown key", "someone-else.", secret, ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), dns.RcodeNotAuth},
		{"unsigned", "", "", ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), dns.RcodeRefused},
		{"not served here", SwitchKey, secret, l.AddrOf("ns1.provider-b.org"), switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), dns.RcodeNotAuth},
		{"zone not updatable", SwitchKey, secret, ns1, func() *dns.Msg {
			m := new(dns.Msg)
			m.SetUpdate("shop-example.com.")
			m.Insert([]dns.RR{rr(t, "evil.shop-example.com. 60 IN A 203.0.113.66")})
			return m
		}(), dns.RcodeRefused},
		{"outside the zone", SwitchKey, secret, ns1, func() *dns.Msg {
			m := new(dns.Msg)
			m.SetUpdate(SwitchZone)
			m.Insert([]dns.RR{rr(t, "api.shop-example.com. 60 IN A 203.0.113.66")})
			return m
		}(), dns.RcodeNotZone},
	}
	for _, tc := range refused {
		for _, proto := range []string{"udp", "tcp"} {
			r := sendUpdate(t, l.Port(), tc.addr, tc.msg.Copy(), tc.key, tc.secret, proto)
			if r.Rcode != tc.want {
				t.Errorf("%s (%s): rcode %s, want %s", tc.name, proto, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.want])
			}
		}
	}
	if got := cnameAt(t, l, ns1, api); got != "api.shop-example.com." {
		t.Fatalf("refused updates changed the switch: %q", got)
	}
	serial := l.World().Zone(SwitchZone).Serial()

	r := sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), SwitchKey, secret, "tcp")
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: %s", dns.RcodeToString[r.Rcode])
	}
	if r.IsTsig() == nil {
		t.Errorf("the reply to a signed update is not signed")
	}
	for _, a := range []netip.Addr{ns1, ns2} {
		if got := cnameAt(t, l, a, api); got != "api.shop-backup.net." {
			t.Errorf("%s answers %q after the update", a, got)
		}
	}
	if got := l.World().Zone(SwitchZone).Serial(); got != serial+1 {
		t.Errorf("serial %d after the update, want %d", got, serial+1)
	}
	// The same update again: its prerequisite no longer holds.
	r = sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), SwitchKey, secret, "udp")
	if r.Rcode != dns.RcodeNXRrset {
		t.Errorf("repeated update: %s, want NXRRSET", dns.RcodeToString[r.Rcode])
	}
	if err := l.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := cnameAt(t, l, ns2, api); got != "api.shop-example.com." {
		t.Errorf("Reset left the switch at %q", got)
	}
}

// TestUpdateSemantics walks RFC 2136's prerequisite and update rules on
// the switch zone, one update per row, each from the healthy world.
func TestUpdateSemantics(t *testing.T) {
	l := startFailoverLab(t)
	secret := l.World().TSIG[SwitchKey]
	ns1 := l.AddrOf("ns1.provider-a.net")
	z := SwitchZone
	cases := []struct {
		name  string
		build func(m *dns.Msg)
		rcode int
		// check is "NAME TYPE" → the records expected afterwards ("" none).
		check map[string]string
	}{
		{"name in use holds", func(m *dns.Msg) {
			m.NameUsed([]dns.RR{rr(t, "api."+z+" 0 IN A 0.0.0.0")})
			m.Insert([]dns.RR{rr(t, "new."+z+" 60 IN A 192.0.2.1")})
		}, dns.RcodeSuccess, map[string]string{"new A": "192.0.2.1"}},
		{"name in use fails", func(m *dns.Msg) {
			m.NameUsed([]dns.RR{rr(t, "nothing."+z+" 0 IN A 0.0.0.0")})
			m.Insert([]dns.RR{rr(t, "new."+z+" 60 IN A 192.0.2.1")})
		}, dns.RcodeNameError, map[string]string{"new A": ""}},
		{"rrset absent holds, add", func(m *dns.Msg) {
			m.RRsetNotUsed([]dns.RR{rr(t, "new."+z+" 0 IN A 0.0.0.0")})
			m.Insert([]dns.RR{rr(t, "new."+z+" 60 IN A 192.0.2.1"), rr(t, "new."+z+" 60 IN A 192.0.2.2")})
		}, dns.RcodeSuccess, map[string]string{"new A": "192.0.2.1 192.0.2.2"}},
		{"rrset absent fails", func(m *dns.Msg) {
			m.RRsetNotUsed([]dns.RR{rr(t, "api."+z+" 0 IN CNAME .")})
			m.RemoveRRset([]dns.RR{rr(t, "api."+z+" 0 IN CNAME .")})
		}, dns.RcodeYXRrset, map[string]string{"api CNAME": "api.shop-example.com."}},
		{"delete rrset", func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{rr(t, "www."+z+" 0 IN CNAME .")})
		}, dns.RcodeSuccess, map[string]string{"www CNAME": ""}},
		{"CNAME beside other data is ignored", func(m *dns.Msg) {
			m.Insert([]dns.RR{rr(t, z+" 60 IN CNAME elsewhere.example.")})
		}, dns.RcodeSuccess, map[string]string{"@ CNAME": ""}},
		{"apex NS survives deleting the RRset", func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{rr(t, z+" 0 IN NS .")})
		}, dns.RcodeSuccess, map[string]string{"@ NS": "ns1.provider-a.net. ns2.provider-a.net."}},
		{"delete one record", func(m *dns.Msg) {
			m.Remove([]dns.RR{rr(t, z+" 0 IN NS ns2.provider-a.net.")})
		}, dns.RcodeSuccess, map[string]string{"@ NS": "ns1.provider-a.net."}},
		{"a failing prerequisite changes nothing", func(m *dns.Msg) {
			m.Insert([]dns.RR{rr(t, "new."+z+" 60 IN A 192.0.2.1")})
			m.Used([]dns.RR{rr(t, "api."+z+" 0 IN CNAME wrong.example.")})
		}, dns.RcodeNXRrset, map[string]string{"new A": ""}},
		{"prerequisite with a TTL is malformed", func(m *dns.Msg) {
			m.Answer = append(m.Answer, rr(t, "api."+z+" 60 IN CNAME api.shop-example.com."))
		}, dns.RcodeFormatError, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			m.SetUpdate(z)
			tc.build(m)
			r := sendUpdate(t, l.Port(), ns1, m, SwitchKey, secret, "tcp")
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			zone := l.World().Zone(z)
			for k, want := range tc.check {
				f := strings.Fields(k)
				name := f[0] + "." + z
				if f[0] == "@" {
					name = z
				}
				var got []string
				for _, x := range zone.RRset(name, dns.StringToType[f[1]]) {
					got = append(got, strings.TrimPrefix(x.String(), x.Header().String()))
				}
				if strings.Join(sortedCopy(got), " ") != want {
					t.Errorf("%s: got %q, want %q", k, strings.Join(got, " "), want)
				}
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestTSIGKeyFileFormat(t *testing.T) {
	got := TSIGKeyFile("nsguard-failover.", "c2VjcmV0")
	want := "key \"nsguard-failover\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n"
	if got != want {
		t.Errorf("got %q, want %q (the tsig-keygen layout)", got, want)
	}
}
