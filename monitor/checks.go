package monitor

import "github.com/nsguard/nsguard/finding"

// Finding IDs the monitor emits. docs/checks.md documents each one.
const (
	DelegationMissing     = "DELEGATION_MISSING"
	ParentServersDisagree = "PARENT_SERVERS_DISAGREE"
	NSCountLow            = "NS_COUNT_LOW"
	NSSamePrefix          = "NS_SAME_PREFIX"
	NSSingleProvider      = "NS_SINGLE_PROVIDER"
	GlueMissing           = "GLUE_MISSING"
	GlueMismatch          = "GLUE_MISMATCH"
	NSNotAsDeclared       = "NS_NOT_AS_DECLARED"
	DSNotAsDeclared       = "DS_NOT_AS_DECLARED"
	ParentServerError     = "PARENT_SERVER_ERROR"
	NSTooMany             = "NS_TOO_MANY"

	NSUnreachable         = "NS_UNREACHABLE"
	NSLame                = "NS_LAME"
	ParentChildNSMismatch = "PARENT_CHILD_NS_MISMATCH"
	ChildNSInconsistent   = "CHILD_NS_INCONSISTENT"
	SOASerialDrift        = "SOA_SERIAL_DRIFT"
	NSNameUnresolvable    = "NS_NAME_UNRESOLVABLE"
	NSNoIPv4              = "NS_NO_IPV4"

	DSNoMatchingDNSKEY   = "DS_NO_MATCHING_DNSKEY"
	RRSIGExpiring        = "RRSIG_EXPIRING"
	RRSIGInvalid         = "RRSIG_INVALID"
	DNSSECUnsignedWithDS = "DNSSEC_UNSIGNED_WITH_DS"
	DSUnsupported        = "DS_UNSUPPORTED"

	RecordChanged          = "RECORD_CHANGED"
	ResolverAnswerDiverges = "RESOLVER_ANSWER_DIVERGES"
)

func init() {
	finding.Register(
		finding.Check{ID: DelegationMissing, Class: "delegation", Default: finding.Critical,
			Title: "the parent zone does not delegate the domain", Zonemaster: "Basic01"},
		finding.Check{ID: ParentServersDisagree, Class: "delegation", Default: finding.Warning,
			Title: "parent servers hand out different delegations", Zonemaster: "Basic01 (B01_INCONSISTENT_DELEGATION); nsguard compares every parent server"},
		finding.Check{ID: ParentServerError, Class: "delegation", Default: finding.Warning,
			Title: "a parent zone server answers, but unusably", Zonemaster: "Basic01 (B01_SERVER_ZONE_ERROR), Delegation03 (truncation)"},
		finding.Check{ID: NSCountLow, Class: "delegation", Default: finding.Warning,
			Title: "fewer than two name servers", Zonemaster: "Delegation01"},
		finding.Check{ID: NSTooMany, Class: "delegation", Default: finding.Warning,
			Title: "more name servers than resolver.max_ns_per_delegation; the rest were not checked", Zonemaster: "none (Delegation03 judges the referral's size)"},
		finding.Check{ID: NSSamePrefix, Class: "delegation", Default: finding.Warning,
			Title: "all name server addresses in one /24 (IPv4) or /48 (IPv6)", Zonemaster: "Connectivity04 (IP prefix diversity)"},
		finding.Check{ID: NSSingleProvider, Class: "delegation", Default: finding.Warning,
			Title: "all name servers under one registrable domain", Zonemaster: "Connectivity03 (AS diversity; nsguard judges by registrable domain)"},
		finding.Check{ID: GlueMissing, Class: "delegation", Default: finding.Critical,
			Title: "in-bailiwick name server without glue", Zonemaster: "Consistency05 (IN_BAILIWICK_ADDR_MISMATCH)"},
		finding.Check{ID: GlueMismatch, Class: "delegation", Default: finding.Warning,
			Title: "parent glue differs from the name server's own address records", Zonemaster: "Consistency05 (IN_BAILIWICK / OUT_OF_BAILIWICK_ADDR_MISMATCH, EXTRA_ADDRESS_CHILD)"},
		finding.Check{ID: NSNotAsDeclared, Class: "delegation", Default: finding.Critical,
			Title: "the delegation is not the declared name server set", Zonemaster: "none (nsguard policy)"},
		finding.Check{ID: DSNotAsDeclared, Class: "delegation", Default: finding.Critical,
			Title: "the parent's DS set is not the declared one", Zonemaster: "none (nsguard policy)"},

		finding.Check{ID: NSUnreachable, Class: "nameserver", Default: finding.Warning,
			Title: "a name server address does not answer (UDP or TCP)", Zonemaster: "Connectivity01, Connectivity02"},
		finding.Check{ID: NSLame, Class: "nameserver", Default: finding.Warning,
			Title: "a name server answers but is not authoritative", Zonemaster: "Delegation04, Nameserver07 (upward referral), Basic02 (when none works)"},
		finding.Check{ID: ParentChildNSMismatch, Class: "nameserver", Default: finding.Warning,
			Title: "the child's NS set differs from the delegation", Zonemaster: "Delegation07 (EXTRA_NAME_PARENT, EXTRA_NAME_CHILD)"},
		finding.Check{ID: ChildNSInconsistent, Class: "nameserver", Default: finding.Warning,
			Title: "the child's servers disagree on the NS set", Zonemaster: "Consistency04"},
		finding.Check{ID: SOASerialDrift, Class: "nameserver", Default: finding.Warning,
			Title: "the child's servers serve different SOA serials", Zonemaster: "Consistency01"},
		finding.Check{ID: NSNameUnresolvable, Class: "nameserver", Default: finding.Warning,
			Title: "a name server name has no address", Zonemaster: "Nameserver06"},
		finding.Check{ID: NSNoIPv4, Class: "nameserver", Default: finding.Warning,
			Title: "no name server has an IPv4 address", Zonemaster: "Delegation01 (NO_IPV4_NS_DEL, NO_IPV4_NS_CHILD)"},

		finding.Check{ID: DSNoMatchingDNSKEY, Class: "dnssec", Default: finding.Critical,
			Title: "no DS at the parent matches a DNSKEY of the zone", Zonemaster: "DNSSEC02"},
		finding.Check{ID: DSUnsupported, Class: "dnssec", Default: finding.Warning,
			Title: "every DS uses a digest type or algorithm validators do not implement: the zone is insecure", Zonemaster: "DNSSEC01 (DS digest types), DNSSEC05 (algorithms)"},
		finding.Check{ID: RRSIGExpiring, Class: "dnssec", Default: finding.Warning,
			Title: "signatures expire soon", Zonemaster: "DNSSEC04 (RRSIG lifetimes)"},
		finding.Check{ID: RRSIGInvalid, Class: "dnssec", Default: finding.Critical,
			Title: "signatures do not validate, are expired or missing", Zonemaster: "DNSSEC08 (DNSKEY), DNSSEC09 (SOA)"},
		finding.Check{ID: DNSSECUnsignedWithDS, Class: "dnssec", Default: finding.Critical,
			Title: "the parent has DS but the zone is not signed", Zonemaster: "DNSSEC11"},

		finding.Check{ID: RecordChanged, Class: "records", Default: finding.Warning,
			Title: "a watched record differs (between servers, or from the approved baseline)", Zonemaster: "none"},
		finding.Check{ID: ResolverAnswerDiverges, Class: "resolver", Default: finding.Warning,
			Title: "a public resolver answers differently from the trusted name servers", Zonemaster: "none"},
	)
}
