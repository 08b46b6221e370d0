package pages

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

type overviewRow struct {
	Name     string
	Owner    string
	Tier     int
	State    string
	Why      string
	Worst    finding.Severity
	Findings []string
	More     int
	// Accepted counts findings that are accepted risk.
	Accepted  int
	Incidents []Incident
	LastCheck time.Time
	Registrar string
	Expiry    time.Time
	// ExpiryDays is whole days left; ExpiryLevel "critical"/"warning"/"".
	ExpiryDays  int
	ExpiryLevel string
}

type tierCount struct {
	Tier    int
	ByState []int
	Total   int
}

type option struct {
	Value, Label string
	Selected     bool
}

type overviewData struct {
	Rows        []overviewRow
	Matching    int
	Domains     int
	Open        int
	Page, Pages int
	First, Last int
	Prev, Next  string
	Owners      []option
	Tiers       []option
	States      []option
	Filtered    bool
	Counts      []tierCount
	StateNames  []string
	AsOf        time.Time
	Stale       time.Duration
}

// maxFindingsShown is how many finding IDs a row lists before "+N".
const maxFindingsShown = 3

func (p *Pages) overview(w http.ResponseWriter, r *http.Request) {
	v, err := p.idx.get(r.Context())
	if err != nil {
		p.storeFailed(w, r, "the observations", err)
		return
	}
	cfg := p.o.Source.Config()
	now := p.o.Now()
	stale := staleAfter(cfg, now)
	q := r.URL.Query()
	fOwner, fTier, fState := q.Get("owner"), q.Get("tier"), q.Get("state")

	d := overviewData{AsOf: v.builtAt, Stale: stale, StateNames: States, Domains: len(cfg.Domains)}
	counts := map[int][]int{}
	owners := map[string]bool{}
	// Sort small keys, and build full rows only for the page shown: the
	// overview of 10,000 domains shows 100.
	type key struct {
		i, tier, rank int
		open          bool
		name          string
		st            domainState
	}
	keys := make([]key, 0, len(cfg.Domains))
	for i, dom := range cfg.Domains {
		name := config.CanonicalName(dom.Name)
		open := v.open[name]
		st := stateOf(v.dns[name], v.reg[name], open, silenceFor(v.silences, name, now), now, stale)
		if counts[dom.Tier] == nil {
			counts[dom.Tier] = make([]int, len(States))
		}
		counts[dom.Tier][len(States)-stateRank(st.State)]++
		owners[dom.Owner] = true
		d.Open += len(open)
		if (fOwner != "" && dom.Owner != fOwner) || (fTier != "" && strconv.Itoa(dom.Tier) != fTier) || (fState != "" && st.State != fState) {
			continue
		}
		keys = append(keys, key{i: i, tier: dom.Tier, rank: stateRank(st.State), open: len(open) > 0, name: name, st: st})
	}
	// Open incidents first, then by tier, then the most urgent state.
	slices.SortFunc(keys, func(a, b key) int {
		if c := boolOrder(a.open, b.open); c != 0 {
			return c
		}
		if c := cmp.Compare(a.tier, b.tier); c != 0 {
			return c
		}
		if c := cmp.Compare(b.rank, a.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	d.Matching = len(keys)
	d.Pages = max(1, (len(keys)+p.o.PageSize-1)/p.o.PageSize)
	d.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 {
		d.Page = min(n, d.Pages)
	}
	lo := (d.Page - 1) * p.o.PageSize
	hi := min(lo+p.o.PageSize, len(keys))
	for _, k := range keys[lo:hi] {
		dom := cfg.Domains[k.i]
		dns, reg := v.dns[k.name], v.reg[k.name]
		row := overviewRow{Name: k.name, Owner: dom.Owner, Tier: dom.Tier, State: k.st.State, Why: k.st.Why, Worst: k.st.Worst, Incidents: v.open[k.name]}
		var ids []string
		if dns != nil {
			row.LastCheck = dns.observedAt
			ids = append(ids, dns.ids...)
			row.Accepted += dns.accepted
		}
		if reg != nil {
			ids = append(ids, reg.ids...)
			row.Accepted += reg.accepted
			row.Registrar, row.Expiry = reg.registrar, reg.expiry
		}
		if len(ids) > maxFindingsShown {
			row.More = len(ids) - maxFindingsShown
			ids = ids[:maxFindingsShown]
		}
		row.Findings = ids
		if !row.Expiry.IsZero() {
			left := row.Expiry.Sub(now)
			row.ExpiryDays = int(left.Hours() / 24)
			switch {
			case left <= cfg.Policy.Expiry.Critical.D():
				row.ExpiryLevel = StateCritical
			case left <= cfg.Policy.Expiry.Warning.D():
				row.ExpiryLevel = StateWarning
			}
		}
		d.Rows = append(d.Rows, row)
	}
	d.First, d.Last = lo+1, hi
	link := func(page int) string {
		v := url.Values{}
		for k, x := range map[string]string{"owner": fOwner, "tier": fTier, "state": fState} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		s := p.base + "/"
		if len(v) > 0 {
			s += "?" + v.Encode()
		}
		return s
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	d.Filtered = fOwner != "" || fTier != "" || fState != ""

	var ownerNames []string
	for o := range owners {
		ownerNames = append(ownerNames, o)
	}
	slices.Sort(ownerNames)
	for _, o := range ownerNames {
		label := o
		if o == "" {
			continue // an owner-less domain is found with "any owner"
		}
		d.Owners = append(d.Owners, option{Value: o, Label: label, Selected: o == fOwner})
	}
	var tiers []int
	for t := range counts {
		tiers = append(tiers, t)
	}
	slices.Sort(tiers)
	for _, t := range tiers {
		s := strconv.Itoa(t)
		d.Tiers = append(d.Tiers, option{Value: s, Label: "tier " + s, Selected: s == fTier})
		tc := tierCount{Tier: t, ByState: counts[t]}
		for _, n := range counts[t] {
			tc.Total += n
		}
		d.Counts = append(d.Counts, tc)
	}
	for _, s := range States {
		d.States = append(d.States, option{Value: s, Label: s, Selected: s == fState})
	}
	p.render(w, r, http.StatusOK, "overview", "Overview", "overview", true, d)
}

// boolOrder sorts true before false.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}
