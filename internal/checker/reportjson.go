package checker

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
)

// appendDomainJSON appends dr as encoding/json with a two-space indent
// under prefix writes it, byte for byte, for the report of a DNS check
// (dns a *monitor.Observation or nothing, no registration): written
// directly, without reflection or a second pass to indent. Encoding the
// report that way cost 8% of nsguard's CPU time on 10,000 domains. It
// reports false, having appended nothing that counts, for anything else
// (a registration record, a value encoding/json would refuse), which then
// goes through encoding/json. TestDomainJSONMatchesEncodingJSON fills
// every field of every type here to hold the two to the same bytes, so a
// field added to a report type and not here fails it.
func appendDomainJSON(dst []byte, dr *DomainReport, prefix string) ([]byte, bool) {
	obs, isObs := dr.DNS.(*monitor.Observation)
	if dr.Registration != nil || (dr.DNS != nil && (!isObs || obs == nil)) {
		return dst, false
	}
	w := jsonWriter{b: dst, prefix: prefix, ok: true}
	w.open('{')
	w.field("domain", dr.Domain)
	w.key("tier")
	w.int(int64(dr.Tier))
	w.optional("owner", dr.Owner)
	w.field("status", dr.Status)
	w.optional("error", dr.Error)
	w.key("findings")
	w.findings(dr.Findings)
	if obs != nil {
		w.key("dns")
		w.observation(obs)
	}
	w.close('}')
	return w.b, w.ok
}

// jsonWriter appends indented JSON as json.Indent(…, prefix, "  ") lays
// out encoding/json's output: each element on a line of its own, ": "
// after keys, empty objects and arrays as {} and [].
type jsonWriter struct {
	b      []byte
	prefix string
	depth  int
	// first: the innermost open object or array has no element yet.
	first bool
	// ok turns false on a value encoding/json refuses (a NaN, a year past
	// 9999); the caller then lets encoding/json report it.
	ok bool
}

func (w *jsonWriter) open(c byte) {
	w.b = append(w.b, c)
	w.depth++
	w.first = true
}

func (w *jsonWriter) close(c byte) {
	w.depth--
	if !w.first {
		w.newline()
	}
	w.b = append(w.b, c)
	w.first = false
}

func (w *jsonWriter) newline() {
	w.b = append(w.b, '\n')
	w.b = append(w.b, w.prefix...)
	for range w.depth {
		w.b = append(w.b, ' ', ' ')
	}
}

// elem starts an element of the open object or array.
func (w *jsonWriter) elem() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.newline()
}

// field writes a string member.
func (w *jsonWriter) field(k, v string) {
	w.key(k)
	w.str(v)
}

// optional writes a string member with omitempty: not at all when empty.
func (w *jsonWriter) optional(k, v string) {
	if v != "" {
		w.field(k, v)
	}
}

// optionalStrs writes a []string member with omitempty.
func (w *jsonWriter) optionalStrs(k string, v []string) {
	if len(v) > 0 {
		w.key(k)
		w.strs(v)
	}
}

// optionalTrue writes a bool member with omitempty: only when true.
func (w *jsonWriter) optionalTrue(k string, v bool) {
	if v {
		w.key(k)
		w.bool(true)
	}
}

// key starts an object member (the names here need no escaping).
func (w *jsonWriter) key(k string) {
	w.elem()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':', ' ')
}

func (w *jsonWriter) int(n int64) { w.b = strconv.AppendInt(w.b, n, 10) }

func (w *jsonWriter) bool(v bool) { w.b = strconv.AppendBool(w.b, v) }

// float is encoding/json's float64: ES6 number formatting.
func (w *jsonWriter) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.ok = false
		w.b = append(w.b, '0')
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.b = strconv.AppendFloat(w.b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(w.b); n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

// time is time.Time's MarshalJSON: RFC 3339 with nanoseconds, quoted.
func (w *jsonWriter) time(t time.Time) {
	if y := t.Year(); y < 0 || y > 9999 {
		w.ok = false
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// str is encoding/json's string with HTML escaping (the Encoder default):
// quotes, backslashes, control characters, <, > and & escaped, invalid
// UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func (w *jsonWriter) str(s string) {
	const hex = "0123456789abcdef"
	b := append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	w.b = append(b, '"')
}

// strs is a []string: null when nil.
func (w *jsonWriter) strs(items []string) { list(w, items, func(s *string) { w.str(*s) }) }

// list writes a slice, each element with one, null when nil.
func list[T any](w *jsonWriter, items []T, one func(*T)) {
	if items == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.open('[')
	for i := range items {
		w.elem()
		one(&items[i])
	}
	w.close(']')
}

func (w *jsonWriter) findings(fs []finding.Finding) {
	list(w, fs, func(f *finding.Finding) {
		w.open('{')
		w.field("id", f.ID)
		w.field("severity", f.Severity.String())
		w.field("domain", f.Domain)
		w.optional("subject", f.Subject)
		w.field("message", f.Message)
		if len(f.Evidence) > 0 {
			w.key("evidence")
			list(w, f.Evidence, func(e *finding.Evidence) {
				w.open('{')
				w.optional("server", e.Server)
				w.optional("query", e.Query)
				w.field("answer", e.Answer)
				w.close('}')
			})
		}
		w.optionalTrue("accepted", f.Accepted)
		w.optionalStrs("seen_from", f.SeenFrom)
		w.optionalStrs("not_seen_from", f.NotSeenFrom)
		w.close('}')
	})
}

func (w *jsonWriter) observation(o *monitor.Observation) {
	w.open('{')
	w.field("domain", o.Domain)
	w.key("checked_at")
	w.time(o.CheckedAt)
	w.key("parent")
	w.parent(&o.Parent)
	w.key("servers")
	list(w, o.Servers, w.server)
	if o.DNSSEC != nil {
		w.key("dnssec")
		w.dnssec(o.DNSSEC)
	}
	if len(o.Records) > 0 {
		w.key("records")
		list(w, o.Records, w.record)
	}
	if len(o.Resolvers) > 0 {
		w.key("resolvers")
		list(w, o.Resolvers, w.resolverView)
	}
	w.optionalTrue("preflight", o.Preflight)
	w.key("queries")
	w.int(int64(o.Queries))
	w.key("duration_ms")
	w.float(o.DurationMS)
	w.close('}')
}

func (w *jsonWriter) parent(p *monitor.Parent) {
	w.open('{')
	w.field("zone", p.Zone)
	w.key("ns")
	w.strs(p.NS)
	if len(p.Glue) > 0 {
		w.key("glue")
		list(w, p.Glue, w.glue)
	}
	w.optionalStrs("ds", p.DS)
	w.key("servers")
	list(w, p.Servers, w.parentServer)
	w.close('}')
}

func (w *jsonWriter) parentServer(s *monitor.ParentServer) {
	w.open('{')
	w.field("name", s.Name)
	w.field("addr", s.Addr)
	w.field("status", s.Status)
	w.optionalStrs("ns", s.NS)
	if len(s.Glue) > 0 {
		w.key("glue")
		list(w, s.Glue, w.glue)
	}
	if len(s.GlueUnused) > 0 {
		w.key("glue_unused")
		list(w, s.GlueUnused, w.glue)
	}
	w.optionalStrs("ds", s.DS)
	w.key("rtt_ms")
	w.float(s.RTTMS)
	w.optional("error", s.Error)
	w.close('}')
}

func (w *jsonWriter) glue(g *monitor.Glue) {
	w.open('{')
	w.field("name", g.Name)
	w.key("addrs")
	w.strs(g.Addrs)
	w.close('}')
}

func (w *jsonWriter) server(s *monitor.Server) {
	w.open('{')
	w.field("name", s.Name)
	w.optional("addr", s.Addr)
	w.key("in_parent")
	w.bool(s.InParent)
	w.key("in_child")
	w.bool(s.InChild)
	w.key("udp")
	w.probe(&s.UDP)
	w.key("tcp")
	w.probe(&s.TCP)
	w.optional("error", s.Error)
	if s.IPv6Only {
		w.key("ipv6_only")
		w.bool(true)
	}
	w.close('}')
}

func (w *jsonWriter) probe(p *monitor.Probe) {
	w.open('{')
	w.field("status", p.Status)
	w.key("aa")
	w.bool(p.AA)
	w.optional("rcode", p.Rcode)
	if p.Serial != 0 {
		w.key("serial")
		w.int(int64(p.Serial))
	}
	w.optionalStrs("ns", p.NS)
	w.key("rtt_ms")
	w.float(p.RTTMS)
	w.optional("detail", p.Detail)
	w.close('}')
}

func (w *jsonWriter) dnssec(d *monitor.DNSSEC) {
	w.open('{')
	w.optionalStrs("dnskeys", d.DNSKEYs)
	w.key("servers")
	list(w, d.Servers, func(s *monitor.DNSSECServer) {
		w.open('{')
		w.field("name", s.Name)
		w.field("addr", s.Addr)
		w.optionalStrs("dnskeys", s.DNSKEYs)
		if len(s.Signatures) > 0 {
			w.key("signatures")
			list(w, s.Signatures, func(sig *monitor.Signature) {
				w.open('{')
				w.field("covers", sig.Covers)
				w.key("key_tag")
				w.int(int64(sig.KeyTag))
				w.key("expiration")
				w.time(sig.Expiration)
				w.key("valid")
				w.bool(sig.Valid)
				w.optional("error", sig.Error)
				w.close('}')
			})
		}
		w.optional("error", s.Error)
		w.close('}')
	})
	w.close('}')
}

func (w *jsonWriter) record(r *monitor.Record) {
	w.open('{')
	w.field("name", r.Name)
	w.field("type", r.Type)
	w.key("answers")
	list(w, r.Answers, func(a *monitor.ServerAnswer) {
		w.open('{')
		w.field("server", a.Server)
		w.field("addr", a.Addr)
		w.optional("rcode", a.Rcode)
		w.key("data")
		w.strs(a.Data)
		w.optional("error", a.Error)
		w.close('}')
	})
	w.close('}')
}

func (w *jsonWriter) resolverView(v *monitor.ResolverView) {
	w.open('{')
	w.field("resolver", v.Resolver)
	w.field("name", v.Name)
	w.field("type", v.Type)
	w.optional("rcode", v.Rcode)
	w.optionalStrs("chain", v.Chain)
	w.key("data")
	w.strs(v.Data)
	w.optionalStrs("expected_chain", v.ExpectedChain)
	w.key("expected")
	w.strs(v.Expected)
	w.optional("error", v.Error)
	w.close('}')
}
