package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
)

// Two zones delegated to name servers in each other, without glue: a lookup
// of either name needs the other. Two goroutines starting one each must not
// wait on each other for ever (an attacker can hijack a domain to such
// names to stop the monitor). root 127.77.0.1 refers org./net. to ns.tld.
// (127.77.0.2), which delegates evil.org to ns1.evil.net and evil.net to
// ns1.evil.org.
func TestCircularGluelessLookupsDoNotWaitForEverOnEachOther(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.77.0.1:0")
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc2, err := net.ListenPacket("udp", fmt.Sprintf("127.77.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	root := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0].Name
		tld := "org."
		if strings.HasSuffix(q, "net.") {
			tld = "net."
		}
		m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: tld, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.tld."})
		m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "ns.tld.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("127.77.0.2")})
		w.WriteMsg(m)
	})
	tldH := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0].Name
		zone, ns := "evil.org.", "ns1.evil.net."
		if strings.HasSuffix(q, "evil.net.") {
			zone, ns = "evil.net.", "ns1.evil.org."
		}
		m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: ns})
		time.Sleep(20 * time.Millisecond)
		w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: root}, {PacketConn: pc2, Handler: tldH}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	hints := filepath.Join(t.TempDir(), "hints")
	os.WriteFile(hints, []byte(". 3600 IN NS a.root.\na.root. 3600 IN A 127.77.0.1\n"), 0o644)
	r, err := New(config.Resolver{RootHints: hints, Port: port, Timeout: config.Duration(time.Second), Retries: 0, MaxQPSPerServer: 1000, MaxConcurrency: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := r.NewCycle()
	ctx := context.Background() // the daemon's work context never ends
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range []string{"ns1.evil.org.", "ns1.evil.net."} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.LookupAddrs(ctx, n); !errors.Is(err, ErrNoAddress) {
				t.Errorf("%s: want ErrNoAddress, got %v", n, err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("two concurrent glueless lookups wait on each other for ever")
	}
}
