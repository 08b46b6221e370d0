package audit

import (
	"sort"
	"strings"
)

// Split is a suggested split of a shared domain: Keep stays on it, each
// group of Move goes to a new domain of its own.
type Split struct {
	Keep []string   `json:"keep"`
	Move [][]string `json:"move"`
}

// SuggestSplit splits services into the fewest groups of at most limit
// services, keeping services of one family together where it can. A
// family is the name up to the first '-' ("shop-web", "shop-api": shop),
// since teams usually name their services that way. Families are packed
// first-fit, largest first; a family larger than limit is cut in listing
// order. The group holding the first listed service stays on the domain.
// Deterministic: the same list gives the same split.
func SuggestSplit(services []string, limit int) Split {
	if limit < 1 {
		limit = 1
	}
	if len(services) <= limit {
		return Split{Keep: append([]string(nil), services...)}
	}
	type family struct {
		key   string
		first int
		items []string
	}
	var fams []*family
	byKey := map[string]*family{}
	for i, s := range services {
		k, _, _ := strings.Cut(s, "-")
		f, ok := byKey[k]
		if !ok {
			f = &family{key: k, first: i}
			byKey[k] = f
			fams = append(fams, f)
		}
		f.items = append(f.items, s)
	}
	// Families bigger than a domain may hold are cut into full chunks
	// first; their remainders are packed with the rest.
	var bins [][]string
	var pieces []*family
	for _, f := range fams {
		for len(f.items) > limit {
			bins = append(bins, append([]string(nil), f.items[:limit]...))
			f.items = f.items[limit:]
		}
		pieces = append(pieces, f)
	}
	sort.SliceStable(pieces, func(i, j int) bool {
		if len(pieces[i].items) != len(pieces[j].items) {
			return len(pieces[i].items) > len(pieces[j].items)
		}
		return pieces[i].first < pieces[j].first
	})
	for _, p := range pieces {
		placed := false
		for i := range bins {
			if len(bins[i])+len(p.items) <= limit {
				bins[i] = append(bins[i], p.items...)
				placed = true
				break
			}
		}
		if !placed {
			bins = append(bins, append([]string(nil), p.items...))
		}
	}
	// Restore listing order inside each group and between groups, and
	// keep the group with the first listed service on the domain.
	pos := map[string]int{}
	for i, s := range services {
		if _, ok := pos[s]; !ok {
			pos[s] = i
		}
	}
	for _, b := range bins {
		sort.SliceStable(b, func(i, j int) bool { return pos[b[i]] < pos[b[j]] })
	}
	sort.SliceStable(bins, func(i, j int) bool { return pos[bins[i][0]] < pos[bins[j][0]] })
	out := Split{Keep: bins[0]}
	if len(bins) > 1 {
		out.Move = bins[1:]
	}
	return out
}
