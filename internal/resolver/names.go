package resolver

import "github.com/miekg/dns"

// IsSubDomain reports whether child is parent or below it: miekg/dns's
// IsSubDomain, label for label (case-insensitive, escaped dots kept inside
// their label, and, as there, a name with a trailing dot differs from one
// without), comparing from the right without splitting the names: it runs
// for every query of a cycle, and miekg's allocates.
func IsSubDomain(parent, child string) bool {
	if parent == "." {
		return true
	}
	if child == "." {
		return false
	}
	e1, e2 := len(parent), len(child)
	for {
		b1, b2 := labelStart(parent, e1), labelStart(child, e2)
		if !equalFold(parent[b1:e1], child[b2:e2]) {
			return false
		}
		if b1 == 0 {
			return true // every label of parent matched
		}
		if b2 == 0 {
			return false // child has fewer labels
		}
		e1, e2 = b1, b2
	}
}

// labelStart returns where the label ending at end (exclusive) starts, as
// dns.Split cuts names: after a dot that is not escaped (an even number of
// backslashes before it) and is not the name's last character.
func labelStart(s string, end int) int {
	for p := end - 1; p > 0; p-- {
		if i := p - 1; s[i] == '.' && i < len(s)-1 && evenBackslashes(s, i) {
			return p
		}
	}
	return 0
}

func evenBackslashes(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 0
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

// CanonicalName is miekg/dns's CanonicalName (fully qualified, ASCII
// letters lower-cased) without its rune-by-rune strings.Map: a name that
// is already canonical, as nearly every name on a cycle's hot path is,
// comes back as it is, and an ASCII one is lower-cased bytewise. A name
// with other bytes goes to miekg's, which also rewrites invalid UTF-8.
func CanonicalName(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return dns.CanonicalName(s)
		}
		if c >= 'A' && c <= 'Z' {
			upper = true
		}
	}
	s = dns.Fqdn(s)
	if !upper {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
