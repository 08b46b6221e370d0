package dnslab

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Dynamic updates (RFC 2136) signed with TSIG (RFC 8945), so failover
// playbooks can be run against the lab. A zone is updatable when
// World.Updatable names the key allowed to change it; World.TSIG holds the
// keys. The in-process servers implement the protocol here; the BIND
// backend renders the same keys and allow-update (bind_update.go).

// TSIGAlgorithm is the algorithm of every lab TSIG key.
const TSIGAlgorithm = dns.HmacSHA256

// The failover world's switch zone and the key that may update it.
const (
	// SwitchZone holds the names traffic follows: api and www are CNAMEs to
	// the primary's names, which a failover playbook repoints to the backup.
	SwitchZone = "shop-switch.com."
	// SwitchKey is the TSIG key allowed to update SwitchZone.
	SwitchKey = "nsguard-failover."
)

// AllowUpdate makes origin updatable with TSIG key (FQDN) and its base64
// secret (hmac-sha256).
func (w *World) AllowUpdate(origin, key, secret string) {
	if w.Updatable == nil {
		w.Updatable = map[string]string{}
	}
	if w.TSIG == nil {
		w.TSIG = map[string]string{}
	}
	key = dns.CanonicalName(key)
	w.Updatable[dns.CanonicalName(origin)] = key
	w.TSIG[key] = secret
}

// NewTSIGSecret returns a fresh 256-bit secret, base64 (what tsig-keygen
// makes for hmac-sha256).
func NewTSIGSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("dnslab: no randomness for a TSIG secret: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TSIGKeyFile renders a key the way `tsig-keygen -a hmac-sha256 NAME`
// prints it, the format BIND includes and nsguard's tsig_file reads.
func TSIGKeyFile(name, secret string) string {
	return fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", strings.TrimSuffix(dns.CanonicalName(name), "."), secret)
}

// FailoverWorld is the default world plus a switch zone for failover
// playbooks: shop-switch.com, delegated from com to provider A
// (ns1.provider-a.net is its SOA MNAME, the primary BIND takes updates on;
// ns2 is a secondary there), with
//
//	api.shop-switch.com. 60 CNAME api.shop-example.com.
//	www.shop-switch.com. 60 CNAME www.shop-example.com.
//
// updatable with the TSIG key SwitchKey and a fresh random secret
// (World.TSIG[SwitchKey]; TSIGKeyFile renders it for a tsig_file). The
// switch zone is not in the inventory: it is the company's traffic switch,
// not a domain customers type.
func FailoverWorld(base byte, now time.Time) *World {
	w := DefaultWorld(base, now)
	ns := []string{"ns1.provider-a.net.", "ns2.provider-a.net."}
	com := w.Zone("com.")
	z := NewZone(SwitchZone).Add(soaRecord(SwitchZone, ns[0], DefaultSerial))
	for _, n := range ns {
		com.Add(fmt.Sprintf("%s 172800 IN NS %s", SwitchZone, n))
		z.Add(fmt.Sprintf("%s 86400 IN NS %s", SwitchZone, n))
	}
	z.Add("api 60 IN CNAME api.shop-example.com.", "www 60 IN CNAME www.shop-example.com.")
	w.Zones[z.Origin] = z
	for _, h := range w.Hosts {
		if h.Role == "provider-a" {
			h.Zones = appendOnce(h.Zones, SwitchZone)
		}
	}
	w.reindex()
	w.AllowUpdate(SwitchZone, SwitchKey, NewTSIGSecret())
	return w
}

// AllowUpdate makes origin updatable with a new key called key and returns
// its secret. The healthy world keeps the key, so Reset restores the
// zone's data but not its updatability.
func (l *Lab) AllowUpdate(ctx context.Context, origin, key string) (string, error) {
	secret := NewTSIGSecret()
	err := l.Mutate(ctx, func(w *World) error {
		if w.Zone(origin) == nil {
			return fmt.Errorf("dnslab: no zone %s", origin)
		}
		w.AllowUpdate(origin, key, secret)
		l.pristine.AllowUpdate(origin, key, secret)
		return nil
	})
	return secret, err
}

// labTSIG verifies and signs with the keys of the lab's current world, so
// keys added by a Mutate take effect without restarting listeners.
type labTSIG struct{ l *Lab }

func (p labTSIG) secret(name string) (string, error) {
	p.l.mu.RLock()
	defer p.l.mu.RUnlock()
	s, ok := p.l.world.TSIG[dns.CanonicalName(name)]
	if !ok {
		return "", dns.ErrSecret
	}
	return s, nil
}

func (p labTSIG) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	s, err := p.secret(t.Hdr.Name)
	if err != nil {
		return nil, err
	}
	return tsigMAC(s, msg, t)
}

func (p labTSIG) Verify(msg []byte, t *dns.TSIG) error {
	s, err := p.secret(t.Hdr.Name)
	if err != nil {
		return err
	}
	want, err := tsigMAC(s, msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// tsigMAC computes the HMAC of msg (the TSIG variables included, as
// miekg/dns hands it over) with a base64 secret.
func tsigMAC(secret string, msg []byte, t *dns.TSIG) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, dns.ErrSecret
	}
	var h hash.Hash
	switch dns.CanonicalName(t.Algorithm) {
	case dns.HmacSHA256:
		h = hmac.New(sha256.New, raw)
	case dns.HmacSHA512:
		h = hmac.New(sha512.New, raw)
	default:
		return nil, dns.ErrKeyAlg
	}
	h.Write(msg)
	return h.Sum(nil), nil
}

// answerUpdate handles an UPDATE that reached the lab's own listener at a:
// the TSIG status is the listener's verdict on the request's signature.
// The reply is signed with the request's key when the signature verified.
func (l *Lab) answerUpdate(a netip.Addr, r *dns.Msg, tsigErr error) (*dns.Msg, Fault) {
	m := new(dns.Msg)
	m.SetReply(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.world.HostAt(a)
	if h == nil {
		m.Rcode = dns.RcodeNotImplemented // a public resolver takes no updates
		return m, FaultNone
	}
	t := r.IsTsig()
	key := ""
	switch {
	case t == nil:
		// Unsigned: refused below (every lab update is signed).
	case tsigErr != nil:
		// BADKEY or BADSIG (RFC 8945 5.2): NOTAUTH, unsigned, as BIND does.
		m.Rcode = dns.RcodeNotAuth
		return m, h.Fault
	default:
		key = dns.CanonicalName(t.Hdr.Name)
	}
	m.Rcode = l.world.update(h, r, key)
	if key != "" {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	return m, h.Fault
}

// update applies an RFC 2136 UPDATE to the zone h serves, authorised by
// the verified TSIG key ("" when the request was not signed or not
// verified), and returns the response code. A change bumps the SOA serial;
// a failed prerequisite or a malformed update changes nothing.
func (w *World) update(h *Host, r *dns.Msg, key string) int {
	if len(r.Question) != 1 {
		return dns.RcodeFormatError
	}
	zq := r.Question[0]
	if zq.Qtype != dns.TypeSOA || zq.Qclass != dns.ClassINET {
		return dns.RcodeFormatError
	}
	origin := dns.CanonicalName(zq.Name)
	if !h.served[origin] || w.zoneFor(h, origin) == nil {
		return dns.RcodeNotAuth
	}
	allowed, ok := w.Updatable[origin]
	if !ok || key == "" || key != allowed {
		return dns.RcodeRefused
	}
	z := w.zoneFor(h, origin)
	if rc := z.checkPrerequisites(r.Answer); rc != dns.RcodeSuccess {
		return rc
	}
	if rc := z.prescan(r.Ns); rc != dns.RcodeSuccess {
		return rc
	}
	work := z.Clone()
	if !work.applyUpdates(r.Ns) {
		return dns.RcodeSuccess
	}
	work.SetSerial(z.Serial() + 1)
	if _, own := h.Override[origin]; own {
		h.Override[origin] = work
	} else {
		w.Zones[origin] = work
	}
	return dns.RcodeSuccess
}

// checkPrerequisites evaluates the prerequisite section (RFC 2136 3.2).
func (z *Zone) checkPrerequisites(prereqs []dns.RR) int {
	type set struct {
		name string
		t    uint16
	}
	valueDependent := map[set][]dns.RR{}
	var order []set
	for _, rr := range prereqs {
		hdr := rr.Header()
		name := dns.CanonicalName(hdr.Name)
		if hdr.Ttl != 0 {
			return dns.RcodeFormatError
		}
		if !dns.IsSubDomain(z.Origin, name) {
			return dns.RcodeNotZone
		}
		switch hdr.Class {
		case dns.ClassANY:
			if hdr.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if hdr.Rrtype == dns.TypeANY {
				if len(z.rrs[name]) == 0 {
					return dns.RcodeNameError
				}
			} else if len(z.RRset(name, hdr.Rrtype)) == 0 {
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if hdr.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if hdr.Rrtype == dns.TypeANY {
				if len(z.rrs[name]) > 0 {
					return dns.RcodeYXDomain
				}
			} else if len(z.RRset(name, hdr.Rrtype)) > 0 {
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			k := set{name, hdr.Rrtype}
			if _, seen := valueDependent[k]; !seen {
				order = append(order, k)
			}
			valueDependent[k] = append(valueDependent[k], rr)
		default:
			return dns.RcodeFormatError
		}
	}
	for _, k := range order {
		if !sameRRset(valueDependent[k], z.RRset(k.name, k.t)) {
			return dns.RcodeNXRrset
		}
	}
	return dns.RcodeSuccess
}

// sameRRset compares two RRsets by RDATA (TTLs aside), names case-blind.
func sameRRset(a, b []dns.RR) bool {
	covered := func(x, in []dns.RR) bool {
		for _, rr := range x {
			found := false
			for _, o := range in {
				if sameRR(rr, o) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	return len(b) > 0 && covered(a, b) && covered(b, a)
}

// sameRR compares owner, type and RDATA, in class IN.
func sameRR(a, b dns.RR) bool {
	x, y := dns.Copy(a), dns.Copy(b)
	x.Header().Class, y.Header().Class = dns.ClassINET, dns.ClassINET
	return dns.IsDuplicate(x, y)
}

// prescan checks the update section before anything changes (RFC 2136 3.4.1).
func (z *Zone) prescan(updates []dns.RR) int {
	for _, rr := range updates {
		hdr := rr.Header()
		if !dns.IsSubDomain(z.Origin, dns.CanonicalName(hdr.Name)) {
			return dns.RcodeNotZone
		}
		meta := hdr.Rrtype == dns.TypeAXFR || hdr.Rrtype == dns.TypeIXFR || hdr.Rrtype == dns.TypeMAILA || hdr.Rrtype == dns.TypeMAILB
		switch hdr.Class {
		case dns.ClassINET:
			if meta || hdr.Rrtype == dns.TypeANY {
				return dns.RcodeFormatError
			}
		case dns.ClassANY:
			if hdr.Ttl != 0 || hdr.Rdlength != 0 || meta {
				return dns.RcodeFormatError
			}
		case dns.ClassNONE:
			if hdr.Ttl != 0 || meta || hdr.Rrtype == dns.TypeANY {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}
	return dns.RcodeSuccess
}

// applyUpdates performs the update section in order (RFC 2136 3.4.2) and
// reports whether the zone changed. The apex SOA and NS sets survive
// deletions, and CNAME conflicts are ignored, as the RFC says.
func (z *Zone) applyUpdates(updates []dns.RR) bool {
	changed := false
	for _, rr := range updates {
		hdr := rr.Header()
		name := dns.CanonicalName(hdr.Name)
		apex := name == z.Origin
		switch hdr.Class {
		case dns.ClassINET:
			changed = z.addUpdate(name, dns.Copy(rr)) || changed
		case dns.ClassANY:
			for _, t := range z.types(name) {
				protected := apex && (t == dns.TypeSOA || t == dns.TypeNS)
				if (hdr.Rrtype == dns.TypeANY || hdr.Rrtype == t) && !protected {
					z.Remove(name, t)
					changed = true
				}
			}
		case dns.ClassNONE:
			if hdr.Rrtype == dns.TypeSOA || (apex && hdr.Rrtype == dns.TypeNS && len(z.RRset(name, dns.TypeNS)) <= 1) {
				continue
			}
			var keep []dns.RR
			for _, o := range z.rrs[name] {
				if sameRR(o, rr) {
					changed = true
					continue
				}
				keep = append(keep, o)
			}
			if len(keep) == 0 {
				delete(z.rrs, name)
			} else {
				z.rrs[name] = keep
			}
		}
	}
	return changed
}

// addUpdate adds one record: a duplicate replaces its twin, the RRset takes
// the new TTL, and a CNAME never shares a name with other data.
func (z *Zone) addUpdate(name string, rr dns.RR) bool {
	t := rr.Header().Rrtype
	rr.Header().Name = name
	others := false
	for _, o := range z.types(name) {
		if o != dns.TypeCNAME && o != dns.TypeRRSIG && o != dns.TypeNSEC {
			others = true
		}
	}
	switch {
	case t == dns.TypeCNAME && others:
		return false
	case t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC && len(z.RRset(name, dns.TypeCNAME)) > 0:
		return false
	case t == dns.TypeCNAME || t == dns.TypeSOA:
		// One CNAME per name; one SOA per zone, at the apex only.
		if t == dns.TypeSOA && name != z.Origin {
			return false
		}
		old := z.RRset(name, t)
		if len(old) == 1 && old[0].String() == rr.String() {
			return false
		}
		z.Remove(name, t)
		z.AddRR(rr)
		return true
	}
	changed := false
	dup := false
	for _, o := range z.RRset(name, t) {
		if sameRR(o, rr) {
			dup = true
		}
		if o.Header().Ttl != rr.Header().Ttl {
			o.Header().Ttl = rr.Header().Ttl
			changed = true
		}
	}
	if !dup {
		z.AddRR(rr)
		changed = true
	}
	return changed
}

// types lists the record types present at name.
func (z *Zone) types(name string) []uint16 {
	var out []uint16
	seen := map[uint16]bool{}
	for _, rr := range z.rrs[name] {
		if t := rr.Header().Rrtype; !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// updatePuller is a Backend that may have taken dynamic updates the world
// has not seen (BIND, which answers updates itself). Lab.Mutate calls it
// before every change so the world stays the truth.
type updatePuller interface {
	PullUpdates(ctx context.Context, w *World) error
}

// acceptUpdates is miekg/dns's default message filter, which answers
// UPDATE with NOTIMP, opened to updates: their sections hold any number of
// records (the message size still bounds them).
func acceptUpdates(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if opcode := int(dh.Bits>>11) & 0xF; opcode == dns.OpcodeUpdate && dh.Bits&qr == 0 {
		if dh.Qdcount != 1 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}
