package monitor

import (
	"crypto"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestVerifySigOncePerRRset: servers hand out an RRset in any order (BIND
// rotates it), and the signature over it is one ECDSA verification per
// domain however the servers ordered it — while a set that differs in a
// record is verified on its own, and fails.
func TestVerifySigOncePerRRset(t *testing.T) {
	key := func(flags uint16) (*dns.DNSKEY, crypto.Signer) {
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		priv, err := k.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		return k, priv.(crypto.Signer)
	}
	ksk, kskPriv := key(257)
	zsk, _ := key(256)
	other, _ := key(256)
	now := time.Now()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: 3600}, Algorithm: ksk.Algorithm, KeyTag: ksk.KeyTag(), SignerName: "example.com.",
		Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(time.Hour).Unix())}
	if err := sig.Sign(kskPriv, []dns.RR{ksk, zsk}); err != nil {
		t.Fatal(err)
	}

	c := &domainCheck{}
	for _, tc := range []struct {
		name    string
		rrs     []dns.RR
		valid   bool
		entries int // distinct verifications so far
	}{
		{"as signed", []dns.RR{ksk, zsk}, true, 1},
		{"the other order", []dns.RR{zsk, ksk}, true, 1},
		{"as signed again", []dns.RR{ksk, zsk}, true, 1},
		{"a record swapped", []dns.RR{ksk, other}, false, 2},
		{"a record added", []dns.RR{other, zsk, ksk}, false, 3},
	} {
		err := c.verifySig(sig, ksk, tc.rrs)
		if (err == nil) != tc.valid {
			t.Errorf("%s: verify error %v, want valid %v", tc.name, err, tc.valid)
		}
		if len(c.sigs) != tc.entries {
			t.Errorf("%s: %d distinct verifications, want %d", tc.name, len(c.sigs), tc.entries)
		}
	}
}
