package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// agree loads data whole and in chunks of per entries and fails t when the
// two differ in any way an operator or a caller could see: the errors, the
// config, or the line of any field. It reports whether the chunked load
// applied at all.
func agree(t *testing.T, name string, data []byte, per int) bool {
	t.Helper()
	cc, cerrs, ok := parseChunked(name, data, per)
	if !ok {
		return false
	}
	wc, werrs := parseWhole(name, data)
	if werrs.Error() != cerrs.Error() {
		t.Fatalf("chunks of %d disagree with the whole load on the errors:\nwhole:\n%v\nchunked:\n%v", per, werrs, cerrs)
	}
	if wc == nil {
		t.Fatalf("whole load found no document, the chunked one did:\n%s", data)
	}
	a, b := *wc, *cc
	a.loc, b.loc = nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("chunks of %d disagree with the whole load on the config:\nwhole:   %+v\nchunked: %+v", per, a, b)
	}
	paths := make([]string, 0, len(wc.loc.paths))
	for p := range wc.loc.paths {
		paths = append(paths, p)
	}
	// In entry order: the finder keeps the last chunk it read.
	sort.Slice(paths, func(i, j int) bool {
		a, _ := domainIndex(paths[i])
		b, _ := domainIndex(paths[j])
		return a < b || a == b && paths[i] < paths[j]
	})
	lf := &lineFinder{loc: cc.loc}
	for _, path := range paths {
		if got, _ := lf.line(path); got != wc.loc.paths[path] {
			t.Fatalf("chunks of %d: line of %s is %d, whole load says %d", per, path, got, wc.loc.paths[path])
		}
	}
	return true
}

// TestChunkedLoadAgrees: every fixture, good and bad, loads the same in
// chunks of any size as whole; and the block-list fixtures do take the
// chunked way, so the comparison is not empty.
func TestChunkedLoadAgrees(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	files = append(files, bad...)
	if len(files) < 5 {
		t.Fatalf("fixtures missing: %v", files)
	}
	// These have their domains as a block list: they must be read in chunks.
	mustChunk := map[string]bool{"good.yaml": true, "unknown-field-and-more.yaml": true, "wrong-types-and-more.yaml": true, "unknown-step-kind.yaml": true}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, per := range []int{1, 2, 3, 512} {
				if !agree(t, f, data, per) && mustChunk[filepath.Base(f)] {
					t.Errorf("not read in chunks of %d", per)
				}
			}
		})
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	largeInventory(t, big, 1500)
	data, _ := os.ReadFile(big)
	for _, per := range []int{1, 7, 512} {
		if !agree(t, big, data, per) {
			t.Errorf("a 1,500-domain block list was not loaded in chunks of %d", per)
		}
	}
}

// TestChunkedLoadFallsBack: the files a line scan cannot cut safely are
// loaded whole (and still load right).
func TestChunkedLoadFallsBack(t *testing.T) {
	for name, yaml := range map[string]string{
		"flow list":             "domains: [{name: a-example.com, tier: 0}]\n",
		"alias into the rest":   "x: &t 0\ndomains:\n  - {name: a-example.com, tier: *t}\n",
		"two domains keys":      "domains:\n  - {name: a-example.com, tier: 0}\ndomains:\n  - {name: b-example.com, tier: 0}\n",
		"CR line breaks":        "domains:\r\n  - {name: a-example.com, tier: 0}\r\n",
		"tab indentation":       "domains:\n\t- {name: a-example.com, tier: 0}\n",
		"quoted across entries": "domains:\n  - {name: \"a-example.com\n  - b\", tier: 0}\n",
		"indented root":         "  domains:\n    - {name: a-example.com, tier: 0}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, ok := parseChunked("f.yaml", []byte(yaml), 512); ok {
				t.Fatalf("cut in chunks:\n%s", yaml)
			}
			_, whole := parseWhole("f.yaml", []byte(yaml))
			_, err := Parse("f.yaml", []byte(yaml))
			if fmt.Sprint(err) != fmt.Sprint(errOrNil(whole)) {
				t.Fatalf("Parse does not load it whole: %v vs %v", err, whole)
			}
		})
	}
}

func errOrNil(es Errors) error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// TestLargeInventoryErrors: problems deep in a 3,000-domain list are all
// reported, with the line of the entry's own field, in file order.
func TestLargeInventoryErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("domains:\n")
	line := 1
	want := []string{}
	for i := range 3000 {
		line++
		switch i {
		case 700:
			fmt.Fprintf(&b, "  - name: d%d-example.com\n    tier: 9\n", i)
			want = append(want, fmt.Sprintf("big.yaml:%d: domains[%d].tier: must be 0..3, got 9", line+1, i))
			line++
		case 1500:
			fmt.Fprintf(&b, "  - {name: d%d-example.com, tier: 1, wtach: [www]}\n", i)
			want = append(want, fmt.Sprintf("big.yaml:%d: domains[%d].wtach: unknown field (did you mean \"watch\"?)", line, i))
		case 2999:
			fmt.Fprintf(&b, "  - {name: d0-example.com, tier: 1}\n")
			want = append(want, fmt.Sprintf("big.yaml:%d: domains[%d].name: duplicate domain \"d0-example.com\" (also domains[0])", line, i))
		default:
			fmt.Fprintf(&b, "  - {name: d%d-example.com, tier: %d}\n", i, i%4)
		}
	}
	_, err := Parse("big.yaml", []byte(b.String()))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if _, _, ok := parseChunked("big.yaml", []byte(b.String()), chunkEntries); !ok {
		t.Fatal("the list was not read in chunks")
	}
}

// TestAliasExpansionIsBounded: aliases of aliases cannot make loading run
// for ever: decoding stops with an error after a bounded amount of work.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("domains: [{name: a-example.com, tier: 0}]\nplaybooks:\n  - &pb {name: p, primary: a-example.com, backup: b-example.net, steps: &steps [")
	b.WriteString("&st {dns_update: {server: 127.0.0.1, zone: a-example.com, tsig_file: k, replace: &rr [")
	for i := range 100 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"a.a-example.com. 60 IN A 192.0.2.1"`)
	}
	b.WriteString("]}}")
	for range 99 {
		b.WriteString(", *st")
	}
	b.WriteString("]}\n")
	for range 500 {
		b.WriteString("  - *pb\n")
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many values") {
		t.Fatalf("got %v", err)
	}
}
