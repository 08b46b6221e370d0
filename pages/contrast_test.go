package pages_test

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/pages"
)

// WCAG 2.x relative luminance and contrast ratio of two sRGB colours.
func luminance(hex string) (float64, error) {
	hex = strings.TrimPrefix(hex, "#")
	if len(hex) != 6 {
		return 0, fmt.Errorf("want #rrggbb, got #%s", hex)
	}
	var ch [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return 0, err
		}
		c := float64(v) / 255
		if c <= 0.04045 {
			ch[i] = c / 12.92
		} else {
			ch[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*ch[0] + 0.7152*ch[1] + 0.0722*ch[2], nil
}

func contrast(a, b string) (float64, error) {
	la, err := luminance(a)
	if err != nil {
		return 0, err
	}
	lb, err := luminance(b)
	if err != nil {
		return 0, err
	}
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05), nil
}

var rule = regexp.MustCompile(`(?m)^([^{}\n]+)\{([^}]*)\}`)

// cssRules maps each selector of the stylesheet to its declarations.
func cssRules(t *testing.T) map[string]map[string]string {
	b, err := os.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, m := range rule.FindAllStringSubmatch(string(b), -1) {
		decls := map[string]string{}
		for _, d := range strings.Split(m[2], ";") {
			if k, v, ok := strings.Cut(d, ":"); ok {
				decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		for _, sel := range strings.Split(m[1], ",") {
			out[strings.TrimSpace(sel)] = decls
		}
	}
	return out
}

// Every state badge and every coloured text meets WCAG AA (4.5:1) against
// its background, computed from the stylesheet the pages embed.
func TestStateColoursContrast(t *testing.T) {
	rules := cssRules(t)
	page := rules["body"]["background"]
	if page == "" {
		t.Fatal("no page background in the stylesheet")
	}
	type pair struct{ what, fg, bg string }
	var pairs []pair
	for _, s := range pages.States {
		r, ok := rules[".state-"+s]
		if !ok {
			t.Errorf("no style for the state %s", s)
			continue
		}
		pairs = append(pairs, pair{"state " + s, r["color"], r["background-color"]})
	}
	for _, sel := range []string{".sev-critical", ".sev-warning", ".sev-info", ".sev-ok", ".expiry-critical", ".expiry-warning", ".muted", ".note", ".ok-text", "a", "del", "ins"} {
		r, ok := rules[sel]
		if !ok {
			t.Errorf("no style for %s", sel)
			continue
		}
		bg := r["background"]
		if bg == "" {
			bg = page
		}
		pairs = append(pairs, pair{sel, r["color"], bg})
	}
	// Text on the shaded rows that mark differences.
	pairs = append(pairs, pair{"text on a differing row", rules["body"]["color"], rules["tr.differs > *"]["background"]},
		pair{"header", rules["header.site"]["color"], rules["header.site"]["background"]})
	for _, p := range pairs {
		ratio, err := contrast(p.fg, p.bg)
		if err != nil {
			t.Errorf("%s: %v (colours %q on %q)", p.what, err, p.fg, p.bg)
			continue
		}
		if ratio < 4.5 {
			t.Errorf("%s: %s on %s has contrast %.2f:1, want at least 4.5:1", p.what, p.fg, p.bg, ratio)
		}
	}
}

// The contrast formula itself, on known values.
func TestContrastFormula(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{{"#000000", "#ffffff", 21}, {"#ffffff", "#ffffff", 1}, {"#777777", "#ffffff", 4.48}} {
		got, err := contrast(tc.a, tc.b)
		if err != nil || math.Abs(got-tc.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, %v; want %.2f", tc.a, tc.b, got, err, tc.want)
		}
	}
}
