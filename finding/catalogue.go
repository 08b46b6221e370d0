package finding

import "sort"

// Check describes one finding ID: the catalogue docs/checks.md documents.
type Check struct {
	ID    string
	Class string // delegation, nameserver, dnssec, records, resolver, registration, inventory, baseline
	// Default is the usual severity; some checks escalate (all servers
	// lame, expiry inside the critical horizon) and say so in docs.
	Default Severity
	Title   string
	// Zonemaster names the corresponding Zonemaster test case ("" if none).
	Zonemaster string
}

var catalogue = map[string]Check{}

// Register adds a check to the catalogue; packages register theirs in init.
// A duplicate ID is a programming error.
func Register(cs ...Check) {
	for _, c := range cs {
		if _, dup := catalogue[c.ID]; dup {
			panic("finding: duplicate check ID " + c.ID)
		}
		catalogue[c.ID] = c
	}
}

// Lookup returns the catalogue entry for id.
func Lookup(id string) (Check, bool) {
	c, ok := catalogue[id]
	return c, ok
}

// Catalogue returns every registered check, sorted by class then ID.
func Catalogue() []Check {
	out := make([]Check, 0, len(catalogue))
	for _, c := range catalogue {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Class != out[j].Class {
			return out[i].Class < out[j].Class
		}
		return out[i].ID < out[j].ID
	})
	return out
}
