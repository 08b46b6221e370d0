package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
)

func TestUsable(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("child.example.com.", dns.TypeNS)
	reply := func(f func(m *dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		f(m)
		return m
	}
	ns := func(owner, target string) dns.RR {
		return &dns.NS{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: target}
	}
	for _, tc := range []struct {
		name string
		m    *dns.Msg
		ok   bool
		kind string
	}{
		{"referral below the zone", reply(func(m *dns.Msg) { m.Ns = []dns.RR{ns("child.example.com.", "ns1.example.net.")} }), true, ""},
		{"authoritative NXDOMAIN", reply(func(m *dns.Msg) { m.Authoritative, m.Rcode = true, dns.RcodeNameError }), true, ""},
		{"authoritative NODATA", reply(func(m *dns.Msg) { m.Authoritative = true }), true, ""},
		{"NXDOMAIN without AA (a middlebox)", reply(func(m *dns.Msg) { m.Rcode, m.RecursionAvailable = dns.RcodeNameError, true }), false, FailNotAuthoritative},
		{"NODATA without AA", reply(func(m *dns.Msg) {}), false, FailNotAuthoritative},
		{"upward referral", reply(func(m *dns.Msg) { m.Ns = []dns.RR{ns(".", "a.root-servers.net.")} }), false, FailBroken},
		{"REFUSED", reply(func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }), false, FailBroken},
		{"data without AA", reply(func(m *dns.Msg) { m.Answer = []dns.RR{ns("child.example.com.", "ns1.example.net.")} }), true, ""},
	} {
		kind, detail, ok := Usable(tc.m, "example.com.")
		if ok != tc.ok || kind != tc.kind {
			t.Errorf("%s: usable=%v kind=%q (%s), want %v %q", tc.name, ok, kind, detail, tc.ok, tc.kind)
		}
	}
}

func TestZoneErrorSaysWhoIsAtFault(t *testing.T) {
	f := func(kinds ...string) *ZoneError {
		ze := &ZoneError{Zone: "com.", Query: Query{Name: "example.com.", Type: dns.TypeNS}}
		for _, k := range kinds {
			ze.Failures = append(ze.Failures, ServerFailure{Name: "a.gtld-servers.net.", Kind: k, Detail: k})
		}
		return ze
	}
	for _, tc := range []struct {
		ze                    *ZoneError
		answered, intercepted bool
	}{
		{f(FailUnreachable, FailUnreachable), false, false},
		{f(FailNotAuthoritative, FailNotAuthoritative), true, true},
		{f(FailNotAuthoritative, FailUnreachable), true, true},
		{f(FailNotAuthoritative, FailBroken), true, false},
		{f(FailBroken, FailNoAddress), true, false},
		{f(), false, false},
	} {
		if a, i := tc.ze.Answered(), tc.ze.Intercepted(); a != tc.answered || i != tc.intercepted {
			t.Errorf("%v: answered %v intercepted %v, want %v %v", tc.ze, a, i, tc.answered, tc.intercepted)
		}
	}
}

// serve starts a UDP and TCP server with h on addr:port (port 0: any).
func serve(t *testing.T, addr string, port int, h dns.Handler) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", addr, port))
	if err != nil {
		t.Fatal(err)
	}
	port = pc.LocalAddr().(*net.UDPAddr).Port
	tl, err := net.Listen("tcp", fmt.Sprintf("%s:%d", addr, port))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: tl, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	return port
}

// TestTruncatedEvenOverTCP: a server that sets TC over UDP and TCP alike
// gives an error, not a half-empty message taken for an answer.
func TestTruncatedEvenOverTCP(t *testing.T) {
	var queries atomic.Int64
	port := serve(t, "127.78.0.1", 0, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative, m.Truncated = true, true
		w.WriteMsg(m)
	}))
	r, err := New(config.Resolver{Port: port, Timeout: config.Duration(time.Second), MaxQPSPerServer: 1000, MaxConcurrency: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := r.Exchange(context.Background(), netip.MustParseAddrPort(fmt.Sprintf("127.78.0.1:%d", port)), Query{Name: "example.com.", Type: dns.TypeNS})
	if !errors.Is(resp.Err, ErrTruncated) || resp.Msg != nil {
		t.Fatalf("want ErrTruncated and no message, got %v (proto %s, TC %v)", resp.Err, resp.Proto, resp.Msg != nil && resp.Msg.Truncated)
	}
	if n := queries.Load(); n != 2 {
		t.Errorf("%d queries, want 2 (UDP, then TCP once)", n)
	}
}

// TestAskZoneBoundsTheNamesItResolves: a zone delegated to 500 glueless
// names that do not exist costs at most resolver.max_ns_per_delegation
// lookups, and the error says the rest were not asked.
func TestAskZoneBoundsTheNamesItResolves(t *testing.T) {
	var queries atomic.Int64
	const addr = "127.78.0.2"
	// One server plays the root and every zone: it refers flood.test. to
	// 500 names under none.test., which it says do not exist.
	port := serve(t, addr, 0, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Compress = true
		q := r.Question[0].Name
		if dns.IsSubDomain("flood.test.", q) {
			for i := 0; i < 500; i++ {
				m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: "flood.test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60},
					Ns: fmt.Sprintf("ns%03d.none.test.", i)})
			}
		} else {
			m.Authoritative, m.Rcode = true, dns.RcodeNameError
		}
		if w.LocalAddr().Network() == "udp" {
			m.Truncate(EDNSBufferSize) // as servers do: TC, and the client retries over TCP
		}
		w.WriteMsg(m)
	}))
	hints := filepath.Join(t.TempDir(), "hints")
	if err := os.WriteFile(hints, []byte(". 3600 IN NS a.root.\na.root. 3600 IN A "+addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(config.Resolver{RootHints: hints, Port: port, Timeout: config.Duration(time.Second), MaxQPSPerServer: 10000,
		MaxConcurrency: 16, MaxNSPerDelegation: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.NewCycle().Lookup(context.Background(), "www.flood.test.", dns.TypeA)
	ze, ok := IsZoneError(err)
	if !ok || ze.Zone != "flood.test." {
		t.Fatalf("want a ZoneError for flood.test., got %v", err)
	}
	if last := ze.Failures[len(ze.Failures)-1]; last.Kind != FailSkipped || len(ze.Failures) != 21 {
		t.Errorf("want 20 names tried and the rest not asked, got %d failures ending %+v", len(ze.Failures), last)
	}
	// The referral (UDP, then TCP: it does not fit), then one A query per
	// name tried (the none.test. NXDOMAIN is a fresh question each).
	if n := queries.Load(); n > 25 {
		t.Errorf("%d queries for a delegation to 500 glueless names, want at most 25", n)
	}
}
