// Package reglab is an in-process registration lab: RDAP servers (IANA
// bootstrap, registry, registrar) and WHOIS servers (IANA, registry,
// registrar) on 127.0.0.1, answering from domain data that tests and the
// `nsguard demo` change at run time. Answers are shaped like the real ones
// (RFC 9083 with the ICANN gTLD profile; Verisign, PIR, CNNIC, DENIC, JPRS
// WHOIS), and each server can be made to misbehave: 404, 429 with
// Retry-After, quota text, malformed JSON, garbage, a 10 MiB answer, a
// connection that never closes.
//
// Every address the lab hands out, in answers too, is a 127.0.0.1 literal,
// so nothing that follows the lab's referrals can leave the host.
package reglab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/config"
)

// Behaviour is how a server answers for a domain.
type Behaviour int

const (
	// Normal answers with the domain's data.
	Normal Behaviour = iota
	// NotFound answers that the domain does not exist (RDAP 404, WHOIS "No match").
	NotFound
	// RateLimited refuses: RDAP 429 with Retry-After, WHOIS quota text.
	RateLimited
	// Malformed answers with invalid JSON (RDAP) or binary garbage (WHOIS).
	Malformed
	// Huge answers with 10 MiB.
	Huge
	// Hang never answers and never closes until the client gives up or the lab closes.
	Hang
)

// HugeSize is the size of a Huge answer.
const HugeSize = 10 << 20

// Domain is one registration as the lab's registry and registrar hold it.
type Domain struct {
	Name       string
	Registrar  string
	IANAID     string
	AbuseEmail string
	AbusePhone string
	// Statuses use EPP spelling ("clientTransferProhibited"); RDAP answers
	// spell them the RFC 8056 way ("client transfer prohibited").
	Statuses []string
	// OtherStatuses are registry-specific words printed verbatim (DENIC
	// "connect", JPRS lock statuses).
	OtherStatuses []string
	Created       time.Time
	Updated       time.Time
	// Expiry is the registry's expiry; RegistrarExpiry the registrar's
	// (zero: the same as Expiry).
	Expiry          time.Time
	RegistrarExpiry time.Time
	NS              []string
	// DS holds "keytag algorithm digesttype digest"; non-empty means signed.
	DS []string
	// Registrant is the registrant organisation; the registrar's RDAP
	// answer redacts the registrant's name and email (RFC 9537).
	Registrant string

	// How each server answers for this domain.
	RDAP           Behaviour
	RegistrarRDAP  Behaviour
	WHOIS          Behaviour
	RegistrarWHOIS Behaviour
	// RetryAfter is the Retry-After header of a RateLimited RDAP answer
	// ("" means "120").
	RetryAfter string
	// RegistrarLink overrides the registry RDAP's link to the registrar's
	// RDAP server; WhoisReferral the registry WHOIS's "Registrar WHOIS
	// Server". Tests set hostnames here to prove they are not followed.
	RegistrarLink string
	WhoisReferral string
}

// TLD is a top-level domain as IANA and the lab's registry describe it.
type TLD struct {
	Name     string
	Operator string
	Admin    Contact
	Tech     Contact
	// RDAP lists the TLD in the bootstrap file; otherwise only WHOIS serves it.
	RDAP bool
	// Format is the registry's WHOIS layout: verisign, pir, cnnic, denic,
	// jprs, or nicchile (Spanish labels, Chilean zone abbreviations).
	Format string
}

// Contact is a registry operator's contact in IANA's TLD record.
type Contact struct {
	Name, Organisation, Email, Phone string
}

// Request is one question a lab server received.
type Request struct {
	Server string // bootstrap, rdap-registry, rdap-registrar, whois-iana, whois-registry, whois-registrar
	Query  string
}

// Lab is a running registration lab. Its methods are safe for concurrent use.
type Lab struct {
	mu      sync.Mutex
	domains map[string]Domain
	tlds    map[string]TLD
	log     []Request

	httpIANA, httpRegistry, httpRegistrar    *httpServer
	whoisIANA, whoisRegistry, whoisRegistrar *whoisServer

	done      chan struct{}
	closeOnce sync.Once
}

// Start starts every server on 127.0.0.1 (ephemeral ports) with the
// default TLDs (com, net, org with RDAP; cn, de, jp WHOIS only) and no
// domains. ctx bounds start-up only; Close stops the lab.
func Start(ctx context.Context) (*Lab, error) {
	l := &Lab{domains: map[string]Domain{}, tlds: map[string]TLD{}, done: make(chan struct{})}
	for _, t := range DefaultTLDs() {
		l.tlds[t.Name] = t
	}
	var err error
	start := func(f func() error) {
		if err == nil && ctx.Err() == nil {
			err = f()
		}
	}
	start(func() (e error) { l.httpIANA, e = startHTTP(http.HandlerFunc(l.serveBootstrap)); return })
	start(func() (e error) { l.httpRegistry, e = startHTTP(http.HandlerFunc(l.serveRegistryRDAP)); return })
	start(func() (e error) { l.httpRegistrar, e = startHTTP(http.HandlerFunc(l.serveRegistrarRDAP)); return })
	start(func() (e error) { l.whoisIANA, e = startWhois(l, "whois-iana", l.answerIANA); return })
	start(func() (e error) { l.whoisRegistry, e = startWhois(l, "whois-registry", l.answerRegistry); return })
	start(func() (e error) { l.whoisRegistrar, e = startWhois(l, "whois-registrar", l.answerRegistrar); return })
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("reglab: start: %w", err)
	}
	return l, nil
}

// Close stops every server and releases hanging connections.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		for _, s := range []*httpServer{l.httpIANA, l.httpRegistry, l.httpRegistrar} {
			if s != nil {
				s.close()
			}
		}
		for _, s := range []*whoisServer{l.whoisIANA, l.whoisRegistry, l.whoisRegistrar} {
			if s != nil {
				s.close()
			}
		}
	})
	return nil
}

// SetDomain adds or replaces a domain.
func (l *Lab) SetDomain(d Domain) {
	d.Name = canonical(d.Name)
	l.mu.Lock()
	l.domains[d.Name] = d
	l.mu.Unlock()
}

// Update changes a domain in place; it fails when the domain is unknown.
func (l *Lab) Update(name string, f func(*Domain)) error {
	name = canonical(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.domains[name]
	if !ok {
		return fmt.Errorf("reglab: no domain %q", name)
	}
	d.Statuses = slices.Clone(d.Statuses)
	d.NS = slices.Clone(d.NS)
	f(&d)
	d.Name = name
	l.domains[name] = d
	return nil
}

// Transfer moves a domain to another registrar, as a registrar transfer
// (or a hijack by transfer) does: the registry and RDAP answers name the
// new registrar and IANA ID from the next query on.
func (l *Lab) Transfer(name, registrar, ianaID string) error {
	return l.Update(name, func(d *Domain) { d.Registrar, d.IANAID = registrar, ianaID })
}

// RemoveLocks drops the given EPP lock statuses from a domain (all of its
// statuses when none are named), as a registrar unlocking it for a
// transfer does.
func (l *Lab) RemoveLocks(name string, locks ...string) error {
	return l.Update(name, func(d *Domain) {
		if len(locks) == 0 {
			d.Statuses = nil
			return
		}
		d.Statuses = slices.DeleteFunc(d.Statuses, func(s string) bool { return slices.Contains(locks, s) })
	})
}

// RemoveDomain deletes a domain: servers answer "not found".
func (l *Lab) RemoveDomain(name string) {
	l.mu.Lock()
	delete(l.domains, canonical(name))
	l.mu.Unlock()
}

// Domain returns a domain's current data.
func (l *Lab) Domain(name string) (Domain, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.domains[canonical(name)]
	return d, ok
}

// SetTLD adds or replaces a TLD (IANA record, RDAP availability, WHOIS format).
func (l *Lab) SetTLD(t TLD) {
	t.Name = canonical(t.Name)
	l.mu.Lock()
	l.tlds[t.Name] = t
	l.mu.Unlock()
}

func (l *Lab) lookup(name string) (Domain, TLD, bool) {
	name = canonical(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.domains[name]
	t := l.tlds[tldOf(name)]
	return d, t, ok
}

func (l *Lab) record(server, query string) {
	l.mu.Lock()
	l.log = append(l.log, Request{Server: server, Query: query})
	l.mu.Unlock()
}

// Requests returns every question received so far, in order.
func (l *Lab) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

// Count returns how many questions server received.
func (l *Lab) Count(server string) int {
	n := 0
	for _, r := range l.Requests() {
		if r.Server == server {
			n++
		}
	}
	return n
}

// ResetRequests clears the request log.
func (l *Lab) ResetRequests() {
	l.mu.Lock()
	l.log = nil
	l.mu.Unlock()
}

// BootstrapURL is the RDAP bootstrap file (RFC 9224), listing the TLDs with RDAP.
func (l *Lab) BootstrapURL() string { return l.httpIANA.url + "/rdap/dns.json" }

// RDAPBase is the registry RDAP base URL for a TLD.
func (l *Lab) RDAPBase(tld string) string { return l.httpRegistry.url + "/" + canonical(tld) + "/" }

// RegistrarRDAPBase is the registrar's RDAP base URL.
func (l *Lab) RegistrarRDAPBase() string { return l.httpRegistrar.url + "/rdap/" }

// WhoisAddr is the registry WHOIS server (all TLDs, each in its registry's format).
func (l *Lab) WhoisAddr() string { return l.whoisRegistry.addr }

// RegistrarWhoisAddr is the registrar's WHOIS server.
func (l *Lab) RegistrarWhoisAddr() string { return l.whoisRegistrar.addr }

// IANAWhoisAddr is the lab's whois.iana.org.
func (l *Lab) IANAWhoisAddr() string { return l.whoisIANA.addr }

// RegistryConfig is a registry config section pointing at the lab: the
// bootstrap for RDAP, IANA's WHOIS for discovering WHOIS servers, short
// timeouts and no rate limit worth waiting for.
func (l *Lab) RegistryConfig() config.Registry {
	return config.Registry{
		RDAPBootstrap:   l.BootstrapURL(),
		RDAPServers:     map[string]string{},
		WhoisServers:    map[string]string{},
		IANAWhois:       l.IANAWhoisAddr(),
		Timeout:         config.Duration(2 * time.Second),
		MaxQPSPerServer: 1000,
	}
}

// DialLoopback dials only IP literals in 127.0.0.0/8 or ::1, never
// resolving a name: tests pass it to registry.Options so no request can
// leave the host, whatever a server refers them to.
func DialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("reglab: refusing to dial %s: only loopback IP literals are allowed", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// HTTPClient is an http.Client that can only reach loopback IP literals.
func HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:       DialLoopback,
		Proxy:             nil,
		DisableKeepAlives: false,
		MaxIdleConns:      16,
		IdleConnTimeout:   30 * time.Second,
	}}
}

func canonical(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

func tldOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
