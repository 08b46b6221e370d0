// Package baseline is the approved state of a critical domain and the diff
// of what nsguard sees now against it: field by field, server by server, in
// DNSControl's vocabulary (CREATE, CHANGE, DELETE). Every difference in the
// delegation, the child's NS set, the registration or a watched record is a
// finding until someone approves the new state; a changed SOA serial is
// shown but expected, never an alert.
package baseline

import (
	"encoding/json"
	"net/netip"
	"sort"
	"strings"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/resolver"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// State is what a person approves for one domain.
type State struct {
	Domain       string    `json:"domain"`
	DNS          *DNS      `json:"dns,omitempty"`
	Registration *Register `json:"registration,omitempty"`
	// Accepted are the posture findings present when the state was
	// approved (finding.Acceptable): accepted risk, never paged at that
	// severity or below.
	Accepted []Accepted `json:"accepted,omitempty"`
}

// Accepted is one finding accepted with the baseline.
type Accepted struct {
	ID       string           `json:"id"`
	Subject  string           `json:"subject,omitempty"`
	Severity finding.Severity `json:"severity"`
	Message  string           `json:"message,omitempty"`
}

// AcceptedOf lists the findings approving now would accept.
func AcceptedOf(fs []finding.Finding) []Accepted {
	var out []Accepted
	for _, f := range fs {
		if finding.Acceptable(f) {
			out = append(out, Accepted{ID: f.ID, Subject: f.Subject, Severity: f.Severity, Message: f.Message})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID+"\x00"+out[i].Subject < out[j].ID+"\x00"+out[j].Subject })
	return out
}

// MarkAccepted sets Accepted on the findings this baseline accepted: the
// same ID and subject, no worse than at approval. A nil state accepts
// nothing.
func (s *State) MarkAccepted(fs []finding.Finding) []finding.Finding {
	if s == nil || len(s.Accepted) == 0 {
		return fs
	}
	for i := range fs {
		for _, a := range s.Accepted {
			if fs[i].ID == a.ID && fs[i].Subject == a.Subject && fs[i].Severity <= a.Severity {
				fs[i].Accepted = true
				break
			}
		}
	}
	return fs
}

// DNS is the approved delegation, name servers and watched records.
type DNS struct {
	ParentZone string   `json:"parent_zone"`
	ParentNS   []string `json:"parent_ns"`
	// NSAddrs are the approved name servers' addresses: the resolver view
	// asks them, not whatever the (possibly hijacked) DNS says now.
	NSAddrs []monitor.Glue `json:"ns_addrs,omitempty"`
	Glue    []monitor.Glue `json:"glue,omitempty"`
	DS      []string       `json:"ds,omitempty"`
	// ParentServers is each parent server's NS answer ("name addr" → NS).
	ParentServers []ServerValues `json:"parent_servers,omitempty"`
	// ChildNS is each authoritative server's NS answer.
	ChildNS []ServerValues `json:"child_ns,omitempty"`
	// Serials are informative: a new serial is an expected change.
	Serials []ServerValues `json:"serials,omitempty"`
	Records []Record       `json:"records,omitempty"`
}

// ServerValues is what one server said.
type ServerValues struct {
	Server string   `json:"server"`
	Values []string `json:"values"`
}

// Record is a watched name/type as each authoritative server answered it.
type Record struct {
	Name    string         `json:"name"`
	Type    string         `json:"type"`
	Servers []ServerValues `json:"servers"`
}

// Register is the approved registration: who holds the domain, with which
// locks, delegated where.
type Register struct {
	Registrar   string   `json:"registrar"`
	IANAID      string   `json:"iana_id,omitempty"`
	Statuses    []string `json:"statuses"`
	Nameservers []string `json:"nameservers"`
	DS          []string `json:"ds,omitempty"`
}

// FromObservation extracts the approvable part of a DNS observation.
func FromObservation(o *monitor.Observation) *DNS {
	if o == nil {
		return nil
	}
	d := &DNS{
		ParentZone: o.Parent.Zone,
		ParentNS:   sorted(o.Parent.NS),
		Glue:       o.Parent.Glue,
		DS:         sorted(o.Parent.DS),
	}
	for _, s := range o.Parent.Servers {
		if s.Status == monitor.StatusDelegated || s.Status == monitor.StatusAnswered {
			d.ParentServers = append(d.ParentServers, ServerValues{Server: s.Name + " " + s.Addr, Values: sorted(s.NS)})
		}
	}
	addrs := map[string][]string{}
	for _, s := range o.Servers {
		if s.InParent && s.Addr != "" {
			addrs[s.Name] = append(addrs[s.Name], s.Addr)
		}
	}
	for _, n := range d.ParentNS {
		if len(addrs[n]) > 0 {
			d.NSAddrs = append(d.NSAddrs, monitor.Glue{Name: n, Addrs: sorted(addrs[n])})
		}
	}
	for _, s := range o.Servers {
		who := s.Name + " " + s.Addr
		if s.TCP.Status == monitor.ProbeOK {
			d.ChildNS = append(d.ChildNS, ServerValues{Server: who, Values: sorted(s.TCP.NS)})
		}
		if s.UDP.Status == monitor.ProbeOK {
			d.Serials = append(d.Serials, ServerValues{Server: who, Values: []string{itoa(s.UDP.Serial)}})
		}
	}
	for _, r := range o.Records {
		rec := Record{Name: r.Name, Type: r.Type}
		for _, a := range r.Answers {
			if a.Error != "" {
				continue
			}
			vals := sorted(a.Data)
			if a.Rcode != "" && a.Rcode != "NOERROR" {
				vals = []string{a.Rcode}
			}
			rec.Servers = append(rec.Servers, ServerValues{Server: a.Server + " " + a.Addr, Values: vals})
		}
		d.Records = append(d.Records, rec)
	}
	d.normalize()
	return d
}

// FromRecord extracts the approvable part of a registration record.
func FromRecord(r *registry.Record) *Register {
	if r == nil {
		return nil
	}
	return &Register{
		Registrar:   r.Registrar.Name,
		IANAID:      r.Registrar.IANAID,
		Statuses:    sorted(r.Statuses),
		Nameservers: sorted(r.Nameservers),
		DS:          sorted(r.DNSSEC.DS),
	}
}

// TrustedNS returns the approved name servers with their approved
// addresses (the resolver view's truth).
func (s *State) TrustedNS() []resolver.NameServer {
	if s == nil || s.DNS == nil {
		return nil
	}
	addrs := map[string][]netip.Addr{}
	for _, g := range s.DNS.NSAddrs {
		for _, a := range g.Addrs {
			if ip, err := netip.ParseAddr(a); err == nil {
				addrs[g.Name] = append(addrs[g.Name], ip)
			}
		}
	}
	var out []resolver.NameServer
	for _, n := range s.DNS.ParentNS {
		out = append(out, resolver.NameServer{Name: n, Addrs: addrs[n]})
	}
	return out
}

// Marshal renders the state as stable JSON for the store.
func (s *State) Marshal() (json.RawMessage, error) { return json.Marshal(s) }

// Unmarshal reads a stored state.
func Unmarshal(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (d *DNS) normalize() {
	for _, l := range [][]ServerValues{d.ParentServers, d.ChildNS, d.Serials} {
		sort.Slice(l, func(i, j int) bool { return l[i].Server < l[j].Server })
	}
	sort.Slice(d.Records, func(i, j int) bool { return d.Records[i].Name+d.Records[i].Type < d.Records[j].Name+d.Records[j].Type })
	for _, r := range d.Records {
		sort.Slice(r.Servers, func(i, j int) bool { return r.Servers[i].Server < r.Servers[j].Server })
	}
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func itoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func join(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return strings.Join(v, ", ")
}
