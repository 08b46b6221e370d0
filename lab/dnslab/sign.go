package dnslab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// keyCache reuses one key pair per flag value: generating P-256 keys is cheap
// but the benchmark signs a thousand zones, and key uniqueness across lab
// zones proves nothing.
var keyCache = struct {
	sync.Mutex
	keys map[uint16]*ecdsa.PrivateKey
}{keys: map[uint16]*ecdsa.PrivateKey{}}

func labKey(flags uint16) *ecdsa.PrivateKey {
	keyCache.Lock()
	defer keyCache.Unlock()
	if k, ok := keyCache.keys[flags]; ok {
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("dnslab: key generation: " + err.Error())
	}
	keyCache.keys[flags] = k
	return k
}

func newDNSKEY(origin string, flags uint16, priv *ecdsa.PrivateKey) *dns.DNSKEY {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     flags,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	// The public key is the uncompressed point without the 0x04 prefix, as
	// RFC 6605 specifies; miekg/dns writes it from an ecdsa.PublicKey.
	k.PublicKey = ecdsaPublicKey(&priv.PublicKey)
	return k
}

func ecdsaPublicKey(pub *ecdsa.PublicKey) string {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic("dnslab: encoding a public key: " + err.Error())
	}
	return toBase64(b[1:])
}

// Sign makes the zone DNSSEC-signed (ECDSA P-256, a KSK and a ZSK) with
// signatures valid from inception to expiration.
func (z *Zone) Sign(inception, expiration time.Time) {
	if z.ksk == nil {
		kp, zp := labKey(257), labKey(256)
		z.ksk, z.kskPriv = newDNSKEY(z.Origin, 257, kp), kp
		z.zsk, z.zskPriv = newDNSKEY(z.Origin, 256, zp), zp
	}
	z.sigInception, z.sigExpiration = inception, expiration
	z.resign()
}

// Signed reports whether the zone carries DNSSEC keys.
func (z *Zone) Signed() bool { return z.ksk != nil && !z.stripSignature }

// DS returns the DS record (SHA-256) of the zone's KSK, nil when unsigned.
func (z *Zone) DS() *dns.DS {
	if z.ksk == nil {
		return nil
	}
	return z.ksk.ToDS(dns.SHA256)
}

// resign drops every signature and signs each authoritative RRset again.
func (z *Zone) resign() {
	for owner, rrs := range z.rrs {
		var keep []dns.RR
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t != dns.TypeRRSIG && !(t == dns.TypeDNSKEY && owner == z.Origin) {
				keep = append(keep, rr)
			}
		}
		z.rrs[owner] = keep
	}
	if z.ksk == nil || z.stripSignature {
		return
	}
	z.rrs[z.Origin] = append(z.rrs[z.Origin], dns.Copy(z.ksk), dns.Copy(z.zsk))
	var owners []string
	for owner := range z.rrs {
		owners = append(owners, owner)
	}
	sort.Strings(owners)
	for _, owner := range owners {
		cut := z.delegation(owner)
		sets := map[uint16][]dns.RR{}
		for _, rr := range z.rrs[owner] {
			t := rr.Header().Rrtype
			if cut != "" && !(cut == owner && t == dns.TypeDS) {
				continue // delegation NS and glue are not signed by the parent
			}
			sets[t] = append(sets[t], rr)
		}
		var types []int
		for t := range sets {
			types = append(types, int(t))
		}
		sort.Ints(types)
		for _, t := range types {
			key, priv := z.zsk, z.zskPriv
			if uint16(t) == dns.TypeDNSKEY && !z.keysByZSK {
				key, priv = z.ksk, z.kskPriv
			}
			sig := &dns.RRSIG{
				Hdr:        dns.RR_Header{Ttl: sets[uint16(t)][0].Header().Ttl},
				Algorithm:  key.Algorithm,
				KeyTag:     key.KeyTag(),
				SignerName: z.Origin,
				Inception:  uint32(z.sigInception.Unix()),
				Expiration: uint32(z.sigExpiration.Unix()),
			}
			if err := sig.Sign(crypto.Signer(priv), sets[uint16(t)]); err != nil {
				panic(fmt.Sprintf("dnslab: signing %s/%s: %v", owner, dns.TypeToString[uint16(t)], err))
			}
			if z.corruptSigs {
				sig.Signature = corrupt(sig.Signature)
			}
			z.rrs[owner] = append(z.rrs[owner], sig)
		}
	}
}

func corrupt(b64 string) string {
	b := fromBase64(b64)
	if len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
	return toBase64(b)
}

func toBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func fromBase64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}
