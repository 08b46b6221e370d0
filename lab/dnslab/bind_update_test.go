//go:build linux

package dnslab

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// updateBindBase is this file's BIND lab (see bindBase).
const updateBindBase byte = 63

// awaitCNAME polls addr until name's CNAME is want (a secondary catching
// up by NOTIFY and IXFR takes a moment).
func awaitCNAME(t *testing.T, l *Lab, addr netip.Addr, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := cnameAt(t, l, addr, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %s CNAME %q, want %q", addr, name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBINDDynamicUpdates: BIND takes a signed update on the switch zone's
// primary and its secondary follows; a wrong key is refused; the update
// survives a later change of another zone (the world pulls it back);
// Reset restores the healthy switch on both servers, and an update works
// again after it.
func TestBINDDynamicUpdates(t *testing.T) {
	l, _ := startBIND(t, Options{Base: updateBindBase, World: FailoverWorld}, BINDOptions{})
	ctx := context.Background()
	secret := l.World().TSIG[SwitchKey]
	ns1, ns2 := l.AddrOf("ns1.provider-a.net"), l.AddrOf("ns2.provider-a.net")
	api := "api." + SwitchZone

	for _, a := range []netip.Addr{ns1, ns2} {
		if got := cnameAt(t, l, a, api); got != "api.shop-example.com." {
			t.Fatalf("%s serves %q before any update", a, got)
		}
	}
	r := sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), SwitchKey, NewTSIGSecret(), "tcp")
	if r.Rcode != dns.RcodeNotAuth {
		t.Errorf("wrong secret: %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
	}
	r = sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.elsewhere.example.", "api.shop-backup.net."), SwitchKey, secret, "tcp")
	if r.Rcode != dns.RcodeNXRrset {
		t.Errorf("stale prerequisite: %s, want NXRRSET", dns.RcodeToString[r.Rcode])
	}
	r = sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), SwitchKey, secret, "tcp")
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: %s", dns.RcodeToString[r.Rcode])
	}
	awaitCNAME(t, l, ns1, api, "api.shop-backup.net.")
	awaitCNAME(t, l, ns2, api, "api.shop-backup.net.")

	// A change elsewhere re-renders named.conf: the update must survive it.
	if err := l.Lame(ctx, "pay-example.org", "ns1.provider-b.org"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{ns1, ns2} {
		awaitCNAME(t, l, a, api, "api.shop-backup.net.")
	}
	w := l.World()
	if got := w.Zone(SwitchZone).RRset(api, dns.TypeCNAME); len(got) != 1 || got[0].(*dns.CNAME).Target != "api.shop-backup.net." {
		t.Errorf("the world did not take BIND's update back: %v", got)
	}
	if w.Zone(SwitchZone).Serial() != DefaultSerial+1 {
		t.Errorf("world serial %d, want %d", w.Zone(SwitchZone).Serial(), DefaultSerial+1)
	}

	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{ns1, ns2} {
		awaitCNAME(t, l, a, api, "api.shop-example.com.")
	}
	// After the reset, the journal of the first life is gone: a new update
	// applies to the healthy zone.
	r = sendUpdate(t, l.Port(), ns1, switchUpdate(t, "api.shop-example.com.", "api.shop-backup.net."), SwitchKey, secret, "udp")
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update after Reset: %s", dns.RcodeToString[r.Rcode])
	}
	awaitCNAME(t, l, ns2, api, "api.shop-backup.net.")
	// And a Reset with no change in between still brings the switch back.
	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	awaitCNAME(t, l, ns1, api, "api.shop-example.com.")
	awaitCNAME(t, l, ns2, api, "api.shop-example.com.")
}
