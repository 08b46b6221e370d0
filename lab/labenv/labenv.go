// Package labenv starts the whole simulated Internet nsguard is tested and
// demonstrated against: the DNS lab (lab/dnslab) and the registration
// lab (lab/reglab), seeded consistently — every lab domain registered
// at the approved registrar with the name servers the DNS lab delegates to —
// and renders an nsguard config that points only at them.
package labenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/reglab"
)

// Options configure an Env.
type Options struct {
	// DNS configures the DNS lab (base, port, world, backend).
	DNS dnslab.Options
	// Dir holds the config and the store; empty means a new temp dir.
	Dir string
	// Now is the registration lab's clock (default time.Now).
	Now func() time.Time
	// Posture gives the lab's domains the long-standing warnings real
	// inventories carry (see PostureWorld). It replaces DNS.World.
	Posture bool
}

// PostureWorld is the default world where shop-example.com, shop-backup.net
// and shop-example.cn are delegated to two servers of provider A in one /24
// (ns1 and a third server, ns3.provider-a.net at 127.B.1.2): every domain
// healthy, each with NS_SINGLE_PROVIDER and NS_SAME_PREFIX warnings, the
// kind of accepted risk that must never page.
func PostureWorld(base byte, now time.Time) *dnslab.World {
	w := dnslab.DefaultWorld(base, now)
	ns1 := w.Host("ns1.provider-a.net")
	ns3 := w.Addr(1, 2)
	w.Hosts = append(w.Hosts, &dnslab.Host{Name: "ns3.provider-a.net.", Role: ns1.Role, Addr: ns3, Zones: append([]string(nil), ns1.Zones...)})
	w.Zone("net").Add(fmt.Sprintf("ns3.provider-a.net. 172800 IN A %s", ns3))
	w.Zone("provider-a.net").Add(fmt.Sprintf("ns3 A %s", ns3))
	ns := []string{"ns1.provider-a.net.", "ns3.provider-a.net."}
	for i, d := range w.Domains {
		if d.Signed || d.Name == "corp-example.net" {
			continue // a re-signed zone or in-domain glue: not worth the noise here
		}
		name := dns.Fqdn(d.Name)
		var recs []string
		for _, n := range ns {
			recs = append(recs, fmt.Sprintf("%s 172800 IN NS %s", name, n))
		}
		w.Zone(w.ParentOf(d.Name)).Replace(name, dns.TypeNS, recs...)
		w.Zone(d.Name).Replace(name, dns.TypeNS, recs...)
		w.Domains[i].Nameservers = ns
	}
	return w
}

// Env is a running DNS lab plus registration lab.
type Env struct {
	DNS    *dnslab.Lab
	Reg    *reglab.Lab
	Dir    string
	ownDir bool
}

// Start starts both labs and seeds the registrations.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Env{Dir: opts.Dir}
	if e.Dir == "" {
		d, err := os.MkdirTemp("", "nsguard-env-")
		if err != nil {
			return nil, fmt.Errorf("labenv: %w", err)
		}
		e.Dir, e.ownDir = d, true
	}
	var err error
	if opts.Posture {
		opts.DNS.World = PostureWorld
	}
	if opts.DNS.Dir == "" {
		opts.DNS.Dir = filepath.Join(e.Dir, "dns")
		if err := os.MkdirAll(opts.DNS.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("labenv: %w", err)
		}
	}
	if e.DNS, err = dnslab.Start(ctx, opts.DNS); err != nil {
		e.Close()
		return nil, err
	}
	if e.Reg, err = reglab.Start(ctx); err != nil {
		e.Close()
		return nil, err
	}
	e.SeedRegistrations(opts.Now())
	return e, nil
}

// SeedRegistrations registers every domain of the DNS lab's inventory at
// the approved registrar, registry-locked, with the delegation the DNS lab
// serves (and its DS for signed zones).
func (e *Env) SeedRegistrations(now time.Time) {
	w := e.DNS.World()
	for _, d := range w.Domains {
		r := reglab.Healthy(d.Name, now)
		r.NS = nil
		parent := w.Zone(w.ParentOf(d.Name))
		for _, rr := range parent.RRset(d.Name, dns.TypeNS) {
			r.NS = append(r.NS, strings.TrimSuffix(rr.(*dns.NS).Ns, "."))
		}
		for _, rr := range parent.RRset(d.Name, dns.TypeDS) {
			ds := rr.(*dns.DS)
			r.DS = append(r.DS, fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest))
		}
		r.Registrant = "Example Group (" + d.Owner + ")"
		e.Reg.SetDomain(r)
	}
}

// Close stops both labs and removes the temp dir.
func (e *Env) Close() error {
	if e.DNS != nil {
		e.DNS.Close()
	}
	if e.Reg != nil {
		e.Reg.Close()
	}
	if e.ownDir {
		os.RemoveAll(e.Dir)
	}
	return nil
}

// StorePath is where configs from this env keep their SQLite store.
func (e *Env) StorePath() string { return filepath.Join(e.Dir, "nsguard.db") }

// ConfigYAML renders a complete nsguard config for the labs: resolver,
// registry, policy, contacts and the inventory; extra adds sections
// (alerts, playbooks, schedules…).
func (e *Env) ConfigYAML(extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry:\n  rdap_bootstrap: %q\n  iana_whois: %q\n  timeout: 2s\n  max_qps_per_server: 1000\n",
		e.Reg.BootstrapURL(), e.Reg.IANAWhoisAddr())
	b.WriteString(`policy:
  approved_registrars: ["MarkMonitor Inc.", "CSC Corporate Domains, Inc."]
  required_locks:
    tier0: [serverTransferProhibited, serverUpdateProhibited, serverDeleteProhibited, clientTransferProhibited]
    tier1: [clientTransferProhibited]
  expiry: {warning: 90d, critical: 30d}
  max_services_per_domain: 3
contacts:
  icann: {name: ICANN Contractual Compliance, email: compliance@icann.org, url: "https://www.icann.org/compliance/complaint"}
  registrar_account_manager: {name: Account manager at MarkMonitor, email: am@markmonitor.example, phone: "+1 208 389 5740"}
  legal: {name: IP & Legal department, email: ip-legal@example.com, phone: "+1 555 0100"}
`)
	b.WriteString(extra)
	return e.DNS.ConfigYAML(e.StorePath(), b.String())
}

// WriteConfig writes ConfigYAML(extra) to the env's dir and returns its path.
func (e *Env) WriteConfig(extra string) (string, error) {
	p := filepath.Join(e.Dir, "nsguard.yaml")
	if err := os.WriteFile(p, []byte(e.ConfigYAML(extra)), 0o644); err != nil {
		return "", fmt.Errorf("labenv: writing config: %w", err)
	}
	return p, nil
}

// Config parses ConfigYAML(extra).
func (e *Env) Config(extra string) (*config.Config, error) {
	return config.Parse(filepath.Join(e.Dir, "nsguard.yaml"), []byte(e.ConfigYAML(extra)))
}
