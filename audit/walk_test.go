package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/monitor"
)

// fakeDNS answers from a table of "name TYPE" → records and counts the
// questions; "name TYPE" → nil with an entry in fail returns an error.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
	fail    map[string]bool
	asked   []string
}

func (f *fakeDNS) Lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	key := dns.CanonicalName(name) + " " + dns.TypeToString[qtype]
	f.mu.Lock()
	f.asked = append(f.asked, key)
	f.mu.Unlock()
	if f.fail[key] {
		return nil, errors.New("timed out")
	}
	var out []dns.RR
	for _, s := range f.records[key] {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, rr)
	}
	return out, nil
}

func edgeStrings(es []Edge) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d %s>%s %s", e.Depth, e.Kind, e.To, e.Record))
	}
	slices.Sort(out)
	return out
}

func TestWalk(t *testing.T) {
	f := &fakeDNS{
		records: map[string][]string{
			"a.com. NS":          {"a.com. NS ns1.dns-one.net.", "a.com. NS ns.a.com."},
			"a.com. MX":          {"a.com. MX 10 mx.mailer.org.", "a.com. MX 20 a.com."},
			"www.a.com. MX":      {"www.a.com. CNAME www.cdn.net.", "www.cdn.net. MX 0 ."},
			"cdn.net. NS":        {"cdn.net. NS ns1.cdn-dns.io."},
			"mailer.org. NS":     {"mailer.org. NS ns1.mailer.org."},
			"dns-one.net. NS":    {"dns-one.net. NS ns1.dns-one.net."},
			"www.cdn.net. CNAME": {"www.cdn.net. CNAME edge.far.io."},
		},
		fail: map[string]bool{"mx.mailer.org. CNAME": true},
	}
	d := config.Domain{Name: "a.com", Watch: []string{"www"}}
	// The observation has the delegation and the watched CNAME: no NS or
	// CNAME question for a.com's own names.
	obs := &monitor.Observation{
		Parent: monitor.Parent{NS: []string{"ns1.dns-one.net.", "ns.a.com."}},
		Records: []monitor.Record{{Name: "www.a.com.", Type: "A", Answers: []monitor.ServerAnswer{
			{Server: "ns1.dns-one.net.", Data: []string{"CNAME www.cdn.net."}},
		}}},
	}
	edges, problems := Walk(context.Background(), f, d, obs)
	want := []string{
		"1 cname>cdn.net www.a.com CNAME www.cdn.net",
		"1 mx>mailer.org a.com MX mx.mailer.org",
		"1 ns>dns-one.net a.com NS ns1.dns-one.net",
		"2 cname>far.io www.cdn.net CNAME edge.far.io",
		"2 ns>cdn-dns.io cdn.net NS ns1.cdn-dns.io",
	}
	if got := edgeStrings(edges); !slices.Equal(got, want) {
		t.Errorf("edges:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	for _, q := range f.asked {
		if q == "a.com. NS" || q == "www.a.com. CNAME" {
			t.Errorf("asked %s though the observation has it", q)
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "mx.mailer.org CNAME: timed out") {
		t.Errorf("problems %v", problems)
	}
}

func TestWalkBoundsTargets(t *testing.T) {
	f := &fakeDNS{records: map[string][]string{}}
	var mx []string
	for i := range 3 * maxTargets {
		mx = append(mx, fmt.Sprintf("a.com. MX 10 mx.host%d.net.", i))
	}
	f.records["a.com. MX"] = mx
	edges, _ := Walk(context.Background(), f, config.Domain{Name: "a.com"}, nil)
	var l1 int
	for _, e := range edges {
		if e.Depth == 1 {
			l1++
		}
	}
	if l1 != 3*maxTargets {
		t.Errorf("%d direct edges, want all %d", l1, 3*maxTargets)
	}
	asked := 0
	for _, q := range f.asked {
		if strings.HasSuffix(q, " NS") && q != "a.com. NS" {
			asked++
		}
	}
	if asked != maxTargets {
		t.Errorf("followed %d dependencies one level further, want the bound %d", asked, maxTargets)
	}
}

func TestWalkAllSkipsWalked(t *testing.T) {
	f := &fakeDNS{records: map[string][]string{"b.com. NS": {"b.com. NS ns1.x.net."}}}
	in := []Input{
		{Domain: config.Domain{Name: "a.com"}, Edges: []Edge{{From: "a.com", To: "keep.me", Kind: EdgeNS, Depth: 1}}},
		{Domain: config.Domain{Name: "b.com"}},
	}
	WalkAll(context.Background(), f, in, 2)
	if len(in[0].Edges) != 1 || in[0].Edges[0].To != "keep.me" {
		t.Errorf("walked an input that had edges: %+v", in[0].Edges)
	}
	if got := edgeStrings(in[1].Edges); !slices.Contains(got, "1 ns>x.net b.com NS ns1.x.net") {
		t.Errorf("b.com edges %v", got)
	}
	for _, q := range f.asked {
		if strings.HasPrefix(q, "a.com.") {
			t.Errorf("asked %s", q)
		}
	}
}

func TestRegistrable(t *testing.T) {
	for in, want := range map[string]string{
		"ns1.Provider-A.net.":  "provider-a.net",
		"a.b.example.co.uk":    "example.co.uk",
		"com":                  "com",
		"shop-example.com.cn.": "shop-example.com.cn",
	} {
		if got := Registrable(in); got != want {
			t.Errorf("Registrable(%q) = %q, want %q", in, got, want)
		}
	}
}
