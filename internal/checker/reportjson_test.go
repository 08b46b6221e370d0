package checker_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/monitor"
)

// TestDomainJSONMatchesEncodingJSON: the report's own writer of a domain's
// JSON gives encoding/json's bytes (two-space indent under the report's
// prefix) for domain reports whose every field, at every depth, is filled
// by reflection — nil, empty or holding values, strings with what JSON
// escapes, floats that take an exponent — so a field added to a report
// type and not to the writer fails here. Values encoding/json refuses go
// back to it, as does a report with a registration record.
func TestDomainJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := filler{rng: rng}
	for i := range 3000 {
		var dr checker.DomainReport
		fill.value(reflect.ValueOf(&dr).Elem(), 0)
		if rng.IntN(8) > 0 {
			obs := &monitor.Observation{}
			fill.value(reflect.ValueOf(obs).Elem(), 0)
			dr.DNS = obs
		}
		want := encodingJSON(t, &dr)
		got, ok := checker.AppendDomainJSON(nil, &dr, "    ")
		if !ok {
			t.Fatalf("report %d: the writer declined a report it handles", i)
		}
		if !bytes.Equal(got, want) {
			at := firstDiff(got, want)
			t.Fatalf("report %d differs from encoding/json at byte %d:\n got: %s\nwant: %s", i, at, around(got, at), around(want, at))
		}
	}

	declined := map[string]checker.DomainReport{
		"a registration record":       {Domain: "a.example", Registration: map[string]string{"registrar": "x"}},
		"a DNS value of another type": {Domain: "a.example", DNS: map[string]int{"queries": 1}},
		"a nil observation":           {Domain: "a.example", DNS: (*monitor.Observation)(nil)},
		"a NaN duration":              {Domain: "a.example", DNS: &monitor.Observation{DurationMS: math.NaN()}},
		"a year past 9999":            {Domain: "a.example", DNS: &monitor.Observation{CheckedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for name, dr := range declined {
		if _, ok := checker.AppendDomainJSON(nil, &dr, "    "); ok {
			t.Errorf("%s: the writer took it; it belongs to encoding/json", name)
		}
	}
}

// encodingJSON is dr as it stands in a report: json.Encoder with a
// two-space indent, as the element of an array under "    ".
func encodingJSON(t *testing.T, dr *checker.DomainReport) []byte {
	t.Helper()
	var compact bytes.Buffer
	if err := json.NewEncoder(&compact).Encode(dr); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSuffix(compact.Bytes(), []byte("\n")), "    ", "  "); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// filler sets values at random: each slice nil, empty or of up to three
// elements, each pointer nil or set, each string empty or made of what
// JSON escapes and what it does not.
type filler struct{ rng *rand.Rand }

var timeType = reflect.TypeFor[time.Time]()

func (f filler) value(v reflect.Value, depth int) {
	if !v.CanSet() {
		return
	}
	switch {
	case v.Type() == timeType:
		if f.rng.IntN(4) > 0 {
			v.Set(reflect.ValueOf(time.Unix(f.rng.Int64N(1<<33), f.rng.Int64N(1e9)*int64(f.rng.IntN(2))).In(time.FixedZone("", 3600*(f.rng.IntN(5)-2)))))
		}
		return
	case v.Type() == reflect.TypeFor[finding.Severity]():
		v.SetInt(int64(f.rng.IntN(5)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(f.text())
	case reflect.Bool:
		v.SetBool(f.rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(f.rng.Int64N(2000) - 1000)
	case reflect.Uint16, reflect.Uint32:
		if f.rng.IntN(3) > 0 {
			v.SetUint(f.rng.Uint64N(1 << 16))
		}
	case reflect.Float64:
		v.SetFloat([]float64{0, 0.001, 4.731, 1234.5, 1e-7, 3e21, -2.5, float64(f.rng.IntN(100000)) / 1000}[f.rng.IntN(8)])
	case reflect.Pointer:
		if f.rng.IntN(3) > 0 && depth < 6 {
			p := reflect.New(v.Type().Elem())
			f.value(p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.Slice:
		switch n := f.rng.IntN(5); {
		case n == 0:
		case n == 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			s := reflect.MakeSlice(v.Type(), n-1, n-1)
			for i := range n - 1 {
				f.value(s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f.value(v.Field(i), depth+1)
		}
	case reflect.Interface:
		// DNS and Registration: set by the test, as the check sets them.
	default:
		panic("filler: no values for " + v.Type().String())
	}
}

func (f filler) text() string {
	pieces := []string{"", "ns1.example.com.", "a b", `"`, `\`, "<", ">", "&", "\n", "\t", "\x01", "\x7f", "é", "\u2028", "\u2029", "\xff", "💡", "192.0.2.1"}
	var s string
	for range f.rng.IntN(4) {
		s += pieces[f.rng.IntN(len(pieces))]
	}
	return s
}
