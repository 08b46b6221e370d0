package checker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/dnslab"
)

// TestWriteJSONIsTheEncodersOutput: the streamed report is byte for byte
// what json.Encoder with a two-space indent writes for the whole report
// (the output `nsguard check -o json` always had), for a real check of
// the lab with findings, errors and escaping, and for an empty report.
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
