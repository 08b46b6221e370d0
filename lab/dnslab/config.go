package dnslab

import (
	"fmt"
	"strings"
)

// ConfigYAML renders an nsguard config that points at this lab: the lab's
// root hints and port, its public resolvers, IPv6 off (the lab is IPv4) and
// the lab inventory with declared name servers and DS. extra is appended
// verbatim (more top-level sections: alerts, registry, playbooks…).
func (l *Lab) ConfigYAML(storePath, extra string) string {
	return l.configYAML(storePath, extra, 10000)
}

// configYAML is ConfigYAML with resolver.max_qps_per_server set to qps.
func (l *Lab) configYAML(storePath, extra string, qps int) string {
	l.mu.RLock()
	w := l.world
	var b strings.Builder
	fmt.Fprintf(&b, "store: {path: %q}\n", storePath)
	fmt.Fprintf(&b, "resolver:\n  root_hints: %q\n  port: %d\n  ipv6: false\n  timeout: 500ms\n  retries: 1\n  max_qps_per_server: %d\n", l.HintsFile(), l.port, qps)
	b.WriteString("  public_resolvers: [")
	for i, r := range w.Resolvers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", r.String())
	}
	b.WriteString("]\ndomains:\n")
	for _, d := range w.Domains {
		fmt.Fprintf(&b, "  - name: %s\n    tier: %d\n    owner: %s\n", d.Name, d.Tier, d.Owner)
		list := func(key string, vals []string) {
			if len(vals) > 0 {
				fmt.Fprintf(&b, "    %s: [%s]\n", key, strings.Join(vals, ", "))
			}
		}
		list("services", d.Services)
		list("backups", d.Backups)
		list("watch", d.Watch)
		list("nameservers", d.Nameservers)
		if d.Signed {
			if z := l.pristine.Zone(d.Name); z != nil && z.DS() != nil {
				ds := z.DS()
				fmt.Fprintf(&b, "    ds: [\"%d %d %d %s\"]\n", ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
			}
		}
	}
	l.mu.RUnlock()
	b.WriteString(extra)
	return b.String()
}
