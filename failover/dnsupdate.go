package failover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/resolver"
)

// dns_update: an RFC 2136 UPDATE signed with TSIG. Each RRset the step
// replaces or deletes carries, as its prerequisite, exactly the records
// read when the plan was made: a concurrent change makes the server refuse
// the whole update (NXRRSET or YXRRSET) and nothing changes. RRsets
// already as wanted are left out, and a step with nothing to change sends
// nothing: a re-run is a no-op.

type updatePlan struct {
	server netip.AddrPort
	zone   string
	key    Key
	sets   []rrsetChange
}

type rrsetChange struct {
	name   string
	rtype  uint16
	before []dns.RR
	// after is nil for a deletion.
	after []dns.RR
	noop  bool
}

// serverAddr turns "host" or "host:port" into an address: IP literals as
// they are, names by iterative resolution.
func (pl *planner) serverAddr(ctx context.Context, s string) (netip.AddrPort, error) {
	ap, host, port, err := serverSpec(s, pl.e.cfg.Resolver.Port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if ap.IsValid() {
		return ap, nil
	}
	addrs, err := pl.cycle.LookupAddrs(ctx, host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolving server %s: %w", host, err)
	}
	return netip.AddrPortFrom(addrs[0], uint16(port)), nil
}

// serverSpec reads a server a step names: an IP literal with an optional
// port (ap is valid), or a host name with an optional port, resolved when
// the plan is made. CheckPlaybooks uses it too.
func serverSpec(s string, defPort int) (ap netip.AddrPort, host string, port int, err error) {
	if ap, err := config.ParseServer(s, defPort); err == nil {
		return ap, "", 0, nil
	}
	if host, port, err = config.SplitServer(s, defPort); err != nil {
		return netip.AddrPort{}, "", 0, err
	}
	return netip.AddrPort{}, host, port, nil
}

func (pl *planner) planUpdate(ctx context.Context, sp *StepPlan, u *config.DNSUpdateStep) error {
	key, err := ReadKeyFile(u.TSIGFile)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	server, err := pl.serverAddr(ctx, u.Server)
	if err != nil {
		return err
	}
	zone := dns.CanonicalName(dns.Fqdn(u.Zone))
	up := &updatePlan{server: server, zone: zone, key: key}

	type target struct {
		name  string
		rtype uint16
	}
	var order []target
	want := map[target][]dns.RR{}
	deleted := map[target]bool{}
	for _, s := range u.Replace {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			return fmt.Errorf("%w: not a DNS record: %q", ErrUsage, s)
		}
		rr.Header().Name = dns.CanonicalName(rr.Header().Name)
		t := target{rr.Header().Name, rr.Header().Rrtype}
		if !dns.IsSubDomain(zone, t.name) {
			return fmt.Errorf("%w: %s is outside zone %s", ErrUsage, t.name, zone)
		}
		if _, seen := want[t]; !seen {
			order = append(order, t)
		}
		want[t] = append(want[t], rr)
	}
	for _, d := range u.Delete {
		f := strings.Fields(d)
		if len(f) != 2 || dns.StringToType[strings.ToUpper(f[1])] == 0 {
			return fmt.Errorf("%w: delete wants \"name TYPE\", got %q", ErrUsage, d)
		}
		t := target{dns.CanonicalName(dns.Fqdn(f[0])), dns.StringToType[strings.ToUpper(f[1])]}
		if !dns.IsSubDomain(zone, t.name) {
			return fmt.Errorf("%w: %s is outside zone %s", ErrUsage, t.name, zone)
		}
		if _, replaced := want[t]; replaced || deleted[t] {
			return fmt.Errorf("%w: %s %s is both replaced and deleted", ErrUsage, t.name, dns.TypeToString[t.rtype])
		}
		deleted[t] = true
		order = append(order, t)
	}

	sp.NoOp = true
	for _, t := range order {
		before, err := pl.current(ctx, server, zone, t.name, t.rtype)
		if err != nil {
			return err
		}
		after := want[t]
		ch := Change{Name: t.name, Type: dns.TypeToString[t.rtype], Before: rrStrings(before), After: rrStrings(after)}
		rc := rrsetChange{name: t.name, rtype: t.rtype, before: before, after: after}
		switch {
		case sameRecords(before, after):
			ch.Action, rc.noop = ActionReport, true
			if len(after) == 0 {
				ch.Note = "already absent: no change"
			} else {
				ch.Note = "already in place: no change"
			}
		case len(before) == 0:
			ch.Action = ActionCreate
		case len(after) == 0:
			ch.Action = ActionDelete
		default:
			ch.Action = ActionChange
		}
		if !rc.noop {
			sp.NoOp = false
			sp.Action = ActionChange
		}
		pl.projected[rrsetKey{server.String(), t.name, t.rtype}] = after
		up.sets = append(up.sets, rc)
		sp.Changes = append(sp.Changes, ch)
	}
	sp.update = up
	sp.Summary = fmt.Sprintf("RFC 2136 update of zone %s at %s, signed with TSIG key %s", zone, server, key)
	if sp.NoOp {
		sp.Summary += ": every record is in place already, nothing will be sent"
	}
	return nil
}

// current returns the RRset as the step will find it: as an earlier step
// of the plan leaves it, or as the server holds it now.
func (pl *planner) current(ctx context.Context, server netip.AddrPort, zone, name string, rtype uint16) ([]dns.RR, error) {
	if rrs, ok := pl.projected[rrsetKey{server.String(), name, rtype}]; ok {
		return rrs, nil
	}
	return readRRset(ctx, pl.e.res, server, zone, name, rtype)
}

// readRRset asks server (authoritative for zone) for name/type over TCP.
func readRRset(ctx context.Context, res *resolver.Resolver, server netip.AddrPort, zone, name string, rtype uint16) ([]dns.RR, error) {
	resp := res.Exchange(ctx, server, resolver.Query{Name: name, Type: rtype, Proto: resolver.TCP})
	what := fmt.Sprintf("%s %s", name, dns.TypeToString[rtype])
	if resp.Err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", what, server, resp.Err)
	}
	m := resp.Msg
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("reading %s from %s: the server answered %s: is it authoritative for %s?", what, server, dns.RcodeToString[m.Rcode], zone)
	}
	if !m.Authoritative {
		return nil, fmt.Errorf("reading %s from %s: the answer is not authoritative: the server does not serve %s", what, server, zone)
	}
	var out []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == rtype && strings.EqualFold(rr.Header().Name, name) {
			rr.Header().Name = dns.CanonicalName(rr.Header().Name)
			out = append(out, rr)
		}
	}
	return out, nil
}

// rrStrings renders records in presentation form, sorted.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// sameRecords compares RRsets as the zone holds them: RDATA and TTL,
// names case-blind.
func sameRecords(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(rrs []dns.RR) []string {
		out := make([]string, len(rrs))
		for i, rr := range rrs {
			c := dns.Copy(rr)
			c.Header().Class = dns.ClassINET
			out[i] = strings.ToLower(c.String())
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

// updateMessage builds the UPDATE for the changing RRsets and describes it
// for the audit trail (no secret in it).
func updateMessage(up *updatePlan) (*dns.Msg, string) {
	m := new(dns.Msg)
	m.SetUpdate(up.zone)
	var desc strings.Builder
	fmt.Fprintf(&desc, "UPDATE zone %s at %s, key %s", up.zone, up.server, up.key)
	for _, s := range up.sets {
		if s.noop {
			continue
		}
		set := fmt.Sprintf("%s %s", s.name, dns.TypeToString[s.rtype])
		placeholder := &dns.ANY{Hdr: dns.RR_Header{Name: s.name, Rrtype: s.rtype, Class: dns.ClassINET}}
		if len(s.before) == 0 {
			m.RRsetNotUsed([]dns.RR{placeholder})
			fmt.Fprintf(&desc, "; require %s absent", set)
		} else {
			var prereq []dns.RR
			for _, rr := range s.before {
				prereq = append(prereq, dns.Copy(rr))
			}
			m.Used(prereq)
			fmt.Fprintf(&desc, "; require %s = {%s}", set, strings.Join(rdatas(s.before), ", "))
		}
		m.RemoveRRset([]dns.RR{placeholder})
		fmt.Fprintf(&desc, "; delete %s", set)
		if len(s.after) > 0 {
			var add []dns.RR
			for _, rr := range s.after {
				add = append(add, dns.Copy(rr))
			}
			m.Insert(add)
			for _, rr := range s.after {
				fmt.Fprintf(&desc, "; add %s", rr.String())
			}
		}
	}
	return m, desc.String()
}

func rdatas(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rdata(rr))
	}
	sort.Strings(out)
	return out
}

func rdata(rr dns.RR) string {
	return strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
}

// TSIG error codes a server puts in its TSIG record (RFC 8945 5.2).
var tsigErrors = map[uint16]string{
	dns.RcodeBadSig:  "BADSIG: the secret does not match the server's",
	dns.RcodeBadKey:  "BADKEY: the server does not know this key name",
	dns.RcodeBadTime: "BADTIME: this host's clock and the server's differ by more than 5 minutes",
}

// execUpdate sends the step's update and reads the records back.
func (e *Engine) execUpdate(ctx context.Context, rc *runCtx, sp *StepPlan) (request, response string, noop bool, err error) {
	up := sp.update
	if sp.NoOp {
		return fmt.Sprintf("UPDATE zone %s at %s: nothing to send", up.zone, up.server),
			"no-op: every record is in place already", true, nil
	}
	m, request := updateMessage(up)
	m.SetTsig(up.key.Name, up.key.Algorithm, 300, e.now().Unix())
	timeout := sp.step.DNSUpdate.Timeout.D()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c := &dns.Client{Net: "tcp", Timeout: timeout, TsigSecret: map[string]string{up.key.Name: up.key.Secret()}}
	r, _, xerr := c.ExchangeContext(ctx, m, up.server.String())
	keyWhat := fmt.Sprintf("TSIG key %s from %s", up.key.Name, sp.step.DNSUpdate.TSIGFile)
	if r == nil {
		if xerr == nil {
			xerr = errors.New("no answer")
		}
		return request, "", false, fmt.Errorf("sending the update to %s: %w (nothing was changed, or the answer was lost: a re-run reads the records again)", up.server, xerr)
	}
	if t := r.IsTsig(); t != nil && t.Error != 0 {
		why := tsigErrors[t.Error]
		if why == "" {
			why = fmt.Sprintf("TSIG error %d", t.Error)
		}
		return request, rcodeSummary(r), false, fmt.Errorf("%s rejected the %s (%s); nothing was changed", up.server, keyWhat, why)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNotAuth:
		return request, rcodeSummary(r), false, fmt.Errorf("%s answered NOTAUTH to the %s: a wrong key name or secret, or this host's clock is off; nothing was changed", up.server, keyWhat)
	case dns.RcodeRefused:
		return request, rcodeSummary(r), false, fmt.Errorf("%s refused the update of %s (REFUSED): the %s may not update this zone, or the server is not its primary; nothing was changed", up.server, up.zone, keyWhat)
	case dns.RcodeNXRrset, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeYXDomain:
		return request, rcodeSummary(r), false, fmt.Errorf("%s refused the update (%s): the records changed since the plan read them, someone else is changing %s; nothing was changed. Read the new state with: nsguard failover plan %s",
			up.server, dns.RcodeToString[r.Rcode], up.zone, rc.plan.Playbook)
	case dns.RcodeNotZone:
		return request, rcodeSummary(r), false, fmt.Errorf("%s: a record is outside zone %s (NOTZONE); nothing was changed", up.server, up.zone)
	default:
		return request, rcodeSummary(r), false, fmt.Errorf("%s answered %s to the update; nothing was changed", up.server, dns.RcodeToString[r.Rcode])
	}
	if xerr != nil {
		// NOERROR, but the answer's signature did not verify: the update
		// may well have happened; the read-back below says.
		e.log.Warn("the server's answer to the update failed TSIG verification", "server", up.server.String(), "err", xerr)
	} else if r.IsTsig() == nil {
		e.log.Warn("the server's answer to a signed update is not signed", "server", up.server.String())
	}
	// Read back: a server may accept an update and ignore part of it (RFC
	// 2136 drops a CNAME beside other data without an error).
	var now []string
	for _, s := range up.sets {
		got, err := readRRset(ctx, e.res, up.server, up.zone, s.name, s.rtype)
		if err != nil {
			return request, "NOERROR", false, fmt.Errorf("the update was accepted but reading it back failed: %w", err)
		}
		if !sameRecords(got, s.after) {
			return request, "NOERROR", false, fmt.Errorf("%s accepted the update but %s %s is %s, not %s (a CNAME at that name, or a policy on the server?)",
				up.server, s.name, dns.TypeToString[s.rtype], setText(got), setText(s.after))
		}
		now = append(now, fmt.Sprintf("%s %s = %s", s.name, dns.TypeToString[s.rtype], setText(got)))
	}
	return request, "NOERROR; now " + strings.Join(now, "; "), false, nil
}

func setText(rrs []dns.RR) string {
	if len(rrs) == 0 {
		return "absent"
	}
	return "{" + strings.Join(rdatas(rrs), ", ") + "}"
}

func rcodeSummary(r *dns.Msg) string {
	s := dns.RcodeToString[r.Rcode]
	if t := r.IsTsig(); t != nil && t.Error != 0 {
		s += fmt.Sprintf(" (TSIG error %d)", t.Error)
	}
	return s
}
