// Package config holds nsguard's configuration schema, its defaults, strict
// YAML loading and validation. Every error names the file, the line and the
// field path, so an operator can fix a broken config without guessing.
package config

import (
	"fmt"
	"strings"
	"time"
)

// Config is the whole nsguard configuration file.
type Config struct {
	Store     Store              `yaml:"store"`
	Listen    string             `yaml:"listen"`
	Resolver  Resolver           `yaml:"resolver"`
	Registry  Registry           `yaml:"registry"`
	Schedules Schedules          `yaml:"schedules"`
	Policy    Policy             `yaml:"policy"`
	Alerts    Alerts             `yaml:"alerts"`
	Domains   []Domain           `yaml:"domains"`
	Contacts  map[string]Contact `yaml:"contacts"`
	Playbooks []Playbook         `yaml:"playbooks"`
	UI        UI                 `yaml:"ui"`
	Cluster   Cluster            `yaml:"cluster"`

	// File is the path the config was loaded from ("" when built in code).
	File string `yaml:"-"`
	// loc says where each field is in File (nil when built in code).
	loc *locations
}

// Store says where the database lives: a SQLite file (Path, the default)
// or a PostgreSQL database (URL, or the file or environment variable that
// holds a URL with a password). Exactly one is set after loading.
type Store struct {
	Path string `yaml:"path"`
	// URL is a postgres:// URL without a password (validation refuses one:
	// secrets are never in the config).
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	URLEnv  string `yaml:"url_env"`
}

// Postgres reports whether the store is a PostgreSQL database.
func (s Store) Postgres() bool {
	return s.Path == "" && (s.URL != "" || s.URLFile != "" || s.URLEnv != "")
}

// String names the store for logs and errors without its secret: the
// SQLite file, the URL (which holds no password), or where the URL is read.
func (s Store) String() string {
	switch {
	case s.Path != "":
		return "sqlite:" + s.Path
	case s.URL != "":
		return s.URL
	case s.URLFile != "":
		return "postgres (URL in " + s.URLFile + ")"
	case s.URLEnv != "":
		return "postgres (URL in $" + s.URLEnv + ")"
	}
	return "no store"
}

// Cluster configures replicas sharing one PostgreSQL store: each is a
// vantage point, one of them leads. A SQLite store has no cluster: the
// daemon is the leader and its observations carry no vantage.
type Cluster struct {
	// Vantage names this replica (or nsguard probe) in observations and
	// pages ("vantage-fra"); empty means the host name (in Kubernetes, the
	// pod's name).
	Vantage string `yaml:"vantage"`
	// Lease is how long the leadership lasts without renewal: the leader
	// renews every lease/3 and steps down at once when it cannot; a
	// replica takes over when the leader's connection ends, or when its
	// lease lapses (a paused leader).
	Lease Duration `yaml:"lease"`
}

// Resolver configures how nsguard talks DNS.
type Resolver struct {
	// RootHints is a root hints file (named.root format); empty means the
	// built-in IANA root servers.
	RootHints string `yaml:"root_hints"`
	// Port is the port every DNS server is asked on (53, or a lab's port).
	Port int `yaml:"port"`
	// IPv6 false skips AAAA addresses of name servers (hosts without IPv6).
	IPv6            bool     `yaml:"ipv6"`
	Timeout         Duration `yaml:"timeout"`
	Retries         int      `yaml:"retries"`
	MaxQPSPerServer float64  `yaml:"max_qps_per_server"`
	// MaxConcurrency bounds the queries in flight across all servers.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxConcurrentDomains bounds the domains checked at once.
	MaxConcurrentDomains int `yaml:"max_concurrent_domains"`
	// ParentServers limits how many parent (TLD) servers are asked; 0 = all.
	ParentServers   int      `yaml:"parent_servers"`
	PublicResolvers []string `yaml:"public_resolvers"`
	// MaxNSPerDelegation bounds the name server names tried, resolved and
	// probed for one delegation: a referral to thousands of glueless names
	// costs a bounded number of queries, and the rest are reported.
	MaxNSPerDelegation int `yaml:"max_ns_per_delegation"`
	// DomainTimeout is how long one domain's whole check may take before it
	// is abandoned (servers that never answer, a hostile delegation).
	DomainTimeout Duration `yaml:"domain_timeout"`
}

// Registry configures registration data lookups (RDAP, WHOIS).
type Registry struct {
	RDAPBootstrap string `yaml:"rdap_bootstrap"`
	// RDAPServers maps a TLD to an RDAP base URL, bypassing the bootstrap.
	RDAPServers map[string]string `yaml:"rdap_servers"`
	// WhoisServers maps a TLD to a WHOIS server ("host" or "host:port").
	WhoisServers    map[string]string `yaml:"whois_servers"`
	IANAWhois       string            `yaml:"iana_whois"`
	Timeout         Duration          `yaml:"timeout"`
	MaxQPSPerServer float64           `yaml:"max_qps_per_server"`
	// CacheDir holds the cached bootstrap file; empty means beside the store.
	CacheDir string `yaml:"cache_dir"`
}

// Schedules are cron specs (robfig/cron syntax, "@every 1m" included).
type Schedules struct {
	Delegation   string   `yaml:"delegation"`
	Registration string   `yaml:"registration"`
	Audit        string   `yaml:"audit"`
	Jitter       Duration `yaml:"jitter"`
}

// Policy is what the company requires of its critical domains.
type Policy struct {
	ApprovedRegistrars []string `yaml:"approved_registrars"`
	// RequiredLocks maps "tier0".."tier3" to the EPP statuses required.
	RequiredLocks        map[string][]string `yaml:"required_locks"`
	Expiry               Horizon             `yaml:"expiry"`
	RRSIGExpiry          Horizon             `yaml:"rrsig_expiry"`
	MaxServicesPerDomain int                 `yaml:"max_services_per_domain"`
}

// Horizon is a pair of warning and critical lead times.
type Horizon struct {
	Warning  Duration `yaml:"warning"`
	Critical Duration `yaml:"critical"`
}

// Alerts configures paging.
type Alerts struct {
	Slack          Slack    `yaml:"slack"`
	Confirmations  int      `yaml:"confirmations"`
	RepeatInterval Duration `yaml:"repeat_interval"`
	// Recheck is how soon a domain with a new, unconfirmed finding is
	// checked again, instead of waiting a whole schedule interval for the
	// confirmation (0 disables).
	Recheck Duration `yaml:"recheck"`
	// GroupWindow: findings confirmed within it after an incident's page,
	// and no worse than that incident, join it instead of paging again.
	GroupWindow Duration `yaml:"group_window"`
	// GroupWait holds the first page of an incident without a critical
	// finding, so findings confirmed moments apart page together.
	GroupWait Duration `yaml:"group_wait"`
	// DeliveryTimeout bounds one delivery to Slack.
	DeliveryTimeout Duration `yaml:"delivery_timeout"`
	// ClaimLease is how long a sender's claim on a message lasts: a sender
	// killed while holding one delays that message by at most this. 0 means
	// 2 × delivery_timeout + 30s.
	ClaimLease Duration `yaml:"claim_lease"`
	// Quorum is how many vantage points must see a finding before it pages
	// as itself (a cluster); fewer make it VANTAGE_DISAGREES. 0 means a
	// majority of the vantages that reported within the last interval.
	Quorum int `yaml:"quorum"`
}

// Slack configures the Slack receiver: a bot token or an incoming webhook.
// Secrets are never in the config itself, only where to read them.
type Slack struct {
	TokenFile      string `yaml:"token_file"`
	TokenEnv       string `yaml:"token_env"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	Channel        string `yaml:"channel"`
	// Channels routes by severity ("critical", "warning", "info").
	Channels map[string]string `yaml:"channels"`
	// APIURL replaces https://slack.com/api/ (a proxy, a test server).
	APIURL string `yaml:"api_url"`
}

// Enabled reports whether any Slack delivery is configured.
func (s Slack) Enabled() bool {
	return s.TokenFile != "" || s.TokenEnv != "" || s.WebhookURLFile != "" || s.WebhookURLEnv != ""
}

// UI configures the read-only status pages the daemon serves on listen,
// beside /metrics.
type UI struct {
	Enabled bool `yaml:"enabled"`
	// BasePath is the path prefix the pages live under ("/nsguard" behind
	// a reverse proxy that passes that prefix on); "/" serves them at the
	// root. /metrics, /healthz and /readyz stay where they are.
	BasePath string `yaml:"base_path"`
	// BasicAuthFile holds htpasswd-style "user:bcrypt-hash" lines; empty
	// means no authentication (fine on a loopback listen address).
	BasicAuthFile string `yaml:"basic_auth_file"`
	// Refresh makes the overview, incident and domain pages reload
	// themselves this often (0 turns it off).
	Refresh Duration `yaml:"refresh"`
}

// Domain is one entry of the critical-domain inventory.
type Domain struct {
	Name     string   `yaml:"name" nsguard:"required"`
	Tier     int      `yaml:"tier" nsguard:"required"`
	Owner    string   `yaml:"owner"`
	Services []string `yaml:"services"`
	Backups  []string `yaml:"backups"`
	// Watch lists names whose records are watched: relative ("www") or
	// absolute ("www.example.com."); "@" is the apex.
	Watch []string `yaml:"watch"`
	// Nameservers is the declared NS set (optional).
	Nameservers []string `yaml:"nameservers"`
	// DS is the declared DS set in presentation form "keytag alg digesttype digest".
	DS []string `yaml:"ds"`
	// WatchSeverity is the severity of a watched record change ("warning").
	WatchSeverity string `yaml:"watch_severity"`
}

// Contact is one emergency contact.
type Contact struct {
	Name  string `yaml:"name"`
	Role  string `yaml:"role"`
	Email string `yaml:"email"`
	Phone string `yaml:"phone"`
	URL   string `yaml:"url"`
	Notes string `yaml:"notes"`
}

// Playbook is a failover plan from a primary domain to its backup.
type Playbook struct {
	Name         string `yaml:"name"`
	Primary      string `yaml:"primary"`
	Backup       string `yaml:"backup"`
	Description  string `yaml:"description"`
	SlackChannel string `yaml:"slack_channel"`
	Steps        []Step `yaml:"steps"`
	Rollback     []Step `yaml:"rollback"`
}

// Step is one playbook step; exactly one kind is set.
type Step struct {
	Name      string         `yaml:"name"`
	DNSUpdate *DNSUpdateStep `yaml:"dns_update"`
	Webhook   *WebhookStep   `yaml:"webhook"`
	Verify    *VerifyStep    `yaml:"verify"`
	Wait      *Duration      `yaml:"wait"`
	Notify    *NotifyStep    `yaml:"notify"`
}

// Kind names the step's kind.
func (s Step) Kind() string {
	switch {
	case s.DNSUpdate != nil:
		return "dns_update"
	case s.Webhook != nil:
		return "webhook"
	case s.Verify != nil:
		return "verify"
	case s.Wait != nil:
		return "wait"
	case s.Notify != nil:
		return "notify"
	}
	return ""
}

// DNSUpdateStep is an RFC 2136 UPDATE signed with TSIG.
type DNSUpdateStep struct {
	// Server is "host" or "host:port" (the resolver port when absent).
	Server   string `yaml:"server"`
	Zone     string `yaml:"zone"`
	TSIGFile string `yaml:"tsig_file"`
	// Replace holds RRs in presentation form; each replaces its name/type RRset.
	Replace []string `yaml:"replace"`
	// Delete holds "name type" RRsets to remove.
	Delete  []string `yaml:"delete"`
	Timeout Duration `yaml:"timeout"`
}

// WebhookStep is an HTTP call, signed with HMAC-SHA256 when a secret is set.
type WebhookStep struct {
	URL             string            `yaml:"url"`
	Method          string            `yaml:"method"`
	Headers         map[string]string `yaml:"headers"`
	Body            string            `yaml:"body"`
	SecretFile      string            `yaml:"secret_file"`
	SecretEnv       string            `yaml:"secret_env"`
	SignatureHeader string            `yaml:"signature_header"`
	Timeout         Duration          `yaml:"timeout"`
	Retries         int               `yaml:"retries"`
}

// VerifyStep polls until NAME/TYPE answers the expected value.
type VerifyStep struct {
	Name   string `yaml:"name"`
	Type   string `yaml:"type"`
	Expect string `yaml:"expect"`
	// Servers to ask; empty means the zone's authoritative servers.
	Servers         []string `yaml:"servers"`
	PublicResolvers bool     `yaml:"public_resolvers"`
	Interval        Duration `yaml:"interval"`
	Timeout         Duration `yaml:"timeout"`
}

// NotifyStep posts a message to the playbook's Slack thread.
type NotifyStep struct {
	Message string `yaml:"message"`
	Channel string `yaml:"channel"`
}

// Duration is a time.Duration that also accepts days ("90d") and weeks ("2w").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", td/(24*time.Hour))
	}
	return td.String()
}

// MarshalText renders the duration the way it is written in config.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the config spelling back ("90d", "5m").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = v
	return err
}

// ParseDuration parses Go durations plus a whole-number "d" or "w" suffix.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n := len(s); s[n-1] == 'd' || s[n-1] == 'w' {
		var v int64
		if _, err := fmt.Sscanf(s[:n-1], "%d", &v); err != nil || fmt.Sprint(v) != s[:n-1] || v < 0 {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 30s, 5m, 4h, 90d)", s)
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		return Duration(time.Duration(v) * unit), nil
	}
	td, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30s, 5m, 4h, 90d)", s)
	}
	if td < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return Duration(td), nil
}

// DefaultPublicResolvers are the real Internet's public resolvers, asked for
// the resolver view. Tests and labs always override them.
var DefaultPublicResolvers = []string{"8.8.8.8", "1.1.1.1", "119.29.29.29", "223.5.5.5"}

// Defaults of the resolver's bounds, also used when a Resolver is built in
// code without them.
const (
	DefaultMaxNSPerDelegation = 20
	DefaultDomainTimeout      = 15 * time.Second
	// DefaultLease is cluster.lease's default: a killed leader's successor
	// takes over within lease/3 (its connection ends at once), a paused
	// one's within 2 × lease.
	DefaultLease = 15 * time.Second
)

// Default returns a Config holding every default; Load decodes over it.
func Default() *Config {
	return &Config{
		Store:  Store{Path: "/var/lib/nsguard/nsguard.db"},
		Listen: "127.0.0.1:9153",
		Resolver: Resolver{
			Port:                 53,
			IPv6:                 true,
			Timeout:              Duration(2 * time.Second),
			Retries:              2,
			MaxQPSPerServer:      50,
			MaxConcurrency:       512,
			MaxConcurrentDomains: 128,
			PublicResolvers:      append([]string(nil), DefaultPublicResolvers...),
			MaxNSPerDelegation:   DefaultMaxNSPerDelegation,
			DomainTimeout:        Duration(DefaultDomainTimeout),
		},
		Registry: Registry{
			RDAPBootstrap:   "https://data.iana.org/rdap/dns.json",
			WhoisServers:    map[string]string{},
			IANAWhois:       "whois.iana.org",
			Timeout:         Duration(10 * time.Second),
			MaxQPSPerServer: 1,
		},
		Schedules: Schedules{
			Delegation:   "@every 1m",
			Registration: "@every 6h",
			Audit:        "0 9 * * *",
			Jitter:       Duration(5 * time.Second),
		},
		Policy: Policy{
			RequiredLocks:        map[string][]string{},
			Expiry:               Horizon{Warning: Duration(90 * 24 * time.Hour), Critical: Duration(30 * 24 * time.Hour)},
			RRSIGExpiry:          Horizon{Warning: Duration(7 * 24 * time.Hour), Critical: Duration(2 * 24 * time.Hour)},
			MaxServicesPerDomain: 3,
		},
		Alerts: Alerts{
			Confirmations:   2,
			RepeatInterval:  Duration(4 * time.Hour),
			Recheck:         Duration(5 * time.Second),
			GroupWindow:     Duration(5 * time.Minute),
			GroupWait:       Duration(30 * time.Second),
			DeliveryTimeout: Duration(30 * time.Second),
		},
		Contacts: map[string]Contact{},
		UI:       UI{Enabled: true, BasePath: "/", Refresh: Duration(time.Minute)},
		Cluster:  Cluster{Lease: Duration(DefaultLease)},
	}
}

// Domain returns the inventory entry for name (case-insensitive, dot-tolerant).
func (c *Config) Domain(name string) (Domain, bool) {
	n := CanonicalName(name)
	for _, d := range c.Domains {
		if CanonicalName(d.Name) == n {
			return d, true
		}
	}
	return Domain{}, false
}

// Playbook returns the playbook called name.
func (c *Config) Playbook(name string) (Playbook, bool) {
	for _, p := range c.Playbooks {
		if p.Name == name {
			return p, true
		}
	}
	return Playbook{}, false
}

// PlaybooksFor returns the playbooks whose primary is domain.
func (c *Config) PlaybooksFor(domain string) []Playbook {
	var out []Playbook
	n := CanonicalName(domain)
	for _, p := range c.Playbooks {
		if CanonicalName(p.Primary) == n {
			out = append(out, p)
		}
	}
	return out
}

// RequiredLocksFor returns the statuses policy requires of a tier.
func (c *Config) RequiredLocksFor(tier int) []string {
	return c.Policy.RequiredLocks[fmt.Sprintf("tier%d", tier)]
}

// CanonicalName lower-cases a domain name and strips the trailing dot.
func CanonicalName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
