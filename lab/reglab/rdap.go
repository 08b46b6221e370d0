package reglab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
)

type httpServer struct {
	srv *http.Server
	url string
}

func startHTTP(h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &httpServer{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		url: "http://" + ln.Addr().String(),
	}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *httpServer) close() { s.srv.Close() }

// serveBootstrap serves /rdap/dns.json: every TLD with RDAP, pointing at
// the lab's registry RDAP server.
func (l *Lab) serveBootstrap(w http.ResponseWriter, r *http.Request) {
	l.record("bootstrap", r.URL.Path)
	if r.URL.Path != "/rdap/dns.json" {
		http.NotFound(w, r)
		return
	}
	l.mu.Lock()
	var names []string
	for n, t := range l.tlds {
		if t.RDAP {
			names = append(names, n)
		}
	}
	l.mu.Unlock()
	slices.Sort(names)
	services := [][][]string{}
	for _, n := range names {
		services = append(services, [][]string{{n}, {l.RDAPBase(n)}})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version":     "1.0",
		"publication": "2026-01-06T19:00:01Z",
		"description": "RDAP bootstrap file for Domain Name System registrations (nsguard reglab)",
		"services":    services,
	})
}

// serveRegistryRDAP serves /<tld>/domain/<name>.
func (l *Lab) serveRegistryRDAP(w http.ResponseWriter, r *http.Request) {
	l.record("rdap-registry", r.URL.Path)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 3 || parts[1] != "domain" {
		rdapError(w, http.StatusBadRequest, "unsupported request")
		return
	}
	d, _, ok := l.lookup(parts[2])
	if !ok || tldOf(canonical(parts[2])) != parts[0] {
		rdapError(w, http.StatusNotFound, "Not Found")
		return
	}
	if l.misbehave(w, r, d.RDAP, d.RetryAfter) {
		return
	}
	link := d.RegistrarLink
	if link == "" {
		link = l.RegistrarRDAPBase() + "domain/" + strings.ToUpper(d.Name)
	}
	doc := domainDoc(d, d.Expiry, l.RDAPBase(parts[0])+"domain/"+strings.ToUpper(d.Name), link, false)
	writeJSON(w, http.StatusOK, doc)
}

// serveRegistrarRDAP serves /rdap/domain/<name>: the registrar's view,
// with its own expiry and the registrant redacted (RFC 9537).
func (l *Lab) serveRegistrarRDAP(w http.ResponseWriter, r *http.Request) {
	l.record("rdap-registrar", r.URL.Path)
	name, ok := strings.CutPrefix(r.URL.Path, "/rdap/domain/")
	if !ok {
		rdapError(w, http.StatusBadRequest, "unsupported request")
		return
	}
	d, _, found := l.lookup(name)
	if !found {
		rdapError(w, http.StatusNotFound, "Not Found")
		return
	}
	if l.misbehave(w, r, d.RegistrarRDAP, d.RetryAfter) {
		return
	}
	exp := d.RegistrarExpiry
	if exp.IsZero() {
		exp = d.Expiry
	}
	writeJSON(w, http.StatusOK, domainDoc(d, exp, l.RegistrarRDAPBase()+"domain/"+strings.ToUpper(d.Name), "", true))
}

// misbehave answers for a non-Normal behaviour and reports whether it did.
func (l *Lab) misbehave(w http.ResponseWriter, r *http.Request, b Behaviour, retry string) bool {
	switch b {
	case NotFound:
		rdapError(w, http.StatusNotFound, "Not Found")
	case RateLimited:
		if retry == "" {
			retry = "120"
		}
		w.Header().Set("Retry-After", retry)
		rdapError(w, http.StatusTooManyRequests, "Too Many Requests")
	case Malformed:
		w.Header().Set("Content-Type", "application/rdap+json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"objectClassName":"domain","ldhName":"EXAMPLE.COM","status":["active",`)
	case Huge:
		w.Header().Set("Content-Type", "application/rdap+json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"objectClassName":"domain","remarks":[{"description":["`)
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < HugeSize/len(chunk); i++ {
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return true
			}
		}
		fmt.Fprint(w, `"]}]}`)
	case Hang:
		select {
		case <-r.Context().Done():
		case <-l.done:
		}
	default:
		return false
	}
	return true
}

// domainDoc builds an RFC 9083 domain object the way gTLD registries and
// registrars do under the ICANN RDAP profile.
func domainDoc(d Domain, expiry time.Time, self, related string, registrarView bool) map[string]any {
	statuses := make([]string, 0, len(d.Statuses))
	for _, s := range d.Statuses {
		statuses = append(statuses, rdapStatus(s))
	}
	links := []map[string]any{{"value": self, "rel": "self", "href": self, "type": "application/rdap+json"}}
	if related != "" {
		links = append(links, map[string]any{"value": self, "rel": "related", "href": related, "type": "application/rdap+json"})
	}
	events := []map[string]any{}
	for _, e := range []struct {
		action string
		t      time.Time
	}{{"registration", d.Created}, {"expiration", expiry}, {"last changed", d.Updated}} {
		if !e.t.IsZero() {
			events = append(events, map[string]any{"eventAction": e.action, "eventDate": e.t.UTC().Format(time.RFC3339)})
		}
	}
	events = append(events, map[string]any{"eventAction": "last update of RDAP database", "eventDate": "2026-01-06T19:00:01Z"})
	ns := []map[string]any{}
	for _, n := range d.NS {
		ns = append(ns, map[string]any{"objectClassName": "nameserver", "ldhName": strings.ToUpper(n)})
	}
	secure := map[string]any{"delegationSigned": len(d.DS) > 0}
	if len(d.DS) > 0 {
		var ds []map[string]any
		for _, s := range d.DS {
			var tag, alg, dt int
			var digest string
			if n, _ := fmt.Sscanf(s, "%d %d %d %s", &tag, &alg, &dt, &digest); n == 4 {
				ds = append(ds, map[string]any{"keyTag": tag, "algorithm": alg, "digestType": dt, "digest": digest})
			}
		}
		secure["dsData"] = ds
	}
	registrar := map[string]any{
		"objectClassName": "entity",
		"handle":          d.IANAID,
		"roles":           []string{"registrar"},
		"publicIds":       []map[string]any{{"type": "IANA Registrar ID", "identifier": d.IANAID}},
		"vcardArray": []any{"vcard", []any{
			[]any{"version", map[string]any{}, "text", "4.0"},
			[]any{"fn", map[string]any{}, "text", d.Registrar},
		}},
		"entities": []any{map[string]any{
			"objectClassName": "entity",
			"roles":           []string{"abuse"},
			"vcardArray": []any{"vcard", []any{
				[]any{"version", map[string]any{}, "text", "4.0"},
				[]any{"fn", map[string]any{}, "text", ""},
				[]any{"tel", map[string]any{"type": "voice"}, "uri", "tel:" + d.AbusePhone},
				[]any{"email", map[string]any{}, "text", d.AbuseEmail},
			}},
		}},
	}
	entities := []any{registrar}
	doc := map[string]any{
		"objectClassName": "domain",
		"handle":          strings.ToUpper(strings.ReplaceAll(d.Name, ".", "_")) + "-LAB",
		"ldhName":         strings.ToUpper(d.Name),
		"links":           links,
		"status":          statuses,
		"events":          events,
		"secureDNS":       secure,
		"nameservers":     ns,
		"rdapConformance": []string{"rdap_level_0", "icann_rdap_technical_implementation_guide_1", "icann_rdap_response_profile_1"},
		"notices": []map[string]any{{
			"title":       "Terms of Use",
			"description": []string{"Service subject to Terms of Use."},
		}},
	}
	if registrarView {
		entities = append(entities, map[string]any{
			"objectClassName": "entity",
			"handle":          "",
			"roles":           []string{"registrant"},
			"vcardArray": []any{"vcard", []any{
				[]any{"version", map[string]any{}, "text", "4.0"},
				[]any{"fn", map[string]any{}, "text", ""},
				[]any{"org", map[string]any{}, "text", d.Registrant},
			}},
		})
		doc["redacted"] = []map[string]any{
			{"name": map[string]any{"type": "Registrant Name"}, "prePath": "$.entities[?(@.roles[0]=='registrant')].vcardArray[1][?(@[0]=='fn')][3]", "method": "emptyValue", "reason": map[string]any{"description": "Server policy"}},
			{"name": map[string]any{"type": "Registrant Email"}, "prePath": "$.entities[?(@.roles[0]=='registrant')].vcardArray[1][?(@[0]=='email')]", "method": "removal", "reason": map[string]any{"description": "Server policy"}},
		}
		doc["rdapConformance"] = append(doc["rdapConformance"].([]string), "redacted")
	}
	doc["entities"] = entities
	return doc
}

// rdapStatus spells an EPP status the RFC 8056 way: "clientHold" is
// "client hold", "ok" is "active".
func rdapStatus(epp string) string {
	if epp == "ok" {
		return "active"
	}
	var b strings.Builder
	for i, r := range epp {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func rdapError(w http.ResponseWriter, code int, title string) {
	writeJSON(w, code, map[string]any{"errorCode": code, "title": title, "description": []string{title}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/rdap+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
