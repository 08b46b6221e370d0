package monitor

import (
	"encoding/json"
	"sort"
	"time"
)

// Observation is what one check saw of one domain's DNS. Lists are sorted
// so that two observations of the same state marshal to the same JSON apart
// from timings; the baseline diff relies on that.
type Observation struct {
	Domain    string         `json:"domain"`
	CheckedAt time.Time      `json:"checked_at"`
	Parent    Parent         `json:"parent"`
	Servers   []Server       `json:"servers"`
	DNSSEC    *DNSSEC        `json:"dnssec,omitempty"`
	Records   []Record       `json:"records,omitempty"`
	Resolvers []ResolverView `json:"resolvers,omitempty"`
	// Preflight marks a check against a given delegation (check --ns),
	// not the one the parent publishes.
	Preflight  bool    `json:"preflight,omitempty"`
	Queries    int     `json:"queries"`
	DurationMS float64 `json:"duration_ms"`
}

// Parent is the delegation as the parent zone's servers hand it out.
type Parent struct {
	Zone string `json:"zone"`
	// NS, Glue and DS are the union over the parent servers that delegate.
	NS      []string       `json:"ns"`
	Glue    []Glue         `json:"glue,omitempty"`
	DS      []string       `json:"ds,omitempty"`
	Servers []ParentServer `json:"servers"`
}

// Parent server statuses.
const (
	StatusDelegated = "delegated" // a referral with NS (and glue, DS)
	StatusAnswered  = "answered"  // the parent server is authoritative for the child too
	StatusNXDomain  = "nxdomain"
	StatusNoData    = "nodata"
	StatusLame      = "lame"  // answered, unusably (REFUSED, lame referral, truncated over TCP…)
	StatusError     = "error" // no answer (timeout, network)
	// StatusNotAuthoritative: NXDOMAIN or NODATA without the AA bit, which
	// is no evidence about the delegation (a middlebox or resolver).
	StatusNotAuthoritative = "not_authoritative"
)

// ParentServer is one parent server's answer for the domain's NS.
type ParentServer struct {
	Name   string   `json:"name"`
	Addr   string   `json:"addr"`
	Status string   `json:"status"`
	NS     []string `json:"ns,omitempty"`
	Glue   []Glue   `json:"glue,omitempty"`
	// GlueUnused is glue of the address family nsguard does not use
	// (IPv6 with resolver.ipv6 false): glue all the same.
	GlueUnused []Glue   `json:"glue_unused,omitempty"`
	DS         []string `json:"ds,omitempty"`
	RTTMS      float64  `json:"rtt_ms"`
	Error      string   `json:"error,omitempty"`
}

// Glue is one name server name's addresses from the parent.
type Glue struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
}

// Server is one name server address of the child zone.
type Server struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"`
	// InParent/InChild say which NS set names this server.
	InParent bool   `json:"in_parent"`
	InChild  bool   `json:"in_child"`
	UDP      Probe  `json:"udp"`
	TCP      Probe  `json:"tcp"`
	Error    string `json:"error,omitempty"` // the name did not resolve
	// IPv6Only: the name has IPv6 addresses only and nsguard does not use
	// IPv6 (resolver.ipv6 false), so it was not probed.
	IPv6Only bool `json:"ipv6_only,omitempty"`
}

// Probe statuses.
const (
	ProbeOK          = "ok"
	ProbeUnreachable = "unreachable"
	ProbeLame        = "lame"
)

// Probe is what one server said over one transport.
type Probe struct {
	Status string   `json:"status"`
	AA     bool     `json:"aa"`
	Rcode  string   `json:"rcode,omitempty"`
	Serial uint32   `json:"serial,omitempty"`
	NS     []string `json:"ns,omitempty"`
	RTTMS  float64  `json:"rtt_ms"`
	Detail string   `json:"detail,omitempty"`
}

// DNSSEC is the signing state seen at the child's servers.
type DNSSEC struct {
	DNSKEYs []string       `json:"dnskeys,omitempty"` // "keytag flags alg"
	Servers []DNSSECServer `json:"servers"`
}

// DNSSECServer is one server's DNSKEY set and signatures.
type DNSSECServer struct {
	Name       string      `json:"name"`
	Addr       string      `json:"addr"`
	DNSKEYs    []string    `json:"dnskeys,omitempty"`
	Signatures []Signature `json:"signatures,omitempty"`
	Error      string      `json:"error,omitempty"`
}

// Signature is one RRSIG checked against the zone's keys.
type Signature struct {
	Covers     string    `json:"covers"`
	KeyTag     uint16    `json:"key_tag"`
	Expiration time.Time `json:"expiration"`
	Valid      bool      `json:"valid"`
	Error      string    `json:"error,omitempty"`
}

// Record is a watched name/type as each authoritative server answers it.
type Record struct {
	Name    string         `json:"name"`
	Type    string         `json:"type"`
	Answers []ServerAnswer `json:"answers"`
}

// ServerAnswer is one server's answer (rdata strings, sorted).
type ServerAnswer struct {
	Server string   `json:"server"`
	Addr   string   `json:"addr"`
	Rcode  string   `json:"rcode,omitempty"`
	Data   []string `json:"data"`
	Error  string   `json:"error,omitempty"`
}

// ResolverView is a public resolver's answer for a watched name/type next
// to what the trusted name servers answer, each followed through its CNAME
// chain: Data and Expected are the final records, Chain and ExpectedChain
// the hops ("www.example.com. CNAME example.com.").
type ResolverView struct {
	Resolver      string   `json:"resolver"`
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Rcode         string   `json:"rcode,omitempty"`
	Chain         []string `json:"chain,omitempty"`
	Data          []string `json:"data"`
	ExpectedChain []string `json:"expected_chain,omitempty"`
	Expected      []string `json:"expected"`
	Error         string   `json:"error,omitempty"`
}

// JSON renders the observation as indented, stable JSON.
func (o *Observation) JSON() ([]byte, error) { return json.MarshalIndent(o, "", "  ") }

// normalize sorts every list so equal states marshal equally.
func (o *Observation) normalize() {
	p := &o.Parent
	sort.Strings(p.NS)
	sort.Strings(p.DS)
	sortGlue(p.Glue)
	sort.Slice(p.Servers, func(i, j int) bool {
		if p.Servers[i].Name != p.Servers[j].Name {
			return p.Servers[i].Name < p.Servers[j].Name
		}
		return p.Servers[i].Addr < p.Servers[j].Addr
	})
	for i := range p.Servers {
		sort.Strings(p.Servers[i].NS)
		sort.Strings(p.Servers[i].DS)
		sortGlue(p.Servers[i].Glue)
	}
	sort.Slice(o.Servers, func(i, j int) bool {
		if o.Servers[i].Name != o.Servers[j].Name {
			return o.Servers[i].Name < o.Servers[j].Name
		}
		return o.Servers[i].Addr < o.Servers[j].Addr
	})
	if o.DNSSEC != nil {
		sort.Strings(o.DNSSEC.DNSKEYs)
		sort.Slice(o.DNSSEC.Servers, func(i, j int) bool {
			a, b := o.DNSSEC.Servers[i], o.DNSSEC.Servers[j]
			return a.Name+" "+a.Addr < b.Name+" "+b.Addr
		})
	}
	sort.Slice(o.Records, func(i, j int) bool {
		return o.Records[i].Name+" "+o.Records[i].Type < o.Records[j].Name+" "+o.Records[j].Type
	})
	for i := range o.Records {
		a := o.Records[i].Answers
		sort.Slice(a, func(x, y int) bool { return a[x].Server+" "+a[x].Addr < a[y].Server+" "+a[y].Addr })
	}
	sort.Slice(o.Resolvers, func(i, j int) bool {
		a, b := o.Resolvers[i], o.Resolvers[j]
		return a.Name+" "+a.Type+" "+a.Resolver < b.Name+" "+b.Type+" "+b.Resolver
	})
}

func sortGlue(g []Glue) {
	sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	for i := range g {
		sort.Strings(g[i].Addrs)
	}
}

// Stable returns a copy without the fields that change on every check
// (time, durations, response times, query counts): what is stored and
// compared, so an unchanged domain is an unchanged observation.
func (o *Observation) Stable() *Observation {
	c := *o
	c.CheckedAt = time.Time{}
	c.DurationMS, c.Queries = 0, 0
	c.Parent.Servers = append([]ParentServer(nil), o.Parent.Servers...)
	for i := range c.Parent.Servers {
		c.Parent.Servers[i].RTTMS = 0
	}
	c.Servers = append([]Server(nil), o.Servers...)
	for i := range c.Servers {
		c.Servers[i].UDP.RTTMS = 0
		c.Servers[i].TCP.RTTMS = 0
	}
	return &c
}
