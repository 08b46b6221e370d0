package finding

import "sort"

// Posture findings describe how a domain is set up rather than something
// that happened to it: one DNS provider, every address in one /24, a
// registrar outside policy, a lock the tier asks for. Real inventories carry
// them for years. When a person approves a domain's baseline with such a
// finding present (not critical), it is accepted risk: `check`, `baseline
// show` and the daily digest still show it, the daemon never pages it. A
// posture finding that appears after the approval (the domain moved to a
// single provider) is new and pages like any other.
//
// Events (a changed delegation, a server that stopped answering, a
// signature about to expire) are never accepted: approving them is what
// the baseline itself is for, and a clock that keeps ticking must keep
// paging.
var posture = map[string]bool{
	"NS_COUNT_LOW":           true,
	"NS_SAME_PREFIX":         true,
	"NS_SINGLE_PROVIDER":     true,
	"REGISTRAR_NOT_APPROVED": true,
	"LOCK_MISSING":           true,
	"DOMAIN_SHARED":          true,
	"DOMAIN_UNBACKED":        true,
	"DEPENDENCY_UNDECLARED":  true,
}

// IsPosture reports whether findings with id can be accepted at approval.
func IsPosture(id string) bool { return posture[id] }

// Acceptable reports whether f, present at approval, becomes accepted
// risk: a posture finding below critical.
func Acceptable(f Finding) bool { return IsPosture(f.ID) && f.Severity < Critical && f.Severity > OK }

// PostureIDs returns the posture IDs, sorted.
func PostureIDs() []string {
	out := make([]string, 0, len(posture))
	for id := range posture {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
