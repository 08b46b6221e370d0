package pages

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsguard/nsguard/baseline"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// timelineDays is how far back the domain page's timeline reaches.
const timelineDays = 30

type parentRow struct {
	monitor.ParentServer
	RTT string
	// Approved is the NS this server handed out when the baseline was
	// approved; Differs says the answer now is another.
	Approved []string
	Differs  bool
	Glue     []string
}

type serverRow struct {
	monitor.Server
	UDPRTT, TCPRTT string
	// ApprovedNS/ApprovedSerial are the baseline's values for this server.
	ApprovedNS     []string
	ApprovedSerial string
	NSDiffers      bool
	SerialDiffers  bool
	Approved       bool
}

type compareRow struct {
	Field    string
	Server   string
	Approved []string
	Now      []string
	Differs  bool
	// Expected marks a difference that is normal (a new SOA serial).
	Expected bool
}

type dsRow struct {
	DS       string
	KeyTag   string
	Matching bool
}

type resolverRow struct {
	monitor.ResolverView
	Diverges bool
}

type lockRow struct {
	Status   string
	Required bool
	Present  bool
}

type domainData struct {
	Name     string
	Domain   config.Domain
	State    domainState
	Silence  *store.Silence
	DNS      *checker.Snapshot
	DNSAt    time.Time
	DNSSince time.Time
	Reg      *checker.Snapshot
	RegAt    time.Time

	Baseline *Baseline
	Parent   []parentRow
	Servers  []serverRow
	Compare  []compareRow
	Diffs    []baseline.Diff

	DS        []dsRow
	Resolvers []resolverRow
	Locks     []lockRow

	Findings    []finding.Finding
	Incidents   []Incident
	Timeline    *timeline
	Playbooks   []config.Playbook
	Contacts    *registry.ContactSheet
	ContactsErr string
}

func (p *Pages) domain(w http.ResponseWriter, r *http.Request) {
	cfg := p.o.Source.Config()
	name := config.CanonicalName(r.PathValue("name"))
	dom, ok := cfg.Domain(name)
	if !ok {
		p.fail(w, r, http.StatusNotFound, "nsguard does not watch a domain called “"+name+"”.")
		return
	}
	ctx := r.Context()
	now := p.o.Now()
	d := &domainData{Name: name, Domain: dom}
	src := p.o.Source

	var dnsPart, regPart *part
	if o, err := src.Observation(ctx, name, checker.DNS); err == nil {
		if d.DNS, err = o.Snapshot(); err != nil {
			p.storeFailed(w, r, "the DNS observation of "+name, err)
			return
		}
		d.DNSAt, d.DNSSince = o.ObservedAt, o.ChangedAt
		dnsPart = partOf(o, d.DNS)
	} else if !errors.Is(err, ErrNotFound) {
		p.storeFailed(w, r, "the DNS observation of "+name, err)
		return
	}
	if o, err := src.Observation(ctx, name, checker.Registration); err == nil {
		if d.Reg, err = o.Snapshot(); err != nil {
			p.storeFailed(w, r, "the registration of "+name, err)
			return
		}
		d.RegAt = o.ObservedAt
		regPart = partOf(o, d.Reg)
	} else if !errors.Is(err, ErrNotFound) {
		p.storeFailed(w, r, "the registration of "+name, err)
		return
	}
	bases, err := src.Baselines(ctx, name)
	if err != nil {
		p.storeFailed(w, r, "the baselines of "+name, err)
		return
	}
	if len(bases) > 0 {
		d.Baseline = &bases[0]
	}
	incs, err := src.Incidents(ctx, IncidentFilter{Domain: name, Limit: 50})
	if err != nil {
		p.storeFailed(w, r, "the incidents of "+name, err)
		return
	}
	d.Incidents = incs
	var open []Incident
	for _, i := range incs {
		if i.Open() {
			open = append(open, i)
		}
	}
	sils, err := src.Silences(ctx, now)
	if err != nil {
		p.storeFailed(w, r, "the silences", err)
		return
	}
	d.Silence = silenceFor(sils, name, now)
	d.State = stateOf(dnsPart, regPart, open, d.Silence, now, staleAfter(cfg, now))

	var approved *baseline.State
	if d.Baseline != nil {
		approved = d.Baseline.State
	}
	d.delegation(approved, src.RTTs(name))
	d.registration(cfg, approved)
	for _, sn := range []*checker.Snapshot{d.DNS, d.Reg} {
		if sn != nil {
			d.Findings = append(d.Findings, sn.Findings...)
		}
	}
	finding.Sort(d.Findings)

	since := now.Add(-timelineDays * 24 * time.Hour)
	tl, err := p.buildTimeline(r, name, since, now, bases, incs, sils)
	if err != nil {
		p.storeFailed(w, r, "the history of "+name, err)
		return
	}
	d.Timeline = tl
	for _, pb := range cfg.Playbooks {
		if config.CanonicalName(pb.Primary) == name || config.CanonicalName(pb.Backup) == name {
			d.Playbooks = append(d.Playbooks, pb)
		}
	}
	if sheet, err := src.Contacts(ctx, name); err != nil {
		d.ContactsErr = err.Error()
	} else {
		d.Contacts = sheet
	}
	p.render(w, r, http.StatusOK, "domain", name, "", true, d)
}

// delegation fills the parent and name server tables and the approved vs
// now comparison, with the baseline package's own diff.
func (d *domainData) delegation(approved *baseline.State, rtts RTTs) {
	if d.DNS == nil || d.DNS.DNS == nil {
		return
	}
	obs := d.DNS.DNS
	var appr *baseline.DNS
	if approved != nil {
		appr = approved.DNS
	}
	now := baseline.FromObservation(obs)
	byServer := func(l []baseline.ServerValues) map[string][]string {
		m := map[string][]string{}
		for _, s := range l {
			m[s.Server] = s.Values
		}
		return m
	}
	var aParent, aChild, aSerial map[string][]string
	if appr != nil {
		aParent, aChild, aSerial = byServer(appr.ParentServers), byServer(appr.ChildNS), byServer(appr.Serials)
	}
	for _, ps := range obs.Parent.Servers {
		row := parentRow{ParentServer: ps, RTT: rttText(rtts, "parent", ps.Name, ps.Addr)}
		for _, g := range ps.Glue {
			row.Glue = append(row.Glue, strings.TrimSuffix(g.Name, ".")+" "+strings.Join(g.Addrs, " "))
		}
		if a, ok := aParent[ps.Name+" "+ps.Addr]; ok {
			row.Approved = a
			row.Differs = !sameSet(a, ps.NS)
		}
		d.Parent = append(d.Parent, row)
	}
	for _, s := range obs.Servers {
		who := s.Name + " " + s.Addr
		row := serverRow{Server: s, UDPRTT: rttText(rtts, "udp", s.Name, s.Addr), TCPRTT: rttText(rtts, "tcp", s.Name, s.Addr)}
		if a, ok := aChild[who]; ok {
			row.ApprovedNS = a
			row.NSDiffers = s.TCP.Status == monitor.ProbeOK && !sameSet(a, s.TCP.NS)
		}
		if a, ok := aSerial[who]; ok && len(a) == 1 {
			row.ApprovedSerial = a[0]
			row.SerialDiffers = s.UDP.Status == monitor.ProbeOK && a[0] != itoa(s.UDP.Serial)
		}
		if appr != nil {
			row.Approved = slices.Contains(appr.ParentNS, s.Name)
		}
		d.Servers = append(d.Servers, row)
	}
	if appr != nil {
		add := func(field, server string, a, n []string, expected bool) {
			d.Compare = append(d.Compare, compareRow{Field: field, Server: server, Approved: a, Now: n, Differs: !sameSet(a, n), Expected: expected})
		}
		add("parent NS", "", appr.ParentNS, now.ParentNS, false)
		add("DS at the parent", "", appr.DS, now.DS, false)
		glue := map[string][2][]string{}
		for _, g := range appr.Glue {
			glue[g.Name] = [2][]string{g.Addrs, nil}
		}
		for _, g := range now.Glue {
			v := glue[g.Name]
			v[1] = g.Addrs
			glue[g.Name] = v
		}
		for _, n := range sortedKeys(glue) {
			add("glue "+n, "", glue[n][0], glue[n][1], false)
		}
		pairs := func(field string, a, n []baseline.ServerValues, expected bool) {
			am, nm := byServer(a), byServer(n)
			keys := map[string]bool{}
			for k := range am {
				keys[k] = true
			}
			for k := range nm {
				keys[k] = true
			}
			var ks []string
			for k := range keys {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			for _, k := range ks {
				add(field, k, am[k], nm[k], expected)
			}
		}
		pairs("parent NS", appr.ParentServers, now.ParentServers, false)
		pairs("child NS", appr.ChildNS, now.ChildNS, false)
		pairs("SOA serial", appr.Serials, now.Serials, true)
		recs := map[string]baseline.Record{}
		for _, r := range appr.Records {
			recs[r.Name+" "+r.Type] = r
		}
		for _, r := range now.Records {
			if old, ok := recs[r.Name+" "+r.Type]; ok {
				pairs("record "+strings.TrimSuffix(r.Name, ".")+" "+r.Type, old.Servers, r.Servers, false)
			}
		}
		d.Diffs = append(d.Diffs, baseline.DiffDNS(d.Domain, appr, now)...)
	}
	if obs.DNSSEC != nil || len(obs.Parent.DS) > 0 {
		keys := map[string]bool{}
		if obs.DNSSEC != nil {
			for _, k := range obs.DNSSEC.DNSKEYs {
				f := strings.Fields(k) // "keytag flags alg"
				if len(f) == 3 {
					keys[f[0]+" "+f[2]] = true
				}
			}
		}
		for _, ds := range obs.Parent.DS {
			f := strings.Fields(ds) // "keytag alg digesttype digest"
			row := dsRow{DS: ds}
			if len(f) >= 2 {
				row.KeyTag = f[0]
				row.Matching = keys[f[0]+" "+f[1]]
			}
			d.DS = append(d.DS, row)
		}
	}
	for _, v := range obs.Resolvers {
		d.Resolvers = append(d.Resolvers, resolverRow{ResolverView: v, Diverges: v.Error != "" || !sameSet(v.Data, v.Expected)})
	}
}

// registration fills the locks and adds the registration's differences
// from the approved baseline.
func (d *domainData) registration(cfg *config.Config, approved *baseline.State) {
	if d.Reg == nil || d.Reg.Registration == nil {
		return
	}
	rec := d.Reg.Registration
	required := cfg.RequiredLocksFor(d.Domain.Tier)
	seen := map[string]bool{}
	for _, s := range required {
		seen[s] = true
		d.Locks = append(d.Locks, lockRow{Status: s, Required: true, Present: slices.Contains(rec.Statuses, s)})
	}
	for _, s := range rec.Statuses {
		if !seen[s] {
			d.Locks = append(d.Locks, lockRow{Status: s, Present: true})
		}
	}
	if approved != nil && approved.Registration != nil {
		now := baseline.FromRecord(rec)
		a := approved.Registration
		add := func(field string, x, y []string) {
			d.Compare = append(d.Compare, compareRow{Field: field, Approved: x, Now: y, Differs: !sameSet(x, y)})
		}
		add("registrar", []string{a.Registrar}, []string{now.Registrar})
		add("statuses", a.Statuses, now.Statuses)
		add("registry NS", a.Nameservers, now.Nameservers)
		add("registry DS", a.DS, now.DS)
		d.Diffs = append(d.Diffs, baseline.DiffRegistration(a, now)...)
	}
}

// rttText renders a response time the latest check measured ("" when
// the daemon has not measured it since it started).
func rttText(r RTTs, transport, name, addr string) string {
	ms, ok := r[RTTKey(transport, name, addr)]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
