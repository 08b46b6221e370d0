package audit

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/registry"
)

// Independence dimensions, in matrix column order: what a primary and its
// backup must not share, because one incident there takes both down.
const (
	DimRegistrar  = "registrar"   // one registrar account compromise or dispute
	DimNSProvider = "ns_provider" // one DNS provider outage (registrable domain of the NS names)
	DimNSNetwork  = "ns_network"  // one routing incident (the same address, or /24 IPv4, /48 IPv6)
	DimTLD        = "tld"         // one registry's outage or policy
	DimRegistrant = "registrant"  // one legal entity: a court order, a dispute
)

// Dimensions lists the matrix columns in order.
var Dimensions = []string{DimRegistrar, DimNSProvider, DimNSNetwork, DimTLD, DimRegistrant}

// DimensionTitle is each dimension's column heading.
var DimensionTitle = map[string]string{
	DimRegistrar: "Registrar", DimNSProvider: "DNS provider", DimNSNetwork: "NS network",
	DimTLD: "TLD", DimRegistrant: "Registrant",
}

// Cell statuses.
const (
	CellIndependent = "independent"
	CellShared      = "shared"
	CellUnknown     = "unknown"
)

// Cell is one dimension of one primary × backup pair.
type Cell struct {
	Dimension string `json:"dimension"`
	Status    string `json:"status"`
	Primary   string `json:"primary"`
	Backup    string `json:"backup"`
	// Shared is what the two have in common (for a shared cell).
	Shared string `json:"shared,omitempty"`
}

// Backup verdicts.
const (
	VerdictIndependent = "independent"
	// VerdictUnverified: nothing shared that nsguard could see, but some
	// dimension is unknown (a redacted registrant, a failed lookup). It
	// counts as a backup; the matrix shows what could not be compared.
	VerdictUnverified = "unverified"
	VerdictShared     = "not independent"
	VerdictUnhealthy  = "unhealthy"
)

// BackupCheck is one row of the independence matrix.
type BackupCheck struct {
	Primary     string `json:"primary"`
	PrimaryTier int    `json:"primary_tier"`
	Owner       string `json:"owner"`
	Backup      string `json:"backup"`
	// InInventory says the backup is an inventory entry itself (watched,
	// policy-checked); otherwise nsguard only looks at it here.
	InInventory bool   `json:"in_inventory"`
	Cells       []Cell `json:"cells"`
	// Health lists what is wrong with the backup itself.
	Health  []string `json:"health,omitempty"`
	Verdict string   `json:"verdict"`
}

// Cell returns the pair's cell for a dimension.
func (b BackupCheck) Cell(dim string) Cell {
	for _, c := range b.Cells {
		if c.Dimension == dim {
			return c
		}
	}
	return Cell{Dimension: dim, Status: CellUnknown}
}

// Usable reports whether the backup counts as a backup.
func (b BackupCheck) Usable() bool {
	return b.Verdict == VerdictIndependent || b.Verdict == VerdictUnverified
}

// Reasons says why the backup does not count, one phrase each.
func (b BackupCheck) Reasons() []string {
	out := slices.Clone(b.Health)
	for _, c := range b.Cells {
		if c.Status == CellShared {
			out = append(out, "shares the "+dimPhrase(c.Dimension)+" ("+c.Shared+")")
		}
	}
	return out
}

func dimPhrase(dim string) string {
	switch dim {
	case DimNSProvider:
		return "DNS provider"
	case DimNSNetwork:
		return "name server network"
	case DimTLD:
		return "TLD"
	}
	return dim
}

// checkBackup fills one matrix row. backup may be nil (never gathered).
func (a *analysis) checkBackup(p Input, backupName string, backup *Input) BackupCheck {
	bc := BackupCheck{
		Primary: p.Domain.Name, PrimaryTier: p.Domain.Tier, Owner: p.Domain.Owner,
		Backup: backupName, InInventory: a.inventory[backupName] != nil,
	}
	var b Input
	if backup != nil {
		b = *backup
	} else {
		b.Domain.Name = backupName
	}
	bc.Cells = []Cell{
		compareRegistrar(p, b),
		compareSets(DimNSProvider, nsProviders(p), nsProviders(b)),
		compareNetworks(nsAddrs(p), nsAddrs(b)),
		compareTLD(p.Domain.Name, backupName),
		compareRegistrant(p, b),
	}
	bc.Health = a.health(b)
	shared, unknown := false, false
	for _, c := range bc.Cells {
		shared = shared || c.Status == CellShared
		unknown = unknown || c.Status == CellUnknown
	}
	switch {
	case len(bc.Health) > 0:
		bc.Verdict = VerdictUnhealthy
	case shared:
		bc.Verdict = VerdictShared
	case unknown:
		bc.Verdict = VerdictUnverified
	default:
		bc.Verdict = VerdictIndependent
	}
	return bc
}

// health lists what makes a backup unusable by itself: not registered,
// expiring inside the policy's warning horizon, on hold, or failing its
// own DNS checks (the check failed, or a critical finding).
func (a *analysis) health(b Input) []string {
	var out []string
	if errors.Is(b.RegErr, registry.ErrNotRegistered) {
		out = append(out, "not registered (anyone can register it)")
	}
	if r := b.Registration; r != nil {
		if !r.Expiry.IsZero() {
			left := r.Expiry.Sub(a.now)
			if left <= a.cfg.Policy.Expiry.Warning.D() {
				if left < 0 {
					out = append(out, fmt.Sprintf("registration expired on %s", r.Expiry.Format(time.DateOnly)))
				} else {
					out = append(out, fmt.Sprintf("registration expires in %d days (%s), inside the %s policy horizon",
						int(left.Hours()/24+0.5), r.Expiry.Format(time.DateOnly), humanDuration(a.cfg.Policy.Expiry.Warning.String())))
				}
			}
		}
		for _, s := range []string{"clientHold", "serverHold", "pendingDelete", "redemptionPeriod", "inactive"} {
			if slices.Contains(r.Statuses, s) {
				out = append(out, "registration status "+s)
			}
		}
	}
	if b.DNSErr != nil {
		out = append(out, "its DNS could not be checked ("+b.DNSErr.Error()+")")
	}
	var failing []string
	for _, f := range b.DNSFindings {
		if f.Severity == finding.Critical && !slices.Contains(failing, f.ID) {
			failing = append(failing, f.ID)
		}
	}
	if len(failing) > 0 {
		out = append(out, "failing its own checks ("+strings.Join(failing, ", ")+")")
	}
	return out
}

func compareRegistrar(p, b Input) Cell {
	c := Cell{Dimension: DimRegistrar, Status: CellUnknown, Primary: registrarText(p), Backup: registrarText(b)}
	if p.Registration == nil || b.Registration == nil {
		return c
	}
	pr, br := p.Registration.Registrar, b.Registration.Registrar
	switch {
	case pr.IANAID != "" && br.IANAID != "":
		c.Status = CellIndependent
		if strings.TrimLeft(pr.IANAID, "0") == strings.TrimLeft(br.IANAID, "0") {
			c.Status, c.Shared = CellShared, pr.String()
		}
	case pr.Name != "" && br.Name != "":
		c.Status = CellIndependent
		if sameEntity(pr.Name, br.Name) {
			c.Status, c.Shared = CellShared, pr.Name
		}
	}
	return c
}

func registrarText(in Input) string {
	switch {
	case in.Registration != nil:
		return in.Registration.Registrar.String()
	case errors.Is(in.RegErr, registry.ErrNotRegistered):
		return "not registered"
	}
	return "unknown"
}

func compareRegistrant(p, b Input) Cell {
	pr, br := Registrant(p), Registrant(b)
	c := Cell{Dimension: DimRegistrant, Status: CellUnknown, Primary: orUnknown(pr), Backup: orUnknown(br)}
	if pr == "" || br == "" {
		return c
	}
	c.Status = CellIndependent
	if sameEntity(pr, br) {
		c.Status, c.Shared = CellShared, pr
	}
	return c
}

func compareTLD(p, b string) Cell {
	pt, bt := tld(p), tld(b)
	c := Cell{Dimension: DimTLD, Status: CellIndependent, Primary: "." + pt, Backup: "." + bt}
	if pt == bt {
		c.Status, c.Shared = CellShared, "."+pt
	}
	return c
}

// tld is the last label: the TLD's registry is what one outage or one
// policy change hits (.com.cn and .cn share CNNIC).
func tld(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// nsNames returns the NS names a domain is delegated to: the observed
// delegation, else the declared set, else the registry's.
func nsNames(in Input) []string {
	switch {
	case in.DNS != nil && len(in.DNS.Parent.NS) > 0:
		return in.DNS.Parent.NS
	case len(in.Domain.Nameservers) > 0:
		return in.Domain.Nameservers
	case in.Registration != nil:
		return in.Registration.Nameservers
	}
	return nil
}

func nsProviders(in Input) []string {
	var out []string
	for _, n := range nsNames(in) {
		out = append(out, Registrable(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// nsAddr is one name server address with its name.
type nsAddr struct {
	name string
	addr netip.Addr
}

// nsAddrs returns the addresses the delegation's name servers answered
// on, or their glue; nil when there is no observation.
func nsAddrs(in Input) []nsAddr {
	if in.DNS == nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	var out []nsAddr
	add := func(name, s string) {
		a, err := netip.ParseAddr(s)
		if err != nil || seen[a] {
			return
		}
		seen[a] = true
		out = append(out, nsAddr{strings.TrimSuffix(name, "."), a.Unmap()})
	}
	for _, s := range in.DNS.Servers {
		add(s.Name, s.Addr)
	}
	for _, g := range in.DNS.Parent.Glue {
		for _, s := range g.Addrs {
			add(g.Name, s)
		}
	}
	slices.SortFunc(out, func(x, y nsAddr) int { return x.addr.Compare(y.addr) })
	return out
}

func compareSets(dim string, p, b []string) Cell {
	c := Cell{Dimension: dim, Status: CellUnknown, Primary: listOr(p, "unknown"), Backup: listOr(b, "unknown")}
	if len(p) == 0 || len(b) == 0 {
		return c
	}
	var common []string
	for _, x := range p {
		if slices.Contains(b, x) {
			common = append(common, x)
		}
	}
	c.Status = CellIndependent
	if len(common) > 0 {
		c.Status, c.Shared = CellShared, strings.Join(common, ", ")
	}
	return c
}

// prefixOf is the network one routing incident takes out: /24 for IPv4,
// /48 for IPv6 (the same sizes as NS_SAME_PREFIX).
func prefixOf(a netip.Addr) netip.Prefix {
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p
}

func compareNetworks(p, b []nsAddr) Cell {
	show := func(as []nsAddr) string {
		var s []string
		for _, x := range as {
			s = append(s, x.addr.String())
		}
		return listOr(s, "unknown")
	}
	c := Cell{Dimension: DimNSNetwork, Status: CellUnknown, Primary: show(p), Backup: show(b)}
	if len(p) == 0 || len(b) == 0 {
		return c
	}
	var common []string
	for _, x := range p {
		for _, y := range b {
			switch {
			case x.addr == y.addr:
				common = append(common, fmt.Sprintf("%s is both %s and %s", x.addr, x.name, y.name))
			case prefixOf(x.addr) == prefixOf(y.addr):
				common = append(common, fmt.Sprintf("%s (%s) and %s (%s) are both in %s", x.name, x.addr, y.name, y.addr, prefixOf(x.addr)))
			}
		}
	}
	c.Status = CellIndependent
	if len(common) > 0 {
		c.Status, c.Shared = CellShared, strings.Join(common, "; ")
	}
	return c
}

// humanDuration spells a config duration as an adjective: "90d" is
// "90-day"; anything but whole days stays as written.
func humanDuration(s string) string {
	if n, ok := wholeDays(s); ok {
		return n + "-day"
	}
	return s
}

// inDays spells a config duration as a noun: "90d" is "90 days".
func inDays(s string) string {
	if n, ok := wholeDays(s); ok {
		return n + " days"
	}
	return s
}

func wholeDays(s string) (string, bool) {
	n, ok := strings.CutSuffix(s, "d")
	return n, ok && n != "" && strings.Trim(n, "0123456789") == ""
}

func listOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
