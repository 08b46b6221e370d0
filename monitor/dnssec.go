package monitor

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
)

// checkDNSSEC runs when the parent publishes DS: it matches DS to DNSKEY and
// verifies the SOA and DNSKEY signatures at every authoritative server.
// (The chain above the parent is the parent's business; nsguard watches the
// link a registrar or DNS provider change can break.)
func (c *domainCheck) checkDNSSEC(ctx context.Context) {
	if len(c.obs.Parent.DS) == 0 {
		return
	}
	var parentDS []*dns.DS
	for _, s := range c.obs.Parent.DS {
		if rr, err := dns.NewRR(c.name + " 3600 IN DS " + s); err == nil {
			if ds := rr.(*dns.DS); dsSupported(ds) {
				parentDS = append(parentDS, ds)
			}
		}
	}
	if len(parentDS) == 0 {
		// A validator ignores DS records it cannot use; with none left the
		// zone is insecure, not bogus (RFC 4035 §5.2, RFC 6840 §5.2): it
		// resolves, unprotected. Nothing below can fail validation.
		c.add(DSUnsupported, "", fmt.Sprintf("every DS of %s at the %s zone uses a digest type or algorithm common validators do not implement: they treat the zone as unsigned (insecure) — it resolves, but DNSSEC does not protect it; publish a DS with digest type 2 (SHA-256) for a key of a supported algorithm",
			c.d.Name, zoneName(c.obs.Parent.Zone)),
			finding.Evidence{Query: c.d.Name + " DS (parent)", Answer: strings.Join(c.obs.Parent.DS, "; ")},
			finding.Evidence{Query: "supported", Answer: "digest types 1, 2, 4; algorithms 5, 7, 8, 10, 13, 14, 15, 16"})
		return
	}
	var targets []Server
	for _, s := range c.obs.Servers {
		if s.UDP.Status == ProbeOK {
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		return
	}
	sec := &DNSSEC{}
	// Every server's DNSKEY set at once; the SOA answers are the probe's,
	// from the cycle's cache.
	var asks []resolver.Ask
	var asked []int // targets[asked[j]] is asked asks[2j] and asks[2j+1]
	results := make([]dnssecServer, len(targets))
	for i, s := range targets {
		results[i].obs = DNSSECServer{Name: s.Name, Addr: s.Addr}
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			results[i].obs.Error = err.Error()
			continue
		}
		ap := c.m.res.AddrPort(a)
		asks = append(asks,
			resolver.Ask{Server: ap, Query: resolver.Query{Name: c.name, Type: dns.TypeDNSKEY, Proto: resolver.UDP, DO: true}},
			resolver.Ask{Server: ap, Query: resolver.Query{Name: c.name, Type: dns.TypeSOA, Proto: resolver.UDP, DO: true}})
		asked = append(asked, i)
	}
	resps := c.cycle.ExchangeAll(ctx, asks)
	for j, i := range asked {
		c.dnssecAt(&results[i], resps[2*j], resps[2*j+1])
	}

	allKeys := map[string]*dns.DNSKEY{}
	for _, r := range results {
		for _, k := range r.keys {
			allKeys[keyText(k)] = k
		}
	}
	for t := range allKeys {
		sec.DNSKEYs = append(sec.DNSKEYs, t)
	}

	// A validator takes the DNSKEY set only on a valid signature by a key
	// a DS at the parent points to (RFC 4035 §5.2): a set signed validly by
	// the ZSK alone, or whose KSK signature is broken, fails the domain.
	// (With no DS matching any key, DS_NO_MATCHING_DNSKEY says so.)
	dsKeys := dsKeyTags(parentDS, allKeys)
	var noKeys, invalid []finding.Evidence
	var soonest time.Time
	var soonestWho string
	for _, r := range results {
		sec.Servers = append(sec.Servers, r.obs)
		who := r.obs.Name + " " + r.obs.Addr
		if r.obs.Error != "" {
			continue
		}
		if len(r.keys) == 0 {
			noKeys = append(noKeys, finding.Evidence{Server: who, Query: c.d.Name + " DNSKEY", Answer: "no DNSKEY records"})
			continue
		}
		for _, covers := range []string{"SOA", "DNSKEY"} {
			sigs := r.obs.Signatures
			byDSKey := covers == "DNSKEY" && len(dsKeys) > 0
			if byDSKey {
				sigs = signedBy(sigs, dsKeys)
			}
			best, problem := bestSignature(sigs, covers)
			if best == nil && byDSKey {
				if other, _ := bestSignature(r.obs.Signatures, covers); other != nil {
					if problem == "no RRSIG" {
						problem = fmt.Sprintf("no signature by key %s, the key the parent's DS points to: signed by key %d only, validators do not take the DNSKEY set",
							tagList(dsKeys), other.KeyTag)
					} else {
						problem = fmt.Sprintf("%s; the valid signature by key %d does not count: the parent's DS points to key %s, validators do not take the DNSKEY set",
							problem, other.KeyTag, tagList(dsKeys))
					}
				}
			}
			if best == nil {
				invalid = append(invalid, finding.Evidence{Server: who, Query: c.d.Name + " " + covers + " RRSIG", Answer: problem})
				continue
			}
			if soonest.IsZero() || best.Expiration.Before(soonest) {
				soonest, soonestWho = best.Expiration, who+" "+covers
			}
		}
	}
	c.obs.DNSSEC = sec

	if len(noKeys) > 0 {
		// One server serving the zone unsigned is enough to fail the
		// validating resolvers that happen to ask it.
		what := "its servers publish no DNSKEY: validating resolvers fail the whole domain"
		if len(noKeys) < len(results) {
			what = fmt.Sprintf("%d of its %d servers publish no DNSKEY: validating resolvers that ask them fail the domain", len(noKeys), len(results))
		}
		c.add(DNSSECUnsignedWithDS, "", fmt.Sprintf("%s has DS at the %s zone but %s", c.d.Name, zoneName(c.obs.Parent.Zone), what),
			append(noKeys, finding.Evidence{Query: c.d.Name + " DS (parent)", Answer: strings.Join(c.obs.Parent.DS, "; ")})...)
		if len(noKeys) == len(results) {
			return
		}
	}
	if len(allKeys) > 0 && len(dsKeys) == 0 {
		c.add(DSNoMatchingDNSKEY, "", fmt.Sprintf("no DS of %s at the %s zone matches a DNSKEY the zone publishes: validating resolvers fail the whole domain",
			c.d.Name, zoneName(c.obs.Parent.Zone)),
			finding.Evidence{Query: c.d.Name + " DS (parent)", Answer: strings.Join(c.obs.Parent.DS, "; ")},
			finding.Evidence{Query: c.d.Name + " DNSKEY", Answer: strings.Join(sec.DNSKEYs, "; ")})
	}
	if len(invalid) > 0 {
		c.add(RRSIGInvalid, "", fmt.Sprintf("%s has signatures that do not validate now (bad, expired or missing)", c.d.Name), invalid...)
	}
	if !soonest.IsZero() {
		left := soonest.Sub(c.now)
		h := c.m.cfg.Policy.RRSIGExpiry
		ev := finding.Evidence{Server: soonestWho, Query: c.d.Name + " RRSIG", Answer: fmt.Sprintf("expires %s (in %s)", soonest.UTC().Format(time.RFC3339), roundDuration(left))}
		switch {
		case left < h.Critical.D():
			c.addSev(RRSIGExpiring, finding.Critical, "", fmt.Sprintf("signatures of %s expire in %s: re-signing has stopped", c.d.Name, roundDuration(left)), ev)
		case left < h.Warning.D():
			c.addSev(RRSIGExpiring, finding.Warning, "", fmt.Sprintf("signatures of %s expire in %s: check the signer", c.d.Name, roundDuration(left)), ev)
		}
	}
}

type dnssecServer struct {
	obs  DNSSECServer
	keys []*dns.DNSKEY
}

// dnssecAt checks one server's SOA and DNSKEY signatures against the
// DNSKEY set it serves.
func (c *domainCheck) dnssecAt(out *dnssecServer, keyResp, soaResp *resolver.Response) {
	if keyResp.Err != nil || soaResp.Err != nil {
		out.obs.Error = responseText(keyResp) + "; " + responseText(soaResp)
		return
	}
	keySet, keySigs := splitSigs(keyResp.Msg.Answer, c.name, dns.TypeDNSKEY)
	soaSet, soaSigs := splitSigs(soaResp.Msg.Answer, c.name, dns.TypeSOA)
	for _, rr := range keySet {
		k := rr.(*dns.DNSKEY)
		out.keys = append(out.keys, k)
		out.obs.DNSKEYs = append(out.obs.DNSKEYs, keyText(k))
	}
	for _, set := range []struct {
		covers string
		rrs    []dns.RR
		sigs   []*dns.RRSIG
	}{{"SOA", soaSet, soaSigs}, {"DNSKEY", keySet, keySigs}} {
		if len(set.sigs) == 0 {
			out.obs.Signatures = append(out.obs.Signatures, Signature{Covers: set.covers, Error: "no RRSIG"})
		}
		for _, sig := range set.sigs {
			out.obs.Signatures = append(out.obs.Signatures, c.verify(sig, set.covers, set.rrs, out.keys))
		}
	}
}

func (c *domainCheck) verify(sig *dns.RRSIG, covers string, rrs []dns.RR, keys []*dns.DNSKEY) Signature {
	s := Signature{Covers: covers, KeyTag: sig.KeyTag, Expiration: time.Unix(int64(sig.Expiration), 0).UTC()}
	var key *dns.DNSKEY
	for _, k := range keys {
		if k.KeyTag() == sig.KeyTag && k.Algorithm == sig.Algorithm {
			key = k
			break
		}
	}
	switch {
	case key == nil:
		s.Error = fmt.Sprintf("signed by key %d, which the zone does not publish", sig.KeyTag)
	case len(rrs) == 0:
		s.Error = "nothing to verify"
	case c.verifySig(sig, key, rrs) != nil:
		s.Error = fmt.Sprintf("signature by key %d does not verify", sig.KeyTag)
	case !sig.ValidityPeriod(c.now):
		s.Error = fmt.Sprintf("outside its validity period %s – %s",
			time.Unix(int64(sig.Inception), 0).UTC().Format(time.RFC3339), s.Expiration.Format(time.RFC3339))
	default:
		s.Valid = true
	}
	return s
}

// verifySig is sig.Verify(key, rrs), done once per distinct input in a
// domain's check: a zone's servers normally serve the same signed RRsets,
// and one ECDSA verification costs more than the rest of a server's
// checks. The key is the full text of the signature, the key and the
// records, so an RRset that differs in anything is verified on its own.
// The records are taken in sorted order: an RRset is a set, servers hand
// it out in any order (BIND rotates it), and Verify sorts it into
// canonical order (RFC 4034 §6.3) before it hashes — so two orders are
// one verification, not two.
func (c *domainCheck) verifySig(sig *dns.RRSIG, key *dns.DNSKEY, rrs []dns.RR) error {
	texts := make([]string, len(rrs))
	for i, rr := range rrs {
		texts[i] = rr.String()
	}
	sort.Strings(texts)
	var b strings.Builder
	b.WriteString(sig.String())
	b.WriteByte('\n')
	b.WriteString(key.String())
	for _, t := range texts {
		b.WriteByte('\n')
		b.WriteString(t)
	}
	if c.sigs == nil {
		c.sigs = map[string]error{}
	}
	err, done := c.sigs[b.String()]
	if !done {
		err = sig.Verify(key, rrs)
		c.sigs[b.String()] = err
	}
	return err
}

// bestSignature returns the valid signature over covers that lasts longest
// (a resolver uses any valid one), or why there is none.
func bestSignature(sigs []Signature, covers string) (*Signature, string) {
	var best *Signature
	var problems []string
	for i := range sigs {
		s := &sigs[i]
		if s.Covers != covers {
			continue
		}
		if !s.Valid {
			problems = append(problems, s.Error)
			continue
		}
		if best == nil || s.Expiration.After(best.Expiration) {
			best = s
		}
	}
	if best == nil && len(problems) == 0 {
		problems = append(problems, "no RRSIG")
	}
	return best, strings.Join(problems, "; ")
}

func splitSigs(rrs []dns.RR, owner string, t uint16) ([]dns.RR, []*dns.RRSIG) {
	var set []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range rrs {
		if resolver.CanonicalName(rr.Header().Name) != owner {
			continue
		}
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == t {
			sigs = append(sigs, sig)
		} else if rr.Header().Rrtype == t {
			set = append(set, rr)
		}
	}
	return set, sigs
}

// Digest types and algorithms common validators implement (RFC 8624:
// MUST or RECOMMENDED for validation, and Ed448, which BIND, Unbound and
// the large public resolvers validate). GOST (digest 3 and 5, algorithm
// 12 and 23), SM3/SM2 (digest 6, algorithm 17), DSA and RSA/MD5 are not.
var (
	supportedDigests    = map[uint8]bool{dns.SHA1: true, dns.SHA256: true, dns.SHA384: true}
	supportedAlgorithms = map[uint8]bool{dns.RSASHA1: true, dns.RSASHA1NSEC3SHA1: true, dns.RSASHA256: true, dns.RSASHA512: true,
		dns.ECDSAP256SHA256: true, dns.ECDSAP384SHA384: true, dns.ED25519: true, dns.ED448: true}
)

// dsSupported reports whether a validator can use ds at all.
func dsSupported(ds *dns.DS) bool {
	return supportedDigests[ds.DigestType] && supportedAlgorithms[ds.Algorithm]
}

// dsKeyTags returns the tags of the keys a DS points to (its tag,
// algorithm and digest match the key).
func dsKeyTags(ds []*dns.DS, keys map[string]*dns.DNSKEY) map[uint16]bool {
	tags := map[uint16]bool{}
	for _, d := range ds {
		for _, k := range keys {
			if k.KeyTag() != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
				tags[d.KeyTag] = true
			}
		}
	}
	return tags
}

// signedBy keeps the signatures made by a key of tags. (With none left,
// bestSignature says "no RRSIG", as for a set with no signature at all.)
func signedBy(sigs []Signature, tags map[uint16]bool) []Signature {
	var out []Signature
	for _, s := range sigs {
		if tags[s.KeyTag] {
			out = append(out, s)
		}
	}
	return out
}

func tagList(tags map[uint16]bool) string {
	var out []string
	for t := range tags {
		out = append(out, strconv.Itoa(int(t)))
	}
	sort.Strings(out)
	return strings.Join(out, " or ")
}

func keyText(k *dns.DNSKEY) string {
	return fmt.Sprintf("%d %d %d", k.KeyTag(), k.Flags, k.Algorithm)
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "the past"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return d.Round(time.Second).String()
}
