package config

import (
	"regexp"
	"testing"
)

// labelRe is the rule isLabel implements.
var labelRe = regexp.MustCompile(`^[a-z0-9_]([a-z0-9-]*[a-z0-9])?$`)

var labelCases = []string{"", "a", "_", "-", "a-", "-a", "a-b", "a--b", "_dmarc", "a_b", "xn--bcher-kva", "0", "09az", "A", "é", "a.b", "a\n", "ab-", "a-9"}

func TestIsLabelIsTheRegexp(t *testing.T) {
	for _, l := range labelCases {
		if got, want := isLabel(l), labelRe.MatchString(l); got != want {
			t.Errorf("isLabel(%q) = %v, the rule says %v", l, got, want)
		}
	}
}

func FuzzIsLabel(f *testing.F) {
	for _, l := range labelCases {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, l string) {
		if got, want := isLabel(l), labelRe.MatchString(l); got != want {
			t.Fatalf("isLabel(%q) = %v, the rule says %v", l, got, want)
		}
	})
}
