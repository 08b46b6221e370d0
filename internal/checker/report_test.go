package checker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/lab/dnslab"
)

// TestWriteJSONIsTheEncodersOutput: the report written a domain at a time,
// and streamed as results come in any order, is byte for byte what
// json.Encoder with a two-space indent writes for the whole report (the
// output `nsguard check -o json` always had), for a real check of the lab
// with findings, errors and escaping, and for an empty report.
func TestWriteJSONIsTheEncodersOutput(t *testing.T) {
	ctx := context.Background()
	lab, err := dnslab.Start(ctx, dnslab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	// Findings of several kinds: a hijack, a lame server, a broken DS.
	if err := lab.Hijack(ctx, "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Lame(ctx, "shop-backup.net", "ns2.provider-b.org"); err != nil {
		t.Fatal(err)
	}
	if err := lab.BreakDS(ctx, "pay-example.org"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(lab.ConfigYAML(filepath.Join(t.TempDir(), "nsguard.db"), "")))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checker.New(cfg, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	results := ck.Run(ctx, cfg.Domains, checker.RunOptions{Classes: []string{checker.DNS}})
	// A domain that could not be checked, with characters JSON escapes.
	results = append(results, checker.Result{Domain: config.Domain{Name: "x<&>.example", Tier: 3, Owner: "ops \"team\""},
		DNSErr: errors.New("checking x<&>.example took longer than 15s\tand was abandoned")})
	for _, tc := range []struct {
		name    string
		results []checker.Result
	}{{"a checked lab", results}, {"no domains", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checker.NewReport(tc.results, 1234567*time.Microsecond)
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("WriteJSON differs from the encoder (%d vs %d bytes); first difference at %d:\n%s",
					got.Len(), want.Len(), firstDiff(got.Bytes(), want.Bytes()), around(got.Bytes(), firstDiff(got.Bytes(), want.Bytes())))
			}
			// Streamed: added concurrently, in a random order.
			var streamed bytes.Buffer
			js := checker.NewJSONStream(&streamed, true)
			var wg sync.WaitGroup
			for _, i := range rand.Perm(len(tc.results)) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := tc.results[i]
					r.Index = i
					js.Add(r)
				}()
			}
			wg.Wait()
			sum, err := js.Close(1234567 * time.Microsecond)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(streamed.Bytes(), want.Bytes()) {
				t.Errorf("the stream differs from the encoder (%d vs %d bytes); first difference at %d:\n%s",
					streamed.Len(), want.Len(), firstDiff(streamed.Bytes(), want.Bytes()), around(streamed.Bytes(), firstDiff(streamed.Bytes(), want.Bytes())))
			}
			if sum != rep.Summary {
				t.Errorf("the stream's summary %+v, the report's %+v", sum, rep.Summary)
			}
			// What the table is drawn from: the same domains in the same
			// order, without the observations.
			table := js.Report()
			if len(table.Domains) != len(rep.Domains) || table.Summary != rep.Summary {
				t.Fatalf("the stream's table has %d domains (%+v), the report %d (%+v)", len(table.Domains), table.Summary, len(rep.Domains), rep.Summary)
			}
			for i, d := range table.Domains {
				if d.Domain != rep.Domains[i].Domain || d.Status != rep.Domains[i].Status || len(d.Findings) != len(rep.Domains[i].Findings) || d.DNS != nil {
					t.Errorf("table row %d: %s %s (%d findings), want %s %s (%d)", i, d.Domain, d.Status, len(d.Findings),
						rep.Domains[i].Domain, rep.Domains[i].Status, len(rep.Domains[i].Findings))
				}
			}
			if len(tc.results) > 0 && rep.Summary.Critical == 0 {
				t.Errorf("the lab's broken domains found nothing critical: %+v", rep.Summary)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func around(b []byte, i int) string {
	return string(b[max(0, i-200):min(len(b), i+200)])
}

// FuzzIndentJSON: the report's indenter writes what json.Indent writes for
// any value encoding/json encodes.
func FuzzIndentJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{}],"b":{"c":"x\"y,{}:[]"},"d":[]}`, `[]`, `"\u003c"`, `{"domains":[{"dns":{"servers":[{"udp":{"aa":true}}]}}]}`, `null`,
		strings.Repeat(`{"a":[`, 20) + `1,"x"` + strings.Repeat(`]}`, 20)} {
		f.Add(s, "    ")
	}
	f.Fuzz(func(t *testing.T, in, prefix string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		compact, err := json.Marshal(v)
		if err != nil {
			return
		}
		var want bytes.Buffer
		if err := json.Indent(&want, compact, prefix, "  "); err != nil {
			t.Fatal(err)
		}
		if got := checker.IndentJSON(nil, compact, prefix); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("indented %s as\n%s\nwant\n%s", compact, got, want.Bytes())
		}
	})
}
