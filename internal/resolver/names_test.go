package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

var subDomainCases = []struct {
	parent, child string
	want          bool
}{
	{"example.com.", "example.com.", true},
	{"example.com.", "www.example.com.", true},
	{"EXAMPLE.com.", "www.example.COM.", true},
	{"example.com.", "example.org.", false},
	{"example.com.", "badexample.com.", false},
	{"com.", "example.com.", true},
	{".", "example.com.", true},
	{".", ".", true},
	{"example.com.", ".", false},
	{"com.", "example.com", false}, // miekg: a name without the trailing dot is another name
	{"example.com.", `www\.example.com.`, false},
	{`a\.b.example.`, `x.a\.b.example.`, true},
	{"b.example.", `x.a\.b.example.`, false},
	{"", "", true},
	{"example.com.", "", false},
}

// TestIsSubDomainIsMiekgs pins IsSubDomain to the function it replaces on
// the hot path, and that it does not allocate.
func TestIsSubDomainIsMiekgs(t *testing.T) {
	for _, c := range subDomainCases {
		if got, miekg := IsSubDomain(c.parent, c.child), dns.IsSubDomain(c.parent, c.child); got != c.want || got != miekg {
			t.Errorf("IsSubDomain(%q, %q) = %v, want %v (miekg %v)", c.parent, c.child, got, c.want, miekg)
		}
	}
	if n := testing.AllocsPerRun(100, func() { subDomainSink = IsSubDomain("provider-a.net.", "ns1.a.b.c.d.e.f.provider-a.net.") }); n != 0 {
		t.Errorf("IsSubDomain allocates %.0f times a call", n)
	}
}

var canonicalCases = []string{
	"example.com.", "example.com", "EXAMPLE.Com", "Www.Example.COM.", ".", "", "a\\.B.example.",
	"xn--bcher-kva.example.", "b\xc3\xbccher.example.", "\xff.example", "MIXED\xe2\x82\xacCase.", `\065.example.`,
}

// TestCanonicalNameIsMiekgs pins CanonicalName to the function it
// replaces, and that a canonical name costs no allocation.
func TestCanonicalNameIsMiekgs(t *testing.T) {
	for _, s := range canonicalCases {
		if got, want := CanonicalName(s), dns.CanonicalName(s); got != want {
			t.Errorf("CanonicalName(%q) = %q, miekg says %q", s, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { canonicalSink = CanonicalName("ns1.provider-a.net.") }); n != 0 {
		t.Errorf("CanonicalName of a canonical name allocates %.0f times", n)
	}
}

var canonicalSink string

func FuzzCanonicalName(f *testing.F) {
	for _, s := range canonicalCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := CanonicalName(s), dns.CanonicalName(s); got != want {
			t.Fatalf("CanonicalName(%q) = %q, miekg says %q", s, got, want)
		}
	})
}

// subDomainSink keeps the allocation test's call from being one whose
// result is thrown away.
var subDomainSink bool

func FuzzIsSubDomain(f *testing.F) {
	for _, c := range subDomainCases {
		f.Add(c.parent, c.child)
	}
	f.Fuzz(func(t *testing.T, parent, child string) {
		if got, want := IsSubDomain(parent, child), dns.IsSubDomain(parent, child); got != want {
			t.Fatalf("IsSubDomain(%q, %q) = %v, miekg says %v", parent, child, got, want)
		}
	})
}

// TestPackQueryIsMiekgs: the query nsguard sends is byte for byte what
// miekg/dns packs for the same question, RD and DO bits, and EDNS size.
func TestPackQueryIsMiekgs(t *testing.T) {
	for _, c := range []struct {
		name   string
		qtype  uint16
		rd, do bool
	}{
		{"example.com.", dns.TypeNS, false, true},
		{"Example.COM.", dns.TypeSOA, false, false},
		{"www.example.com.", dns.TypeA, true, false},
		{"_dmarc.example.com.", dns.TypeTXT, true, true},
		{`a\.b.example.`, dns.TypeDNSKEY, false, true},
		{".", dns.TypeNS, false, true},
	} {
		m := new(dns.Msg)
		m.SetQuestion(c.name, c.qtype)
		m.Id = 0xBEEF
		m.RecursionDesired = c.rd
		m.SetEdns0(EDNSBufferSize, c.do)
		want, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		got, err := packQuery(make([]byte, 0, maxQuerySize), 0, 0xBEEF, question{name: c.name, qtype: c.qtype, rd: c.rd, do: c.do})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s %s: packed\n%x\nmiekg packs\n%x", c.name, dns.TypeToString[c.qtype], got, want)
		}
	}
	long := ""
	for len(long) < 300 {
		long += "abcdefghij."
	}
	if _, err := packQuery(make([]byte, 0, maxQuerySize), 0, 1, question{name: long, qtype: dns.TypeA}); err == nil {
		t.Error("a name longer than 255 octets was packed")
	}
}
