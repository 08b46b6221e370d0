package failover

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/resolver"
)

// verify: poll until NAME/TYPE answers the expected value everywhere: on
// every authoritative server of the name's zone (found by iterative
// resolution, or the servers given) and, when asked, on every public
// resolver of resolver.public_resolvers (whose caches may hold the old
// answer until its TTL runs out).

type verifyPlan struct {
	name    string
	rtype   uint16
	expect  []dns.RR
	servers []verifyServer
}

type verifyServer struct {
	label string
	addr  netip.AddrPort
	// rd asks for recursion (a public resolver).
	rd bool
}

// parseExpect reads expect: one value, or several separated by commas,
// in the record type's presentation form ("api.shop-backup.net.",
// "198.51.100.20, 198.51.100.21").
func parseExpect(name, typ, expect string) ([]dns.RR, error) {
	var out []dns.RR
	for _, v := range strings.Split(expect, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s 0 IN %s %s", name, typ, v))
		if err != nil || rr == nil {
			return nil, fmt.Errorf("%w: expect: %q is not %s data", ErrUsage, v, typ)
		}
		out = append(out, rr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: expect is empty", ErrUsage)
	}
	return out, nil
}

// sameData compares RRsets by RDATA alone (TTLs fall as caches count down).
func sameData(a, b []dns.RR) bool {
	key := func(rrs []dns.RR) []string {
		seen := map[string]bool{}
		var out []string
		for _, rr := range rrs {
			k := strings.ToLower(rdata(rr))
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// zoneOf finds the zone holding name: a zone the playbook updates, else
// the closest enclosing name with an NS RRset at its apex.
func (pl *planner) zoneOf(ctx context.Context, name string) (string, error) {
	best := ""
	for _, z := range pl.zones {
		if dns.IsSubDomain(z, name) && dns.CountLabel(z) > dns.CountLabel(best) {
			best = z
		}
	}
	if best != "" {
		return best, nil
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		cand := name[off:]
		rrs, err := pl.cycle.Lookup(ctx, cand, dns.TypeNS)
		if err != nil {
			return "", fmt.Errorf("finding the zone of %s: %w", name, err)
		}
		for _, rr := range rrs {
			if _, ok := rr.(*dns.NS); ok && strings.EqualFold(rr.Header().Name, cand) {
				return cand, nil
			}
		}
	}
	return "", fmt.Errorf("finding the zone of %s: no enclosing zone answers", name)
}

func (pl *planner) planVerify(ctx context.Context, sp *StepPlan, v *config.VerifyStep) error {
	name := dns.CanonicalName(dns.Fqdn(v.Name))
	rtype := dns.StringToType[strings.ToUpper(v.Type)]
	expect, err := parseExpect(name, strings.ToUpper(v.Type), v.Expect)
	if err != nil {
		return err
	}
	vp := &verifyPlan{name: name, rtype: rtype, expect: expect}
	where := ""
	if len(v.Servers) > 0 {
		for _, s := range v.Servers {
			ap, err := pl.serverAddr(ctx, s)
			if err != nil {
				return err
			}
			vp.servers = append(vp.servers, verifyServer{label: ap.String(), addr: ap})
		}
		where = fmt.Sprintf("%d given servers", len(v.Servers))
	} else {
		zone, err := pl.zoneOf(ctx, name)
		if err != nil {
			return err
		}
		rrs, err := pl.cycle.Lookup(ctx, zone, dns.TypeNS)
		if err != nil {
			return fmt.Errorf("finding the name servers of %s: %w", zone, err)
		}
		var names []string
		for _, rr := range rrs {
			if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(rr.Header().Name, zone) {
				names = append(names, dns.CanonicalName(ns.Ns))
			}
		}
		sort.Strings(names)
		for _, n := range names {
			addrs, err := pl.cycle.LookupAddrs(ctx, n)
			if err != nil {
				return fmt.Errorf("finding the address of %s (a name server of %s): %w", n, zone, err)
			}
			for _, a := range addrs {
				ap := pl.e.res.AddrPort(a)
				vp.servers = append(vp.servers, verifyServer{label: fmt.Sprintf("%s (%s)", n, a), addr: ap})
			}
		}
		if len(vp.servers) == 0 {
			return fmt.Errorf("zone %s has no name servers to verify on", zone)
		}
		where = fmt.Sprintf("the %d authoritative servers of %s", len(vp.servers), zone)
	}
	if v.PublicResolvers {
		n := 0
		for _, s := range pl.e.cfg.Resolver.PublicResolvers {
			ap, err := config.ParseServer(s, int(pl.e.res.Port()))
			if err != nil {
				return fmt.Errorf("%w: resolver.public_resolvers: %v", ErrUsage, err)
			}
			vp.servers = append(vp.servers, verifyServer{label: "public resolver " + ap.Addr().String(), addr: ap, rd: true})
			n++
		}
		where += fmt.Sprintf(" and %d public resolvers", n)
	}
	sp.verify = vp
	sp.Summary = fmt.Sprintf("%s %s must answer %s on %s, within %s, asked every %s",
		name, dns.TypeToString[rtype], strings.Join(rdatas(expect), ", "), where, v.Timeout, v.Interval)
	for _, a := range pl.e.askAll(ctx, vp) {
		sp.Notes = append(sp.Notes, "now "+a.label+": "+a.text)
	}
	return nil
}

// verifyAnswer is one server's answer in one poll.
type verifyAnswer struct {
	label string
	ok    bool
	text  string
}

// askAll asks every server once, concurrently, without any cache.
func (e *Engine) askAll(ctx context.Context, vp *verifyPlan) []verifyAnswer {
	out := make([]verifyAnswer, len(vp.servers))
	var wg sync.WaitGroup
	for i, s := range vp.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = e.askOne(ctx, vp, s)
		}()
	}
	wg.Wait()
	return out
}

func (e *Engine) askOne(ctx context.Context, vp *verifyPlan, s verifyServer) verifyAnswer {
	a := verifyAnswer{label: s.label}
	resp := e.res.Exchange(ctx, s.addr, resolver.Query{Name: vp.name, Type: vp.rtype, Proto: resolver.UDP, RD: s.rd})
	if resp.Err != nil {
		a.text = "no answer (" + resp.Err.Error() + ")"
		return a
	}
	m := resp.Msg
	if m.Rcode != dns.RcodeSuccess {
		a.text = dns.RcodeToString[m.Rcode]
		return a
	}
	var got []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == vp.rtype && strings.EqualFold(rr.Header().Name, vp.name) {
			got = append(got, rr)
		}
	}
	if len(got) == 0 {
		a.text = "no " + dns.TypeToString[vp.rtype] + " record"
		return a
	}
	a.text = strings.Join(rdatas(got), ", ")
	a.ok = sameData(got, vp.expect)
	return a
}

func (e *Engine) execVerify(ctx context.Context, sp *StepPlan) (request, response string, err error) {
	vp, v := sp.verify, sp.step.Verify
	request = sp.Summary
	start := time.Now()
	deadline := start.Add(v.Timeout.D())
	interval := v.Interval.D()
	if interval <= 0 {
		interval = 2 * time.Second
	}
	polls := 0
	for {
		polls++
		answers := e.askAll(ctx, vp)
		var wrong []string
		for _, a := range answers {
			if !a.ok {
				wrong = append(wrong, a.label+" answers "+a.text)
			}
		}
		took := time.Since(start).Round(time.Millisecond)
		if len(wrong) == 0 {
			return request, fmt.Sprintf("all %d servers answer %s after %s (%s)", len(answers), strings.Join(rdatas(vp.expect), ", "), took, plural(polls, "poll")), nil
		}
		if ctx.Err() != nil {
			return request, "", ctx.Err()
		}
		if time.Now().Add(interval).After(deadline) {
			return request, strings.Join(wrong, "; "), fmt.Errorf("after %s, %d of %d servers still do not answer %s: %s",
				took, len(wrong), len(answers), strings.Join(rdatas(vp.expect), ", "), strings.Join(wrong, "; "))
		}
		select {
		case <-ctx.Done():
			return request, strings.Join(wrong, "; "), ctx.Err()
		case <-time.After(interval):
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
