package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/monitor"
)

// Edge kinds.
const (
	EdgeNS     = "ns"     // the domain is delegated to a name server under To
	EdgeCNAME  = "cname"  // a name in the domain is an alias for a name under To
	EdgeMX     = "mx"     // mail for a name in the domain goes to a host under To
	EdgeBackup = "backup" // To is the domain's declared backup (graph only)
)

// Edge is one dependency: From (a registrable domain) stops working when
// To does, because of Record.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
	// Record is the DNS data that makes the link, as "name TYPE target".
	Record string `json:"record"`
	// Depth is 1 for the walked domain's own records, 2 for the records
	// of a domain it depends on (one level further).
	Depth int `json:"depth"`
	// Host is the name under To the record points at (for the next level).
	Host string `json:"host,omitempty"`
}

// Resolver is what the walk asks of the DNS: an iterative lookup that
// returns the answer records (resolver.Cycle has this method).
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error)
}

// Registrable returns the registrable domain (public suffix + 1) of a
// host name, lower-case without the trailing dot; a name that has none
// (a bare TLD, an unknown suffix of one label) is returned as it is.
func Registrable(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if r, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return r
	}
	return h
}

// maxTargets bounds the names one domain's walk follows at each level, so
// a zone with thousands of MX or CNAME targets cannot turn an audit into a
// crawl.
const maxTargets = 64

// Walk finds what domain d depends on: the registrable domains of its
// delegation's NS names, of the CNAME targets of its watched names and of
// the MX hosts of its watched names and its apex (mail for the domain
// depends on the apex MX whether or not it is watched). Then, one level
// further, for each domain X found: X's own NS names' domains and where
// the hosts d points at in X are aliased to. obs supplies the delegation
// and watched records already seen; what it lacks is looked up.
//
// Lookups that fail are returned as problems and the walk goes on: a
// partial graph still names the undeclared domains it did find.
func Walk(ctx context.Context, r Resolver, d config.Domain, obs *monitor.Observation) ([]Edge, []string) {
	w := &walker{r: r, root: Registrable(d.Name), seen: map[string]bool{}}
	// Level 1: the domain's own records.
	ns := d.Nameservers
	if obs != nil && len(obs.Parent.NS) > 0 {
		ns = obs.Parent.NS
	}
	if len(ns) == 0 {
		ns = w.lookupNS(ctx, dns.Fqdn(d.Name))
	}
	for _, n := range ns {
		w.add(w.root, EdgeNS, record(d.Name, "NS", n), n, 1)
	}
	names := []string{dns.Fqdn(strings.ToLower(d.Name))}
	for _, it := range monitor.WatchItems(d) {
		if !slices.Contains(names, it.Name) {
			names = append(names, it.Name)
		}
	}
	for _, name := range limit(names) {
		for _, t := range w.cnames(ctx, name, obs) {
			w.add(w.root, EdgeCNAME, record(name, "CNAME", t), t, 1)
		}
		for _, mx := range w.mxHosts(ctx, name) {
			w.add(w.root, EdgeMX, record(name, "MX", mx), mx, 1)
		}
	}
	// Level 2: one step further from each domain found.
	level1 := slices.Clone(w.edges)
	hosts := map[string][]string{}
	var order []string
	for _, e := range level1 {
		if _, ok := hosts[e.To]; !ok {
			order = append(order, e.To)
		}
		if e.Kind != EdgeNS && !slices.Contains(hosts[e.To], e.Host) {
			hosts[e.To] = append(hosts[e.To], e.Host)
		}
	}
	for _, x := range limit(order) {
		for _, n := range w.lookupNS(ctx, dns.Fqdn(x)) {
			w.add(x, EdgeNS, record(x, "NS", n), n, 2)
		}
		for _, h := range limit(hosts[x]) {
			for _, t := range w.cnames(ctx, h, nil) {
				w.add(x, EdgeCNAME, record(h, "CNAME", t), t, 2)
			}
		}
	}
	return w.edges, w.problems
}

// record renders "owner TYPE target" without trailing dots, for people.
func record(owner, typ, target string) string {
	return strings.TrimSuffix(strings.ToLower(owner), ".") + " " + typ + " " + strings.TrimSuffix(strings.ToLower(target), ".")
}

type walker struct {
	r        Resolver
	root     string
	edges    []Edge
	seen     map[string]bool
	problems []string
}

func (w *walker) add(from, kind, record, host string, depth int) {
	host = dns.CanonicalName(host)
	to := Registrable(host)
	if to == "" || to == from || to == w.root {
		return // in-bailiwick or back to the walked domain: no new dependency
	}
	key := from + "|" + kind + "|" + record
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	w.edges = append(w.edges, Edge{From: from, To: to, Kind: kind, Record: record, Depth: depth, Host: host})
}

func (w *walker) problem(name string, t uint16, err error) {
	w.problems = append(w.problems, fmt.Sprintf("%s %s: %v", strings.TrimSuffix(name, "."), dns.TypeToString[t], err))
}

func (w *walker) lookupNS(ctx context.Context, name string) []string {
	rrs, err := w.r.Lookup(ctx, name, dns.TypeNS)
	if err != nil {
		w.problem(name, dns.TypeNS, err)
	}
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok && dns.CanonicalName(ns.Hdr.Name) == dns.CanonicalName(name) {
			out = append(out, dns.CanonicalName(ns.Ns))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cnames returns the CNAME target of name: from the observation's watched
// records when it has them (no query), else from a lookup.
func (w *walker) cnames(ctx context.Context, name string, obs *monitor.Observation) []string {
	if obs != nil {
		found, out := false, []string(nil)
		for _, rec := range obs.Records {
			if rec.Name != name {
				continue
			}
			for _, a := range rec.Answers {
				if a.Error != "" {
					continue
				}
				found = true
				for _, d := range a.Data {
					if t, ok := strings.CutPrefix(d, "CNAME "); ok {
						out = append(out, dns.CanonicalName(strings.TrimSpace(t)))
					}
				}
			}
		}
		if found {
			slices.Sort(out)
			return slices.Compact(out)
		}
	}
	rrs, err := w.r.Lookup(ctx, name, dns.TypeCNAME)
	if err != nil {
		w.problem(name, dns.TypeCNAME, err)
	}
	var out []string
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == name {
			out = append(out, dns.CanonicalName(c.Target))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (w *walker) mxHosts(ctx context.Context, name string) []string {
	rrs, err := w.r.Lookup(ctx, name, dns.TypeMX)
	if err != nil {
		w.problem(name, dns.TypeMX, err)
	}
	var out []string
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
			out = append(out, dns.CanonicalName(mx.Mx))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func limit(s []string) []string {
	if len(s) > maxTargets {
		return s[:maxTargets]
	}
	return s
}

// WalkAll runs Walk for every input that has no edges yet, at most
// concurrency at a time, and stores the edges in the inputs.
func WalkAll(ctx context.Context, r Resolver, inputs []Input, concurrency int) {
	sem := make(chan struct{}, max(1, concurrency))
	var wg sync.WaitGroup
	for i := range inputs {
		if inputs[i].Edges != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			in := &inputs[i]
			edges, problems := Walk(ctx, r, in.Domain, in.DNS)
			if edges == nil {
				edges = []Edge{}
			}
			in.Edges, in.WalkProblems = edges, problems
		}()
	}
	wg.Wait()
}
