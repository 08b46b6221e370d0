package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/robfig/cron/v3"
	"golang.org/x/net/idna"
)

// EPPStatuses are the domain statuses of RFC 5731 and RFC 3915.
var EPPStatuses = []string{
	"ok", "inactive", "addPeriod", "autoRenewPeriod", "renewPeriod", "transferPeriod",
	"pendingCreate", "pendingDelete", "pendingRenew", "pendingRestore", "pendingTransfer", "pendingUpdate",
	"redemptionPeriod",
	"clientDeleteProhibited", "clientHold", "clientRenewProhibited", "clientTransferProhibited", "clientUpdateProhibited",
	"serverDeleteProhibited", "serverHold", "serverRenewProhibited", "serverTransferProhibited", "serverUpdateProhibited",
}

// Severities a config may name.
var Severities = []string{"info", "warning", "critical"}

// CronParser is the schedule syntax nsguard accepts: five fields or a
// descriptor such as "@every 1m" or "@daily".
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var playbookName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

type validator struct {
	c     *Config
	errs  Errors
	lines *lineFinder
	// names holds the inventory's normalised names: playbooks look their
	// primary up here, not by a scan of every domain.
	names map[string]bool
}

// fail reports a problem at a field path; the line is the field's own, or
// the nearest enclosing one when the field is absent. A problem decoding
// already reported, or caused, is left out.
func (v *validator) fail(path, format string, args ...any) {
	if v.c.loc != nil && v.c.loc.echoes(path) {
		return
	}
	line := 0
	if v.lines != nil {
		line = v.lines.lineOrParent(path)
	}
	v.errs = append(v.errs, FieldError{File: v.c.File, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// has reports whether a required key is in the file.
func (v *validator) has(path string) bool { return v.c.loc == nil || v.c.loc.present(path) }

// written reports whether the file itself sets the key at path (a default
// does not count).
func (v *validator) written(path string) bool {
	if v.c.loc == nil {
		return false
	}
	_, ok := (&lineFinder{loc: v.c.loc}).line(path)
	return ok
}

func (c *Config) validate() Errors {
	v := &validator{c: c}
	if c.loc != nil {
		v.lines = &lineFinder{loc: c.loc}
	}
	v.store()
	v.resolver()
	v.registry()
	v.schedules()
	v.policy()
	v.alerts()
	v.domains()
	v.contacts()
	v.playbooks()
	v.ui()
	v.cluster()
	return v.errs
}

func (v *validator) store() {
	s := &v.c.Store
	var set []string
	for _, k := range []struct{ key, val string }{{"url", s.URL}, {"url_file", s.URLFile}, {"url_env", s.URLEnv}} {
		if k.val != "" {
			set = append(set, "store."+k.key)
		}
	}
	// store.path has a default: a PostgreSQL key replaces it unless the
	// file names a path too.
	if len(set) > 0 && !v.written("store.path") {
		s.Path = ""
	}
	if s.Path != "" {
		set = append([]string{"store.path"}, set...)
	}
	switch {
	case len(set) == 0:
		v.fail("store.path", "set store.path (a SQLite file) or one of store.url, store.url_file, store.url_env (PostgreSQL)")
	case len(set) > 1:
		v.fail("store", "set exactly one of store.path, store.url, store.url_file, store.url_env; found %s", strings.Join(set, ", "))
	}
	if s.URL != "" {
		if err := CheckPostgresURL(s.URL); err != nil {
			v.fail("store.url", "%v", err)
		} else if u, _ := url.Parse(s.URL); u.User != nil {
			if _, has := u.User.Password(); has {
				v.fail("store.url", "holds a password: put the URL in a file (store.url_file) or an environment variable (store.url_env), never in the config")
			}
		}
	}
	if _, _, err := net.SplitHostPort(v.c.Listen); err != nil {
		v.fail("listen", "want host:port such as 127.0.0.1:9153, got %q", v.c.Listen)
	}
}

// CheckPostgresURL checks that s is a postgres:// URL naming a host and a
// database. The error never quotes s, which may hold a password.
func CheckPostgresURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL (want postgres://user@host:port/database?sslmode=...)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return errors.New("the URL names no host (want postgres://user@host:port/database)")
	}
	if strings.Trim(u.Path, "/") == "" && u.Query().Get("dbname") == "" {
		return errors.New("the URL names no database (want postgres://user@host:port/database)")
	}
	return nil
}

func (v *validator) resolver() {
	r := &v.c.Resolver
	if r.Port < 1 || r.Port > 65535 {
		v.fail("resolver.port", "must be 1..65535, got %d", r.Port)
	}
	if r.Timeout <= 0 {
		v.fail("resolver.timeout", "must be positive")
	}
	if r.Retries < 0 || r.Retries > 10 {
		v.fail("resolver.retries", "must be 0..10, got %d", r.Retries)
	}
	if r.MaxQPSPerServer <= 0 {
		v.fail("resolver.max_qps_per_server", "must be positive")
	}
	if r.MaxConcurrency < 1 {
		v.fail("resolver.max_concurrency", "must be at least 1")
	}
	if r.MaxConcurrentDomains < 1 {
		v.fail("resolver.max_concurrent_domains", "must be at least 1")
	}
	if r.ParentServers < 0 {
		v.fail("resolver.parent_servers", "must be 0 (all) or more")
	}
	if r.MaxNSPerDelegation < 1 || r.MaxNSPerDelegation > 1000 {
		v.fail("resolver.max_ns_per_delegation", "must be 1..1000, got %d", r.MaxNSPerDelegation)
	}
	if r.DomainTimeout <= 0 {
		v.fail("resolver.domain_timeout", "must be positive")
	} else if r.Timeout > 0 && r.DomainTimeout < r.Timeout {
		v.fail("resolver.domain_timeout", "must be at least resolver.timeout (%s), got %s", r.Timeout, r.DomainTimeout)
	}
	if r.RootHints != "" {
		if _, err := os.Stat(r.RootHints); err != nil {
			v.fail("resolver.root_hints", "cannot read hints file: %v", err)
		}
	}
	for i, s := range r.PublicResolvers {
		if _, err := ParseServer(s, 53); err != nil {
			v.fail(fmt.Sprintf("resolver.public_resolvers[%d]", i), "%v", err)
		}
	}
}

// ParseServer parses an IP literal with an optional port ("192.0.2.1",
// "192.0.2.1:5353", "[2001:db8::1]:53") into an address and port.
func ParseServer(s string, defPort int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want an IP address (optionally :port), got %q", s)
	}
	return netip.AddrPortFrom(a, uint16(defPort)), nil
}

func (v *validator) registry() {
	r := &v.c.Registry
	if r.RDAPBootstrap != "" {
		if _, err := parseHTTPURL(r.RDAPBootstrap); err != nil {
			if _, ferr := os.Stat(r.RDAPBootstrap); ferr != nil {
				v.fail("registry.rdap_bootstrap", "want an http(s) URL or a readable file: %v", err)
			}
		}
	}
	for tld, u := range r.RDAPServers {
		if _, err := parseHTTPURL(u); err != nil {
			v.fail("registry.rdap_servers."+tld, "%v", err)
		}
	}
	for tld, s := range r.WhoisServers {
		if err := checkHostPort(s); err != nil {
			v.fail("registry.whois_servers."+tld, "%v", err)
		}
	}
	if r.IANAWhois != "" {
		if err := checkHostPort(r.IANAWhois); err != nil {
			v.fail("registry.iana_whois", "%v", err)
		}
	}
	if r.Timeout <= 0 {
		v.fail("registry.timeout", "must be positive")
	}
	if r.MaxQPSPerServer <= 0 {
		v.fail("registry.max_qps_per_server", "must be positive")
	}
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an http(s) URL, got %q", s)
	}
	return u, nil
}

func checkHostPort(s string) error {
	_, _, err := SplitServer(s, 0)
	return err
}

// SplitServer reads a server a config names: "host", "host:port", an IP
// literal, "[v6]:port". The port is defPort when absent. It is the one
// parser for them: validation uses it, and so does a failover plan before
// it resolves a name.
func SplitServer(s string, defPort int) (host string, port int, err error) {
	host, port = s, defPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("invalid port in %q", s)
		}
		host, port = h, n
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, port, nil
	}
	if _, ok := dns.IsDomainName(host); !ok || host == "" || strings.ContainsAny(host, " /") {
		return "", 0, fmt.Errorf("want host or host:port, got %q", s)
	}
	return host, port, nil
}

func (v *validator) schedules() {
	s := v.c.Schedules
	for _, f := range []struct{ path, spec string }{
		{"schedules.delegation", s.Delegation},
		{"schedules.registration", s.Registration},
		{"schedules.audit", s.Audit},
	} {
		if _, err := CronParser.Parse(f.spec); err != nil {
			v.fail(f.path, "invalid schedule %q: %v", f.spec, err)
		}
	}
}

// RegistrationPeriod is the registration schedule's period when it is an
// "@every" spec, else a day: the registration cache lives that long.
func (c *Config) RegistrationPeriod() time.Duration {
	if d, ok := strings.CutPrefix(c.Schedules.Registration, "@every "); ok {
		if p, err := time.ParseDuration(strings.TrimSpace(d)); err == nil {
			return p
		}
	}
	return 24 * time.Hour
}

func (v *validator) policy() {
	p := &v.c.Policy
	for key, statuses := range p.RequiredLocks {
		path := "policy.required_locks." + key
		if !regexp.MustCompile(`^tier[0-3]$`).MatchString(key) {
			v.fail(path, "keys are tier0..tier3")
		}
		for i, s := range statuses {
			if !contains(EPPStatuses, s) {
				v.fail(fmt.Sprintf("%s[%d]", path, i), "unknown EPP status %q", s)
			}
		}
	}
	for _, h := range []struct {
		path string
		h    Horizon
	}{{"policy.expiry", p.Expiry}, {"policy.rrsig_expiry", p.RRSIGExpiry}} {
		if h.h.Critical <= 0 || h.h.Warning <= 0 {
			v.fail(h.path, "warning and critical must be positive")
		} else if h.h.Critical > h.h.Warning {
			v.fail(h.path+".critical", "critical (%s) must not exceed warning (%s)", h.h.Critical, h.h.Warning)
		}
	}
	if p.MaxServicesPerDomain < 1 {
		v.fail("policy.max_services_per_domain", "must be at least 1")
	}
	for i, r := range p.ApprovedRegistrars {
		if strings.TrimSpace(r) == "" {
			v.fail(fmt.Sprintf("policy.approved_registrars[%d]", i), "must not be empty")
		}
	}
}

func (v *validator) alerts() {
	a := &v.c.Alerts
	if a.Confirmations < 1 {
		v.fail("alerts.confirmations", "must be at least 1")
	}
	if a.RepeatInterval <= 0 {
		v.fail("alerts.repeat_interval", "must be positive")
	}
	if a.GroupWindow < 0 {
		v.fail("alerts.group_window", "must not be negative")
	}
	if a.GroupWait < 0 {
		v.fail("alerts.group_wait", "must not be negative")
	}
	if a.DeliveryTimeout <= 0 {
		v.fail("alerts.delivery_timeout", "must be positive")
	}
	if a.Quorum < 0 || a.Quorum > 100 {
		v.fail("alerts.quorum", "must be 0 (a majority of the vantage points that reported) to 100, got %d", a.Quorum)
	}
	if a.ClaimLease < 0 || (a.ClaimLease > 0 && a.ClaimLease <= a.DeliveryTimeout) {
		v.fail("alerts.claim_lease", "must be longer than alerts.delivery_timeout (%s), or 0 for 2 × delivery_timeout + 30s", a.DeliveryTimeout)
	}
	s := a.Slack
	bot := s.TokenFile != "" || s.TokenEnv != ""
	hook := s.WebhookURLFile != "" || s.WebhookURLEnv != ""
	if bot && hook {
		v.fail("alerts.slack", "set a bot token or an incoming webhook, not both")
	}
	if s.TokenFile != "" && s.TokenEnv != "" {
		v.fail("alerts.slack.token_env", "set token_file or token_env, not both")
	}
	if bot && s.Channel == "" && s.Channels["critical"] == "" {
		v.fail("alerts.slack.channel", "a bot token needs a channel")
	}
	for sev := range s.Channels {
		if !contains(Severities, sev) {
			v.fail("alerts.slack.channels."+sev, "keys are %s", strings.Join(Severities, ", "))
		}
	}
	if s.APIURL != "" {
		if _, err := parseHTTPURL(s.APIURL); err != nil {
			v.fail("alerts.slack.api_url", "%v", err)
		}
	}
}

// NormalizeDomain checks a domain name and returns it lower-case, without a
// trailing dot, IDN labels in punycode.
func NormalizeDomain(s string) (string, error) {
	n := CanonicalName(s)
	if n == "" {
		return "", fmt.Errorf("empty domain name")
	}
	ascii, err := idna.Lookup.ToASCII(n)
	if err != nil {
		return "", fmt.Errorf("invalid domain name %q: %v", s, err)
	}
	if _, ok := dns.IsDomainName(ascii); !ok || len(ascii) > 253 {
		return "", fmt.Errorf("invalid domain name %q", s)
	}
	for l := range strings.SplitSeq(ascii, ".") {
		if len(l) > 63 || !isLabel(l) {
			return "", fmt.Errorf("invalid domain name %q (label %q)", s, l)
		}
	}
	return ascii, nil
}

// isLabel matches ^[a-z0-9_]([a-z0-9-]*[a-z0-9])?$ (a letter, digit or
// underscore first; letters, digits and hyphens after; no hyphen last),
// without a regular expression: it runs for every label of every name in
// the inventory.
func isLabel(l string) bool {
	if l == "" || !(isLowerAlnum(l[0]) || l[0] == '_') {
		return false
	}
	for i := 1; i < len(l); i++ {
		if !isLowerAlnum(l[i]) && (l[i] != '-' || i == len(l)-1) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func (v *validator) domains() {
	seen := make(map[string]int, len(v.c.Domains))
	v.names = make(map[string]bool, len(v.c.Domains))
	// Name servers repeat across an inventory (a few providers' servers):
	// each distinct one is normalised once.
	type normalized struct {
		name string
		err  error
	}
	nsNames := map[string]normalized{}
	for i := range v.c.Domains {
		d := &v.c.Domains[i]
		p := domainPath(i)
		v.names[CanonicalName(d.Name)] = true // as written too: a bad name is reported once, here
		name, err := NormalizeDomain(d.Name)
		switch {
		case !v.has(p + ".name"):
			v.fail(p+".name", "required")
		case err != nil:
			v.fail(p+".name", "%v", err)
		case !strings.Contains(name, "."):
			v.fail(p+".name", "%q is a TLD, not a domain", d.Name)
		default:
			if j, dup := seen[name]; dup {
				v.fail(p+".name", "duplicate domain %q (also domains[%d])", name, j)
			}
			seen[name] = i
			v.names[name] = true
			d.Name = name
		}
		if !v.has(p + ".tier") {
			v.fail(p+".tier", "required (0 is the most critical, 3 the least)")
		} else if d.Tier < 0 || d.Tier > 3 {
			v.fail(p+".tier", "must be 0..3, got %d", d.Tier)
		}
		for j, s := range d.Services {
			if strings.TrimSpace(s) == "" {
				v.fail(fmt.Sprintf("%s.services[%d]", p, j), "must not be empty")
			}
		}
		for j := range d.Backups {
			bp := p + ".backups[" + strconv.Itoa(j) + "]"
			b, err := NormalizeDomain(d.Backups[j])
			if err != nil {
				v.fail(bp, "%v", err)
				continue
			}
			if b == name {
				v.fail(bp, "a domain cannot be its own backup")
			}
			d.Backups[j] = b
		}
		for j, w := range d.Watch {
			// "www", "@", "www.example.com." or any of these followed by record types ("@ MX").
			wp := p + ".watch[" + strconv.Itoa(j) + "]"
			f := strings.Fields(w)
			if len(f) == 0 {
				v.fail(wp, "empty watch entry")
				continue
			}
			for _, t := range f[1:] {
				if dns.StringToType[strings.ToUpper(t)] == 0 {
					v.fail(wp, "unknown record type %q", t)
				}
			}
			wn := f[0]
			if wn == "@" {
				continue
			}
			if _, ok := dns.IsDomainName(wn); !ok {
				v.fail(wp, "invalid name %q", wn)
			} else if strings.HasSuffix(wn, ".") && name != "" && !dns.IsSubDomain(name+".", strings.ToLower(wn)) {
				v.fail(wp, "%q is not inside %s", wn, name)
			}
		}
		for j := range d.Nameservers {
			n, ok := nsNames[d.Nameservers[j]]
			if !ok {
				n.name, n.err = NormalizeDomain(d.Nameservers[j])
				nsNames[d.Nameservers[j]] = n
			}
			if n.err != nil {
				v.fail(fmt.Sprintf("%s.nameservers[%d]", p, j), "%v", n.err)
				continue
			}
			d.Nameservers[j] = n.name
		}
		for j, ds := range d.DS {
			if _, err := ParseDS(name, ds); err != nil {
				v.fail(fmt.Sprintf("%s.ds[%d]", p, j), "%v", err)
			}
		}
		if d.WatchSeverity == "" {
			d.WatchSeverity = "warning"
		} else if !contains(Severities, d.WatchSeverity) {
			v.fail(p+".watch_severity", "must be one of %s", strings.Join(Severities, ", "))
		}
	}
}

// ParseDS parses a declared DS in presentation form "keytag alg digesttype digest".
func ParseDS(owner, s string) (*dns.DS, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return nil, fmt.Errorf("want \"keytag algorithm digesttype digest\", got %q", s)
	}
	tag, err1 := strconv.ParseUint(f[0], 10, 16)
	alg, err2 := strconv.ParseUint(f[1], 10, 8)
	dt, err3 := strconv.ParseUint(f[2], 10, 8)
	digest := strings.ToUpper(strings.Join(f[3:], ""))
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("want \"keytag algorithm digesttype digest\", got %q", s)
	}
	if _, err := hex.DecodeString(digest); err != nil || digest == "" {
		return nil, fmt.Errorf("digest is not hexadecimal in %q", s)
	}
	return &dns.DS{
		Hdr:        dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: dns.TypeDS, Class: dns.ClassINET},
		KeyTag:     uint16(tag),
		Algorithm:  uint8(alg),
		DigestType: uint8(dt),
		Digest:     digest,
	}, nil
}

func (v *validator) contacts() {
	for key, c := range v.c.Contacts {
		if c.Email == "" && c.Phone == "" && c.URL == "" {
			v.fail("contacts."+key, "give at least one of email, phone, url")
		}
	}
}

func (v *validator) playbooks() {
	seen := map[string]bool{}
	for i := range v.c.Playbooks {
		pb := &v.c.Playbooks[i]
		p := fmt.Sprintf("playbooks[%d]", i)
		if !playbookName.MatchString(pb.Name) {
			v.fail(p+".name", "want lower-case letters, digits, - or _, got %q", pb.Name)
		} else if seen[pb.Name] {
			v.fail(p+".name", "duplicate playbook %q", pb.Name)
		}
		seen[pb.Name] = true
		if prim, err := NormalizeDomain(pb.Primary); err != nil {
			v.fail(p+".primary", "%v", err)
		} else if !v.names[prim] {
			if v.c.loc == nil || !v.c.loc.unreadDomain(len(v.c.Domains)) {
				v.fail(p+".primary", "%q is not in domains", pb.Primary)
			}
		} else {
			pb.Primary = prim
		}
		if b, err := NormalizeDomain(pb.Backup); err != nil {
			v.fail(p+".backup", "%v", err)
		} else {
			pb.Backup = b
		}
		if pb.SlackChannel == "" {
			pb.SlackChannel = v.c.Alerts.Slack.Channel
		}
		if len(pb.Steps) == 0 {
			v.fail(p+".steps", "a playbook needs at least one step")
		}
		for j := range pb.Steps {
			v.step(fmt.Sprintf("%s.steps[%d]", p, j), &pb.Steps[j])
		}
		for j := range pb.Rollback {
			v.step(fmt.Sprintf("%s.rollback[%d]", p, j), &pb.Rollback[j])
		}
	}
}

func (v *validator) step(p string, s *Step) {
	n := 0
	for _, set := range []bool{s.DNSUpdate != nil, s.Webhook != nil, s.Verify != nil, s.Wait != nil, s.Notify != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.fail(p, "a step has exactly one of dns_update, webhook, verify, wait, notify (found %d)", n)
		return
	}
	switch {
	case s.DNSUpdate != nil:
		u := s.DNSUpdate
		p += ".dns_update"
		if err := checkHostPort(u.Server); err != nil || u.Server == "" {
			v.fail(p+".server", "want an address or host[:port], got %q", u.Server)
		}
		zone, err := NormalizeDomain(u.Zone)
		if err != nil {
			v.fail(p+".zone", "%v", err)
		} else {
			u.Zone = zone
		}
		if u.TSIGFile == "" {
			v.fail(p+".tsig_file", "required: updates are always signed (tsig-keygen writes the file)")
		}
		if len(u.Replace) == 0 && len(u.Delete) == 0 {
			v.fail(p, "give replace or delete records")
		}
		for k, r := range u.Replace {
			rr, err := dns.NewRR(r)
			switch {
			case err != nil || rr == nil:
				v.fail(fmt.Sprintf("%s.replace[%d]", p, k), "not a DNS record: %q", r)
			case zone != "" && !dns.IsSubDomain(dns.Fqdn(zone), rr.Header().Name):
				v.fail(fmt.Sprintf("%s.replace[%d]", p, k), "%s is outside zone %s", rr.Header().Name, zone)
			}
		}
		for k, d := range u.Delete {
			f := strings.Fields(d)
			if len(f) != 2 || dns.StringToType[strings.ToUpper(f[1])] == 0 {
				v.fail(fmt.Sprintf("%s.delete[%d]", p, k), "want \"name TYPE\", got %q", d)
			}
		}
		if u.Timeout == 0 {
			u.Timeout = Duration(10 * time.Second)
		}
	case s.Webhook != nil:
		w := s.Webhook
		p += ".webhook"
		if _, err := parseHTTPURL(w.URL); err != nil {
			v.fail(p+".url", "%v", err)
		}
		if w.Method == "" {
			w.Method = http.MethodPost
		}
		w.Method = strings.ToUpper(w.Method)
		if !contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, w.Method) {
			v.fail(p+".method", "unsupported method %q", w.Method)
		}
		if w.Retries < 0 || w.Retries > 10 {
			v.fail(p+".retries", "must be 0..10")
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(10 * time.Second)
		}
		if w.SignatureHeader == "" {
			w.SignatureHeader = "X-Nsguard-Signature"
		}
	case s.Verify != nil:
		vf := s.Verify
		p += ".verify"
		if _, ok := dns.IsDomainName(vf.Name); !ok || vf.Name == "" {
			v.fail(p+".name", "invalid name %q", vf.Name)
		}
		if dns.StringToType[strings.ToUpper(vf.Type)] == 0 {
			v.fail(p+".type", "unknown record type %q", vf.Type)
		}
		vf.Type = strings.ToUpper(vf.Type)
		if vf.Expect == "" {
			v.fail(p+".expect", "required")
		}
		for k, srv := range vf.Servers {
			if err := checkHostPort(srv); err != nil {
				v.fail(fmt.Sprintf("%s.servers[%d]", p, k), "%v", err)
			}
		}
		if vf.Interval == 0 {
			vf.Interval = Duration(2 * time.Second)
		}
		if vf.Timeout == 0 {
			vf.Timeout = Duration(2 * time.Minute)
		}
		if vf.Interval > vf.Timeout {
			v.fail(p+".interval", "longer than the timeout")
		}
	case s.Notify != nil:
		if s.Notify.Message == "" {
			v.fail(p+".notify.message", "required")
		}
	case s.Wait != nil:
		if *s.Wait <= 0 {
			v.fail(p+".wait", "must be positive")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// vantageName is what a vantage may be called: it is shown in pages and
// Slack, and part of the replica's PostgreSQL session name.
var vantageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$`)

// MinLease and MaxLease bound cluster.lease: the leader renews every
// lease/3, so 3s (a renewal every second) is the least that leaves a
// renewal time to land; a longer lease than five minutes would leave the
// cluster leaderless that long when a leader pauses.
const (
	MinLease = 3 * time.Second
	MaxLease = 5 * time.Minute
)

func (v *validator) cluster() {
	c := &v.c.Cluster
	if c.Vantage != "" && !vantageName.MatchString(c.Vantage) {
		v.fail("cluster.vantage", "want 1 to 40 letters, digits, '.', '_' or '-' (starting with a letter or digit), got %q", c.Vantage)
	}
	if c.Lease.D() < MinLease || c.Lease.D() > MaxLease {
		v.fail("cluster.lease", "must be %s to %s, got %s", MinLease, MaxLease, c.Lease)
	}
}

// VantageName reports whether s is a valid cluster.vantage (a host name
// used as the default is checked with it too).
func VantageName(s string) bool { return vantageName.MatchString(s) }

func (v *validator) ui() {
	u := &v.c.UI
	bp := u.BasePath
	switch {
	case bp == "":
		v.fail("ui.base_path", `must not be empty (use "/" for the root)`)
	case !strings.HasPrefix(bp, "/"):
		v.fail("ui.base_path", "must start with /, got %q", bp)
	case strings.ContainsAny(bp, "?#%\\ \t\n\"'<>"), strings.Contains(bp, "//"), strings.Contains("/"+bp+"/", "/../"), strings.Contains("/"+bp+"/", "/./"):
		v.fail("ui.base_path", "want a plain path such as /nsguard, got %q", bp)
	default:
		if t := strings.TrimRight(bp, "/"); t != "" {
			u.BasePath = t
		} else {
			u.BasePath = "/"
		}
		for _, reserved := range []string{"/metrics", "/healthz", "/readyz"} {
			if u.BasePath == reserved {
				v.fail("ui.base_path", "%s is taken by the daemon", reserved)
			}
		}
	}
	if u.Refresh != 0 && u.Refresh.D() < 5*time.Second {
		v.fail("ui.refresh", "want 0s (off) or at least 5s, got %s", u.Refresh)
	}
	if u.BasicAuthFile != "" {
		if st, err := os.Stat(u.BasicAuthFile); err != nil {
			v.fail("ui.basic_auth_file", "cannot read the password file: %v", errors.Unwrap(err))
		} else if st.IsDir() {
			v.fail("ui.basic_auth_file", "%s is a directory", u.BasicAuthFile)
		}
	}
}
