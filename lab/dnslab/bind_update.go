//go:build linux

package dnslab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Updatable zones in BIND.
//
// An updatable zone served by several lab hosts is what a DNS provider
// runs: one primary taking updates (the host named in the SOA MNAME, else
// the lowest address) and secondaries kept in step by NOTIFY and IXFR,
// each in its own view. The primary's view has allow-update for the
// zone's TSIG key; the keys live in a 0600 file named.conf includes.
//
// Dynamic zones have files of their own, one per view (named refuses to
// share a writable file), named
//
//	dyn-<hash of the world's zone>-<epoch>-<view address>.db
//
// While the world does not change the zone, its statement stays the same,
// so a reconfig keeps named's copy with every update in its journal. Before
// each change the lab pulls the zone back (PullUpdates, an AXFR signed with
// the zone's key): when named's copy differs from the world's, the world
// takes named's copy and the zone's epoch moves on, so the next config
// names new files. A file that is not in the config in force is always
// written afresh and its journal removed: a journal left from an earlier
// life of the same content (a Reset back to the healthy zone) would
// otherwise be replayed onto it.

// dynState is the BIND backend's memory of its dynamic zones.
type dynState struct {
	// epoch per origin, bumped when named's copy diverged from the world.
	epoch map[string]int
	// live are the dynamic files of the config in force; primary maps each
	// origin to the view address taking its updates there.
	live    map[string]bool
	primary map[string]netip.Addr
	// next is what the config being synced will put in force.
	next     map[string]bool
	nextPrim map[string]netip.Addr
}

// dynPlan is one updatable zone's roles in the config being rendered.
type dynPlan struct {
	zone        *Zone
	key         string
	hash        string
	primary     netip.Addr
	secondaries []netip.Addr
}

// plan decides, for every updatable zone, which served addresses share
// the world's copy and which of them is the primary.
func (d *dynState) plan(w *World, addrs []netip.Addr) map[string]*dynPlan {
	d.next, d.nextPrim = map[string]bool{}, map[string]netip.Addr{}
	out := map[string]*dynPlan{}
	for origin, key := range w.Updatable {
		z := w.Zones[origin]
		if z == nil {
			continue
		}
		var hosts []*Host
		for _, a := range addrs {
			h := w.HostAt(a)
			if h == nil || !h.served[origin] {
				continue
			}
			if _, own := h.Override[origin]; own {
				continue // its own copy: a plain zone of that host
			}
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			continue
		}
		p := &dynPlan{zone: z, key: key, hash: zoneHash(z)}
		mname := ""
		if soa := z.soa(); len(soa) > 0 {
			mname = dns.CanonicalName(soa[0].(*dns.SOA).Ns)
		}
		p.primary = hosts[0].Addr
		for _, h := range hosts {
			if h.Name == mname {
				p.primary = h.Addr
			}
		}
		for _, h := range hosts {
			if h.Addr != p.primary {
				p.secondaries = append(p.secondaries, h.Addr)
			}
		}
		out[origin] = p
		d.nextPrim[origin] = p.primary
	}
	return out
}

// promote records the synced config's dynamic zones as the ones in force.
func (d *dynState) promote() {
	d.live, d.primary = d.next, d.nextPrim
}

func zoneHash(z *Zone) string {
	var buf bytes.Buffer
	for _, rr := range z.Records() {
		buf.WriteString(rr.String())
		buf.WriteByte('\n')
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:10])
}

// writeKeys writes the world's TSIG keys to a 0600 file and returns the
// include statement for named.conf ("" when there are none).
func (b *BIND) writeKeys(w *World) (string, error) {
	if len(w.TSIG) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(w.TSIG))
	for n := range w.TSIG {
		names = append(names, n)
	}
	sort.Strings(names)
	var k strings.Builder
	for _, n := range names {
		fmt.Fprintf(&k, "key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", n, w.TSIG[n])
	}
	if err := writeAtomic(b.path("tsig.keys"), []byte(k.String()), 0o600); err != nil {
		return "", fmt.Errorf("dnslab: bind: %w", err)
	}
	return fmt.Sprintf("// TSIG keys for dynamic updates (World.TSIG).\ninclude %q;\n", b.path("tsig.keys")), nil
}

// dynamicZone renders host h's statement for z at address a when z is an
// updatable zone shared by several views: the primary or a secondary.
// ok is false for every other zone.
func (b *BIND) dynamicZone(plans map[string]*dynPlan, w *World, h *Host, a netip.Addr, z *Zone, port int) (string, viewZone, bool, error) {
	p := plans[z.Origin]
	if p == nil || p.zone != z {
		return "", viewZone{}, false, nil
	}
	file := fmt.Sprintf("dyn-%s-%d-%s.db", p.hash, b.dyn.epoch[z.Origin], a)
	b.dyn.next[file] = true
	vz := viewZone{addr: a, origin: z.Origin, file: file, serial: z.Serial()}
	fresh := !b.dyn.live[file]
	if fresh {
		// Not in force: whatever is on disk under this name (and its
		// journal) is from an earlier life and must not be loaded.
		os.Remove(b.path(file) + ".jnl")
		os.Remove(b.path(file))
	}
	var s strings.Builder
	if a == p.primary {
		if fresh {
			var buf bytes.Buffer
			fmt.Fprintf(&buf, "; zone %s, nsguard lab, updatable with key %s\n", z.Origin, p.key)
			for _, rr := range z.Records() {
				buf.WriteString(rr.String())
				buf.WriteByte('\n')
			}
			if err := writeAtomic(b.path(file), buf.Bytes(), 0o644); err != nil {
				return "", vz, true, fmt.Errorf("dnslab: bind: zone %s: %w", z.Origin, err)
			}
		}
		fmt.Fprintf(&s, "\tzone %q { type primary; file %q; allow-update { key %q; }; allow-transfer { key %q; 127.0.0.0/8; };",
			z.Origin, file, p.key, p.key)
		if len(p.secondaries) == 0 {
			s.WriteString(" notify no;")
		} else {
			fmt.Fprintf(&s, " notify explicit; notify-delay 0; notify-source %s; also-notify {", a)
			for _, sec := range p.secondaries {
				fmt.Fprintf(&s, " %s port %d;", sec, port)
			}
			s.WriteString(" };")
		}
		s.WriteString(" };\n")
		return s.String(), vz, true, nil
	}
	fmt.Fprintf(&s, "\tzone %q { type secondary; primaries { %s port %d; }; file %q; transfer-source %s; allow-notify { %s; }; };\n",
		z.Origin, p.primary, port, file, a, p.primary)
	return s.String(), vz, true, nil
}

// PullUpdates reads every updatable zone back from its primary view and,
// where named's copy differs from the world's (a dynamic update happened),
// puts named's copy in the world and moves the zone to new files.
func (b *BIND) PullUpdates(ctx context.Context, w *World) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil || b.proc.exited() {
		return nil
	}
	for origin, addr := range b.dyn.primary {
		key := w.Updatable[origin]
		secret, ok := w.TSIG[key]
		z := w.Zones[origin]
		if key == "" || !ok || z == nil {
			continue
		}
		got, err := axfr(ctx, netip.AddrPortFrom(addr, uint16(b.port)).String(), origin, key, secret)
		if err != nil {
			return fmt.Errorf("dnslab: bind: reading updatable zone %s back from %s: %w", origin, addr, err)
		}
		if sameRecords(got.Records(), z.Records()) {
			continue
		}
		w.Zones[origin] = got
		if b.dyn.epoch == nil {
			b.dyn.epoch = map[string]int{}
		}
		b.dyn.epoch[origin]++
		b.log.Debug("pulled dynamic updates", "zone", origin, "serial", got.Serial())
	}
	return nil
}

// axfr transfers origin from server, signed with the zone's key.
func axfr(ctx context.Context, server, origin, key, secret string) (*Zone, error) {
	m := new(dns.Msg)
	m.SetAxfr(origin)
	m.SetTsig(key, TSIGAlgorithm, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{key: secret}, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}
	dl, ok := ctx.Deadline()
	if ok && time.Until(dl) < tr.ReadTimeout {
		tr.ReadTimeout = max(time.Until(dl), time.Millisecond)
	}
	ch, err := tr.In(m, server)
	if err != nil {
		return nil, err
	}
	z := NewZone(origin)
	soas := 0
	for env := range ch {
		if env.Error != nil {
			return nil, env.Error
		}
		for _, rr := range env.RR {
			if rr.Header().Rrtype == dns.TypeSOA {
				soas++
				if soas > 1 {
					continue // the closing SOA
				}
			}
			z.AddRR(rr)
		}
	}
	if soas < 2 {
		return nil, errors.New("transfer ended early")
	}
	return z, nil
}

func sameRecords(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(rrs []dns.RR) []string {
		out := make([]string, len(rrs))
		for i, rr := range rrs {
			out[i] = strings.ToLower(rr.String())
		}
		sort.Strings(out)
		return out
	}
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}
