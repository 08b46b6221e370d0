package resolver

import "github.com/miekg/dns"

// IsSubDomain reports whether child is parent or below it: miekg/dns's
// IsSubDomain, label for label (case-insensitive, escaped dots kept inside
// their label, and, as there, a name with a trailing dot differs from one
// without), without allocating: it runs for every query of a cycle.
func IsSubDomain(parent, child string) bool {
	var pb, cb [128]int // a name has at most 127 labels
	return compareLabels(parent, child, pb[:0], cb[:0]) == dns.CountLabel(parent)
}

// compareLabels is dns.CompareDomainName with the label offsets in the
// given buffers.
func compareLabels(s1, s2 string, b1, b2 []int) (n int) {
	if s1 == "." || s2 == "." {
		return 0
	}
	l1 := splitLabels(s1, b1)
	l2 := splitLabels(s2, b2)
	j1, i1 := len(l1)-1, len(l1)-2
	j2, i2 := len(l2)-1, len(l2)-2
	if !equalFold(s1[l1[j1]:], s2[l2[j2]:]) {
		return 0
	}
	n++
	for i1 >= 0 && i2 >= 0 {
		if !equalFold(s1[l1[i1]:l1[j1]], s2[l2[i2]:l2[j2]]) {
			break
		}
		n++
		j1, i1, j2, i2 = j1-1, i1-1, j2-1, i2-1
	}
	return n
}

// splitLabels is dns.Split appending to idx (which must not be nil).
func splitLabels(s string, idx []int) []int {
	idx = append(idx, 0)
	for off := 0; ; {
		var end bool
		off, end = dns.NextLabel(s, off)
		if end {
			return idx
		}
		idx = append(idx, off)
	}
}

// equalFold compares ASCII case-insensitively, as DNS names compare.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x |= 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y |= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
